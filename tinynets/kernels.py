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
# Each (image, channel) plane is first copied into a small zero-padded scratch
# plane (it fits in L1). After that every read is in bounds, so the width loop
# has no branches and no index clipping, and LLVM vectorises it. Measured on
# (16, 144, 56, 56), 3x3, one thread: 62 ms with per-tap valid ranges, 12 ms so.

@njit(cache=True, inline="always")
def _padded_plane(plane, pt, pl, Hp, Wp):
    """Zero-padded copy of a (H, W) plane as (Hp, Wp): rows/cols beyond Hp/Wp are never read."""
    H, W = plane.shape
    xp = np.zeros((Hp, Wp), dtype=plane.dtype)
    for i in range(max(0, -pt), min(H, Hp - pt)):
        for j in range(max(0, -pl), min(W, Wp - pl)):
            xp[i + pt, j + pl] = plane[i, j]
    return xp


@njit(parallel=True, cache=True)
def depthwise_forward(x, w, stride, pt, pl, OH, OW):
    """x (N, C, H, W), w (C*m, 1, KH, KW) -> out (N, C*m, OH, OW).

    out[n, co] = sum_{ki,kj} w[co, 0, ki, kj] * x_padded[n, co // m, i*s + ki, j*s + kj]
    """
    N, C = x.shape[0], x.shape[1]
    Co, _, KH, KW = w.shape
    m = Co // C
    Hp, Wp = (OH - 1) * stride + KH, (OW - 1) * stride + KW
    out = np.empty((N, Co, OH, OW), dtype=x.dtype)
    for nc in prange(N * Co):
        n, co = nc // Co, nc % Co
        xp = _padded_plane(x[n, co // m], pt, pl, Hp, Wp)
        acc = np.empty(OW, dtype=x.dtype)
        for i in range(OH):
            acc[:] = 0
            for ki in range(KH):                    # taps outside ...
                xrow = xp[i * stride + ki]
                for kj in range(KW):
                    wv = w[co, 0, ki, kj]
                    if stride == 1:                 # unit stride: a contiguous, vectorised loop
                        for j in range(OW):         # ... the width innermost
                            acc[j] += wv * xrow[j + kj]
                    else:
                        for j in range(OW):
                            acc[j] += wv * xrow[j * stride + kj]
            out[n, co, i, :] = acc
    return out


@njit(parallel=True, cache=True)
def depthwise_backward_input(dout, w, C, stride, pt, pl, H, W):
    """dout (N, C*m, OH, OW) -> dx (N, C, H, W): each tap's read becomes an add,
    dx[n, co//m, i*s+ki-pt, j*s+kj-pl] += w[co, 0, ki, kj] * dout[n, co, i, j]."""
    N, Co, OH, OW = dout.shape
    _, _, KH, KW = w.shape
    m = Co // C
    Hp, Wp = (OH - 1) * stride + KH, (OW - 1) * stride + KW
    dx = np.zeros((N, C, H, W), dtype=dout.dtype)
    for nc in prange(N * C):                        # each thread owns one input plane
        n, ci = nc // C, nc % C
        dxp = np.zeros((Hp, Wp), dtype=dout.dtype)  # gradient of the padded plane
        for co in range(ci * m, ci * m + m):
            for i in range(OH):
                drow = dout[n, co, i]
                for ki in range(KH):
                    dxrow = dxp[i * stride + ki]
                    for kj in range(KW):
                        wv = w[co, 0, ki, kj]
                        if stride == 1:
                            for j in range(OW):
                                dxrow[j + kj] += wv * drow[j]
                        else:
                            for j in range(OW):
                                dxrow[j * stride + kj] += wv * drow[j]
        for i in range(max(0, -pt), min(H, Hp - pt)):   # drop the padding's gradient
            for j in range(max(0, -pl), min(W, Wp - pl)):
                dx[n, ci, i, j] = dxp[i + pt, j + pl]
    return dx


@njit(parallel=True, cache=True, fastmath={"reassoc", "nsz", "contract"})
def depthwise_backward_weight(dout, x, KH, KW, stride, pt, pl):
    """dw (C*m, 1, KH, KW): dw[co,0,ki,kj] = sum_{n,i,j} dout[n,co,i,j] * x_padded[n, co//m, i*s+ki, j*s+kj].

    Parallel over output channels (each owns its own filter), so no reductions race.
    ``reassoc`` lets LLVM vectorise the sum over the width.
    """
    N, Co, OH, OW = dout.shape
    C = x.shape[1]
    m = Co // C
    Hp, Wp = (OH - 1) * stride + KH, (OW - 1) * stride + KW
    dw = np.zeros((Co, 1, KH, KW), dtype=dout.dtype)
    for co in prange(Co):
        for n in range(N):
            xp = _padded_plane(x[n, co // m], pt, pl, Hp, Wp)
            for ki in range(KH):
                for kj in range(KW):
                    acc = dw[co, 0, ki, kj]         # stays in the input's dtype: no float64 upcast
                    for i in range(OH):
                        drow = dout[n, co, i]
                        xrow = xp[i * stride + ki]
                        if stride == 1:
                            for j in range(OW):
                                acc += drow[j] * xrow[j + kj]
                        else:
                            for j in range(OW):
                                acc += drow[j] * xrow[j * stride + kj]
                    dw[co, 0, ki, kj] = acc
    return dw
