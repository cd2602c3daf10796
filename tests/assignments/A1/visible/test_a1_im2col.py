"""A1, visible: im2col, col2im and convolution as a GEMM, against PyTorch's numbers.

``im2col_strided`` and ``col2im_taps`` work on the padded input; the tests pad with
``conv_naive.pad_input`` and crop with ``conv_naive.unpad``, which are given.
"""
import numpy as np
import pytest

from tinynets.kernels import conv_naive

pytestmark = [pytest.mark.A1, pytest.mark.numpy_only]

STANDARD = ("conv/00", "conv/01", "conv/02", "conv/03", "conv/19", "conv/20")
GROUPED = ("conv/05", "conv/06", "conv/07", "conv/10")


def test_im2col_gemm_matches_pytorch(checks):
    """With groups=1 a convolution is W (C_out, C*KH*KW) @ cols: the output must be PyTorch's."""
    for c in checks.conv_cases(*STANDARD):
        C_out, _, KH, KW = c.weight.shape
        cols = conv_naive.im2col_strided(conv_naive.pad_input(c.x, c.pads), KH, KW, c.stride)
        OH, OW = c.out.shape[2:]
        N = c.x.shape[0]
        if cols.shape != (N, c.x.shape[1] * KH * KW, OH * OW):
            raise AssertionError(f"im2col_strided, case {c.name}: expected shape "
                                 f"{(N, c.x.shape[1] * KH * KW, OH * OW)}, got {cols.shape}")
        out = (c.weight.reshape(C_out, -1) @ cols).reshape(N, C_out, OH, OW)
        if c.bias is not None:
            out = out + c.bias[None, :, None, None]
        checks.expect_close(f"W @ im2col_strided(x), case {c.name}", out, c.out)


def test_im2col_row_layout():
    """The documented layout: cols[n, c*KH*KW + ki*KW + kj, i*W' + j] = xp[n, c, i*s + ki, j*s + kj]."""
    xp = np.arange(2 * 3 * 7 * 6, dtype=np.float64).reshape(2, 3, 7, 6)
    cols = conv_naive.im2col_strided(xp, 3, 2, 2)           # H' = 3, W' = 3
    if cols.shape != (2, 3 * 3 * 2, 9):
        raise AssertionError(f"im2col_strided: expected shape (2, 18, 9), got {cols.shape}")
    for n, c, ki, kj, i, j in [(0, 0, 0, 0, 0, 0), (1, 2, 2, 1, 2, 2), (0, 1, 1, 0, 2, 1),
                               (1, 0, 2, 1, 1, 0)]:
        want, got = xp[n, c, i * 2 + ki, j * 2 + kj], cols[n, c * 6 + ki * 2 + kj, i * 3 + j]
        if got != want:
            raise AssertionError(f"im2col_strided: cols[{n}, {c * 6 + ki * 2 + kj}, {i * 3 + j}] "
                                 f"should be xp[{n}, {c}, {i * 2 + ki}, {j * 2 + kj}] = {want}, "
                                 f"got {got}")


def test_col2im_input_gradient_matches_pytorch(checks):
    """dx = unpad(col2im(W^T @ dout)) must be PyTorch's input gradient."""
    for c in checks.conv_cases(*STANDARD):
        checks.expect_close(f"unpad(col2im_taps(W^T @ dout)), case {c.name}",
                            checks.dx_by_col2im(c), c.dx)


def test_conv_im2col_forward_pytorch(checks):
    for c in checks.conv_cases(*STANDARD, *GROUPED):
        out, _ = conv_naive.conv2d_im2col(c.x, c.weight, c.bias, c.stride, c.pads, c.groups)
        checks.expect_close(f"conv2d_im2col output, case {c.name}", out, c.out)


def test_conv_im2col_backward_pytorch(checks):
    for c in checks.conv_cases(*STANDARD, *GROUPED):
        _, cols = conv_naive.conv2d_im2col(c.x, c.weight, c.bias, c.stride, c.pads, c.groups)
        dx, dw, db = conv_naive.conv2d_im2col_backward(c.dout, cols, c.x.shape, c.weight,
                                                       c.stride, c.pads, c.groups)
        checks.expect_close(f"conv2d_im2col_backward dx, case {c.name}", dx, c.dx)
        checks.expect_close(f"conv2d_im2col_backward dw, case {c.name}", dw, c.dweight)
        if c.dbias is not None:
            checks.expect_close(f"conv2d_im2col_backward db, case {c.name}", db, c.dbias)
