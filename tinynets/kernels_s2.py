"""Numba kernels for the depthwise 3x3 and 5x5 forward at stride 2 (``kernels.depthwise_forward``).

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

Numba's on-disk cache of ``kernels.depthwise_forward`` does not notice edits to this
file: after changing it, delete ``tinynets/__pycache__/kernels.*.nbi``/``.nbc``.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def pad_into(plane, pt, pl, xp):
    """xp (Hp, Wp) = a (H, W) plane zero-padded by pt on top and pl on the left, zeros beyond
    it (pt, pl may be negative: then the plane is cropped). Only the border is zeroed, and
    each row is one slice copy, which compiles to a vectorised loop."""
    H, W = plane.shape
    Hp, Wp = xp.shape
    i0, i1 = max(0, -pt), min(H, Hp - pt)           # plane rows/columns that land inside xp
    j0, j1 = max(0, -pl), min(W, Wp - pl)
    xp[:i0 + pt, :] = 0
    xp[i1 + pt:, :] = 0
    for i in range(i0, i1):
        row = xp[i + pt]
        row[:j0 + pl] = 0
        row[j0 + pl:j1 + pl] = plane[i, j0:j1]
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
def _row5(e, od, w, t):
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
        o_wide[t] = _row5(e0, o0, wk[0], t) + _row5(e1, o1, wk[1], t)
    for t in range(L):
        o_wide[t] += _row5(e2, o2, wk[2], t) + _row5(e3, o3, wk[3], t)
    for t in range(L):
        o_wide[t] += _row5(e4, o4, wk[4], t)
    for i in range(OH):
        o[i] = o_wide[i * WQ:i * WQ + OW]


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
