"""A5, visible: lesson 06's graded cells (the Try its and the questions).

Run them with ``python -m pytest -m A5 -k try``. Each test runs the cell whose first line
names the task, on its own, with ``np``, ``math``, ``tn`` and the names it reads from the
lesson's set-up cell. The question tests check only the form of your answer; its value is
graded by tests you do not have.
"""
import numbers

import pytest

import tinynets as tn
from tinynets.models.efficientnet import STAGES, EfficientNet, round_filters, round_repeats
from tinynets.models.mobilenet_v1 import STAGES as V1_STAGES

pytestmark = [pytest.mark.A5]

LIBRARY_COUNTING = ("count_macs", "count_params", "count_flops", "summary", "profile")
MBCONV_CASES = [(32, 16, 1, 3, 1, 112), (16, 24, 6, 3, 2, 112), (24, 40, 6, 5, 2, 56),
                (80, 112, 6, 5, 1, 14), (192, 320, 6, 3, 1, 7), (112, 192, 6, 5, 2, 15),
                (20, 20, 4, 3, 1, 9), (3, 8, 1, 3, 2, 5)]
CHOICES = ("stem", "depthwise", "pointwise", "batchnorm", "classifier")


def _read(model):
    """(out channels, repeats) of each stage of a built EfficientNet."""
    return [(stage[-1].block[-1][0].out_channels, len(stage)) for stage in list(model.features)[1:-1]]


def test_try_exact_gamma_constraint(checks):
    task = "A5.try_exact_gamma"
    ns = checks.exercise("06", task)
    g, res = checks.defined(ns, "gamma_exact", task), checks.defined(ns, "res_b7", task)
    err = abs(1.2 * 1.1 ** 2 * g ** 2 - 2)
    if not err < 1e-12 or not g > 0:
        raise AssertionError(f"{task}: alpha beta^2 gamma_exact^2 should equal 2 to within 1e-12 "
                             f"with gamma_exact > 0, got gamma_exact = {g!r} (off by {err:.1e})")
    if type(res) is not int or res != round(224 * g ** 7):
        raise AssertionError(f"{task}: res_b7 should be the int nearest 224 gamma_exact^7, got {res!r}")


def test_try_drop_probs_b1(checks):
    """On B1 (23 blocks), against the probabilities its layers use (then set to 0.5, so that
    reading them does not pass)."""
    task = "A5.try_drop_probs"
    ns = checks.exercise("06", task, forbid=("stochastic_depth",))
    drop_probs = checks.defined(ns, "drop_probs", task)
    b1 = tn.models.efficientnet_b1()
    blocks = [m for m in b1.modules() if isinstance(m, tn.MBConv)]
    want = [m.stochastic_depth.p if m.use_res_connect else 0.0 for m in blocks]
    for m in blocks:                      # the answer comes from the structure, not from p
        m.stochastic_depth.p = 0.5
    got = list(drop_probs(b1))
    if len(got) != len(want):
        raise AssertionError(f"{task}: expected {len(want)} probabilities (one per MBConv), got {len(got)}")
    checks.expect_close(f"{task}: drop_probs(efficientnet_b1())", got, want, tol=1e-12)


def test_try_mbconv_macs_lesson_cases(checks, a5):
    task = "A5.try_mbconv_macs"
    want = [tn.count_macs(tn.MBConv(*case[:5]), (case[0], case[5], case[5])) for case in MBCONV_CASES]
    with a5.by_hand(task, allow=("make_divisible",)):
        ns = checks.exercise("06", task, forbid=LIBRARY_COUNTING + ("MBConv",))
        mbconv_macs = checks.defined(ns, "mbconv_macs", task)
        got = [mbconv_macs(*case) for case in MBCONV_CASES]
    for case, g, w in zip(MBCONV_CASES, got, want):
        a5.expect_equal(f"{task}: mbconv_macs{case}", g, w)


def test_try_b8_stages_built(checks, a5):
    """Against a B8 built here: the cell itself may build nothing."""
    task = "A5.try_b8_stages"
    with a5.by_hand(task, own="efficientnet.py", allow=("make_divisible",)):
        ns = checks.exercise("06", task, forbid=("EfficientNet", "get_model"), B0_STAGES=STAGES,
                             round_filters=round_filters, round_repeats=round_repeats)
    stages, blocks = checks.defined(ns, "b8_stages", task), checks.defined(ns, "b8_blocks", task)
    want = _read(EfficientNet(width_mult=2.2, depth_mult=3.6))
    if list(stages) != want:
        raise AssertionError(f"{task}: b8_stages should be {want}, got {stages}")
    if blocks != sum(n for _, n in want):
        raise AssertionError(f"{task}: b8_blocks should be {sum(n for _, n in want)}, got {blocks}")


def test_try_mobilenet_v1_table_paper(checks, a5):
    """The paper's Tables 6 and 7: width 1, .75, .5, .25 x resolution 224, 192, 160, 128."""
    task = "A5.try_mobilenet_v1_table"
    rows = a5.targets("mobilenet_v1")
    with a5.by_hand(task, own="counting.py", allow=("make_divisible",)):
        ns = checks.exercise("06", task, forbid=LIBRARY_COUNTING + ("MobileNetV1", "mobilenet_v1",
                                                                    "get_model"),
                             V1_STAGES=V1_STAGES)
        counts = checks.defined(ns, "mobilenet_v1_counts", task)
        got = [counts(r["kwargs"]["width_mult"], r["resolution"]) for r in rows]
    for r, (params, macs) in zip(rows, got):
        where = f"{task}: mobilenet_v1_counts({r['kwargs']['width_mult']}, {r['resolution']})"
        a5.expect_equal(where + " params", params, r["params"])
        a5.expect_equal(where + " MACs", macs, r["macs"])


def test_q_depthwise_exponent_is_a_number(checks):
    task = "A5.q_depthwise_exponent"
    answer = checks.defined(checks.exercise("06", task), "answer", task)
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise AssertionError(f"{task}: answer should be a number, got {answer!r}")


def test_q_v1_params_layer_is_a_choice(checks):
    task = "A5.q_v1_params_layer"
    answer = checks.defined(checks.exercise("06", task), "answer", task)
    if answer not in CHOICES:
        raise AssertionError(f"{task}: answer should be one of {CHOICES}, got {answer!r}")
