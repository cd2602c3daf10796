"""A5, hidden: lesson 06's graded cells on what the lesson does not show.

These tests never ship: the questions' answers, the exact Try it 1 values, drop_probs on
models whose layers carry wrong probabilities (so reading them cannot pass), other MBConvs,
B8's rule on another base network (so hard-coded lists cannot pass), and MobileNetV1 at
widths and resolutions outside the paper's table.
"""
import math

import numpy as np
import pytest

import tinynets as tn
from tinynets.models.efficientnet import STAGES, EfficientNet, round_filters, round_repeats
from tinynets.models.mobilenet_v1 import STAGES as V1_STAGES

pytestmark = [pytest.mark.A5, pytest.mark.hidden]

LIBRARY_COUNTING = ("count_macs", "count_params", "count_flops", "summary", "profile")


def tf_round_filters(c, w, divisor=8):
    v = c * w
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def test_try_exact_gamma_values(checks):
    task = "A5.try_exact_gamma"
    ns = checks.exercise("06", task)
    g, res = checks.defined(ns, "gamma_exact", task), checks.defined(ns, "res_b7", task)
    checks.expect_close(f"{task}: gamma_exact", g, math.sqrt(2 / 1.452), tol=1e-12)
    if type(res) is not int or res != 687:
        raise AssertionError(f"{task}: res_b7 should be the int 687 (224 x 1.17363^7 = 686.9), got {res!r}")


def test_try_drop_probs_from_structure_only(checks):
    """Models whose StochasticDepth layers hold a wrong p, other p_max, a Lite model."""
    task = "A5.try_drop_probs"
    drop_probs = checks.defined(checks.exercise("06", task, forbid=("stochastic_depth",)),
                                "drop_probs", task)
    models = {"EfficientNet(width 0.25, depth 1.4)": EfficientNet(width_mult=0.25, depth_mult=1.4),
              "efficientnet_lite0(width 0.25)": tn.models.efficientnet_lite0(width_mult=0.25)}
    for label, model in models.items():
        blocks = [m for m in model.modules() if isinstance(m, tn.MBConv)]
        for m in blocks:
            m.stochastic_depth.p = 0.77                      # not what the schedule says
        for p_max in (0.2, 0.5):
            want = [p_max * b / len(blocks) if m.use_res_connect else 0.0 for b, m in enumerate(blocks)]
            got = list(drop_probs(model, p_max) if p_max != 0.2 else drop_probs(model))
            if len(got) != len(want):
                raise AssertionError(f"{task}: {label}: expected {len(want)} probabilities, got {len(got)}")
            checks.expect_close(f"{task}: drop_probs({label}, p_max={p_max}) (from the structure; "
                                "the layers' own p was changed)", got, want, tol=1e-12)


def test_try_mbconv_macs_other_blocks(checks, a5):
    task = "A5.try_mbconv_macs"
    rng = np.random.default_rng(21)
    cases = []
    for _ in range(30):
        c_in, c_out = int(rng.integers(1, 64)), int(rng.integers(1, 64))
        t, k, s = int(rng.choice([1, 2, 3, 4, 6])), int(rng.choice([3, 5, 7])), int(rng.choice([1, 2]))
        cases.append((c_in, c_out, t, k, s, int(rng.integers(max(1, k // 2), 33))))
    cases += [(8, 8, 1, 3, 1, 4), (40, 40, 6, 5, 1, 28), (16, 16, 1, 7, 2, 3)]
    want = [tn.count_macs(tn.MBConv(*c[:5]), (c[0], c[5], c[5])) for c in cases]
    with a5.by_hand(task, allow=("make_divisible",)):
        ns = checks.exercise("06", task, forbid=LIBRARY_COUNTING + ("MBConv",))
        mbconv_macs = checks.defined(ns, "mbconv_macs", task)
        got = [mbconv_macs(*c) for c in cases]
    for c, g, w in zip(cases, got, want):
        a5.expect_equal(f"{task}: mbconv_macs{c}", g, w)


def test_try_b8_stages_follows_the_rules(checks, a5):
    """The same cell on another base network: the rules, not a list copied from a built B8."""
    task = "A5.try_b8_stages"
    other = [(t, k, s, c_in + 8, c_out + 12, n + (i % 3)) for i, (t, k, s, c_in, c_out, n) in enumerate(STAGES)]
    for base in (STAGES, other):
        with a5.by_hand(task, own="efficientnet.py", allow=("make_divisible",)):
            ns = checks.exercise("06", task, forbid=("EfficientNet", "get_model"), B0_STAGES=base,
                                 round_filters=round_filters, round_repeats=round_repeats)
        want = [(tf_round_filters(c_out, 2.2), math.ceil(n * 3.6)) for (_, _, _, _, c_out, n) in base]
        stages, blocks = checks.defined(ns, "b8_stages", task), checks.defined(ns, "b8_blocks", task)
        if list(stages) != want or blocks != sum(n for _, n in want):
            raise AssertionError(f"{task}: on the base stages {base}, b8_stages should be {want} and "
                                 f"b8_blocks {sum(n for _, n in want)}, got {stages} and {blocks}")


def test_try_mobilenet_v1_table_other_sizes(checks, a5):
    """Widths whose channels need make_divisible, resolutions that are not multiples of 32,
    10 classes: against the library's counts of the built model."""
    task = "A5.try_mobilenet_v1_table"
    cases = [(w, r, n) for w in (0.35, 0.6, 1.4) for r in (96, 200, 257) for n in (1000, 10)]
    want = {}
    for w, r, n in cases:
        m = tn.models.mobilenet_v1(width_mult=w, num_classes=n)
        want[(w, r, n)] = (tn.count_params(m), tn.count_macs(m, (3, r, r)))
    with a5.by_hand(task, own="counting.py", allow=("make_divisible",)):
        ns = checks.exercise("06", task, forbid=LIBRARY_COUNTING + ("MobileNetV1", "mobilenet_v1",
                                                                    "get_model"),
                             V1_STAGES=V1_STAGES)
        counts = checks.defined(ns, "mobilenet_v1_counts", task)
        got = {key: counts(key[0], key[1], key[2]) for key in cases}
    for key in cases:
        where = f"{task}: mobilenet_v1_counts(width_mult={key[0]}, resolution={key[1]}, num_classes={key[2]})"
        a5.expect_equal(where + " params", got[key][0], want[key][0])
        a5.expect_equal(where + " MACs", got[key][1], want[key][1])


def test_q_depthwise_exponent_value(checks):
    task = "A5.q_depthwise_exponent"
    answer = checks.defined(checks.exercise("06", task), "answer", task)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or abs(answer - 1) > 1e-9:
        raise AssertionError(f"{task}: not the right exponent (got {answer!r}): a depthwise conv's "
                             "cost C k^2 H'W' has one factor of the width")


def test_q_v1_params_layer_value(checks):
    task = "A5.q_v1_params_layer"
    answer = checks.defined(checks.exercise("06", task), "answer", task)
    if answer != "classifier":
        raise AssertionError(f"{task}: not the right kind of layer (got {answer!r}): the pointwise convs' "
                             "parameters shrink as alpha^2, the classifier's (1024 alpha x 1000) only as alpha")
