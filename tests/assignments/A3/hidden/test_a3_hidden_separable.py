"""A3, hidden: ``separable_taps`` and its backward on cases the student has not seen.

The fixture's other depthwise cases (1x1 kernels, a 1x1 input, TensorFlow's asymmetric
SAME padding), random inputs checked against the definition and finite differences of
the student's own forward, float32 in and out.
"""
import importlib.util
import os

import numpy as np
import pytest

from tinynets.kernels import conv_naive

pytestmark = [pytest.mark.A3, pytest.mark.hidden, pytest.mark.numpy_only]

_spec = importlib.util.spec_from_file_location(
    "a3_visible_separable", os.path.join(os.path.dirname(__file__), "..", "visible",
                                         "test_a3_separable.py"))
visible = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(visible)

HIDDEN = ("conv/18", "conv/24", "conv/25", "conv/28", "conv/29", "conv_same/00", "conv_same/01",
          "conv_same/02", "conv_same/08")
# (N, M, C_out, H, W, k, stride, (top, bottom, left, right))
RANDOM = [(2, 3, 5, 6, 7, 3, 2, (1, 0, 2, 1)), (1, 4, 2, 5, 5, 5, 1, (2, 2, 2, 2)),
          (2, 2, 3, 7, 4, 3, 3, (0, 1, 1, 0))]


def _random(rng, cfg):
    N, M, C_out, H, W, k, s, pads = cfg
    return (rng.standard_normal((N, M, H, W)), rng.standard_normal((M, 1, k, k)),
            rng.standard_normal((C_out, M, 1, 1)), s, pads)


def test_separable_forward_hidden_cases(checks, a3, own_taps):
    visible.check_forward(checks, a3, HIDDEN, square=True, seed=5)
    visible.check_forward(checks, a3, HIDDEN[:4], square=False, seed=6)
    c = a3.separable_case(checks.conv_cases("conv/08")[0], 4, np.random.default_rng(2))
    f32 = [a.astype(np.float32) for a in (c.x, c.w_dw, c.w_pw)]
    out, mid = conv_naive.separable_taps(*f32, c.stride, c.pads)
    if out.dtype != np.float32 or mid.dtype != np.float32:
        raise AssertionError(f"separable_taps: float32 inputs should give float32 out and mid, "
                             f"got {out.dtype} and {mid.dtype}")
    checks.expect_close("separable_taps out in float32, case conv/08", out, c.out, tol=1e-4)


def test_separable_forward_definition_random(own_taps):
    """Every value of random separable convolutions, against the two sums that define it."""
    rng = np.random.default_rng(31)
    for cfg in RANDOM:
        x, w_dw, w_pw, s, pads = _random(rng, cfg)
        out, mid = conv_naive.separable_taps(x, w_dw, w_pw, s, pads)
        xp = conv_naive.pad_input(x, pads)
        k = w_dw.shape[2]
        OH, OW = (xp.shape[2] - k) // s + 1, (xp.shape[3] - k) // s + 1
        if out.shape != (x.shape[0], w_pw.shape[0], OH, OW) or np.shape(mid) != (*x.shape[:2], OH, OW):
            raise AssertionError(f"separable_taps on {cfg}: expected out {(x.shape[0], w_pw.shape[0], OH, OW)} "
                                 f"and mid {(*x.shape[:2], OH, OW)}, got {out.shape} and {np.shape(mid)}")
        for n, m, i, j in np.ndindex(*mid.shape):
            want = np.sum(w_dw[m, 0] * xp[n, m, i * s:i * s + k, j * s:j * s + k])
            if not abs(mid[n, m, i, j] - want) <= 1e-10 * (1 + abs(want)):
                raise AssertionError(f"separable_taps on a random input {cfg}: mid[{n}, {m}, {i}, "
                                     f"{j}] should be {want:.6f}, got {mid[n, m, i, j]:.6f}")
        want = np.einsum("om,nmhw->nohw", w_pw[:, :, 0, 0], mid)
        if not np.allclose(out, want, rtol=1e-10, atol=1e-10):
            raise AssertionError(f"separable_taps on a random input {cfg}: out should be the "
                                 "pointwise weight applied to mid at every pixel")


def test_separable_backward_numerical_gradient(checks, own_taps):
    """dx, dw_dw and dw_pw against central differences of the student's separable_taps."""
    rng = np.random.default_rng(17)
    for cfg in RANDOM:
        x, w_dw, w_pw, s, pads = _random(rng, cfg)
        out, mid = conv_naive.separable_taps(x, w_dw, w_pw, s, pads)
        dout = rng.standard_normal(out.shape)
        grads = conv_naive.separable_taps_backward(dout, x, mid, w_dw, w_pw, s, pads)
        f = lambda: conv_naive.separable_taps(x, w_dw, w_pw, s, pads)[0]  # noqa: E731
        for name, got, array in zip(("dx", "dw_dw", "dw_pw"), grads, (x, w_dw, w_pw)):
            checks.expect_close(f"separable_taps_backward {name} vs finite differences (random "
                                f"input {x.shape}, kernel {w_dw.shape[2]}, stride {s}, padding "
                                f"{pads}, C_out {w_pw.shape[0]})", got,
                                checks.numerical_gradient(f, array, dout), 1e-7)


def test_separable_backward_hidden_cases(checks, a3, own_taps):
    visible.check_backward(checks, a3, HIDDEN, seed=7)
