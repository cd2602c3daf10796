"""A4, hidden: lesson 05's exercises on inputs the lesson never shows (other SE shapes,
every squeeze width up to 8192, other networks' SE layers and summaries), so that
answers typed in from the check cells' outputs do not pass."""
import numpy as np
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A4, pytest.mark.hidden, pytest.mark.numpy_only]

SILU = ("tinynets", "backward", "forward", "gradcheck", "_gate_layers")


def test_try_se_silu_backward_hidden_shapes(checks, a4):
    """1x1 maps, one image, C = S = 1, a wide squeeze."""
    ns = checks.exercise("05", "A4.try_se_silu_backward", forbid=SILU)
    fn = checks.defined(ns, "se_silu_backward", "A4.try_se_silu_backward")
    a4.check_silu_backward(checks, fn, [(1, 5, 1, 1, 2), (4, 1, 2, 3, 1), (2, 6, 4, 2, 6)])


def _width(c):
    q = c // 4
    near = max(8, (2 * q + 8) // 16 * 8)            # nearest multiple of 8, halves up
    return near + 8 if 10 * near < 9 * q else near


def test_try_squeeze_width_all(checks):
    ns = checks.exercise("05", "A4.try_squeeze_width", forbid=("tinynets", "make_divisible"))
    fn = checks.defined(ns, "squeeze_width", "A4.try_squeeze_width")
    wrong = [c for c in range(1, 8193) if fn(c) != _width(c)]
    if wrong:
        raise AssertionError(f"squeeze_width: wrong for {len(wrong)} of C_exp = 1..8192, e.g. "
                             f"squeeze_width({wrong[0]}) should be {_width(wrong[0])}, got "
                             f"{fn(wrong[0])}")


def test_try_no_se_counts_other_network(checks, a4):
    """SE layers of other widths, next to a layer that is not an SE, and other totals."""
    widths = [(40, 10), (96, 24), (96, 24), (576, 144), (17, 3)]
    large = tn.Sequential(tn.Conv2d(3, 40, 3, bias=False),
                          *[tn.SqueezeExcitation(c, s) for c, s in widths])
    params, macs = 987_654_321, 123_456_789
    summaries = {"Large": type("S", (), {"params": params, "macs": macs})()}
    ns = checks.exercise("05", "A4.try_no_se_counts", forbid=a4.NO_SE, large=large,
                         summaries=summaries)
    got = (checks.defined(ns, "no_se_params", "A4.try_no_se_counts"),
           checks.defined(ns, "no_se_macs", "A4.try_no_se_counts"))
    want = (params - sum(2 * c * s + c + s for c, s in widths),
            macs - sum(2 * c * s for c, s in widths))
    if got != want:
        raise AssertionError(f"(no_se_params, no_se_macs) for other SE layers and totals: should "
                             f"be {want}, got {got}")


def test_try_macs_at_other_rows(checks, a4):
    spatial = [(8, 112, 27), (32, 56, 100), (64, 28, 77), (96, 14, 5000), (96, 7, 321)]
    fixed = [("features.2.block.2.fc1", (1, 8, 1, 1), 256),
             ("features.2.block.2.fc2", (1, 32, 1, 1), 256),
             ("features.5.block.2.fc1", (1, 24, 1, 1), 2304), ("classifier.3", (1, 10), 10240)]
    rng = np.random.default_rng(0)
    rows = a4.fake_rows(spatial, fixed)
    rows = [rows[i] for i in rng.permutation(len(rows))]          # pooled rows between others
    summaries = {"Large": a4.Summary(rows, 5)}
    ns = checks.exercise("05", "A4.try_macs_at", forbid=a4.NO_SE, summaries=summaries)
    fn = checks.defined(ns, "macs_at", "A4.try_macs_at")
    a4.expect_macs_at(fn, spatial, fixed, (96, 224, 288, 320, 416))
