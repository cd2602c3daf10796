"""Numba kernels for the depthwise convolution: forward, input gradient, weight gradient.

Each kernel computes exactly what a teaching version in ``tinynets.kernels.conv_naive``
computes, and ``tests/test_kernels.py`` checks that they agree. The 3x3 and 5x5 taps
are written out; other kernel sizes take a generic loop.

Everything a depthwise kernel calls lives in this one file, on purpose: Numba's disk
cache keys a compiled function on the file that defines it, so an edit to a helper in
another file that the function inlines would go unnoticed and stale code would run
(``tests/test_kernels.py`` checks that no kernel module imports another's functions).

Argument conventions: ``pt``/``pl`` are the top/left zero-padding; the output
size (OH, OW) fixes the bottom/right padding implicitly.

Stride 2
--------

At stride 2 a kernel tap (ki, kj) reads padded row 2i + ki and column 2j + kj. Split the
padded plane by the parity of its rows and of its columns into four "phase" planes,

    Q[2a + b, r, c] = x_padded[2r + a, 2c + b],     a, b in {0, 1},

and the tap reads Q[2(ki % 2) + kj % 2] at (i + ki // 2, j + kj // 2): unit stride, and
the same fixed offset for every output. All rows of Q have the same width WQ, so with
the output laid out WQ wide too, output t = i * WQ + j reads flat index
t + (ki // 2) * WQ + kj // 2 of its phase plane. One loop over all OH * WQ outputs of a
plane then does the whole plane, instead of one short loop per row: at OW = 28 a row is
3 vector iterations and a scalar tail of 4 outputs (28 = 3 * 8 + 4), and the tail has more
instructions than the vector part. The WQ - OW extra outputs of each row read Q past the row's end and are
dropped. (16, 144, 56, 56), one thread: 8.7 ms with even/odd column planes built from a
padded copy and a loop per row, 7.4 ms so. (The 3x3 taps measured no faster so: they use
only column planes, see ``depthwise_plane_3x3s2``.)
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
def pad_into(plane, pt, pl, xp):
    """xp (Hp, Wp) = a (H, W) plane zero-padded by pt on top and pl on the left, zeros beyond
    it (pt, pl may be negative: then the plane is cropped). Only the border is zeroed, and
    each row is copied by a loop over views, which LLVM vectorises. (A slice assignment,
    ``row[a:b] = plane[i, c:d]``, would also compile Numba's shape-mismatch error message,
    string formatting included: 2-3 s more on a cold cache.)"""
    H, W = plane.shape
    Hp, Wp = xp.shape
    i0, i1 = max(0, -pt), min(H, Hp - pt)           # plane rows/columns that land inside xp
    j0, j1 = max(0, -pl), min(W, Wp - pl)
    xp[:i0 + pt, :] = 0
    xp[i1 + pt:, :] = 0
    for i in range(i0, i1):
        row = xp[i + pt]
        row[:j0 + pl] = 0
        dst, src = row[j0 + pl:j1 + pl], plane[i, j0:j1]
        for j in range(j1 - j0):
            dst[j] = src[j]
        row[j1 + pl:] = 0


@njit(cache=True, inline="always")
def _deinterleave(s, f, g):
    """f[k] = s[2k] and g[k] = s[2k+1], for all of s. LLVM vectorises it (two loads, two
    shuffles, two stores per 16 values)."""
    n = s.shape[0]
    for k in range(n // 2):
        f[k] = s[2 * k]
        g[k] = s[2 * k + 1]
    if n % 2:
        f[n // 2] = s[n - 1]


@njit(cache=True, inline="always")
def phase_planes(plane, pt, pl, KH, KW, OH, OW):
    """The four phase planes Q (4, OH + KH//2 + 1, OW + KW//2) of a (H, W) plane, zero-padded
    by pt on top and pl on the left; zero outside the padded plane (the last row is slack
    for the extra outputs of ``depthwise_plane_5x5s2``). pt, pl >= 0."""
    H, W = plane.shape
    Hp, Wp = 2 * OH + KH - 2, 2 * OW + KW - 2            # the padded rows/columns that are read
    Q = np.zeros((4, OH + KH // 2 + 1, OW + KW // 2), dtype=plane.dtype)
    j1 = max(0, min(W, Wp - pl))                         # plane columns that land inside
    p = pl % 2                                           # plane column 0 -> phase column p
    a, b = pl // 2, (pl + 1) // 2                        # ... at index a; column 1 -> 1-p at b
    for i in range(min(H, Hp - pt)):
        r = i + pt
        _deinterleave(plane[i, :j1], Q[2 * (r % 2) + p, r // 2, a:], Q[2 * (r % 2) + 1 - p, r // 2, b:])
    return Q


@njit(cache=True, inline="always")
def _row5_phases(e, od, w, t):
    """One kernel row at stride 2 on the phase planes: w0 x[2j] + w1 x[2j+1] + ... + w4 x[2j+4]."""
    return w[0] * e[t] + w[1] * od[t] + w[2] * e[t + 1] + w[3] * od[t + 1] + w[4] * e[t + 2]


@njit(cache=True, inline="always")
def depthwise_plane_5x5s2(plane, wk, o, pt, pl):
    """o (OH, OW) = the stride-2 correlation of one (H, W) plane, zero-padded by pt on top
    and pl on the left, with the 5x5 taps wk (written out)."""
    OH, OW = o.shape
    Q = phase_planes(plane, pt, pl, 5, 5, OH, OW)
    WQ = Q.shape[2]
    F = Q.reshape(4, Q.shape[1] * WQ)                    # flat phase planes
    # kernel row ki reads the even (e) and odd (od) phase columns of row parity ki % 2,
    # ki // 2 rows (WQ values each) down
    e0, o0, e1, o1 = F[0], F[1], F[2], F[3]
    e2, o2, e3, o3 = F[0][WQ:], F[1][WQ:], F[2][WQ:], F[3][WQ:]
    e4, o4 = F[0][2 * WQ:], F[1][2 * WQ:]
    L = OH * WQ
    o_wide = np.empty(L, dtype=o.dtype)                  # the output, WQ wide
    # Three passes of at most ten taps: all 25 weights do not fit in AVX2's 16 vector
    # registers, and one pass reloaded 12 of them from the stack for every 8 outputs;
    # ten stay in registers. (One thread: 7.6 ms in one pass, 6.7-7.2 ms in three.)
    for t in range(L):
        o_wide[t] = _row5_phases(e0, o0, wk[0], t) + _row5_phases(e1, o1, wk[1], t)
    for t in range(L):
        o_wide[t] += _row5_phases(e2, o2, wk[2], t) + _row5_phases(e3, o3, wk[3], t)
    for t in range(L):
        o_wide[t] += _row5_phases(e4, o4, wk[4], t)
    for i in range(OH):
        orow, wide = o[i], o_wide[i * WQ:]
        for j in range(OW):
            orow[j] = wide[j]


@njit(cache=True, inline="always")
def depthwise_plane_3x3s2(plane, wk, o, pt, pl, xp, E, O):
    """o (OH, OW) = the stride-2 correlation of one (H, W) plane, zero-padded by pt on top
    and pl on the left, with the 3x3 taps wk (written out).

    xp (2 OH + 1, 2 OW + 2) and E, O (2 OH + 1, OW + 1) are scratch, reused from plane to
    plane (allocated once per block of planes, not per plane). xp is made an even width so
    that its even and odd columns E and O come out of one loop over the whole plane: split
    row by row, each row's 29 pairs were mostly the vector loop's scalar tail.
    """
    OH, OW = o.shape
    Hp, Wp = xp.shape
    pad_into(plane, pt, pl, xp)
    _deinterleave(xp.reshape(Hp * Wp), E.reshape(E.size), O.reshape(O.size))
    # the taps as locals: loaded once, not for every output (o might alias wk for LLVM)
    w00, w01, w02, w10, w11, w12, w20, w21, w22 = (wk[0, 0], wk[0, 1], wk[0, 2], wk[1, 0],
                                                   wk[1, 1], wk[1, 2], wk[2, 0], wk[2, 1], wk[2, 2])
    for i in range(OH):
        # padded column 2j + kj is E[j + kj // 2] for even kj, O[j] for kj = 1
        e0, e1, e2, o0, o1, o2, orow = E[2 * i], E[2 * i + 1], E[2 * i + 2], \
            O[2 * i], O[2 * i + 1], O[2 * i + 2], o[i]
        for j in range(OW):
            orow[j] = (w00 * e0[j] + w01 * o0[j] + w02 * e0[j + 1]
                       + w10 * e1[j] + w11 * o1[j] + w12 * e1[j + 1]
                       + w20 * e2[j] + w21 * o2[j] + w22 * e2[j + 1])


# ------------------------------------------------------------------ depthwise
# Each (image, channel) plane is first copied into a small zero-padded scratch
# plane (it fits in L1). After that every read is in bounds, so the width loop
# has no branches and no index clipping, and LLVM vectorises it. Measured on
# (16, 144, 56, 56), 3x3, one thread: 62 ms with per-tap valid ranges, 12 ms so,
# 6.4 ms with the taps written out and the padding copied row by row.

@njit(cache=True, inline="always")
def _padded_plane(plane, pt, pl, Hp, Wp):
    """Zero-padded copy of a (H, W) plane as (Hp, Wp) (``pad_into``): rows/cols
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


# The cases a kernel is compiled for. Each public kernel below is a small parallel function
# that passes one of these as a constant to an inlined body, and Numba drops the branches of
# the other cases before it compiles: only the code that runs is compiled, once per case
# and dtype, the first time that case runs. One kernel holding every case took 22 s to
# compile (MobileNetV2 uses two of its five cases); one case takes 2-5 s.
# Each kernel also has a one-thread twin, ``*_1t``, for float64, and for float32 while the
# parallel build compiles (``tiers``): the checking precision (gradient checks, parity tests)
# runs on tiny inputs, and a kernel without threads compiles in about half the time.
ANY, K3S1, K5S1, K5S2 = 0, 1, 2, 3


def _run(kernel, *args):
    """``kernel`` or its one-thread twin, as ``tiers`` picks (the twin for float64)."""
    return tiers.run(kernel, globals()[kernel.__name__ + "_1t"], *args)


@njit(cache=True, inline="always")
def _depthwise_plane(xp, wk, o, stride, OH, OW, case):
    """One output plane o (OH, OW) from a zero-padded input plane xp and taps wk (KH, KW).

    3x3 and 5x5 at stride 1 (``case`` K3S1, K5S1) are written out: every output value is
    computed in one pass with all its taps in registers, and written once. Other sizes
    (``ANY``) accumulate tap by tap. (3x3 and 5x5 at stride 2 have their own kernels.)
    """
    KH, KW = wk.shape
    if case == K3S1:
        for i in range(OH):
            r0, r1, r2, orow = xp[i], xp[i + 1], xp[i + 2], o[i]
            for j in range(OW):
                orow[j] = _row3(r0, wk[0], j) + _row3(r1, wk[1], j) + _row3(r2, wk[2], j)
    elif case == K5S1:
        # three passes of at most ten taps, whose weights stay in AVX2's 16 registers (one
        # pass reloaded 12 of the 25 from the stack): (16, 144, 56, 56), one thread,
        # 11.6 ms in one pass, 10.1 ms so (as ``depthwise_plane_3x3s2``)
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


def depthwise_forward(x, w, stride, pt, pl, OH, OW):
    """x (N, C, H, W), w (C*m, 1, KH, KW) -> out (N, C*m, OH, OW).

    out[n, co] = sum_{ki,kj} w[co, 0, ki, kj] * x_padded[n, co // m, i*s + ki, j*s + kj]

    Picks the kernel for the kernel size and stride; each compiles on its first use.
    """
    K = w.shape[2:]
    if K == (3, 3) and stride in (1, 2):
        return _run(forward_3x3s1 if stride == 1 else forward_3x3s2, x, w, pt, pl, OH, OW)
    if K == (5, 5) and stride in (1, 2):
        return _run(forward_5x5s1 if stride == 1 else forward_5x5s2, x, w, pt, pl, OH, OW)
    return _run(forward_any, x, w, stride, pt, pl, OH, OW)


@njit(cache=True, inline="always")
def _forward(x, w, stride, pt, pl, OH, OW, case):
    """The body of the forward kernels except 3x3 stride 2: one plane per iteration."""
    N, C = x.shape[0], x.shape[1]
    Co, _, KH, KW = w.shape
    m = Co // C
    Hp, Wp = (OH - 1) * stride + KH, (OW - 1) * stride + KW
    out = np.empty((N, Co, OH, OW), dtype=x.dtype)
    for nc in prange(N * Co):
        n, co = nc // Co, nc % Co
        if case == K5S2:
            depthwise_plane_5x5s2(x[n, co // m], w[co, 0], out[n, co], pt, pl)
        else:
            xp = _padded_plane(x[n, co // m], pt, pl, Hp, Wp)
            _depthwise_plane(xp, w[co, 0], out[n, co], stride, OH, OW, case)
    return out


@njit(parallel=PRANGE_ONLY, cache=True)
def forward_3x3s1(x, w, pt, pl, OH, OW):
    return _forward(x, w, 1, pt, pl, OH, OW, K3S1)


@njit(cache=True)
def forward_3x3s1_1t(x, w, pt, pl, OH, OW):
    return _forward(x, w, 1, pt, pl, OH, OW, K3S1)


@njit(parallel=PRANGE_ONLY, cache=True)
def forward_5x5s1(x, w, pt, pl, OH, OW):
    return _forward(x, w, 1, pt, pl, OH, OW, K5S1)


@njit(cache=True)
def forward_5x5s1_1t(x, w, pt, pl, OH, OW):
    return _forward(x, w, 1, pt, pl, OH, OW, K5S1)


@njit(parallel=PRANGE_ONLY, cache=True)
def forward_5x5s2(x, w, pt, pl, OH, OW):
    return _forward(x, w, 2, pt, pl, OH, OW, K5S2)


@njit(cache=True)
def forward_5x5s2_1t(x, w, pt, pl, OH, OW):
    return _forward(x, w, 2, pt, pl, OH, OW, K5S2)


@njit(parallel=PRANGE_ONLY, cache=True)
def forward_any(x, w, stride, pt, pl, OH, OW):
    return _forward(x, w, stride, pt, pl, OH, OW, ANY)


@njit(cache=True)
def forward_any_1t(x, w, stride, pt, pl, OH, OW):
    return _forward(x, w, stride, pt, pl, OH, OW, ANY)


@njit(parallel=PRANGE_ONLY, cache=True)
def forward_3x3s2(x, w, pt, pl, OH, OW):
    return _forward_3x3s2(x, w, pt, pl, OH, OW)


@njit(cache=True)
def forward_3x3s2_1t(x, w, pt, pl, OH, OW):
    return _forward_3x3s2(x, w, pt, pl, OH, OW)


@njit(cache=True, inline="always")
def _forward_3x3s2(x, w, pt, pl, OH, OW):
    """The 3x3 stride-2 forward, in blocks of 32 planes, each allocating its scratch planes
    once, not three per plane (numba.get_num_threads() here would stop Numba from caching
    the function). With the one-pass split of ``depthwise_plane_3x3s2``: (16, 144, 56, 56),
    2 threads, 2.77 -> 2.25 ms."""
    N, C = x.shape[0], x.shape[1]
    Co = w.shape[0]
    m = Co // C
    out = np.empty((N, Co, OH, OW), dtype=x.dtype)
    P, B = N * Co, 32
    for b in prange((P + B - 1) // B):
        xp = np.empty((2 * OH + 1, 2 * OW + 2), dtype=x.dtype)
        E = np.empty((2 * OH + 1, OW + 1), dtype=x.dtype)
        O = np.empty((2 * OH + 1, OW + 1), dtype=x.dtype)
        for nc in range(b * B, min(P, b * B + B)):
            n, co = nc // Co, nc % Co
            depthwise_plane_3x3s2(x[n, co // m], w[co, 0], out[n, co], pt, pl, xp, E, O)
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


def depthwise_backward_input(dout, w, C, stride, pt, pl, H, W):
    """dout (N, C*m, OH, OW) -> dx (N, C, H, W).

    The adjoint of the forward is again a depthwise correlation, with the taps flipped,
    over dout dilated by the stride and padded by K - 1 - p:
    dx[n, c] = sum_{co in group c} corr(D(dout[n, co]), w[co] flipped), stride 1.
    So it runs on the same written-out 3x3/5x5 loops as the forward: one kernel per
    kernel size, each compiled on its first use.
    """
    kernel = globals()[backward_kernel_names(*w.shape[2:], stride)[0]]
    return _run(kernel, dout, w, C, stride, pt, pl, H, W)


def backward_kernel_names(KH, KW, stride):
    """The kernels ``depthwise_backward_input`` and ``depthwise_backward_weight`` pick for
    this kernel size and stride: one per kernel size for the input gradient; for the
    weight gradient one for stride 2, one for 5-wide kernels at other strides, one else."""
    bi = {(3, 3): "backward_input_3x3", (5, 5): "backward_input_5x5"}.get((KH, KW), "backward_input_any")
    bw = "backward_weight_s2" if stride == 2 else "backward_weight_k5" if KW == 5 else "backward_weight_any"
    return bi, bw


# Argument types of the backward kernels, for a helper process that compiles them ahead
# (``tinynets.kernels.warm``): "4" a C-contiguous 4-D array, "i" an int64.
SIGNATURES = dict.fromkeys(("backward_input_3x3", "backward_input_5x5", "backward_input_any"),
                           "4 4 i i i i i i")
SIGNATURES.update(dict.fromkeys(("backward_weight_s2", "backward_weight_k5", "backward_weight_any"),
                                "4 4 i i i i i"))


@njit(parallel=PRANGE_ONLY, cache=True)
def backward_input_3x3(dout, w, C, stride, pt, pl, H, W):
    return _backward_input(dout, w, C, stride, pt, pl, H, W, K3S1)


@njit(cache=True)
def backward_input_3x3_1t(dout, w, C, stride, pt, pl, H, W):
    return _backward_input(dout, w, C, stride, pt, pl, H, W, K3S1)


@njit(parallel=PRANGE_ONLY, cache=True)
def backward_input_5x5(dout, w, C, stride, pt, pl, H, W):
    return _backward_input(dout, w, C, stride, pt, pl, H, W, K5S1)


@njit(cache=True)
def backward_input_5x5_1t(dout, w, C, stride, pt, pl, H, W):
    return _backward_input(dout, w, C, stride, pt, pl, H, W, K5S1)


@njit(parallel=PRANGE_ONLY, cache=True)
def backward_input_any(dout, w, C, stride, pt, pl, H, W):
    return _backward_input(dout, w, C, stride, pt, pl, H, W, ANY)


@njit(cache=True)
def backward_input_any_1t(dout, w, C, stride, pt, pl, H, W):
    return _backward_input(dout, w, C, stride, pt, pl, H, W, ANY)


@njit(cache=True, inline="always")
def _backward_input(dout, w, C, stride, pt, pl, H, W, case):
    """The body of the input-gradient kernels; ``case`` is the stride-1 plane loop to use."""
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
        # with a channel multiplier, the planes after the first go to ``part`` and are added;
        # one call site, so that the plane loop is inlined (and compiled) once
        part = np.empty((H if m > 1 else 0, W if m > 1 else 0), dtype=dout.dtype)
        for co in range(ci * m, ci * m + m):
            D = _dilated_plane(dout[n, co], stride, KH - 1 - pt, KW - 1 - pl, Hd, Wd)
            _depthwise_plane(D, wf[co], dx[n, ci] if co == ci * m else part, 1, H, W, case)
            if co > ci * m:
                acc = dx[n, ci]
                for i in range(H):
                    for j in range(W):
                        acc[i, j] += part[i, j]
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
def _weight_grad_plane(d, xp, g, stride, OH, OW, case):
    """g[ki, kj] += sum_{i,j} d[i, j] * xp[i*s + ki, j*s + kj] for one plane.

    One pass over d per kernel row ki and per group of taps (5, or 3 at a time), whose
    sums run side by side; the sums start from g, so they stay in the input's dtype (no float64).
    ``case``: K5S2 for stride 2 (any size), K5S1 for 5 columns at another stride, ANY else.
    """
    KH, KW = g.shape
    if case == K5S2:                                 # unit-stride reads of the split columns
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
    if case == K5S1:
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


def depthwise_backward_weight(dout, x, KH, KW, stride, pt, pl):
    """dw (C*m, 1, KH, KW): dw[co,0,ki,kj] = sum_{n,i,j} dout[n,co,i,j] * x_padded[n, co//m, i*s+ki, j*s+kj].

    Parallel over output channels (each owns its own filter), so no reductions race.
    ``reassoc`` lets LLVM vectorise the sums over the width. One kernel for stride 2, one
    for 5-wide kernels at other strides, one for the rest; each compiles on its first use.
    """
    kernel = globals()[backward_kernel_names(KH, KW, stride)[1]]
    return _run(kernel, dout, x, KH, KW, stride, pt, pl)


@njit(cache=True, inline="always")
def _backward_weight(dout, x, KH, KW, stride, pt, pl, case):
    N, Co, OH, OW = dout.shape
    C = x.shape[1]
    m = Co // C
    Hp, Wp = (OH - 1) * stride + KH, (OW - 1) * stride + KW
    dw = np.zeros((Co, 1, KH, KW), dtype=dout.dtype)
    for co in prange(Co):
        for n in range(N):
            xp = _padded_plane(x[n, co // m], pt, pl, Hp, Wp)
            _weight_grad_plane(dout[n, co], xp, dw[co, 0], stride, OH, OW, case)
    return dw


@njit(parallel=PRANGE_ONLY, cache=True, fastmath={"reassoc", "nsz", "contract"})
def backward_weight_s2(dout, x, KH, KW, stride, pt, pl):
    return _backward_weight(dout, x, KH, KW, stride, pt, pl, K5S2)


@njit(cache=True, fastmath={"reassoc", "nsz", "contract"})
def backward_weight_s2_1t(dout, x, KH, KW, stride, pt, pl):
    return _backward_weight(dout, x, KH, KW, stride, pt, pl, K5S2)


@njit(parallel=PRANGE_ONLY, cache=True, fastmath={"reassoc", "nsz", "contract"})
def backward_weight_k5(dout, x, KH, KW, stride, pt, pl):
    return _backward_weight(dout, x, KH, KW, stride, pt, pl, K5S1)


@njit(cache=True, fastmath={"reassoc", "nsz", "contract"})
def backward_weight_k5_1t(dout, x, KH, KW, stride, pt, pl):
    return _backward_weight(dout, x, KH, KW, stride, pt, pl, K5S1)


@njit(parallel=PRANGE_ONLY, cache=True, fastmath={"reassoc", "nsz", "contract"})
def backward_weight_any(dout, x, KH, KW, stride, pt, pl):
    return _backward_weight(dout, x, KH, KW, stride, pt, pl, ANY)


@njit(cache=True, fastmath={"reassoc", "nsz", "contract"})
def backward_weight_any_1t(dout, x, KH, KW, stride, pt, pl):
    return _backward_weight(dout, x, KH, KW, stride, pt, pl, ANY)
