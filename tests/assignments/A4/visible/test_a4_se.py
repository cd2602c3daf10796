"""A4, visible: squeeze-and-excitation forward and backward (``tinynets/nn/se.py``).

Run them with ``python -m pytest -m A4 -k se_``. The layer is built with ReLU inside and a
Sigmoid gate; the forward is compared with the three equations of lesson 05 written in
NumPy, the backward with finite differences of your own forward (float64: a correct
backward is at 1e-9 or better, the threshold is 1e-7).
"""
import numpy as np
import pytest

pytestmark = [pytest.mark.A4]

SHAPES = [(2, 8, 5, 4, 4), (3, 12, 3, 3, 8), (1, 6, 7, 2, 3)]        # N, C, H, W, S


def test_se_forward_matches_formula(checks, a4):
    """y = x * sigmoid(W2 relu(W1 mean_HW(x) + b1) + b2), one gate per image and channel."""
    for k, (N, C, H, W, S) in enumerate(SHAPES):
        se = a4.make_se(C, S, seed=k, margin=False)
        x = np.random.default_rng(10 + k).standard_normal((N, C, H, W))
        y = se(x)
        want, _ = a4.se_numpy(se, x)
        checks.expect_close(f"SqueezeExcitation({C}, {S}) forward on {x.shape}", y, want, 1e-12)


def test_se_forward_keeps_cache_for_backward(checks, a4):
    """forward keeps (x, s) with s of shape (N, C, 1, 1), and runs the gate's layers as
    modules, so that each of them has a cache for backward."""
    se = a4.make_se(8, 4, seed=3)
    x = np.random.default_rng(4).standard_normal((2, 8, 5, 4))
    se(x)
    cache = se.cache
    if cache is None or len(cache) != 2:
        raise AssertionError(f"SqueezeExcitation.forward should keep (x, s) with self.keep(x, s), "
                             f"got {None if cache is None else len(cache)} arrays")
    if not np.array_equal(cache[0], x):
        raise AssertionError("SqueezeExcitation.forward: the first array kept should be x")
    _, s = a4.se_numpy(se, x)
    checks.expect_close("SqueezeExcitation.forward: the gate s it keeps, shape (N, C, 1, 1)",
                        cache[1], s[:, :, None, None], 1e-12)
    for name in ("avgpool", "fc1", "activation", "fc2", "scale_activation"):
        if getattr(se, name).cache is None:
            raise AssertionError(f"SqueezeExcitation.forward: {name} kept no cache; call each "
                                 "layer (s = layer(s)) so that its backward can run")


def _case(a4, N, C, H, W, S, seed):
    se = a4.make_se(C, S, seed)
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((N, C, H, W))
    dout = rng.standard_normal((N, C, H, W))
    return se, x, dout


def test_se_backward_dx_numerical(checks, a4):
    """dx against central differences of your forward (ReLU inputs kept away from 0)."""
    for k, (N, C, H, W, S) in enumerate(SHAPES):
        se, x, dout = _case(a4, N, C, H, W, S, k)
        se.zero_grad()
        se(x)
        dx = se.backward(dout)
        num = a4.numerical(checks, se, x, x, dout)
        a4.expect_gradient(checks, f"SqueezeExcitation({C}, {S}).backward dx on {x.shape} vs "
                           "finite differences", dx, num)


def test_se_backward_param_grads_numerical(checks, a4):
    """fc1 and fc2 weight and bias gradients against central differences."""
    for k, (N, C, H, W, S) in enumerate(SHAPES[:2]):
        se, x, dout = _case(a4, N, C, H, W, S, 20 + k)
        se.zero_grad()
        se(x)
        se.backward(dout)
        for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"):
            layer, kind = name.split(".")
            p = getattr(getattr(se, layer), kind)
            num = a4.numerical(checks, se, p.data, x, dout)
            a4.expect_gradient(checks, f"SqueezeExcitation({C}, {S}).backward: {name}.grad vs "
                               "finite differences", p.grad, num)
