"""Numba kernels behind ``BatchNorm2d``: statistics, and BN fused with its activation.

Each computes what the NumPy functions in ``tinynets.nn.norm`` compute, and
``tests/test_kernels.py`` checks that they agree.

One pass computes y = act(x * scale + shift) with scale = gamma / sqrt(var + eps)
and shift = beta - mean * scale; backward recomputes the pre-activation from x
instead of caching it. Activation codes: 0 none, 1 ReLU, 2 ReLU6, 3 HardSwish,
4 SiLU, 5 SiLU with a vectorised float32 exp. ``k`` holds the constants in x's
dtype, so no float64 enters the loops.

Why code 5: LLVM does not vectorise calls to the C library's ``expf``, and with it
BN + SiLU took 27 ms forward on (16, 144, 56, 56), twice PyTorch's time.
``_exp_neg_run`` is Cephes' ``expf`` (range reduction by n ln 2 and a degree-5
polynomial) written so that it vectorises: 2^n is built from its bits, (n + 127) << 23,
in an int32 scratch viewed as float32 (a table lookup would need a gather, which LLVM
does not emit here). 7M values: 6 ms instead of 35 ms on one thread; relative error
below 2e-7 (tested), about float32's rounding. float64 keeps NumPy's exact ``exp``
(code 4), so gradient checks and parity tests are unaffected.

Small planes: at 7x7 or 14x14 a loop over one plane is a few vector iterations and its
setup, and SiLU's scratch is allocated per loop. So the kernels work on *runs* of whole
channels, at least ``RUN`` values each (``_channel_blocks``): the affine step goes channel by
channel, the activation and its derivative over the whole run; each loop runs on a view
from index 0 (loops over offsets into the flattened image did not vectorise). One thread,
(16, 576, 7, 7), BN + HardSwish forward, backward sums and backward input: 527, 709 and
726 us plane by plane, 99, 257 and 192 us so; 56x56 planes take the time they took.

Threads: the kernels the layers call run a parallel kernel on float32 and its one-thread
twin (``_*_1t``, the same inlined body) on float64, the checking precision, and on float32
while the parallel build compiles (``tiers``); a twin compiles in about half the time.
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


RUN = 1024          # values per run of channels, at least, where the planes are smaller

# Cephes expf: ln 2 split in two for an exact n ln 2, and the polynomial's coefficients
_EXP = [1.4426950408889634, 0.693359375, -2.12194440e-4, 1.9875691500e-4, 1.3981999507e-3,
        8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1, -87.0, 88.0]


def act_constants(dtype) -> np.ndarray:
    """The numbers the activations use, in ``dtype``: k[0:7] = (0, 6, 3, 1/6, 1, 1/2, 1/3),
    k[7:18] = ``_exp_neg_run``'s constants."""
    return np.array([0, 6, 3, 1 / 6, 1, 0.5, 1 / 3] + _EXP, dtype=dtype)


@njit(cache=True, inline="always")
def _exp_neg_run(zs, E, k):
    """E = exp(-zs) over a 1-D run (float32), in two vectorised loops."""
    lo, hi, l2e, c1, c2 = k[16], k[17], k[7], k[8], k[9]
    p0, p1, p2, p3, p4, p5, half, one = k[10], k[11], k[12], k[13], k[14], k[15], k[5], k[4]
    bits = np.empty(zs.size, np.int32)
    for i in range(zs.size):
        t = min(max(-zs[i], lo), hi)                # exp underflows / overflows beyond
        n = np.floor(t * l2e + half)                # nearest integer to t / ln 2
        r = t - n * c1 - n * c2                     # |r| <= ln 2 / 2, n ln 2 exact
        p = ((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5
        E[i] = p * r * r + r + one                  # exp(r)
        bits[i] = (np.int32(n) + 127) << 23         # the float32 2^n, bit by bit
    pow2 = bits.view(np.float32)
    for i in range(zs.size):
        E[i] *= pow2[i]


@njit(cache=True, inline="always")
def _channel_blocks(C, HW):
    """(g, blocks): runs of g whole channels, g * HW >= RUN where C allows (g = 1 for big planes)."""
    g = min(C, max(1, RUN // max(HW, 1)))
    return g, (C + g - 1) // g


@njit(cache=True, inline="always")
def _affine_run(xs, zs, scale, shift, c0, c1, HW):
    """zs = xs * scale[c] + shift[c] over the channels c0..c1-1 of one image, flattened
    (xs, zs from channel 0; zs may be xs)."""
    for c in range(c0, c1):
        a, b = scale[c], shift[c]
        xc, zc = xs[c * HW:(c + 1) * HW], zs[c * HW:(c + 1) * HW]   # views: loops from 0
        for j in range(HW):                                       # vectorise, offsets did not
            zc[j] = xc[j] * a + b


@njit(cache=True, inline="always")
def _act_plane(zs, ys, code, k):
    """ys = act(zs) over a 1-D run. One loop per activation, so that the branch on
    ``code`` sits outside the loop and each loop vectorises."""
    if code == 1:
        for j in range(zs.size):
            ys[j] = max(zs[j], k[0])
    elif code == 2:
        for j in range(zs.size):
            ys[j] = min(max(zs[j], k[0]), k[1])
    elif code == 3:
        for j in range(zs.size):
            ys[j] = zs[j] * min(max(zs[j] + k[2], k[0]), k[1]) * k[3]
    elif code == 4:
        for j in range(zs.size):
            ys[j] = zs[j] / (k[4] + np.exp(-zs[j]))    # x * sigmoid(x); exp(-z) = inf gives -0
    elif code == 5:
        E = np.empty(zs.size, zs.dtype)
        _exp_neg_run(zs, E, k)
        for j in range(zs.size):
            ys[j] = zs[j] / (k[4] + E[j])
    else:
        for j in range(zs.size):
            ys[j] = zs[j]


@njit(cache=True, inline="always")
def _dz_plane(zs, ds, dz, code, k):
    """dz = ds * act'(zs), with PyTorch's values at the kinks (as tinynets.nn.activations).
    Selects, not branches, so the loops vectorise."""
    if code == 1:
        for j in range(zs.size):
            dz[j] = ds[j] if zs[j] > k[0] else k[0]
    elif code == 2:
        for j in range(zs.size):
            dz[j] = ds[j] if (zs[j] > k[0]) & (zs[j] < k[1]) else k[0]
    elif code == 3:
        for j in range(zs.size):
            z = zs[j]
            slope = z * k[6] + k[5] if z < k[2] else k[4]
            dz[j] = ds[j] * slope if z > -k[2] else k[0]
    elif code == 4:
        for j in range(zs.size):
            s = k[4] / (k[4] + np.exp(-zs[j]))
            dz[j] = ds[j] * s * (k[4] + zs[j] * (k[4] - s))
    elif code == 5:
        E = np.empty(zs.size, zs.dtype)
        _exp_neg_run(zs, E, k)
        for j in range(zs.size):
            s = k[4] / (k[4] + E[j])
            dz[j] = ds[j] * s * (k[4] + zs[j] * (k[4] - s))
    else:
        for j in range(zs.size):
            dz[j] = ds[j]


def bn_stats(x):
    """Per-channel mean and biased variance of x (N, C, H, W), two passes, float64 sums.

    float32 runs the parallel kernel from its first call, never the twin (no ``tiers``):
    LLVM vectorises the sums differently in the two builds, so they round differently, and
    a run must not change its statistics when one build replaces the other. It compiles in
    under a second."""
    return (_bn_stats_1t if x.dtype == np.float64 else _bn_stats)(x)


@njit(parallel=PRANGE_ONLY, cache=True, fastmath={"reassoc", "nsz"})
def _bn_stats(x):
    return _bn_stats_body(x)


@njit(cache=True, fastmath={"reassoc", "nsz"})
def _bn_stats_1t(x):
    return _bn_stats_body(x)


@njit(cache=True, inline="always")
def _bn_stats_body(x):
    N, C, H, W = x.shape
    HW = H * W
    m = N * HW
    xf = x.reshape(N, C * HW)
    mean, var = np.empty(C), np.empty(C)
    for c in prange(C):
        # index loops over each plane's view vectorise; ``for v in x[n, c].ravel()`` did not
        # (16, 72, 56, 56) on 2 threads: 3.9 ms so, 1.0 ms with these loops
        s = 0.0
        for n in range(N):
            p = xf[n, c * HW:(c + 1) * HW]
            for j in range(HW):
                s += p[j]
        mu = s / m
        q = 0.0
        for n in range(N):
            p = xf[n, c * HW:(c + 1) * HW]
            for j in range(HW):
                d = p[j] - mu
                q += d * d
        mean[c], var[c] = mu, q / m
    return mean, var


def bn_act_forward(x, scale, shift, code, k):
    """y = act(x * scale[c] + shift[c]) for x (N, C, H, W) contiguous."""
    return tiers.run(_bn_act_forward, _bn_act_forward_1t, x, scale, shift, code, k)


@njit(parallel=PRANGE_ONLY, cache=True)
def _bn_act_forward(x, scale, shift, code, k):
    return _bn_act_forward_body(x, scale, shift, code, k)


@njit(cache=True)
def _bn_act_forward_1t(x, scale, shift, code, k):
    return _bn_act_forward_body(x, scale, shift, code, k)


@njit(cache=True, inline="always")
def _bn_act_forward_body(x, scale, shift, code, k):
    N, C, H, W = x.shape
    HW = H * W
    g, blocks = _channel_blocks(C, HW)
    out = np.empty_like(x)
    xf, of = x.reshape(N, C * HW), out.reshape(N, C * HW)
    for job in prange(N * blocks):                  # one run of channels of one image
        n, c0 = job // blocks, (job % blocks) * g
        c1 = min(C, c0 + g)
        _affine_run(xf[n], of[n], scale, shift, c0, c1, HW)
        run = of[n, c0 * HW:c1 * HW]
        _act_plane(run, run, code, k)
    return out


def bn_act_backward_sums(dout, x, scale, shift, mean, invstd, code, k):
    """Per channel, with dz = dout * act'(x * scale + shift): sum(dz) (= dbeta) and
    sum(dz * x_hat) (= dgamma), x_hat = (x - mean) * invstd; float64 sums."""
    return tiers.run(_bn_act_backward_sums, _bn_act_backward_sums_1t,
                     dout, x, scale, shift, mean, invstd, code, k)


@njit(parallel=PRANGE_ONLY, cache=True, fastmath={"reassoc", "nsz"})
def _bn_act_backward_sums(dout, x, scale, shift, mean, invstd, code, k):
    return _bn_act_backward_sums_body(dout, x, scale, shift, mean, invstd, code, k)


@njit(cache=True, fastmath={"reassoc", "nsz"})
def _bn_act_backward_sums_1t(dout, x, scale, shift, mean, invstd, code, k):
    return _bn_act_backward_sums_body(dout, x, scale, shift, mean, invstd, code, k)


@njit(cache=True, inline="always")
def _bn_act_backward_sums_body(dout, x, scale, shift, mean, invstd, code, k):
    N, C, H, W = x.shape
    HW = H * W
    g, blocks = _channel_blocks(C, HW)
    xf, df = x.reshape(N, C * HW), dout.reshape(N, C * HW)
    dbeta, dgamma = np.zeros(C), np.zeros(C)
    for blk in prange(blocks):                      # one run of channels, over every image
        c0 = blk * g
        c1 = min(C, c0 + g)
        lo, hi = c0 * HW, c1 * HW
        z, dz = np.empty(hi - lo, x.dtype), np.empty(hi - lo, x.dtype)   # the run's scratch
        for n in range(N):
            xs = xf[n, lo:hi]
            _affine_run(xs, z, scale[c0:c1], shift[c0:c1], 0, c1 - c0, HW)   # z recomputed
            _dz_plane(z, df[n, lo:hi], dz, code, k)                          # dz = dout * act'(z)
            for c in range(c0, c1):
                mu, s0, s1 = mean[c], 0.0, 0.0
                i = (c - c0) * HW
                xc, dc = xs[i:i + HW], dz[i:i + HW]
                for j in range(HW):
                    s0 += dc[j]
                    s1 += dc[j] * (xc[j] - mu)
                dbeta[c] += s0
                dgamma[c] += s1
        for c in range(c0, c1):
            dgamma[c] *= invstd[c]
    return dbeta, dgamma


def bn_act_backward_input(dout, x, scale, shift, mean, q, r, code, k):
    """dx = scale * dz + q[c] + r[c] * (x - mean[c]), dz = dout * act'(x * scale + shift).
    Train mode: q = -scale * dbeta / m, r = -scale * invstd * dgamma / m; eval: q = r = 0."""
    return tiers.run(_bn_act_backward_input, _bn_act_backward_input_1t,
                     dout, x, scale, shift, mean, q, r, code, k)


@njit(parallel=PRANGE_ONLY, cache=True)
def _bn_act_backward_input(dout, x, scale, shift, mean, q, r, code, k):
    return _bn_act_backward_input_body(dout, x, scale, shift, mean, q, r, code, k)


@njit(cache=True)
def _bn_act_backward_input_1t(dout, x, scale, shift, mean, q, r, code, k):
    return _bn_act_backward_input_body(dout, x, scale, shift, mean, q, r, code, k)


@njit(cache=True, inline="always")
def _bn_act_backward_input_body(dout, x, scale, shift, mean, q, r, code, k):
    N, C, H, W = x.shape
    HW = H * W
    g, blocks = _channel_blocks(C, HW)
    dx = np.empty_like(x)
    xf, df, of = x.reshape(N, C * HW), dout.reshape(N, C * HW), dx.reshape(N, C * HW)
    for job in prange(N * blocks):                  # one run of channels of one image
        n, c0 = job // blocks, (job % blocks) * g
        c1 = min(C, c0 + g)
        xs, dxs = xf[n], of[n]
        _affine_run(xs, dxs, scale, shift, c0, c1, HW)        # z, recomputed, in dx
        run = dxs[c0 * HW:c1 * HW]
        _dz_plane(run, df[n, c0 * HW:c1 * HW], run, code, k)  # dz computed in place
        for c in range(c0, c1):
            a, mu, qc, rc = scale[c], mean[c], q[c], r[c]
            xc, dc = xs[c * HW:(c + 1) * HW], dxs[c * HW:(c + 1) * HW]
            for j in range(HW):
                dc[j] = a * dc[j] + qc + rc * (xc[j] - mu)
    return dx


# The backward's kernels and their argument types, for a helper process that compiles them
# ahead (``tinynets.kernels.warm``): "4"/"1" C-contiguous arrays, "i" an int64.
BACKWARD = ("_bn_act_backward_sums", "_bn_act_backward_input")
SIGNATURES = {"_bn_act_backward_sums": "4 4 1 1 1 1 i 1", "_bn_act_backward_input": "4 4 1 1 1 1 1 i 1"}


def bias_act_(x, bias, code, k):
    """In place: x = act(x + bias[c]) for x (N, C, H, W) contiguous. The inference path of
    a conv whose BatchNorm was folded into it (``tinynets.tools.fold``): one pass over the output."""
    return tiers.run(_bias_act_, _bias_act_1t, x, bias, code, k)


@njit(parallel=PRANGE_ONLY, cache=True)
def _bias_act_(x, bias, code, k):
    return _bias_act_body(x, bias, code, k)


@njit(cache=True)
def _bias_act_1t(x, bias, code, k):
    return _bias_act_body(x, bias, code, k)


@njit(cache=True, inline="always")
def _bias_act_body(x, bias, code, k):
    N, C, H, W = x.shape
    HW = H * W
    g, blocks = _channel_blocks(C, HW)
    xf = x.reshape(N, C * HW)
    for job in prange(N * blocks):                  # one run of channels of one image
        n, c0 = job // blocks, (job % blocks) * g
        c1 = min(C, c0 + g)
        xs = xf[n]
        for c in range(c0, c1):
            b = bias[c]
            xc = xs[c * HW:(c + 1) * HW]
            for j in range(HW):
                xc[j] += b
        run = xs[c0 * HW:c1 * HW]
        _act_plane(run, run, code, k)
