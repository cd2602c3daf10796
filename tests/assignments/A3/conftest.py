"""Checks shared by A3's tests: the separable cases built from PyTorch's depthwise numbers,
a guard against calling the library's other convolutions, and blocks without BatchNorm.

BatchNorm and ReLU6 belong to another assignment, so the block tests take them out of the
way: BatchNorm layers are replaced by ``Identity`` (after construction, in place) and the
activation is ``Sigmoid``, which is smooth, so finite differences need no kink watch.
"""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

import tinynets as tn
from tinynets.kernels import conv_naive

TARGETS = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "targets.json")
TV_KEYS = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "torchvision_keys.json")
# conv_naive's other convolutions: a task that asks for the taps may not call them
OTHER_CONVS = ("conv2d_loops", "conv2d_loops_backward", "conv2d_im2col", "conv2d_im2col_backward",
               "depthwise_taps", "depthwise_taps_backward", "im2col_strided", "col2im_taps")


@pytest.fixture
def own_taps(monkeypatch):
    """Inside the test, calling one of conv_naive's other convolutions fails."""
    def refuse(name):
        def call(*args, **kwargs):
            raise AssertionError(f"this task asks for your own taps; it may not call "
                                 f"conv_naive.{name}")
        return call
    for name in OTHER_CONVS:
        monkeypatch.setattr(conv_naive, name, refuse(name))


def targets(model: str):
    """{(width_mult, resolution): (params, macs)} of one model in the papers' counts."""
    with open(TARGETS, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    return {(r["kwargs"].get("width_mult", 1.0), r["resolution"]): (r["params"], r["macs"])
            for r in rows if r["model"] == model}


def torchvision_block(i: int):
    """[(key, shape)] of torchvision's mobilenet_v2 ``features.i``, the prefix removed."""
    with open(TV_KEYS, encoding="utf-8") as f:
        entries = json.load(f)["models"]["mobilenet_v2"]["entries"]
    prefix = f"features.{i}."
    return [(k[len(prefix):], tuple(s)) for k, s in entries if k.startswith(prefix)]


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of 8 (at least 8), one more 8 if
    that lost over 10% of v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def v2_blocks():
    """(index in features, in, out, stride, t) of MobileNetV2's 17 blocks at width 1."""
    from tinynets.models.mobilenet_v2 import INVERTED_RESIDUAL_SETTING
    out, c_in, i = [], 32, 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        for j in range(n):
            out.append((i, c_in, c, s if j == 0 else 1, t))
            c_in, i = c, i + 1
    return out


def strip_bn(module):
    """Replace every BatchNorm2d inside ``module`` by an Identity, keeping its position."""
    for m in list(module.modules()):
        for name, child in list(m._modules.items()):
            if isinstance(child, tn.BatchNorm2d):
                setattr(m, name, tn.Identity())
    return module


def randomize(module, rng):
    """Give every parameter of ``module`` random values (construction order then does not
    matter), in the parameter's dtype."""
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.5
    return module


def depthwise3x3(x, w, stride):
    """A 3x3 depthwise convolution with padding 1, by a loop over the nine taps."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    OH, OW = (H - 1) // stride + 1, (W - 1) // stride + 1
    out = np.zeros((N, C, OH, OW))
    for ki in range(3):
        for kj in range(3):
            out += w[None, :, 0, ki, kj, None, None] * xp[:, :, ki:ki + stride * OH:stride,
                                                          kj:kj + stride * OW:stride]
    return out


def pointwise(x, w):
    return np.einsum("om,nmhw->nohw", w[:, :, 0, 0], x)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def smooth_gradient(f, array: np.ndarray, dout: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Five-point differences of sum(f() * dout) with respect to ``array`` (perturbed in
    place, then restored): error O(h^4), for the smooth (Sigmoid) blocks."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(array.size):
        old = flat[i]
        vals = []
        for step in (2 * h, h, -h, -2 * h):
            flat[i] = old + step
            vals.append(np.sum(f() * dout))
        flat[i] = old
        gflat[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    return grad


def separable_case(c, C_out: int, rng):
    """A separable case whose depthwise half is the fixture case ``c`` (groups == channels):
    x, w_dw, PyTorch's depthwise output ``mid`` (its bias taken off), a pointwise weight P
    (C_out, M, 1, 1) and out = P mid. With C_out == M, P is invertible and ``dout`` is chosen
    so that P^T dout is the fixture's dout: then dx and dw_dw are PyTorch's dx and dweight."""
    M = c.x.shape[1]
    mid = c.out - (c.bias[None, :, None, None] if c.bias is not None else 0)
    P = rng.standard_normal((C_out, M)) + (3 * np.eye(C_out, M) if C_out == M else 0)
    case = SimpleNamespace(name=c.name, x=c.x, w_dw=c.weight, mid=mid, w_pw=P[:, :, None, None],
                           out=pointwise(mid, P[:, :, None, None]), stride=c.stride, pads=c.pads)
    if C_out == M:
        case.dout = np.einsum("om,nmhw->nohw", np.linalg.inv(P.T), c.dout)
        case.dx, case.dw_dw = c.dx, c.dweight
        case.dw_pw = np.einsum("nohw,nmhw->om", case.dout, mid)[:, :, None, None]
    return case


def check_collapsed(lost, T, X, what: str) -> None:
    """Both directions of "ReLU(T x) does not determine x", point by point: a point kept must
    be recovered exactly from its active coordinates; for a point marked lost, a different
    point with the same ReLU(T x) is constructed (a move along the null space of the active
    rows that keeps every inactive coordinate negative)."""
    lost = np.asarray(lost)
    if lost.shape != (len(X),) or lost.dtype != bool:
        raise AssertionError(f"{what}: expected a boolean array of shape ({len(X)},), got "
                             f"{lost.dtype} {lost.shape}")
    for k, (x, is_lost) in enumerate(zip(X, lost)):
        z = T @ x
        a = z > 0
        if not is_lost:
            back = np.linalg.lstsq(T[a], z[a], rcond=None)[0] if a.any() else np.zeros(2)
            if not np.allclose(back, x, rtol=0, atol=1e-8):
                raise AssertionError(f"{what}: point {k} {x} is marked kept, but its active "
                                     f"coordinates ({int(a.sum())} of {len(z)}) do not determine it")
            continue
        if a.any():
            _, sv, vt = np.linalg.svd(T[a])
            if np.sum(sv > 1e-10 * sv[0]) == 2:
                raise AssertionError(f"{what}: point {k} {x} is marked lost, but its active rows "
                                     "span the plane: ReLU(T x) determines it")
            v = vt[-1]
        else:
            v = np.array([1.0, 0.0])
        slack = T[~a] @ v
        eps = 0.5 * np.min(-z[~a]) / np.max(np.abs(slack)) if (~a).any() and np.any(slack) else 1.0
        x2 = x + eps * v
        if not np.allclose(np.maximum(T @ x2, 0), np.maximum(z, 0), rtol=0, atol=1e-10):
            raise AssertionError(f"{what}: point {k} {x}: no other point with the same ReLU(T x) "
                                 "was found, so it should not be marked lost")


@pytest.fixture
def a3():
    return SimpleNamespace(targets=targets, torchvision_block=torchvision_block,
                           make_divisible=make_divisible, v2_blocks=v2_blocks,
                           strip_bn=strip_bn, randomize=randomize, depthwise3x3=depthwise3x3,
                           pointwise=pointwise, sigmoid=sigmoid, smooth_gradient=smooth_gradient,
                           check_collapsed=check_collapsed,
                           separable_case=separable_case)
