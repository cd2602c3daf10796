"""The NumPy depthwise separable convolution of lesson 03 equals the library's fast path:
a depthwise ``Conv2d`` (the Numba kernel) followed by a pointwise one (a BLAS GEMM)."""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn
from tinynets.kernels import conv_naive as naive

pytestmark = pytest.mark.task_conv

# (N, M, C_out, H, W, k, stride, (top, bottom, left, right))
CASES = [(2, 4, 6, 7, 6, 3, 1, (1, 1, 1, 1)), (1, 3, 5, 9, 8, 3, 2, (1, 1, 1, 1)),
         (2, 2, 3, 8, 7, 5, 2, (1, 2, 2, 2)), (1, 5, 2, 6, 6, 7, 1, (3, 3, 3, 3)),
         (3, 4, 4, 5, 9, 1, 2, (0, 0, 0, 0)), (1, 2, 8, 1, 1, 3, 1, (1, 1, 1, 1))]


def _layers(M, C_out, k, stride, pads, dtype, rng):
    """A depthwise and a pointwise Conv2d (no bias) with random weights; the depthwise
    layer pads by ``pads`` (t, b, l, r), which may be asymmetric."""
    dw = tn.Conv2d(M, M, k, stride, groups=M, bias=False, dtype=dtype)
    dw.pads = lambda H, W: pads                       # Conv2d itself pads symmetrically
    pw = tn.Conv2d(M, C_out, 1, bias=False, dtype=dtype)
    dw.weight.data[...] = rng.standard_normal(dw.weight.shape)
    pw.weight.data[...] = rng.standard_normal(pw.weight.shape)
    return dw, pw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_separable_taps_equals_depthwise_then_pointwise_conv2d(case, dtype, rng):
    N, M, C_out, H, W, k, s, pads = case
    dw, pw = _layers(M, C_out, k, s, pads, dtype, rng)
    x = rng.standard_normal((N, M, H, W)).astype(dtype)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    mid_ref = dw(x)
    out_ref = pw(mid_ref)
    out, mid = naive.separable_taps(x, dw.weight.data, pw.weight.data, s, pads)
    assert out.dtype == dtype and mid.dtype == dtype
    np.testing.assert_allclose(mid, mid_ref, **tol)
    np.testing.assert_allclose(out, out_ref, **tol)

    dout = rng.standard_normal(out.shape).astype(dtype)
    dw.zero_grad()
    pw.zero_grad()
    dx_ref = dw.backward(pw.backward(dout))
    dx, ddw, dpw = naive.separable_taps_backward(dout, x, mid, dw.weight.data, pw.weight.data,
                                                 s, pads)
    assert dx.dtype == ddw.dtype == dpw.dtype == dtype
    np.testing.assert_allclose(dx, dx_ref, **tol)
    np.testing.assert_allclose(ddw, dw.weight.grad, **tol)
    np.testing.assert_allclose(dpw, pw.weight.grad, **tol)


def test_separable_taps_is_the_rank_one_standard_conv(rng):
    """Lesson 03: the factorisation is a standard conv with W[n, m] = P[n, m] K[m]."""
    x = rng.standard_normal((2, 3, 6, 5))
    K, P = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((4, 3, 1, 1))
    out, _ = naive.separable_taps(x, K, P, 2, (1, 0, 1, 1))
    Wfull = P[:, :, 0, 0, None, None] * K[None, :, 0]
    np.testing.assert_allclose(out, naive.conv2d_loops(x, Wfull, None, 2, (1, 0, 1, 1)),
                               rtol=1e-12, atol=1e-12)
