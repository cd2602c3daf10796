"""Checks shared by A8's visible and hidden tests (lesson 09's exercises). Nothing is timed:
the lesson measures speed, the grade checks numbers."""
from types import SimpleNamespace

import numba
import numpy as np
import pytest

import tinynets as tn

LAYERS = ('pointwise 320->1280 at 7x7', 'BN + ReLU6 on 1280x7x7', 'Linear 1280->1000, batch 1')
FORBID_INTENSITY = ("tinynets", "intensity", "profile")
FORBID_FUSED = ("tinynets", "maximum", "clip", "fmax", "where")


def conv_intensity(N, C, H, W, k, s, p):
    """(FLOPs, bytes, FLOP/byte) of a float32 depthwise conv forward, from the layer's own count."""
    layer = tn.Conv2d(C, C, k, stride=s, padding=p, groups=C, bias=False)
    out_shape, rows = layer.profile((N, C, H, W))
    flops = sum(r.flops for r in rows)
    nbytes = 4 * (N * C * H * W + int(np.prod(out_shape)) + layer.weight.data.size)
    return flops, nbytes, flops / nbytes


def check_intensity(checks, fn, case):
    got = fn(*case)
    want = conv_intensity(*case)
    if not (isinstance(got, tuple) and len(got) == 3):
        raise AssertionError(f"A8.try_intensity: depthwise_intensity{case} should return "
                             f"(flops, bytes, intensity), got {got!r}")
    for what, g, w in zip(("FLOPs", "bytes"), got[:2], want[:2]):
        if g != w:
            raise AssertionError(f"A8.try_intensity: depthwise_intensity{case}: {what} should "
                                 f"be exact, got {g:,}, off by {g - w:+,}")
    checks.expect_close(f"A8.try_intensity: depthwise_intensity{case} intensity", got[2], want[2],
                        1e-12)


def scale_relu(checks):
    """The exercise's compiled ``scale_relu``, checked to be a Numba function."""
    ns = checks.exercise("09", "A8.try_scale_relu", forbid=FORBID_FUSED, numba=numba)
    fn = checks.defined(ns, "scale_relu", "A8.try_scale_relu")
    if not isinstance(fn, numba.core.registry.CPUDispatcher):
        raise AssertionError("A8.try_scale_relu: scale_relu should be compiled with numba.njit")
    return fn


def check_scale_relu(checks, fn, x, a, b):
    got = fn(x, a, b)
    want = np.maximum(x * a + b, 0)
    what = f"A8.try_scale_relu on {x.dtype} {x.shape}"
    if not isinstance(got, np.ndarray) or got.dtype != x.dtype:
        raise AssertionError(f"{what}: expected an array of dtype {x.dtype}, got "
                             f"{getattr(got, 'dtype', type(got).__name__)}")
    checks.expect_close(what, got, want, 1e-6 if x.dtype == np.float32 else 1e-14)


@pytest.fixture
def a8():
    return SimpleNamespace(LAYERS=LAYERS, FORBID_INTENSITY=FORBID_INTENSITY,
                           check_intensity=check_intensity, scale_relu=scale_relu,
                           check_scale_relu=check_scale_relu)
