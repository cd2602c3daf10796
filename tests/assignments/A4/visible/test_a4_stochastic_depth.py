"""A4, visible: stochastic depth, forward and backward (``StochasticDepth`` in
``tinynets/nn/blocks.py``), as ``torchvision.ops.stochastic_depth``.

Checked by what must hold, not by a copy of a reference: with a fixed seed, in "row" mode
every sample is either dropped (all zeros) or kept and scaled by exactly 1/(1-p); the
fraction dropped is p within five standard errors; eval mode is the identity; backward
multiplies by the mask that forward drew. The layer is to be written out: during these
tests the library's ``Dropout`` methods refuse to run (the ``no_dropout`` fixture).
"""
import math

import numpy as np
import pytest

import tinynets as tn
from tinynets.nn.blocks import StochasticDepth

pytestmark = [pytest.mark.A4, pytest.mark.numpy_only, pytest.mark.usefixtures("no_dropout")]


def kept_rows(what, x, y, p):
    """Boolean (N,): which samples were kept; fails unless each row is all 0 or x / (1-p)."""
    N = x.shape[0]
    xr, yr = x.reshape(N, -1), y.reshape(N, -1)
    dropped = np.all(yr == 0, axis=1)
    scaled = np.all(np.abs(yr - xr / (1 - p)) <= 1e-12 * np.abs(xr / (1 - p)), axis=1)
    bad = np.flatnonzero(~(dropped | scaled))
    if bad.size:
        n = bad[0]
        raise AssertionError(f"{what}: every sample should be dropped (all zeros) or kept and "
                             f"scaled by 1/(1-p) = {1 / (1 - p):.4f}; sample {n} has y/x between "
                             f"{np.min(yr[n] / xr[n]):.4f} and {np.max(yr[n] / xr[n]):.4f}")
    return scaled


def test_stochastic_depth_row_statistics():
    """One Bernoulli(1-p) draw per sample: the fraction dropped is p, and E[y] = x."""
    p, N = 0.3, 20000
    x = np.random.default_rng(0).uniform(1, 2, (N, 3, 2, 2))
    tn.manual_seed(0)
    sd = StochasticDepth(p)
    y = sd(x)
    if not isinstance(y, np.ndarray) or y.shape != x.shape or y.dtype != x.dtype:
        raise AssertionError(f"StochasticDepth forward: expected an array of shape {x.shape} and "
                             f"dtype {x.dtype}, got {getattr(y, 'shape', type(y))}")
    kept = kept_rows(f"StochasticDepth(p={p}) in train mode", x, y, p)
    frac = 1 - kept.mean()
    se = math.sqrt(p * (1 - p) / N)
    if not abs(frac - p) < 5 * se:
        raise AssertionError(f"StochasticDepth(p={p}): the fraction of samples dropped should be "
                             f"{p} within {5 * se:.4f} (five standard errors), got {frac:.4f}")
    ratio = (y / x).reshape(N, -1)[:, 0]
    se_mean = math.sqrt(p / (1 - p) / N)
    if not abs(ratio.mean() - 1) < 5 * se_mean:
        raise AssertionError(f"StochasticDepth(p={p}): the mean of y/x should be 1 (E[y] = x) "
                             f"within {5 * se_mean:.4f}, got {ratio.mean():.4f}")


def test_stochastic_depth_eval_and_p0_identity():
    """Eval mode, and p = 0 in train mode: y = x and dx = dout."""
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal((2, 8, 3, 4, 4))
    for what, sd in (("StochasticDepth(0.5) in eval mode", StochasticDepth(0.5).eval()),
                     ("StochasticDepth(0.0) in train mode", StochasticDepth(0.0)),
                     ("StochasticDepth(0.3, 'batch') in eval mode",
                      StochasticDepth(0.3, "batch").eval())):
        y = sd(x)
        if not np.array_equal(y, x):
            raise AssertionError(f"{what}: y should be x (the identity)")
        dx = sd.backward(dout)
        if not np.array_equal(dx, dout):
            raise AssertionError(f"{what}: dx should be dout (the identity)")


def test_stochastic_depth_backward_uses_forward_mask():
    """dx = dout * mask / (1-p) with the mask forward drew, even if more numbers are drawn
    from the generator between forward and backward."""
    p = 0.5
    rng = np.random.default_rng(2)
    x = rng.uniform(1, 2, (64, 4, 3))
    dout = rng.standard_normal(x.shape)
    tn.manual_seed(3)
    sd = StochasticDepth(p)
    y = sd(x)
    kept = kept_rows(f"StochasticDepth(p={p}) forward", x, y, p)
    if kept.all() or not kept.any():
        raise AssertionError(f"StochasticDepth(p={p}) on 64 samples: expected some dropped and "
                             f"some kept, got {kept.sum()} kept")
    tn.get_rng().random(1000)                       # a backward must not draw a new mask
    dx = sd.backward(dout)
    if not isinstance(dx, np.ndarray) or dx.shape != x.shape:
        raise AssertionError(f"StochasticDepth backward: expected dx of shape {x.shape}, "
                             f"got {getattr(dx, 'shape', type(dx))}")
    want = np.where(kept[:, None, None], dout / (1 - p), 0.0)
    err = np.max(np.abs(dx - want))
    if not err <= 1e-12:
        raise AssertionError(f"StochasticDepth backward: dx should be dout / (1-p) on the samples "
                             f"forward kept and 0 on those it dropped; largest difference {err:.2e}")
