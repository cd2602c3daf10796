"""A4, hidden: stochastic depth in "batch" mode, at p = 1, on inputs of other ranks and
dtypes, reproducible by seed, and with p = 0.1 on many samples; the library's Dropout
refuses to run here too."""
import math

import numpy as np
import pytest

import tinynets as tn
from tinynets.nn.blocks import StochasticDepth

pytestmark = [pytest.mark.A4, pytest.mark.hidden, pytest.mark.numpy_only,
              pytest.mark.usefixtures("no_dropout")]


def _kept(x, y, p):
    N = x.shape[0]
    xr, yr = x.reshape(N, -1), y.reshape(N, -1)
    dropped = np.all(yr == 0, axis=1)
    kept = np.all(np.abs(yr - xr / (1 - p)) <= 1e-6 * np.abs(xr / (1 - p)), axis=1)
    if not np.all(dropped | kept):
        raise AssertionError(f"StochasticDepth(p={p}) on {x.shape}: every sample should be all "
                             "zeros or x / (1-p)")
    return kept


def test_stochastic_depth_batch_mode_and_extremes():
    """'batch': one draw for the whole batch; p = 1 drops everything; 2-D and 5-D inputs."""
    p, calls = 0.4, 400
    x = np.random.default_rng(3).uniform(1, 2, (5, 3, 2, 2))
    tn.manual_seed(11)
    sd = StochasticDepth(p, "batch")
    dropped = 0
    for _ in range(calls):
        kept = _kept(x, sd(x), p)
        sd.backward(np.ones_like(x))
        if kept.any() and not kept.all():
            raise AssertionError("StochasticDepth(mode='batch'): the whole batch is dropped or "
                                 "kept together (one draw), got a mix of samples")
        dropped += not kept[0]
    se = math.sqrt(p * (1 - p) / calls)
    if not abs(dropped / calls - p) < 5 * se:
        raise AssertionError(f"StochasticDepth(p={p}, 'batch'): the batch should be dropped in a "
                             f"fraction {p} of the calls, got {dropped / calls:.3f} of {calls}")
    x2 = np.random.default_rng(4).uniform(1, 2, (4000, 7))
    sd1 = StochasticDepth(1.0)
    y, dx = sd1(x2), sd1.backward(np.ones_like(x2))
    if not (np.array_equal(y, 0 * x2) and np.array_equal(dx, 0 * x2)):
        raise AssertionError("StochasticDepth(1.0) in train mode: y and dx should be all zeros")
    for shape in [(4000, 7), (3000, 2, 1, 2, 3)]:
        xs = np.random.default_rng(5).uniform(1, 2, shape)
        kept = _kept(xs, StochasticDepth(0.25)(xs), 0.25)
        if not abs(1 - kept.mean() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / shape[0]):
            raise AssertionError(f"StochasticDepth(0.25) on {shape}: about a quarter of the "
                                 f"samples should be dropped, got {1 - kept.mean():.3f}")


def test_stochastic_depth_reproducible_and_float32():
    """manual_seed repeats the mask (drawn from tinynets' generator); float32 stays float32."""
    x = np.random.default_rng(6).uniform(1, 2, (64, 3, 2, 2))
    sd = StochasticDepth(0.5)
    masks = []
    for seed in (7, 7, 8):
        tn.manual_seed(seed)
        masks.append(_kept(x, sd(x), 0.5))
        sd.backward(np.ones_like(x))
    if not np.array_equal(masks[0], masks[1]):
        raise AssertionError("StochasticDepth: after the same tn.manual_seed the same samples "
                             "should be dropped; draw the mask from tinynets' generator (get_rng())")
    if np.array_equal(masks[0], masks[2]):
        raise AssertionError("StochasticDepth: two seeds dropped the same 64 samples; the mask "
                             "should be random")
    x32 = x.astype(np.float32)
    y32 = StochasticDepth(0.2)(x32)
    if y32.dtype != np.float32:
        raise AssertionError(f"StochasticDepth: float32 in should give float32 out, got {y32.dtype}")
    sd32 = StochasticDepth(0.2)
    sd32(x32)
    dx32 = sd32.backward(np.ones_like(x32))
    if dx32.dtype != np.float32:
        raise AssertionError(f"StochasticDepth backward: float32 dout should give float32 dx, "
                             f"got {dx32.dtype}")


def test_stochastic_depth_small_p_many_samples():
    """p = 0.1 on 5000 samples: the fraction dropped, and the backward's mask."""
    p, N = 0.1, 5000
    x = np.random.default_rng(9).uniform(1, 2, (N, 2, 3))
    tn.manual_seed(12)
    sd = StochasticDepth(p)
    kept = _kept(x, sd(x), p)
    dx = sd.backward(np.ones_like(x))
    if not np.allclose(dx.reshape(N, -1), np.where(kept, 1 / (1 - p), 0.0)[:, None], rtol=1e-12):
        raise AssertionError("StochasticDepth backward: dx should be dout * the forward's mask")
    if not abs(1 - kept.mean() - p) < 5 * math.sqrt(p * (1 - p) / N):
        raise AssertionError(f"StochasticDepth(p={p}): the fraction dropped should be about {p}, "
                             f"got {1 - kept.mean():.4f}")
