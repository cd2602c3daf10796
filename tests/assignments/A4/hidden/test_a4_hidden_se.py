"""A4, hidden: squeeze-and-excitation on shapes, dtypes and activations not seen before,
and its backward against the closed form of lesson 05 (written here in NumPy)."""
import numpy as np
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A4, pytest.mark.hidden]

EDGE = [(1, 1, 1, 1, 1), (4, 5, 1, 6, 2), (2, 16, 9, 1, 8), (3, 7, 2, 3, 5)]     # N, C, H, W, S


def test_se_forward_hidden_shapes_and_float32(checks, a4):
    """Odd shapes (1x1 maps, C = S = 1), and float32 in gives float32 out."""
    for k, (N, C, H, W, S) in enumerate(EDGE):
        se = a4.make_se(C, S, seed=40 + k, margin=False)
        x = np.random.default_rng(50 + k).standard_normal((N, C, H, W))
        want, _ = a4.se_numpy(se, x)
        checks.expect_close(f"SqueezeExcitation({C}, {S}) forward on {x.shape}", se(x), want, 1e-12)
        se32 = se.astype(np.float32)
        y32 = se32(x.astype(np.float32))
        if y32.dtype != np.float32:
            raise AssertionError(f"SqueezeExcitation forward: float32 in should give float32 out, "
                                 f"got {y32.dtype}")
        checks.expect_close(f"SqueezeExcitation({C}, {S}) forward in float32 on {x.shape}",
                            y32, want, 1e-4)


def test_se_forward_uses_its_activations(checks, a4):
    """The layer runs the activations it holds: ReLU6 inside, a ReLU 'gate' or a Sigmoid."""
    rng = np.random.default_rng(60)
    x = rng.standard_normal((2, 6, 4, 3)) * 3
    for act, gate, f_act, f_gate in [
            (tn.ReLU6, tn.Sigmoid, lambda a: np.clip(a, 0, 6), a4.sigmoid),
            (tn.Sigmoid, tn.ReLU, a4.sigmoid, lambda a: np.maximum(a, 0))]:
        se = tn.SqueezeExcitation(6, 3, act, gate, dtype=np.float64)
        for p in se.parameters():
            p.data[...] = rng.standard_normal(p.data.shape) * 2
        want, _ = a4.se_numpy(se, x, f_act, f_gate)
        checks.expect_close(f"SqueezeExcitation(6, 3, {act.__name__}, {gate.__name__}) forward",
                            se(x), want, 1e-12)


def _closed_form(se, x, dout):
    """dx, dW1, db1, dW2, db2 of y = x * sigmoid(W2 relu(W1 z + b1) + b2), z = mean_HW x."""
    W1, b1, W2, b2 = a4_weights(se)
    N, C, H, W = x.shape
    z = x.mean(axis=(2, 3))
    a1 = z @ W1.T + b1
    u = np.maximum(a1, 0)
    s = 1 / (1 + np.exp(-(u @ W2.T + b2)))
    g = np.sum(dout * x, axis=(2, 3))
    da2 = g * s * (1 - s)
    da1 = (da2 @ W2) * (a1 > 0)
    dz = da1 @ W1
    dx = dout * s[:, :, None, None] + (dz / (H * W))[:, :, None, None]
    return dx, da1.T @ z, da1.sum(0), da2.T @ u, da2.sum(0)


def a4_weights(se):
    return (se.fc1.weight.data[:, :, 0, 0], se.fc1.bias.data,
            se.fc2.weight.data[:, :, 0, 0], se.fc2.bias.data)


def test_se_backward_closed_form(checks, a4):
    """dx and all four parameter gradients against the closed form, on odd shapes."""
    for k, (N, C, H, W, S) in enumerate(EDGE + [(2, 10, 4, 4, 4)]):
        se = a4.make_se(C, S, seed=70 + k, margin=False)
        rng = np.random.default_rng(80 + k)
        x, dout = rng.standard_normal((2, N * C * H * W)).reshape(2, N, C, H, W)
        se.zero_grad()
        se(x)
        dx = se.backward(dout)
        want = _closed_form(se, x, dout)
        got = (dx, se.fc1.weight.grad[:, :, 0, 0], se.fc1.bias.grad,
               se.fc2.weight.grad[:, :, 0, 0], se.fc2.bias.grad)
        for name, g, w in zip(("dx", "fc1.weight.grad", "fc1.bias.grad", "fc2.weight.grad",
                               "fc2.bias.grad"), got, want):
            checks.expect_close(f"SqueezeExcitation({C}, {S}).backward {name} on {x.shape} vs the "
                                "product rule", g, w, 1e-10)


def test_se_backward_accumulates_and_float32(checks, a4):
    """Two forward/backward passes add their parameter gradients; float32 stays float32."""
    se = a4.make_se(8, 4, seed=90)
    rng = np.random.default_rng(91)
    x, dout = rng.standard_normal((2, 2, 8, 3, 3))
    se.zero_grad()
    se(x)
    dx = se.backward(dout)
    once = se.fc2.weight.grad.copy()
    se(x)
    se.backward(dout)
    checks.expect_close("SqueezeExcitation.backward, fc2.weight.grad after two backward passes "
                        "(gradients accumulate: +=)", se.fc2.weight.grad, 2 * once, 1e-12)
    se32 = se.astype(np.float32)
    se32(x.astype(np.float32))
    dx32 = se32.backward(dout.astype(np.float32))
    if dx32.dtype != np.float32:
        raise AssertionError(f"SqueezeExcitation.backward: float32 dout should give float32 dx, "
                             f"got {dx32.dtype}")
    checks.expect_close("SqueezeExcitation.backward dx in float32", dx32, dx, 1e-3)
