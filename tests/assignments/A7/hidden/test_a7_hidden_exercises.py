"""A7, hidden: lesson 08's exercises on cases the lesson does not show."""
import pickle

import numpy as np
import pytest

pytestmark = [pytest.mark.A7, pytest.mark.hidden]


def test_try_same_pads_large_and_odd_cases(checks, a7):
    rng = np.random.default_rng(7)
    cases = [(int(n), int(k), int(s)) for n, k, s in
             zip(rng.integers(1, 700, 400), rng.integers(1, 12, 400), rng.integers(1, 5, 400))]
    cases += [(1, 11, 4), (3, 7, 4), (224, 3, 2), (225, 3, 2), (7, 1, 3)]
    ns = checks.exercise("08", "A7.try_same_pads", forbid=("tinynets", "tf_same_padding"))
    a7.check_same_pads(checks.defined(ns, "same_pads", "A7.try_same_pads"), cases)


def test_try_fold_other_layers(checks, a7):
    ns = checks.exercise("08", "A7.try_fold", forbid=("tinynets", "fold_conv_bn"))
    fold = checks.defined(ns, "fold", "A7.try_fold")
    a7.check_fold(checks, fold, 5, 7, 1, 1, True, 1e-5, 1)      # pointwise
    a7.check_fold(checks, fold, 8, 8, 5, 8, False, 1e-3, 2)     # depthwise, no bias
    a7.check_fold(checks, fold, 4, 6, 3, 2, True, 0.1, 3)       # grouped, large eps


def test_try_only_ordered_dict_other_globals(checks, a7, tmp_path):
    ns = checks.exercise("08", "A7.try_only_ordered_dict", forbid=("tinynets",), pickle=pickle)
    unpickler = checks.defined(ns, "OnlyOrderedDict", "A7.try_only_ordered_dict")
    nested = a7.OrderedDict(x=a7.OrderedDict(y=(1, 2.5, "z")), w=[a7.OrderedDict()])
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        if a7.load_with(unpickler, pickle.dumps(nested, protocol=protocol)) != nested:
            raise AssertionError(f"A7.try_only_ordered_dict: a nested OrderedDict (protocol "
                                 f"{protocol}) did not load as itself")
    crafted = {"eval": b"cbuiltins\neval\n(S'6*7'\ntR.",
               "getattr": b"cbuiltins\ngetattr\n(cbuiltins\nobject\nS'__subclasses__'\ntR.",
               "Popen": b"csubprocess\nPopen\n((S'true'\nltR.",
               "defaultdict": pickle.dumps(__import__("collections").defaultdict(list), protocol=2)}
    for name, data in crafted.items():
        a7.expect_refused(unpickler, data, name)
    flag = tmp_path / "ran.txt"
    for protocol in (0, 4):
        a7.expect_refused(unpickler, pickle.dumps(a7.Payload(f'echo ran > "{flag}"'),
                                                  protocol=protocol), "system", flag)
