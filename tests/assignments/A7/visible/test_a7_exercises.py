"""A7, visible: lesson 08's exercises (SAME padding, folding BN, an allow-list unpickler),
each run alone from its answer cell in ``lessons/08_real_imagenet_weights.ipynb``.

Run them with ``python -m pytest -m A7``.
"""
import pickle

import pytest

pytestmark = [pytest.mark.A7]


def test_try_same_pads_lesson_cases(checks, a7):
    """Every size up to 40, kernels 1 to 7, strides 1 to 3, as the lesson's check."""
    ns = checks.exercise("08", "A7.try_same_pads", forbid=("tinynets", "tf_same_padding"))
    same_pads = checks.defined(ns, "same_pads", "A7.try_same_pads")
    a7.check_same_pads(same_pads, [(n, k, s) for n in range(1, 41) for k in range(1, 8)
                                   for s in (1, 2, 3)])


def test_try_fold_grouped_conv_with_bias(checks, a7):
    ns = checks.exercise("08", "A7.try_fold", forbid=("tinynets", "fold_conv_bn"))
    a7.check_fold(checks, checks.defined(ns, "fold", "A7.try_fold"), 6, 6, 3, 3, True, 1e-3, 8)


def test_try_only_ordered_dict_loads_and_refuses(checks, a7, tmp_path):
    ns = checks.exercise("08", "A7.try_only_ordered_dict", forbid=("tinynets",), pickle=pickle)
    unpickler = checks.defined(ns, "OnlyOrderedDict", "A7.try_only_ordered_dict")
    good = a7.OrderedDict(a=1, b=[2, 3])
    if a7.load_with(unpickler, pickle.dumps(good, protocol=2)) != good:
        raise AssertionError("A7.try_only_ordered_dict: a pickled OrderedDict did not load as itself")
    flag = tmp_path / "ran.txt"
    a7.expect_refused(unpickler, pickle.dumps(a7.Payload(f'echo ran > "{flag}"'), protocol=2),
                      "system", flag)
