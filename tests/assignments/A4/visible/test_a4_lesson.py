"""A4, visible: the four "Try it" exercises of lesson 05, each cell run alone.

``checks.exercise`` runs the cell whose first line names the task (keep that line), with
``np``, ``math``, ``tn`` and the names the exercise gives, and fails if the cell uses what
the exercise asks you to write yourself.
"""
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A4, pytest.mark.numpy_only]

LARGE_SE = [(72, 24), (120, 32), (120, 32), (480, 120), (672, 168), (672, 168), (960, 240),
            (960, 240)]                             # (C_exp, S) of MobileNetV3-Large's SE layers
SMALL_SE = [(16, 8), (96, 24), (240, 64), (240, 64), (120, 32), (144, 40), (288, 72), (576, 144),
            (576, 144)]                             # and of MobileNetV3-Small's


def test_try_se_silu_backward_numerical(checks, a4):
    ns = checks.exercise("05", "A4.try_se_silu_backward",
                         forbid=("tinynets", "backward", "forward", "gradcheck", "_gate_layers"))
    fn = checks.defined(ns, "se_silu_backward", "A4.try_se_silu_backward")
    a4.check_silu_backward(checks, fn, [(3, 16, 6, 7, 4), (2, 8, 3, 3, 2)])


def test_try_squeeze_width_table(checks):
    ns = checks.exercise("05", "A4.try_squeeze_width", forbid=("tinynets", "make_divisible"))
    fn = checks.defined(ns, "squeeze_width", "A4.try_squeeze_width")
    table = LARGE_SE + SMALL_SE + \
        [(1, 8), (4, 8), (40, 16), (64, 16), (100, 24), (200, 48), (328, 80), (1000, 248)]
    wrong = [(c, s, fn(c)) for c, s in table if fn(c) != s]
    if wrong:
        c, s, got = wrong[0]
        raise AssertionError(f"squeeze_width: {len(wrong)} of {len(table)} widths wrong, e.g. "
                             f"squeeze_width({c}) should be {s}, got {got}")


def test_try_no_se_counts_small(checks, a4):
    """The cell runs on MobileNetV3-Small's SE layers and totals (given as ``large`` and
    ``summaries['Large']``): the same formulas, other numbers than the lesson's."""
    large = tn.Sequential(*[tn.SqueezeExcitation(c, s) for c, s in SMALL_SE])
    summaries = {"Large": type("S", (), {"params": 2_542_856, "macs": 56_510_400})()}
    ns = checks.exercise("05", "A4.try_no_se_counts", forbid=a4.NO_SE, large=large,
                         summaries=summaries)
    got = (checks.defined(ns, "no_se_params", "A4.try_no_se_counts"),
           checks.defined(ns, "no_se_macs", "A4.try_no_se_counts"))
    if got != (2_081_216, 56_051_648):
        raise AssertionError(f"(no_se_params, no_se_macs) for MobileNetV3-Small's SE layers and "
                             f"totals should be (2081216, 56051648), got {got}")


def test_try_macs_at_rows(checks, a4):
    spatial = [(16, 112, 432), (24, 56, 1728), (40, 28, 3000), (80, 14, 9600), (160, 7, 153600)]
    fixed = [("features.3.block.2.fc1", (1, 24, 1, 1), 1728), ("classifier.0", (1, 1280), 1228800),
             ("classifier.3", (1, 1000), 1280000)]
    summaries = {"Large": a4.Summary(a4.fake_rows(spatial, fixed), 1000)}
    ns = checks.exercise("05", "A4.try_macs_at", forbid=a4.NO_SE, summaries=summaries)
    fn = checks.defined(ns, "macs_at", "A4.try_macs_at")
    a4.expect_macs_at(fn, spatial, fixed, (160, 192, 256))
