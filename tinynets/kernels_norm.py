"""Numba kernels behind ``BatchNorm2d``: statistics, and BN fused with its activation.

Each computes what the NumPy functions in ``tinynets.norm`` compute, and
``tests/test_kernels.py`` checks that they agree.

One pass computes y = act(x * scale + shift) with scale = gamma / sqrt(var + eps)
and shift = beta - mean * scale; backward recomputes the pre-activation from x
instead of caching it. Activation codes: 0 none, 1 ReLU, 2 ReLU6, 3 HardSwish,
4 SiLU. ``k`` holds the constants in x's dtype, so no float64 enters the loops.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def act_constants(dtype) -> np.ndarray:
    """(0, 6, 3, 1/6, 1, 1/2, 1/3) in ``dtype``: the numbers the activations use."""
    return np.array([0, 6, 3, 1 / 6, 1, 0.5, 1 / 3], dtype=dtype)


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
    else:
        for j in range(zs.size):
            ys[j] = zs[j]


@njit(cache=True, inline="always")
def _dz_plane(zs, ds, dz, code, k):
    """dz = ds * act'(zs), with PyTorch's values at the kinks (as tinynets.activations).
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
    else:
        for j in range(zs.size):
            dz[j] = ds[j]


@njit(parallel=True, cache=True, fastmath={"reassoc", "nsz"})
def bn_stats(x):
    """Per-channel mean and biased variance of x (N, C, H, W), two passes, float64 sums."""
    N, C, H, W = x.shape
    m = N * H * W
    mean, var = np.empty(C), np.empty(C)
    for c in prange(C):
        s = 0.0
        for n in range(N):
            for v in x[n, c].ravel():
                s += v
        mu = s / m
        q = 0.0
        for n in range(N):
            for v in x[n, c].ravel():
                q += (v - mu) * (v - mu)
        mean[c], var[c] = mu, q / m
    return mean, var


@njit(parallel=True, cache=True)
def bn_act_forward(x, scale, shift, code, k):
    """y = act(x * scale[c] + shift[c]) for x (N, C, H, W) contiguous."""
    N, C, H, W = x.shape
    out = np.empty_like(x)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        a, b = scale[c], shift[c]
        xs, ys = x[n, c].ravel(), out[n, c].ravel()
        for j in range(H * W):
            ys[j] = xs[j] * a + b
        _act_plane(ys, ys, code, k)
    return out


@njit(cache=True, inline="always")
def _pre_and_dz(xs, ds, a, b, z, dz, code, k):
    """z = xs * a + b (the pre-activation, recomputed), then dz = ds * act'(z)."""
    for j in range(xs.size):
        z[j] = xs[j] * a + b
    _dz_plane(z, ds, dz, code, k)


@njit(parallel=True, cache=True, fastmath={"reassoc", "nsz"})
def bn_act_backward_sums(dout, x, scale, shift, mean, invstd, code, k):
    """Per channel, with dz = dout * act'(x * scale + shift): sum(dz) (= dbeta) and
    sum(dz * x_hat) (= dgamma), x_hat = (x - mean) * invstd; float64 sums."""
    N, C, H, W = x.shape
    dbeta, dgamma = np.empty(C), np.empty(C)
    for c in prange(C):
        a, b, mu = scale[c], shift[c], mean[c]
        z, dz = np.empty(H * W, x.dtype), np.empty(H * W, x.dtype)   # one plane of scratch
        s0, s1 = 0.0, 0.0
        for n in range(N):
            xs = x[n, c].ravel()
            _pre_and_dz(xs, dout[n, c].ravel(), a, b, z, dz, code, k)
            for j in range(H * W):
                s0 += dz[j]
                s1 += dz[j] * (xs[j] - mu)
        dbeta[c], dgamma[c] = s0, s1 * invstd[c]
    return dbeta, dgamma


@njit(parallel=True, cache=True)
def bn_act_backward_input(dout, x, scale, shift, mean, q, r, code, k):
    """dx = scale * dz + q[c] + r[c] * (x - mean[c]), dz = dout * act'(x * scale + shift).
    Train mode: q = -scale * dbeta / m, r = -scale * invstd * dgamma / m; eval: q = r = 0."""
    N, C, H, W = x.shape
    dx = np.empty_like(x)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        a, b, mu, qc, rc = scale[c], shift[c], mean[c], q[c], r[c]
        xs, dxs = x[n, c].ravel(), dx[n, c].ravel()
        _pre_and_dz(xs, dout[n, c].ravel(), a, b, dxs, dxs, code, k)   # dz computed in place
        for j in range(H * W):
            dxs[j] = a * dxs[j] + qc + rc * (xs[j] - mu)
    return dx
