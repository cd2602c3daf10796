"""A1, hidden: im2col, col2im and the GEMM convolution on inputs the student has not seen.

These tests never ship. col2im is checked as the adjoint of the student's im2col:
<im2col(xp), c> = <xp, col2im(c)> for every xp and c.
"""
import numpy as np
import pytest

from tinynets.kernels import conv_naive

pytestmark = [pytest.mark.A1, pytest.mark.hidden, pytest.mark.numpy_only]

# (N, C, Hp, Wp, KH, KW, stride): padded input shapes
SHAPES = [(2, 3, 7, 6, 3, 2, 2), (1, 2, 9, 9, 5, 5, 1), (3, 4, 5, 8, 1, 3, 3), (2, 1, 4, 4, 4, 4, 1)]
HIDDEN = ("conv/04", "conv/08", "conv/09", "conv/11", "conv/13", "conv/14", "conv/16",
          "conv/17", "conv/22", "conv/23", "conv/30", "conv_same/02", "conv_same/05")


def _out(Hp, Wp, KH, KW, s):
    return (Hp - KH) // s + 1, (Wp - KW) // s + 1


def test_im2col_definition_random():
    """Every entry of im2col of random padded inputs, against the documented layout."""
    rng = np.random.default_rng(11)
    for N, C, Hp, Wp, KH, KW, s in SHAPES:
        xp = rng.standard_normal((N, C, Hp, Wp))
        OH, OW = _out(Hp, Wp, KH, KW, s)
        cols = conv_naive.im2col_strided(xp, KH, KW, s)
        if cols.shape != (N, C * KH * KW, OH * OW):
            raise AssertionError(f"im2col_strided({xp.shape}, {KH}x{KW}, stride {s}): expected "
                                 f"shape {(N, C * KH * KW, OH * OW)}, got {cols.shape}")
        for n, c, ki, kj, i, j in np.ndindex(N, C, KH, KW, OH, OW):
            if cols[n, c * KH * KW + ki * KW + kj, i * OW + j] != xp[n, c, i * s + ki, j * s + kj]:
                raise AssertionError(f"im2col_strided({xp.shape}, {KH}x{KW}, stride {s}): "
                                     f"cols[{n}, {c * KH * KW + ki * KW + kj}, {i * OW + j}] "
                                     f"should be xp[{n}, {c}, {i * s + ki}, {j * s + kj}]")


def test_im2col_keeps_dtype():
    xp = np.random.default_rng(3).standard_normal((2, 3, 6, 6)).astype(np.float32)
    cols = conv_naive.im2col_strided(xp, 3, 3, 1)
    if cols.dtype != np.float32:
        raise AssertionError(f"im2col_strided: float32 input should give float32 columns, "
                             f"got {cols.dtype}")


def test_col2im_adjoint_of_im2col(checks):
    """<im2col(xp), c> = <xp, col2im(c)>: col2im is exactly im2col transposed."""
    rng = np.random.default_rng(5)
    for N, C, Hp, Wp, KH, KW, s in SHAPES:
        OH, OW = _out(Hp, Wp, KH, KW, s)
        xp = rng.standard_normal((N, C, Hp, Wp))
        c = rng.standard_normal((N, C * KH * KW, OH * OW))
        back = conv_naive.col2im_taps(c, xp.shape, KH, KW, s, OH, OW)
        if np.shape(back) != xp.shape:
            raise AssertionError(f"col2im_taps: expected shape {xp.shape}, got {np.shape(back)}")
        lhs = np.sum(conv_naive.im2col_strided(xp, KH, KW, s) * c)
        rhs = np.sum(xp * back)
        checks.expect_close(f"<im2col(xp), c> vs <xp, col2im_taps(c)> for {xp.shape}, "
                            f"{KH}x{KW}, stride {s}", rhs, lhs, tol=1e-10)


def test_col2im_hidden_cases(checks):
    for c in checks.conv_cases(*HIDDEN):
        if c.groups == 1:
            checks.expect_close(f"unpad(col2im_taps(W^T @ dout)), case {c.name}",
                                checks.dx_by_col2im(c), c.dx)


def test_conv_im2col_numerical_gradient(checks):
    """dx and dw of conv2d_im2col_backward against central differences of conv2d_im2col."""
    rng = np.random.default_rng(9)
    for N, C, H, W, C_out, K, s, pads, g in [(2, 4, 6, 5, 6, 3, 2, (1, 1, 0, 2), 2),
                                            (1, 3, 5, 5, 2, 2, 1, (0, 1, 1, 0), 1)]:
        x = rng.standard_normal((N, C, H, W))
        w = rng.standard_normal((C_out, C // g, K, K))
        b = rng.standard_normal(C_out)
        out, cols = conv_naive.conv2d_im2col(x, w, b, s, pads, g)
        dout = rng.standard_normal(out.shape)
        dx, dw, db = conv_naive.conv2d_im2col_backward(dout, cols, x.shape, w, s, pads, g)
        f = lambda: conv_naive.conv2d_im2col(x, w, b, s, pads, g)[0]  # noqa: E731
        where = f"random input {x.shape}, weight {w.shape}, stride {s}, padding {pads}, groups {g}"
        checks.expect_gradients(f"conv2d_im2col_backward ({where})", f, x, w, dout, (dx, dw, db))


def test_conv_im2col_hidden_cases(checks):
    for c in checks.conv_cases(*HIDDEN):
        out, cols = conv_naive.conv2d_im2col(c.x, c.weight, c.bias, c.stride, c.pads, c.groups)
        checks.expect_close(f"conv2d_im2col output, case {c.name}", out, c.out)
        dx, dw, _ = conv_naive.conv2d_im2col_backward(c.dout, cols, c.x.shape, c.weight,
                                                      c.stride, c.pads, c.groups)
        checks.expect_close(f"conv2d_im2col_backward dx, case {c.name}", dx, c.dx)
        checks.expect_close(f"conv2d_im2col_backward dw, case {c.name}", dw, c.dweight)
