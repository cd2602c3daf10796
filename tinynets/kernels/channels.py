"""Numba kernels for the per-channel passes of squeeze-and-excitation and global pooling.

Each computes, over every (n, c) plane of an (N, C, H, W) array, what a one-line NumPy
expression computes; the expression is written beside each kernel, and
``tests/test_channels.py`` checks that they agree:

* ``mean``: ``x.mean(axis=(2, 3), keepdims=True)``, the squeeze (and ``GlobalAvgPool2d``);
* ``scale``: ``x * s``, s (N, C, 1, 1), the excitation's scaling of every channel;
* ``sum_product``: ``np.sum(dout * x, axis=(2, 3), keepdims=True)``, dL/ds;
* ``scale_add``: ``dout * s + g``, s and g (N, C, 1, 1), the SE's dx in one pass.

Why kernels for one-liners: each is a memory-bound pass over an array of tens of MB, and
NumPy runs it on one thread, in two passes where it makes a temporary (``dout * x``, then
its sum). On (16, 144, 56, 56) float32, 2 cores, medians on an idle machine: the mean
1.2 ms in NumPy, 0.35 ms here; ``x * s`` 2.9 ms, 1.25 ms; the sum of the product 3.4 ms,
1.1 ms; ``dout * s + g`` 5.4 ms (with g broadcast to the full shape first, as the
pooling's backward returns it), 1.3 ms. Each kernel reads each array once, on every
thread, one (n, c) plane per iteration. (When other work shares the memory bus, the
kernels slow down more than NumPy's one thread: 1.2-1.6x these times.)

Sums accumulate in float64, one accumulator per plane, so float32 results are within
float32's rounding of the exact sums (NumPy's pairwise float32 sums lose digits when a sum
cancels). float32 lanes measured no faster at two threads (the pass waits on memory; on
one thread they gained 15 %).

Only float32 on C-contiguous arrays runs a kernel. float64 (the checking precision: the
gradient checks run it on tiny inputs) and any other layout run the NumPy expression
itself, so that they compile nothing; mixed dtypes too, so that NumPy's promotion rules
hold as they would. Each kernel sees its arrays as (N*C, H*W) planes, 2-D, so every
shape shares one compiled kernel (a read-only array, as the caches make a caller's
input, is another signature to Numba: one more compile, about 0.4 s).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


# Only the prange loops run in parallel. parallel=True alone also turns np.zeros, slice
# assignments and array expressions into parallel loops, each compiled as a function of its
# own, for loops that are short or already inside a prange (a few percent of compiling).
PRANGE_ONLY = {"prange": True, "numpy": False, "setitem": False, "reduction": False,
               "comprehension": False, "inplace_binop": False, "stencil": False, "fusion": False}


def _check(name: str, x, **per_channel) -> None:
    """A clear ValueError unless x is 4-D and each named array is (N, C, 1, 1) for it."""
    if x.ndim != 4:
        raise ValueError(f"channels.{name}: expected a 4-D array (N, C, H, W), got shape {x.shape}")
    want = x.shape[:2] + (1, 1)
    for what, a in per_channel.items():
        if a.shape != want:
            raise ValueError(f"channels.{name}: expected {what} of shape (N, C, 1, 1) = {want} "
                             f"for an input of shape {x.shape}, got {a.shape}")


def _fast(*arrays) -> bool:
    """True if the kernel runs: every array float32, the big ones C-contiguous."""
    return all(a.dtype == np.float32 for a in arrays) and arrays[0].flags.c_contiguous


def _planes(x):
    """x (N, C, H, W) as (N*C, H*W), a view (x is C-contiguous)."""
    N, C, H, W = x.shape
    return x.reshape(N * C, H * W)


def _per_plane(s):
    """s (N, C, 1, 1) as (N*C,), contiguous."""
    return np.ascontiguousarray(s.reshape(s.shape[0] * s.shape[1]))


# ------------------------------------------------------------------ forward
def mean(x):
    """The mean of every (n, c) plane: ``x.mean(axis=(2, 3), keepdims=True)``.

    Parameters
    ----------
    x : (N, C, H, W)

    Returns
    -------
    z : (N, C, 1, 1), x's dtype
    """
    _check("mean", x)
    if not _fast(x) or x.size == 0:
        return x.mean(axis=(2, 3), keepdims=True)
    return _mean(_planes(x)).reshape(x.shape[:2] + (1, 1))


@njit(parallel=PRANGE_ONLY, cache=True, fastmath={"reassoc", "nsz"})
def _mean(x):
    P, M = x.shape
    out = np.empty(P, x.dtype)
    for p in prange(P):
        row, acc = x[p], 0.0                        # float64: exact enough for any plane
        for j in range(M):
            acc += row[j]                           # reassoc: LLVM adds in vector lanes
        out[p] = acc / M
    return out


def scale(x, s):
    """Every (n, c) plane times its own gate: ``x * s``.

    Parameters
    ----------
    x : (N, C, H, W)
    s : (N, C, 1, 1)    one number per plane, broadcast over H, W

    Returns
    -------
    y : (N, C, H, W), a new array, x's dtype
    """
    _check("scale", x, s=s)
    if not _fast(x, s):
        return x * s
    return _scale(_planes(x), _per_plane(s)).reshape(x.shape)


@njit(parallel=PRANGE_ONLY, cache=True)
def _scale(x, s):
    P, M = x.shape
    out = np.empty_like(x)
    for p in prange(P):
        row, o, a = x[p], out[p], s[p]
        for j in range(M):
            o[j] = row[j] * a
    return out


# ------------------------------------------------------------------ backward
def sum_product(dout, x):
    """The sum over every (n, c) plane of the product:
    ``np.sum(dout * x, axis=(2, 3), keepdims=True)``.

    Parameters
    ----------
    dout, x : (N, C, H, W)

    Returns
    -------
    ds : (N, C, 1, 1), x's dtype (the gradient of a gate that multiplied x, as in SE)
    """
    _check("sum_product", x)
    if dout.shape != x.shape:
        raise ValueError(f"channels.sum_product: expected dout of the input's shape {x.shape}, "
                         f"got {dout.shape}")
    if not (_fast(x, dout) and dout.flags.c_contiguous) or x.size == 0:
        return np.sum(dout * x, axis=(2, 3), keepdims=True)
    return _sum_product(_planes(dout), _planes(x)).reshape(x.shape[:2] + (1, 1))


@njit(parallel=PRANGE_ONLY, cache=True, fastmath={"reassoc", "nsz"})
def _sum_product(d, x):
    P, M = x.shape
    out = np.empty(P, x.dtype)
    for p in prange(P):
        dr, xr, acc = d[p], x[p], 0.0
        for j in range(M):
            acc += np.float64(dr[j]) * np.float64(xr[j])     # the product exact in float64
        out[p] = acc
    return out


def scale_add(dout, s, g):
    """Every (n, c) plane times one number plus another: ``dout * s + g``.

    Parameters
    ----------
    dout : (N, C, H, W)
    s, g : (N, C, 1, 1)  broadcast over H, W

    Returns
    -------
    dx : (N, C, H, W), a new array, dout's dtype (SE: the direct path dout * s plus the
         gate path g, the pooling's gradient before it is spread)
    """
    _check("scale_add", dout, s=s, g=g)
    if not _fast(dout, s, g):
        return dout * s + g
    return _scale_add(_planes(dout), _per_plane(s), _per_plane(g)).reshape(dout.shape)


@njit(parallel=PRANGE_ONLY, cache=True)
def _scale_add(d, s, g):
    P, M = d.shape
    out = np.empty_like(d)
    for p in prange(P):
        dr, o, a, b = d[p], out[p], s[p], g[p]
        for j in range(M):
            o[j] = dr[j] * a + b
    return out
