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

from .kernels_s2 import depthwise_plane_3x3s2, depthwise_plane_5x5s2, pad_into


@njit(cache=True, inline="always")
def _valid_range(kj, pad, stride, size, out):
    """Output indices o with 0 <= o*stride + kj - pad < size, as [lo, hi)."""
    lo = max(0, -((kj - pad) // stride))          # ceil((pad - kj) / stride)
    hi = min(out, (size - 1 - kj + pad) // stride + 1)
    return lo, hi


# --------------------------------------------------------------------- im2col
@njit(parallel=True, cache=True)
def im2col(x, KH, KW, stride, pt, pl, OH, OW):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW); row = c*KH*KW + ki*KW + kj.

    Every entry is written once (no zero-fill first). The zeros at the edges are short
    explicit loops and the copy reads a row view from its first valid column: slice
    assignments and an index that Numba cannot prove non-negative cost more per row than
    the row's copy. (16, 3, 224, 224), 3x3 stride 2, one thread: 5.4 ms before, 3.0 ms so.
    """
    N, C, H, W = x.shape
    cols = np.empty((N, C * KH * KW, OH * OW), dtype=x.dtype)
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        plane = x[n, c]
        for ki in range(KH):
            ilo, ihi = _valid_range(ki, pt, stride, H, OH)
            for kj in range(KW):
                jlo, jhi = _valid_range(kj, pl, stride, W, OW)
                jlo = min(jlo, OW)
                jhi = max(jlo, jhi)
                out = cols[n, c * KH * KW + ki * KW + kj]
                for i in range(OH):
                    orow = out[i * OW:(i + 1) * OW]
                    if i < ilo or i >= ihi:             # the tap reads padding on this row
                        for j in range(OW):
                            orow[j] = 0
                        continue
                    for j in range(jlo):
                        orow[j] = 0
                    for j in range(jhi, OW):
                        orow[j] = 0
                    src = plane[i * stride + ki - pt, jlo * stride + kj - pl:]
                    dst = orow[jlo:jhi]
                    if stride == 1:                     # constant strides: vectorised
                        for j in range(jhi - jlo):
                            dst[j] = src[j]
                    elif stride == 2:
                        for j in range(jhi - jlo):
                            dst[j] = src[2 * j]
                    else:
                        for j in range(jhi - jlo):
                            dst[j] = src[j * stride]
    return cols


@njit(parallel=True, cache=True)
def col2im(cols, C, H, W, KH, KW, stride, pt, pl, OH, OW):
    """Adjoint of ``im2col``: cols (N, C*KH*KW, OH*OW) -> dx (N, C, H, W), summing overlaps.

    Row views and constant strides, as in ``im2col``: (16, 3, 224, 224), 3x3 stride 2,
    one thread: 10.0 ms with a 4-D index per element, 4.9 ms so.
    """
    N = cols.shape[0]
    dx = np.zeros((N, C, H, W), dtype=cols.dtype)
    for nc in prange(N * C):                    # each thread owns one (n, c) plane
        n = nc // C
        c = nc % C
        plane = dx[n, c]
        for ki in range(KH):
            ilo, ihi = _valid_range(ki, pt, stride, H, OH)
            for kj in range(KW):
                jlo, jhi = _valid_range(kj, pl, stride, W, OW)
                if jhi <= jlo:                  # the tap reads only padding
                    continue
                crow = cols[n, c * KH * KW + ki * KW + kj]
                for i in range(ilo, ihi):
                    dst = plane[i * stride + ki - pt, jlo * stride + kj - pl:]
                    src = crow[i * OW + jlo:i * OW + jhi]
                    if stride == 1:
                        for j in range(jhi - jlo):
                            dst[j] += src[j]
                    elif stride == 2:
                        for j in range(jhi - jlo):
                            dst[2 * j] += src[j]
                    else:
                        for j in range(jhi - jlo):
                            dst[j * stride] += src[j]
    return dx


# ------------------------------------------------------------------ depthwise
# Each (image, channel) plane is first copied into a small zero-padded scratch
# plane (it fits in L1). After that every read is in bounds, so the width loop
# has no branches and no index clipping, and LLVM vectorises it. Measured on
# (16, 144, 56, 56), 3x3, one thread: 62 ms with per-tap valid ranges, 12 ms so,
# 6.4 ms with the taps written out and the padding copied row by row.

@njit(cache=True, inline="always")
def _padded_plane(plane, pt, pl, Hp, Wp):
    """Zero-padded copy of a (H, W) plane as (Hp, Wp) (``kernels_s2.pad_into``): rows/cols
    beyond Hp/Wp are never read."""
    xp = np.empty((Hp, Wp), dtype=plane.dtype)
    pad_into(plane, pt, pl, xp)
    return xp


@njit(cache=True, inline="always")
def _row3(r, w, j):
    """w[0] r[j] + w[1] r[j+1] + w[2] r[j+2]: one kernel row of a 3x3 tap."""
    return w[0] * r[j] + w[1] * r[j + 1] + w[2] * r[j + 2]


@njit(cache=True, inline="always")
def _row5(r, w, j):
    return w[0] * r[j] + w[1] * r[j + 1] + w[2] * r[j + 2] + w[3] * r[j + 3] + w[4] * r[j + 4]


@njit(cache=True, inline="always")
def _split_columns(xp):
    """Even and odd columns of a plane, E[:, j] = xp[:, 2j], O[:, j] = xp[:, 2j+1]: a stride-2
    window xp[., 2j + kj] is E[., j + kj/2] for even kj and O[., j + (kj-1)/2] for odd kj."""
    Hp, Wp = xp.shape
    E = np.empty((Hp, (Wp + 1) // 2), dtype=xp.dtype)
    O = np.empty((Hp, max(1, Wp // 2)), dtype=xp.dtype)
    for i in range(Hp):
        for j in range(Wp // 2):
            E[i, j] = xp[i, 2 * j]
            O[i, j] = xp[i, 2 * j + 1]
        if Wp % 2:
            E[i, Wp // 2] = xp[i, Wp - 1]
    return E, O


@njit(cache=True, inline="always")
def _depthwise_plane(xp, wk, o, stride, OH, OW):
    """One output plane o (OH, OW) from a zero-padded input plane xp and taps wk (KH, KW).

    3x3 and 5x5 are written out: every output value is computed in one pass with all
    its taps in registers, and written once. Other sizes accumulate tap by tap.
    (``depthwise_forward`` sends 3x3 and 5x5 at stride 2 to ``kernels_s2``.)
    """
    KH, KW = wk.shape
    if KH == 3 and KW == 3 and stride == 1:
        for i in range(OH):
            r0, r1, r2, orow = xp[i], xp[i + 1], xp[i + 2], o[i]
            for j in range(OW):
                orow[j] = _row3(r0, wk[0], j) + _row3(r1, wk[1], j) + _row3(r2, wk[2], j)
    elif KH == 5 and KW == 5 and stride == 1:
        # three passes of at most ten taps, whose weights stay in AVX2's 16 registers (one
        # pass reloaded 12 of the 25 from the stack): (16, 144, 56, 56), one thread,
        # 11.6 ms in one pass, 10.1 ms so (as kernels_s2)
        for i in range(OH):
            r0, r1, r2, r3, r4, orow = xp[i], xp[i + 1], xp[i + 2], xp[i + 3], xp[i + 4], o[i]
            for j in range(OW):
                orow[j] = _row5(r0, wk[0], j) + _row5(r1, wk[1], j)
            for j in range(OW):
                orow[j] += _row5(r2, wk[2], j) + _row5(r3, wk[3], j)
            for j in range(OW):
                orow[j] += _row5(r4, wk[4], j)
    else:
        for i in range(OH):
            orow = o[i]
            orow[:] = 0
            for ki in range(KH):                    # taps outside ...
                xrow = xp[i * stride + ki]
                for kj in range(KW):
                    wv = wk[ki, kj]
                    for j in range(OW):             # ... the width innermost
                        orow[j] += wv * xrow[j * stride + kj]


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
    if stride == 2 and KH == 3 and KW == 3:
        # blocks of 32 planes, each allocating its scratch planes once, not three per plane
        # (numba.get_num_threads() here would stop Numba from caching the function).
        # With kernels_s2's one-pass split: (16, 144, 56, 56), 2 threads, 2.77 -> 2.25 ms
        P, B = N * Co, 32
        for b in prange((P + B - 1) // B):
            xp = np.empty((2 * OH + 1, 2 * OW + 2), dtype=x.dtype)
            E = np.empty((2 * OH + 1, OW + 1), dtype=x.dtype)
            O = np.empty((2 * OH + 1, OW + 1), dtype=x.dtype)
            for nc in range(b * B, min(P, b * B + B)):
                n, co = nc // Co, nc % Co
                depthwise_plane_3x3s2(x[n, co // m], w[co, 0], out[n, co], pt, pl, xp, E, O)
        return out
    phases = stride == 2 and KH == 5 and KW == 5
    for nc in prange(N * Co):
        n, co = nc // Co, nc % Co
        if phases:
            depthwise_plane_5x5s2(x[n, co // m], w[co, 0], out[n, co], pt, pl)
        else:
            xp = _padded_plane(x[n, co // m], pt, pl, Hp, Wp)
            _depthwise_plane(xp, w[co, 0], out[n, co], stride, OH, OW)
    return out


@njit(cache=True, inline="always")
def _dilated_plane(plane, stride, pt, pl, Hp, Wp):
    """(Hp, Wp) plane with plane[i, j] at (pt + i*stride, pl + j*stride) and zeros elsewhere."""
    if stride == 1:
        return _padded_plane(plane, pt, pl, Hp, Wp)
    D = np.zeros((Hp, Wp), dtype=plane.dtype)
    OH, OW = plane.shape
    for i in range(OH):
        a = pt + i * stride
        if 0 <= a < Hp:
            for j in range(OW):
                b = pl + j * stride
                if 0 <= b < Wp:
                    D[a, b] = plane[i, j]
    return D


@njit(parallel=True, cache=True)
def depthwise_backward_input(dout, w, C, stride, pt, pl, H, W):
    """dout (N, C*m, OH, OW) -> dx (N, C, H, W).

    The adjoint of the forward is again a depthwise correlation, with the taps flipped,
    over dout dilated by the stride and padded by K - 1 - p:
    dx[n, c] = sum_{co in group c} corr(D(dout[n, co]), w[co] flipped), stride 1.
    So it runs on the same written-out 3x3/5x5 loops as the forward.
    """
    N, Co, OH, OW = dout.shape
    _, _, KH, KW = w.shape
    m = Co // C
    wf = np.empty((Co, KH, KW), dtype=w.dtype)             # flipped taps
    for co in range(Co):
        for ki in range(KH):
            for kj in range(KW):
                wf[co, ki, kj] = w[co, 0, KH - 1 - ki, KW - 1 - kj]
    Hd, Wd = H + KH - 1, W + KW - 1
    dx = np.empty((N, C, H, W), dtype=dout.dtype)
    for nc in prange(N * C):                                # each thread owns one input plane
        n, ci = nc // C, nc % C
        for co in range(ci * m, ci * m + m):
            D = _dilated_plane(dout[n, co], stride, KH - 1 - pt, KW - 1 - pl, Hd, Wd)
            if co == ci * m:
                _depthwise_plane(D, wf[co], dx[n, ci], 1, H, W)
            else:                                           # channel multiplier: add the others
                part = np.empty((H, W), dtype=dout.dtype)
                _depthwise_plane(D, wf[co], part, 1, H, W)
                dx[n, ci] += part
    return dx


@njit(cache=True, inline="always")
def _row_sums3(dr, r, s, n, a0, a1, a2):
    """(a0, a1, a2) + sum_j dr[j] * (r[j*s], r[j*s+1], r[j*s+2]), j < n."""
    if s == 1:                                       # unit stride: vectorised
        for j in range(n):
            a0 += dr[j] * r[j]
            a1 += dr[j] * r[j + 1]
            a2 += dr[j] * r[j + 2]
    else:
        for j in range(n):
            a0 += dr[j] * r[j * s]
            a1 += dr[j] * r[j * s + 1]
            a2 += dr[j] * r[j * s + 2]
    return a0, a1, a2


@njit(cache=True, inline="always")
def _row_sums5(dr, r, s, n, a0, a1, a2, a3, a4):
    """As ``_row_sums3``, for the five taps of a 5x5 kernel row."""
    if s == 1:
        for j in range(n):
            a0 += dr[j] * r[j]
            a1 += dr[j] * r[j + 1]
            a2 += dr[j] * r[j + 2]
            a3 += dr[j] * r[j + 3]
            a4 += dr[j] * r[j + 4]
    else:
        for j in range(n):
            a0 += dr[j] * r[j * s]
            a1 += dr[j] * r[j * s + 1]
            a2 += dr[j] * r[j * s + 2]
            a3 += dr[j] * r[j * s + 3]
            a4 += dr[j] * r[j * s + 4]
    return a0, a1, a2, a3, a4


@njit(cache=True, inline="always")
def _weight_grad_plane(d, xp, g, stride, OH, OW):
    """g[ki, kj] += sum_{i,j} d[i, j] * xp[i*s + ki, j*s + kj] for one plane.

    One pass over d per kernel row ki and per group of taps (5, or 3 at a time), whose
    sums run side by side; the sums start from g, so they stay in the input's dtype (no float64).
    """
    KH, KW = g.shape
    if stride == 2:                                  # unit-stride reads of the split columns
        E, O = _split_columns(xp)
        for ki in range(KH):
            for kj in range(KW):
                src = E if kj % 2 == 0 else O
                off, acc = kj // 2, g[ki, kj]
                for i in range(OH):
                    dr, r = d[i], src[2 * i + ki]
                    for j in range(OW):
                        acc += dr[j] * r[j + off]
                g[ki, kj] = acc
        return
    if KW == 5:
        for ki in range(KH):
            a = (g[ki, 0], g[ki, 1], g[ki, 2], g[ki, 3], g[ki, 4])
            for i in range(OH):
                a = _row_sums5(d[i], xp[i * stride + ki], stride, OW, a[0], a[1], a[2], a[3], a[4])
            g[ki, 0], g[ki, 1], g[ki, 2], g[ki, 3], g[ki, 4] = a
        return
    for ki in range(KH):
        for k0 in range(0, KW - 2, 3):               # taps k0, k0+1, k0+2 together
            a0, a1, a2 = g[ki, k0], g[ki, k0 + 1], g[ki, k0 + 2]
            for i in range(OH):
                a0, a1, a2 = _row_sums3(d[i], xp[i * stride + ki][k0:], stride, OW, a0, a1, a2)
            g[ki, k0], g[ki, k0 + 1], g[ki, k0 + 2] = a0, a1, a2
        for kj in range(KW - KW % 3, KW):            # the rest one by one
            acc = g[ki, kj]
            for i in range(OH):
                dr, r = d[i], xp[i * stride + ki]
                if stride == 1:
                    for j in range(OW):
                        acc += dr[j] * r[j + kj]
                else:
                    for j in range(OW):
                        acc += dr[j] * r[j * stride + kj]
            g[ki, kj] = acc


@njit(parallel=True, cache=True, fastmath={"reassoc", "nsz", "contract"})
def depthwise_backward_weight(dout, x, KH, KW, stride, pt, pl):
    """dw (C*m, 1, KH, KW): dw[co,0,ki,kj] = sum_{n,i,j} dout[n,co,i,j] * x_padded[n, co//m, i*s+ki, j*s+kj].

    Parallel over output channels (each owns its own filter), so no reductions race.
    ``reassoc`` lets LLVM vectorise the sums over the width.
    """
    N, Co, OH, OW = dout.shape
    C = x.shape[1]
    m = Co // C
    Hp, Wp = (OH - 1) * stride + KH, (OW - 1) * stride + KW
    dw = np.zeros((Co, 1, KH, KW), dtype=dout.dtype)
    for co in prange(Co):
        for n in range(N):
            xp = _padded_plane(x[n, co // m], pt, pl, Hp, Wp)
            _weight_grad_plane(dout[n, co], xp, dw[co, 0], stride, OH, OW)
    return dw
