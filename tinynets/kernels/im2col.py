"""Numba kernels for the general convolution: im2col and col2im.

Each kernel computes exactly what a teaching version in ``tinynets.kernels.conv_naive``
computes, and ``tests/test_kernels.py`` checks that they agree.

* Padding is never materialised. For each kernel tap (ki, kj) we work out which
  output columns read a real (non-padding) input column, so the innermost loop
  runs over a contiguous range of the output width with no branch, and LLVM
  vectorises it.
* Loop order: taps outside, rows, then width innermost.
* ``prange`` runs over independent planes, so no two threads ever write the same
  element and no locks or atomics are needed.
* ``cache=True`` stores compiled code on disk, so only the first run pays the JIT.

Argument conventions: ``pt``/``pl`` are the top/left zero-padding; the output
size (OH, OW) fixes the bottom/right padding implicitly.

Threads: ``im2col`` and ``col2im`` (the names the layers call) run a parallel kernel on
float32 and its one-thread twin (``_*_1t``, the same inlined body) on float64, the checking
precision, and on float32 while the parallel build compiles (``tiers``).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import tiers


# Only the prange loops run in parallel. parallel=True alone also turns np.zeros, slice
# assignments and array expressions into parallel loops, each compiled as a function of its
# own, for loops that are short or already inside a prange (a few percent of compiling).
PRANGE_ONLY = {"prange": True, "numpy": False, "setitem": False, "reduction": False,
               "comprehension": False, "inplace_binop": False, "stencil": False, "fusion": False}


@njit(cache=True, inline="always")
def _valid_range(kj, pad, stride, size, out):
    """Output indices o with 0 <= o*stride + kj - pad < size, as [lo, hi)."""
    lo = max(0, -((kj - pad) // stride))          # ceil((pad - kj) / stride)
    hi = min(out, (size - 1 - kj + pad) // stride + 1)
    return lo, hi


# --------------------------------------------------------------------- im2col
def im2col(x, KH, KW, stride, pt, pl, OH, OW):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW); row = c*KH*KW + ki*KW + kj.

    Every entry is written once (no zero-fill first). The zeros at the edges are short
    explicit loops and the copy reads a row view from its first valid column: slice
    assignments and an index that Numba cannot prove non-negative cost more per row than
    the row's copy. (16, 3, 224, 224), 3x3 stride 2, one thread: 5.4 ms before, 3.0 ms so.
    """
    return tiers.run(_im2col, _im2col_1t, x, KH, KW, stride, pt, pl, OH, OW)


@njit(parallel=PRANGE_ONLY, cache=True)
def _im2col(x, KH, KW, stride, pt, pl, OH, OW):
    return _im2col_body(x, KH, KW, stride, pt, pl, OH, OW)


@njit(cache=True)
def _im2col_1t(x, KH, KW, stride, pt, pl, OH, OW):
    return _im2col_body(x, KH, KW, stride, pt, pl, OH, OW)


@njit(cache=True, inline="always")
def _im2col_body(x, KH, KW, stride, pt, pl, OH, OW):
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


def col2im(cols, C, H, W, KH, KW, stride, pt, pl, OH, OW):
    """Adjoint of ``im2col``: cols (N, C*KH*KW, OH*OW) -> dx (N, C, H, W), summing overlaps.

    Row views and constant strides, as in ``im2col``: (16, 3, 224, 224), 3x3 stride 2,
    one thread: 10.0 ms with a 4-D index per element, 4.9 ms so.
    """
    return tiers.run(_col2im, _col2im_1t, cols, C, H, W, KH, KW, stride, pt, pl, OH, OW)


# col2im's argument types, for a helper process that compiles it ahead
# (``tinynets.kernels.warm``): "3" a C-contiguous 3-D array, "i" an int64.
SIGNATURES = {"_col2im": "3 i i i i i i i i i i"}


@njit(parallel=PRANGE_ONLY, cache=True)
def _col2im(cols, C, H, W, KH, KW, stride, pt, pl, OH, OW):
    return _col2im_body(cols, C, H, W, KH, KW, stride, pt, pl, OH, OW)


@njit(cache=True)
def _col2im_1t(cols, C, H, W, KH, KW, stride, pt, pl, OH, OW):
    return _col2im_body(cols, C, H, W, KH, KW, stride, pt, pl, OH, OW)


@njit(cache=True, inline="always")
def _col2im_body(cols, C, H, W, KH, KW, stride, pt, pl, OH, OW):
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
