"""Numba kernels: the fast paths behind ``Conv2d``.

Each kernel computes exactly what a teaching version in ``tinynets.conv_naive``
computes, and ``tests/test_kernels.py`` checks that they agree.

Why they are shaped this way
----------------------------
* Padding is never materialised. For each kernel tap (ki, kj) we work out which
  output columns read a real (non-padding) input column, so the innermost loop
  runs over a contiguous range of the output width with no branch, and LLVM
  vectorises it.
* Loop order: taps outside, rows, then width innermost.
* ``prange`` runs over independent (image, channel) planes, so no two threads
  ever write the same element and no locks or atomics are needed.
* ``cache=True`` stores compiled code on disk, so only the first run pays the JIT.

Argument conventions: ``pt``/``pl`` are the top/left zero-padding; the output
size (OH, OW) fixes the bottom/right padding implicitly.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _valid_range(kj, pad, stride, size, out):
    """Output indices o with 0 <= o*stride + kj - pad < size, as [lo, hi)."""
    lo = max(0, -((kj - pad) // stride))          # ceil((pad - kj) / stride)
    hi = min(out, (size - 1 - kj + pad) // stride + 1)
    return lo, hi


# --------------------------------------------------------------------- im2col
@njit(parallel=True, cache=True)
def im2col(x, KH, KW, stride, pt, pl, OH, OW):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW); row = c*KH*KW + ki*KW + kj."""
    N, C, H, W = x.shape
    cols = np.zeros((N, C * KH * KW, OH * OW), dtype=x.dtype)
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for ki in range(KH):
            ilo, ihi = _valid_range(ki, pt, stride, H, OH)
            for kj in range(KW):
                jlo, jhi = _valid_range(kj, pl, stride, W, OW)
                row = c * KH * KW + ki * KW + kj
                for i in range(ilo, ihi):
                    ih = i * stride + ki - pt
                    base = i * OW
                    for j in range(jlo, jhi):
                        cols[n, row, base + j] = x[n, c, ih, j * stride + kj - pl]
    return cols


@njit(parallel=True, cache=True)
def col2im(cols, C, H, W, KH, KW, stride, pt, pl, OH, OW):
    """Adjoint of ``im2col``: cols (N, C*KH*KW, OH*OW) -> dx (N, C, H, W), summing overlaps."""
    N = cols.shape[0]
    dx = np.zeros((N, C, H, W), dtype=cols.dtype)
    for nc in prange(N * C):                    # each thread owns one (n, c) plane
        n = nc // C
        c = nc % C
        for ki in range(KH):
            ilo, ihi = _valid_range(ki, pt, stride, H, OH)
            for kj in range(KW):
                jlo, jhi = _valid_range(kj, pl, stride, W, OW)
                row = c * KH * KW + ki * KW + kj
                for i in range(ilo, ihi):
                    ih = i * stride + ki - pt
                    base = i * OW
                    for j in range(jlo, jhi):
                        dx[n, c, ih, j * stride + kj - pl] += cols[n, row, base + j]
    return dx


# ------------------------------------------------------------------ depthwise
@njit(parallel=True, cache=True)
def depthwise_forward(x, w, stride, pt, pl, OH, OW):
    """x (N, C, H, W), w (C*m, 1, KH, KW) -> out (N, C*m, OH, OW).

    out[n, co] = sum_{ki,kj} w[co, 0, ki, kj] * x_padded[n, co // m, i*s + ki, j*s + kj]
    """
    N, C, H, W = x.shape
    Co, _, KH, KW = w.shape
    m = Co // C
    out = np.zeros((N, Co, OH, OW), dtype=x.dtype)
    for nc in prange(N * Co):
        n = nc // Co
        co = nc % Co
        ci = co // m
        for ki in range(KH):
            ilo, ihi = _valid_range(ki, pt, stride, H, OH)
            for kj in range(KW):
                jlo, jhi = _valid_range(kj, pl, stride, W, OW)
                wv = w[co, 0, ki, kj]
                for i in range(ilo, ihi):
                    ih = i * stride + ki - pt
                    for j in range(jlo, jhi):
                        out[n, co, i, j] += wv * x[n, ci, ih, j * stride + kj - pl]
    return out


@njit(parallel=True, cache=True)
def depthwise_backward_input(dout, w, C, stride, pt, pl, H, W):
    """dout (N, C*m, OH, OW) -> dx (N, C, H, W): each tap's read becomes an add,
    dx[n, co//m, i*s+ki-pt, j*s+kj-pl] += w[co, 0, ki, kj] * dout[n, co, i, j]."""
    N, Co, OH, OW = dout.shape
    _, _, KH, KW = w.shape
    m = Co // C
    dx = np.zeros((N, C, H, W), dtype=dout.dtype)
    for nc in prange(N * C):                    # each thread owns one input plane
        n = nc // C
        ci = nc % C
        for co in range(ci * m, ci * m + m):
            for ki in range(KH):
                ilo, ihi = _valid_range(ki, pt, stride, H, OH)
                for kj in range(KW):
                    jlo, jhi = _valid_range(kj, pl, stride, W, OW)
                    wv = w[co, 0, ki, kj]
                    for i in range(ilo, ihi):
                        ih = i * stride + ki - pt
                        for j in range(jlo, jhi):
                            dx[n, ci, ih, j * stride + kj - pl] += wv * dout[n, co, i, j]
    return dx


@njit(parallel=True, cache=True, fastmath={"reassoc", "nsz", "contract"})
def depthwise_backward_weight(dout, x, KH, KW, stride, pt, pl):
    """dw (C*m, 1, KH, KW): dw[co,0,ki,kj] = sum_{n,i,j} dout[n,co,i,j] * x_padded[n, co//m, i*s+ki, j*s+kj].

    Parallel over output channels (each owns its own filter), so no reductions race.
    ``reassoc`` lets LLVM vectorise the sum over the width.
    """
    N, Co, OH, OW = dout.shape
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    m = Co // C
    dw = np.zeros((Co, 1, KH, KW), dtype=dout.dtype)
    for co in prange(Co):
        ci = co // m
        for ki in range(KH):
            ilo, ihi = _valid_range(ki, pt, stride, H, OH)
            for kj in range(KW):
                jlo, jhi = _valid_range(kj, pl, stride, W, OW)
                acc = dw[co, 0, ki, kj]          # a zero of the input's dtype: no float64 upcast
                for n in range(N):
                    for i in range(ilo, ihi):
                        ih = i * stride + ki - pt
                        for j in range(jlo, jhi):
                            acc += dout[n, co, i, j] * x[n, ci, ih, j * stride + kj - pl]
                dw[co, 0, ki, kj] = acc
    return dw
