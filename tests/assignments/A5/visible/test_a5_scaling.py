"""A5, visible: compound scaling from phi, and the rounding of widths and depths.

Run them with ``python -m pytest -m A5 -k "compound or round"``. The reference values are
the paper's constants (alpha, beta, gamma = 1.2, 1.1, 1.15), the released B0-B7 table
(Tan & Le 2019; TensorFlow's ``efficientnet_builder.py``) and the channels and repeats of
the released B0-B7 (their checkpoints' shapes). ``round_filters`` must not call
``make_divisible``: it is the rule, written out.
"""
import importlib
import math

import pytest

E = importlib.import_module("tinynets.models.efficientnet")   # the module (the package also has a function of that name)

pytestmark = [pytest.mark.A5, pytest.mark.numpy_only]

KEYS = {"phi", "depth_mult", "width_mult", "resolution", "flops_factor", "official"}
# B<phi>: (width, depth, resolution) as released
RELEASED = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260), 3: (1.2, 1.4, 300),
            4: (1.4, 1.8, 380), 5: (1.6, 2.2, 456), 6: (1.8, 2.6, 528), 7: (2.0, 3.1, 600)}
# B<phi>: stem channels, (out channels, repeats) of the seven stages
ARCH = {
    0: (32, [(16, 1), (24, 2), (40, 2), (80, 3), (112, 3), (192, 4), (320, 1)]),
    1: (32, [(16, 2), (24, 3), (40, 3), (80, 4), (112, 4), (192, 5), (320, 2)]),
    2: (32, [(16, 2), (24, 3), (48, 3), (88, 4), (120, 4), (208, 5), (352, 2)]),
    3: (40, [(24, 2), (32, 3), (48, 3), (96, 5), (136, 5), (232, 6), (384, 2)]),
    4: (48, [(24, 2), (32, 4), (56, 4), (112, 6), (160, 6), (272, 8), (448, 2)]),
    5: (48, [(24, 3), (40, 5), (64, 5), (128, 7), (176, 7), (304, 9), (512, 3)]),
    6: (56, [(32, 3), (40, 6), (72, 6), (144, 8), (200, 8), (344, 11), (576, 3)]),
    7: (64, [(32, 4), (48, 7), (80, 7), (160, 10), (224, 10), (384, 13), (640, 4)]),
}


def _close(what, got, want, tol=1e-12):
    if not isinstance(got, (int, float)) or not abs(got - want) <= tol * abs(want):
        raise AssertionError(f"{what}: expected {want!r} (relative error below {tol:.0e}), got {got!r}")


def test_compound_coefficients_phi_one():
    c = E.compound_coefficients(1)
    if not isinstance(c, dict) or set(c) != KEYS:
        raise AssertionError(f"compound_coefficients: expected a dict with keys {sorted(KEYS)}, "
                             f"got {sorted(c) if isinstance(c, dict) else type(c).__name__}")
    _close("compound_coefficients(1)['depth_mult']", c["depth_mult"], 1.2)
    _close("compound_coefficients(1)['width_mult']", c["width_mult"], 1.1)
    _close("compound_coefficients(1)['resolution']", c["resolution"], 257.6)
    _close("compound_coefficients(1)['flops_factor']", c["flops_factor"], 1.920270)  # 1.2 * 1.21 * 1.3225


def test_compound_coefficients_powers_and_released_table():
    for phi in range(8):
        c = E.compound_coefficients(phi)
        _close(f"compound_coefficients({phi})['depth_mult']", c["depth_mult"], 1.2 ** phi)
        _close(f"compound_coefficients({phi})['width_mult']", c["width_mult"], 1.1 ** phi)
        _close(f"compound_coefficients({phi})['resolution']", c["resolution"], 224 * 1.15 ** phi)
        _close(f"compound_coefficients({phi})['flops_factor']", c["flops_factor"], 1.920270 ** phi)
        w, d, r = RELEASED[phi]
        want = {"model": f"efficientnet_b{phi}", "width_mult": w, "depth_mult": d, "resolution": r}
        if c["official"] != want:
            raise AssertionError(f"compound_coefficients({phi})['official']: expected {want}, "
                                 f"got {c['official']}")
    if E.compound_coefficients(2.5)["official"] is not None:
        raise AssertionError("compound_coefficients(2.5)['official'] should be None (no released model)")


def test_round_filters_examples(a5):
    """The docstring's examples, and the channels of every stage of B0-B7."""
    for c, w, want in [(32, 1.1, 32), (40, 1.2, 48), (16, 0.7, 16), (4, 1.0, 8)]:
        with a5.by_hand("round_filters", own="efficientnet.py"):
            got = E.round_filters(c, w)
        a5.expect_equal(f"round_filters({c}, {w})", got, want)
    for phi, (stem, stages) in ARCH.items():
        w = RELEASED[phi][0]
        with a5.by_hand("round_filters", own="efficientnet.py"):
            got_stem = E.round_filters(32, w)
            got = [E.round_filters(c_out, w) for (_, _, _, _, c_out, _) in E.STAGES]
        a5.expect_equal(f"round_filters(32, {w}) (B{phi}'s stem)", got_stem, stem)
        if got != [c for c, _ in stages]:
            raise AssertionError(f"round_filters of B0's stage channels at width {w} (B{phi}): "
                                 f"expected {[c for c, _ in stages]}, got {got}")


def test_round_repeats_b0_to_b7(a5):
    for phi, (_, stages) in ARCH.items():
        d = RELEASED[phi][1]
        with a5.by_hand("round_repeats", own="efficientnet.py"):
            got = [E.round_repeats(n, d) for (_, _, _, _, _, n) in E.STAGES]
        if got != [n for _, n in stages] or not all(type(n) is int for n in got):
            raise AssertionError(f"round_repeats of B0's repeats at depth {d} (B{phi}): expected "
                                 f"the ints {[n for _, n in stages]}, got {got!r}")
    with a5.by_hand("round_repeats", own="efficientnet.py"):
        got = E.round_repeats(3, 1.1)
    a5.expect_equal("round_repeats(3, 1.1) (3.3 blocks)", got, math.ceil(3.3))
