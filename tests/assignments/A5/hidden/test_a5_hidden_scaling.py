"""A5, hidden: compound scaling at any phi and constants, and the rounding rules on a grid.

These tests never ship. The rounding reference is TensorFlow's ``round_filters`` written
out here; B0-B7's exact parameter and MAC counts (``targets.json``) are recomputed from the
student's rounding by a closed form of the whole network, also written out here.
"""
import importlib
import math

import numpy as np
import pytest

E = importlib.import_module("tinynets.models.efficientnet")

pytestmark = [pytest.mark.A5, pytest.mark.hidden, pytest.mark.numpy_only]


def tf_round_filters(c, w, divisor=8):
    """TensorFlow's efficientnet_builder round_filters (min_depth = divisor)."""
    v = c * w
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _close(what, got, want, tol=1e-12):
    if not isinstance(got, (int, float)) or not abs(got - want) <= tol * abs(want):
        raise AssertionError(f"{what}: expected {want!r} (relative error below {tol:.0e}), got {got!r}")


def test_compound_coefficients_any_phi_and_constants():
    rng = np.random.default_rng(3)
    for _ in range(25):
        phi = float(rng.uniform(-2, 9))
        a, b, g = (float(x) for x in rng.uniform(1.0, 1.5, 3))
        c = E.compound_coefficients(phi, a, b, g)
        if c.get("phi") != phi or c.get("official", 0) is not None:
            raise AssertionError(f"compound_coefficients({phi:.4f}, ...): 'phi' should be {phi!r} and "
                                 f"'official' None, got {c.get('phi')!r} and {c.get('official', '<missing>')!r}")
        where = f"compound_coefficients({phi:.4f}, alpha={a:.4f}, beta={b:.4f}, gamma={g:.4f})"
        _close(where + "['depth_mult']", c["depth_mult"], a ** phi)
        _close(where + "['width_mult']", c["width_mult"], b ** phi)
        _close(where + "['resolution']", c["resolution"], 224 * g ** phi)
        _close(where + "['flops_factor']", c["flops_factor"], (a * b * b * g * g) ** phi)


def test_compound_coefficients_official_only_for_released_models():
    for phi in (8, -1, 2.5, 7.0001, 10):
        if E.compound_coefficients(phi)["official"] is not None:
            raise AssertionError(f"compound_coefficients({phi})['official'] should be None: there is no "
                                 f"released efficientnet_b{phi}")
    o = E.compound_coefficients(3.0, 1.3, 1.2, 1.1)["official"]
    want = {"model": "efficientnet_b3", "width_mult": 1.2, "depth_mult": 1.4, "resolution": 300}
    if o != want:
        raise AssertionError(f"compound_coefficients(3.0, other constants)['official']: the released B3 "
                             f"does not depend on the constants; expected {want}, got {o}")


def test_efficientnet_phi_and_table_use_it():
    model = E.efficientnet(1.5, width_mult=0.25)        # a thin one: only its settings are read
    if model.depth_mult != pytest.approx(1.2 ** 1.5, rel=1e-12) or \
            model.default_resolution != round(224 * 1.15 ** 1.5):
        raise AssertionError(f"efficientnet(1.5): expected depth_mult {1.2 ** 1.5:.6f} and resolution "
                             f"{round(224 * 1.15 ** 1.5)}, got {model.depth_mult} and {model.default_resolution}")
    lines = E.compound_scaling_table().splitlines()
    if len(lines) != 9 or "efficientnet_b7" not in lines[-1] or "3.583" not in lines[-1]:
        raise AssertionError("compound_scaling_table(): expected a header and 8 rows ending with B7's "
                             f"(1.2^7 = 3.583), got {lines[-1:]!r}")


def test_round_filters_tf_rule_grid(a5):
    widths = (0.25, 0.35, 0.5, 0.7, 0.75, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 3.1, 4.3)
    bad = []
    with a5.by_hand("round_filters", own="efficientnet.py"):
        for divisor in (4, 8, 16):
            for c in range(1, 1100, 7):
                for w in widths:
                    got = E.round_filters(c, w, divisor) if divisor != 8 else E.round_filters(c, w)
                    if got != tf_round_filters(c, w, divisor) or type(got) is not int:
                        bad.append((c, w, divisor, got, tf_round_filters(c, w, divisor)))
    if bad:
        c, w, d, got, want = bad[0]
        raise AssertionError(f"round_filters: {len(bad)} of the grid's values are wrong, e.g. "
                             f"round_filters({c}, {w}, divisor={d}) should be {want}, got {got!r}")


def test_round_filters_minimum_and_ten_percent_rule(a5):
    cases = [(1, 1.0, 8, 8), (3, 0.5, 8, 8), (11, 1.0, 8, 16), (20, 1.0, 8, 24), (17, 1.0, 8, 16), (19, 1.0, 8, 24),
             (36, 1.0, 8, 40), (12, 1.0, 8, 16), (27, 1.0, 16, 32), (6, 1.0, 4, 8), (5, 1.0, 4, 8)]
    with a5.by_hand("round_filters", own="efficientnet.py"):
        got = [E.round_filters(c, w, d) for c, w, d, _ in cases]
    for (c, w, d, want), g in zip(cases, got):
        a5.expect_equal(f"round_filters({c}, {w}, divisor={d})", g, want)


def test_round_repeats_grid(a5):
    with a5.by_hand("round_repeats", own="efficientnet.py"):
        got = {(n, d): E.round_repeats(n, d) for n in range(1, 17) for d in
               (0.5, 1.0, 1.1, 1.2, 1.4, 1.8, 2.2, 2.6, 3.1, 3.6, 1.2 ** 3, 0.01)}
    for (n, d), g in got.items():
        a5.expect_equal(f"round_repeats({n}, {d})", g, math.ceil(n * d))


def _network_counts(w, d, res, num_classes=1000):
    """(params, MACs) of EfficientNet(width_mult=w, depth_mult=d) for one res x res image,
    from its stage list through the student's rounding (torchvision's padding (k - 1) // 2)."""
    def conv(c_in, c_out, k, H_out, groups=1):
        return c_out * (c_in // groups) * k * k, c_out * (c_in // groups) * k * k * H_out * H_out

    stem = E.round_filters(32, w)
    H = (res - 1) // 2 + 1
    p, m = conv(3, stem, 3, H)
    params, macs = p + 2 * stem, m
    for t, k, s, c_in, c_out, n in E.STAGES:
        c_in, c_out, n = E.round_filters(c_in, w), E.round_filters(c_out, w), E.round_repeats(n, d)
        for j in range(n):
            cin = c_in if j == 0 else c_out
            stride = s if j == 0 else 1
            e, sq = tf_round_filters(cin, t), max(1, cin // 4)
            if e != cin:
                p, m = conv(cin, e, 1, H)
                params, macs = params + p + 2 * e, macs + m
            H = (H + 2 * ((k - 1) // 2) - k) // stride + 1
            p, m = conv(e, e, k, H, groups=e)
            params, macs = params + p + 2 * e, macs + m
            params, macs = params + 2 * e * sq + sq + e, macs + 2 * e * sq      # SE, biased 1x1s
            p, m = conv(e, c_out, 1, H)
            params, macs = params + p + 2 * c_out, macs + m
        last = c_out
    head = 4 * last
    p, m = conv(last, head, 1, H)
    params, macs = params + p + 2 * head, macs + m
    return params + head * num_classes + num_classes, macs + head * num_classes


def test_rounding_reproduces_b0_to_b7_counts(a5):
    """Every stage's channels and repeats from round_filters and round_repeats: the network they
    describe has exactly torchvision's B0-B7 parameter and MAC counts."""
    for phi in range(8):
        name = f"efficientnet_b{phi}"
        w, d, _, _ = E.EFFICIENTNET_PARAMS[name]
        (row,) = a5.targets(name)
        with a5.by_hand("round_filters and round_repeats", own="efficientnet.py"):
            params, macs = _network_counts(w, d, row["resolution"])
        if (params, macs) != (row["params"], row["macs"]):
            raise AssertionError(f"{name} from your rounding (width {w}, depth {d}): "
                                 f"{params:,} params and {macs:,} MACs, expected {row['params']:,} "
                                 f"and {row['macs']:,}")
