"""Convolution in plain NumPy: the versions the lessons teach.

Nothing here is fast; everything here is readable. The Numba kernels in
``tinynets.kernels`` compute the same numbers and are tested against these.

Conventions (as PyTorch)
------------------------
x : (N, C_in, H, W)                     input
w : (C_out, C_in // groups, KH, KW)     weight
b : (C_out,) or None                    bias
padding = (top, bottom, left, right)    zeros added around H and W
out : (N, C_out, H', W') with  H' = 1 + (H + top + bottom - KH) // stride
                              W' = 1 + (W + left + right - KW) // stride
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pad4 = Tuple[int, int, int, int]


def out_size(size: int, k: int, stride: int, before: int, after: int) -> int:
    """H' = 1 + (H + p_before + p_after - k) // s."""
    return 1 + (size + before + after - k) // stride


def pad_input(x: np.ndarray, padding: Pad4) -> np.ndarray:
    t, b, l, r = padding
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))


def unpad(xp: np.ndarray, padding: Pad4) -> np.ndarray:
    t, b, l, r = padding
    return xp[:, :, t:xp.shape[2] - b, l:xp.shape[3] - r]


# --------------------------------------------------------------------------
# 1. Loops: one output pixel at a time (the definition of convolution)
# --------------------------------------------------------------------------
def conv2d_loops(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: int,
                 padding: Pad4, groups: int = 1) -> np.ndarray:
    """out[n, co, i, j] = b[co] + sum_{c,ki,kj} w[co, c, ki, kj] * xp[n, g*Cg + c, i*s + ki, j*s + kj]."""
    ### BEGIN SOLUTION A1.conv_forward_loops
    N, C, H, W = x.shape
    C_out, Cg, KH, KW = w.shape
    Og = C_out // groups                               # output channels per group
    xp = pad_input(x, padding)
    OH = out_size(H, KH, stride, padding[0], padding[1])
    OW = out_size(W, KW, stride, padding[2], padding[3])
    out = np.zeros((N, C_out, OH, OW), dtype=x.dtype)
    for g in range(groups):
        wg = w[g * Og:(g + 1) * Og]                    # (Og, Cg, KH, KW)
        for i in range(OH):
            for j in range(OW):
                patch = xp[:, g * Cg:(g + 1) * Cg, i * stride:i * stride + KH,
                           j * stride:j * stride + KW]           # (N, Cg, KH, KW)
                out[:, g * Og:(g + 1) * Og, i, j] = np.tensordot(patch, wg, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        out += b[None, :, None, None]
    return out
    ### END SOLUTION


def conv2d_loops_backward(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int,
                          padding: Pad4, groups: int = 1):
    """Gradients of ``conv2d_loops``: every output pixel sends dout back along the
    same connections it came from. Returns (dx, dw, db)."""
    ### BEGIN SOLUTION A1.conv_backward_loops
    C_out, Cg, KH, KW = w.shape
    Og = C_out // groups
    xp = pad_input(x, padding)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    OH, OW = dout.shape[2:]
    for g in range(groups):
        wg = w[g * Og:(g + 1) * Og]
        for i in range(OH):
            for j in range(OW):
                rows = slice(i * stride, i * stride + KH)
                cols = slice(j * stride, j * stride + KW)
                d = dout[:, g * Og:(g + 1) * Og, i, j]           # (N, Og)
                patch = xp[:, g * Cg:(g + 1) * Cg, rows, cols]   # (N, Cg, KH, KW)
                dw[g * Og:(g + 1) * Og] += np.tensordot(d, patch, axes=([0], [0]))
                dxp[:, g * Cg:(g + 1) * Cg, rows, cols] += np.tensordot(d, wg, axes=([1], [0]))
    return unpad(dxp, padding), dw, dout.sum(axis=(0, 2, 3))
    ### END SOLUTION


# --------------------------------------------------------------------------
# 2. im2col: unfold every receptive field into a column, then one GEMM
# --------------------------------------------------------------------------
def im2col_strided(xp: np.ndarray, KH: int, KW: int, stride: int) -> np.ndarray:
    """(N, C, Hp, Wp) padded input -> cols (N, C*KH*KW, H'*W').

    ``sliding_window_view`` makes a view of shape (N, C, H', W', KH, KW) without
    copying; only the final reshape copies. Row index = c*KH*KW + ki*KW + kj.
    """
    ### BEGIN SOLUTION A1.im2col
    N, C = xp.shape[:2]
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
    OH, OW = win.shape[2:4]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * KH * KW, OH * OW)
    ### END SOLUTION


def col2im_taps(cols: np.ndarray, padded_shape, KH: int, KW: int, stride: int,
                OH: int, OW: int) -> np.ndarray:
    """Adjoint of im2col: add each column entry back where it was read from.

    cols (N, C*KH*KW, H'*W') -> dxp (N, C, Hp, Wp). Overlapping windows add up,
    which is why this is a sum and not a copy (a transposed convolution).
    """
    ### BEGIN SOLUTION A1.col2im
    N, C = padded_shape[:2]
    cols = cols.reshape(N, C, KH, KW, OH, OW)
    dxp = np.zeros(padded_shape, dtype=cols.dtype)
    for ki in range(KH):
        for kj in range(KW):
            dxp[:, :, ki:ki + stride * OH:stride, kj:kj + stride * OW:stride] += cols[:, :, ki, kj]
    return dxp
    ### END SOLUTION


def conv2d_im2col(x, w, b, stride: int, padding: Pad4, groups: int = 1):
    """Convolution as a batched GEMM. Returns (out, cols); cols is what backward needs."""
    ### BEGIN SOLUTION A1.conv_im2col
    N = x.shape[0]
    C_out, Cg, KH, KW = w.shape
    OH = out_size(x.shape[2], KH, stride, padding[0], padding[1])
    OW = out_size(x.shape[3], KW, stride, padding[2], padding[3])
    cols = im2col_strided(pad_input(x, padding), KH, KW, stride)     # (N, C*K*K, L)
    cols = cols.reshape(N, groups, Cg * KH * KW, OH * OW)            # (N, G, Cg*K*K, L)
    wmat = w.reshape(groups, C_out // groups, Cg * KH * KW)          # (G, Og, Cg*K*K)
    out = np.matmul(wmat, cols).reshape(N, C_out, OH, OW)            # (N, G, Og, L)
    if b is not None:
        out += b[None, :, None, None]
    return out, cols
    ### END SOLUTION


def conv2d_im2col_backward(dout, cols, x_shape, w, stride: int, padding: Pad4, groups: int = 1):
    """dW = dout @ cols^T (summed over the batch); dcols = W^T @ dout, folded by col2im."""
    ### BEGIN SOLUTION A1.conv_im2col
    N, C, H, W = x_shape
    C_out, Cg, KH, KW = w.shape
    OH, OW = dout.shape[2:]
    d = dout.reshape(N, groups, C_out // groups, OH * OW)            # (N, G, Og, L)
    wmat = w.reshape(groups, C_out // groups, Cg * KH * KW)
    dw = np.matmul(d, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
    dcols = np.matmul(wmat.transpose(0, 2, 1), d)                    # (N, G, Cg*K*K, L)
    padded = (N, C, H + padding[0] + padding[1], W + padding[2] + padding[3])
    dxp = col2im_taps(dcols.reshape(N, C * KH * KW, OH * OW), padded, KH, KW, stride, OH, OW)
    return unpad(dxp, padding), dw, dout.sum(axis=(0, 2, 3))
    ### END SOLUTION


# --------------------------------------------------------------------------
# 3. Depthwise: one filter per channel, so loop over taps, not over channels
# --------------------------------------------------------------------------
def depthwise_taps(x: np.ndarray, w: np.ndarray, stride: int, padding: Pad4) -> np.ndarray:
    """Depthwise conv (groups = C_in, w: (C_in*m, 1, KH, KW)) as KH*KW shifted multiply-adds.

    Output channel co reads input channel co // m (m = channel multiplier).
    """
    C_out, _, KH, KW = w.shape
    m = C_out // x.shape[1]
    xp = pad_input(np.repeat(x, m, axis=1) if m > 1 else x, padding)
    OH = out_size(x.shape[2], KH, stride, padding[0], padding[1])
    OW = out_size(x.shape[3], KW, stride, padding[2], padding[3])
    out = np.zeros((x.shape[0], C_out, OH, OW), dtype=x.dtype)
    for ki in range(KH):
        for kj in range(KW):
            shifted = xp[:, :, ki:ki + stride * OH:stride, kj:kj + stride * OW:stride]
            out += w[None, :, 0, ki, kj, None, None] * shifted
    return out


def depthwise_taps_backward(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int,
                            padding: Pad4):
    """Returns (dx, dw) of ``depthwise_taps``; each tap's forward read becomes a backward add."""
    C_out, _, KH, KW = w.shape
    N, C, H, W = x.shape
    m = C_out // C
    xp = pad_input(np.repeat(x, m, axis=1) if m > 1 else x, padding)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    OH, OW = dout.shape[2:]
    for ki in range(KH):
        for kj in range(KW):
            rows = slice(ki, ki + stride * OH, stride)
            cols = slice(kj, kj + stride * OW, stride)
            dw[:, 0, ki, kj] = (dout * xp[:, :, rows, cols]).sum(axis=(0, 2, 3))
            dxp[:, :, rows, cols] += w[None, :, 0, ki, kj, None, None] * dout
    dx = unpad(dxp, padding)
    if m > 1:                                  # channel co came from input co // m
        dx = dx.reshape(N, C, m, H, W).sum(axis=2)
    return dx, dw


# --------------------------------------------------------------------------
# 4. Depthwise separable: depthwise by taps, then a pointwise 1x1 (MobileNetV1)
# --------------------------------------------------------------------------
def separable_taps(x: np.ndarray, w_dw: np.ndarray, w_pw: np.ndarray, stride: int,
                   padding: Pad4) -> Tuple[np.ndarray, np.ndarray]:
    """Depthwise separable convolution, no biases: returns (out, mid).

    x (N, M, H, W); w_dw (M, 1, KH, KW), one filter per channel; w_pw (C_out, M, 1, 1).
    With xp = pad_input(x, padding) and H', W' as ``out_size``:

    * depthwise, as KH*KW shifted multiply-adds (one per tap, no loop over pixels or
      channels): mid[n, m, i, j] = sum_{ki,kj} w_dw[m, 0, ki, kj] * xp[n, m, i*s + ki, j*s + kj],
      mid (N, M, H', W');
    * pointwise, a matrix product over the channels at every pixel:
      out[n, o, i, j] = sum_m w_pw[o, m, 0, 0] * mid[n, m, i, j], out (N, C_out, H', W').

    ``mid`` is what ``separable_taps_backward`` needs. Both keep x's dtype.
    """
    ### BEGIN SOLUTION A3.separable_forward
    N, M, H, W = x.shape
    _, _, KH, KW = w_dw.shape
    xp = pad_input(x, padding)
    OH = out_size(H, KH, stride, *padding[:2])                     # (top, bottom)
    OW = out_size(W, KW, stride, *padding[2:])                     # (left, right)
    mid = np.zeros((N, M, OH, OW), dtype=x.dtype)
    for ki in range(KH):
        for kj in range(KW):
            shifted = xp[:, :, ki:ki + stride * OH:stride, kj:kj + stride * OW:stride]
            mid += w_dw[None, :, 0, ki, kj, None, None] * shifted
    out = np.einsum("om,nmhw->nohw", w_pw[:, :, 0, 0], mid)        # (N, C_out, H', W')
    return out, mid
    ### END SOLUTION


def separable_taps_backward(dout: np.ndarray, x: np.ndarray, mid: np.ndarray, w_dw: np.ndarray,
                            w_pw: np.ndarray, stride: int, padding: Pad4):
    """Gradients of ``separable_taps``: returns (dx, dw_dw, dw_pw), shaped as x, w_dw, w_pw.

    Pointwise first (it ran last): dw_pw[o, m] = sum_{n,i,j} dout[n, o, i, j] * mid[n, m, i, j]
    and dmid = w_pw^T dout over the channels. Then each depthwise tap's forward read
    becomes a backward add: dw_dw[m, 0, ki, kj] = sum_{n,i,j} dmid * xp[n, m, i*s + ki, j*s + kj],
    and dmid * w_dw[m, 0, ki, kj] is added to dxp at the same places; dx = unpad(dxp).
    """
    ### BEGIN SOLUTION A3.separable_backward
    _, _, KH, KW = w_dw.shape
    OH, OW = dout.shape[2:]
    dw_pw = np.einsum("nohw,nmhw->om", dout, mid)[:, :, None, None]
    dmid = np.einsum("om,nohw->nmhw", w_pw[:, :, 0, 0], dout)       # (N, M, H', W')
    xp = pad_input(x, padding)
    dxp = np.zeros_like(xp)
    dw_dw = np.zeros_like(w_dw)
    for ki in range(KH):
        for kj in range(KW):
            rows = slice(ki, ki + stride * OH, stride)
            cols = slice(kj, kj + stride * OW, stride)
            dw_dw[:, 0, ki, kj] = (dmid * xp[:, :, rows, cols]).sum(axis=(0, 2, 3))
            dxp[:, :, rows, cols] += w_dw[None, :, 0, ki, kj, None, None] * dmid
    return unpad(dxp, padding), dw_dw, dw_pw
    ### END SOLUTION
