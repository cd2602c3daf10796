"""Float64 central-difference gradient checks for every layer (CS231n relative error < 1e-7).

Shapes are drawn at random (odd sizes, stride 2, padding 0, kernels 1/3/5/7, batch 1,
1x1 spatial), and the activations are also checked just beside their kinks.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn
from tinynets.nn import conv as conv_module

pytestmark = pytest.mark.task_gradcheck


def _conv_cases(n: int = 24, seed: int = 7):
    """Random Conv2d configurations covering every path of the layer."""
    rng = np.random.default_rng(seed)
    fixed = [
        # (N, C_in, C_out, k, stride, padding, groups, bias, H, W)
        (1, 3, 4, 3, 2, None, 1, False, 7, 9),        # stem-like, batch 1, odd sizes
        (2, 4, 4, 3, 2, None, 4, False, 8, 8),        # depthwise stride 2
        (2, 4, 8, 5, 1, None, 4, True, 7, 6),         # depthwise, channel multiplier 2
        (2, 6, 9, 3, 1, 0, 3, True, 6, 7),            # grouped, padding 0
        (2, 5, 7, 1, 1, 0, 1, False, 5, 4),           # pointwise
        (2, 5, 7, 1, 2, 0, 1, True, 5, 6),            # strided pointwise
        (3, 2, 3, 7, 2, 3, 1, False, 9, 9),           # 7x7
        (2, 3, 4, 3, 1, None, 1, False, 1, 1),        # 1x1 spatial
        (3, 5, 4, 1, 1, 0, 1, True, 1, 1),            # pointwise on 1x1 spatial: an SE's fc
        (2, 3, 4, 1, 2, 0, 1, False, 2, 2),           # strided pointwise down to 1x1
        (2, 4, 4, 3, 2, "same", 4, False, 8, 6),      # TF SAME, asymmetric
        (2, 3, 5, 5, 2, "same", 1, False, 7, 8),      # TF SAME, odd and even
    ]
    for _ in range(n - len(fixed)):
        k = int(rng.choice([1, 3, 5, 7]))
        kind = rng.choice(["standard", "grouped", "depthwise"])
        C = int(rng.integers(1, 4)) * (2 if kind != "standard" else 1)
        groups = {"standard": 1, "grouped": 2, "depthwise": C}[kind]
        Co = groups * int(rng.integers(1, 3)) if kind != "standard" else int(rng.integers(1, 6))
        stride = int(rng.integers(1, 3))
        padding = rng.choice([None, 0, "same"]) if k > 1 else 0
        H, W = int(rng.integers(k, k + 5)), int(rng.integers(k, k + 5))
        fixed.append((int(rng.integers(1, 3)), C, Co, k, stride, padding, groups,
                      bool(rng.integers(2)), H, W))
    return fixed


@pytest.mark.parametrize("case", _conv_cases(), ids=lambda c: "N{}_C{}_O{}_k{}_s{}_p{}_g{}_b{}_{}x{}".format(*c))
def test_conv2d(case, check_grads, rng):
    N, C, Co, k, s, p, g, bias, H, W = case
    p = (k - 1) // 2 if p is None else ("tf_same" if p == "same" else p)   # None: symmetric
    conv = tn.Conv2d(C, Co, k, stride=s, padding=p, groups=g, bias=bias).astype(np.float64)
    x = rng.standard_normal((N, C, H, W))
    check_grads(f"Conv2d[{conv.path}]", conv, x)


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_gradients_over_many_column_blocks(groups, rng):
    """The im2col weight gradient runs its GEMMs over blocks of output positions; with
    H'*W' = 4900 there are several, and the result is the teaching version's."""
    from tinynets.kernels import conv_naive as naive
    conv = tn.Conv2d(4, 6, 3, padding=1, groups=groups, bias=True).astype(np.float64)
    x = rng.standard_normal((2, 4, 70, 70))
    dout = rng.standard_normal((2, 6, 70, 70))
    assert 70 * 70 > 4 * conv_module._DW_BLOCK
    y = conv(x)
    dx = conv.backward(dout)
    ref, cols = naive.conv2d_im2col(x, conv.weight.data, conv.bias.data, 1, (1, 1, 1, 1), groups)
    dx_ref, dw_ref, db_ref = naive.conv2d_im2col_backward(dout, cols, x.shape, conv.weight.data, 1,
                                                          (1, 1, 1, 1), groups)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(conv.bias.grad, db_ref, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (1, 2, 3, 4), (6, 3, 1, 1), (2, 5, 7, 3)])
def test_batchnorm2d(shape, training, check_grads, rng):
    bn = tn.BatchNorm2d(shape[1]).astype(np.float64)
    bn.weight.data[:] = rng.uniform(0.5, 2.0, shape[1])
    bn.bias.data[:] = rng.standard_normal(shape[1])
    bn.running_mean[:] = rng.standard_normal(shape[1])
    bn.running_var[:] = rng.uniform(0.5, 2.0, shape[1])
    bn.train(training)
    x = rng.standard_normal(shape) * 2 + 0.5
    check_grads(f"BatchNorm2d[{'train' if training else 'eval'}]", bn, x)


def _near(points, rng, n=40, delta=5e-3):
    """Values just beside each kink (+-delta, +-10*delta), plus random ones."""
    near = [p + s * d for p in points for s in (-1, 1) for d in (delta, 10 * delta)]
    return np.concatenate([near, rng.uniform(-8, 8, n)]).reshape(2, -1)


ACTIVATIONS = [
    (tn.ReLU, [0.0]),
    (tn.ReLU6, [0.0, 6.0]),
    (tn.Sigmoid, []),
    (tn.HardSigmoid, [-3.0, 3.0]),
    (tn.SiLU, []),
    (tn.HardSwish, [-3.0, 3.0]),
]


@pytest.mark.parametrize("cls,kinks", ACTIVATIONS, ids=[c.__name__ for c, _ in ACTIVATIONS])
def test_activation_near_kinks(cls, kinks, check_grads, rng):
    assert cls.kinks == tuple(kinks)                  # what gradcheck's kink watch reads
    x = _near(kinks, rng)
    errors = check_grads(cls.__name__, cls(), x)
    assert sum(errors.skipped.values()) == 0          # 5e-3 away is outside the 2h stencil
    check_grads(cls.__name__, cls(), rng.standard_normal((2, 3, 4, 5)) * 4)   # 4-D too


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("N", [1, 5])
def test_linear(N, bias, check_grads, rng):
    fc = tn.Linear(7, 4, bias=bias).astype(np.float64)
    check_grads("Linear", fc, rng.standard_normal((N, 7)))


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 4, 1, 1)])
def test_pool_and_flatten(shape, check_grads, rng):
    x = rng.standard_normal(shape)
    check_grads("GlobalAvgPool2d", tn.GlobalAvgPool2d(), x)
    check_grads("Flatten", tn.Flatten(), x)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_dropout(training, check_grads, rng):
    drop = tn.Dropout(0.3).train(training)
    check_grads("Dropout", drop, rng.standard_normal((4, 6)))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(smoothing, check_grads, rng):
    logits = rng.standard_normal((5, 7))
    labels = rng.integers(0, 7, 5)
    check_grads("CrossEntropyLoss", tn.CrossEntropyLoss(label_smoothing=smoothing), logits, labels)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_small_network(training, check_grads, rng):
    """A conv-BN-act stack end to end: the layers' backwards compose.

    Smooth activations here: inside a network a step of h can cross a ReLU's kink
    wherever a pre-activation lands within h of 0; the kinks are checked per layer above."""
    net = tn.Sequential(
        tn.Conv2d(3, 6, 3, stride=2, padding=1, bias=False), tn.BatchNorm2d(6), tn.HardSwish(),
        tn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False), tn.BatchNorm2d(6), tn.Sigmoid(),
        tn.Conv2d(6, 4, 1, bias=False), tn.BatchNorm2d(4), tn.SiLU(),
        tn.GlobalAvgPool2d(), tn.Flatten(), tn.Dropout(0.2), tn.Linear(4, 3),
    ).astype(np.float64)
    x = rng.standard_normal((2, 3, 9, 9))
    for m in net.modules():
        if isinstance(m, tn.BatchNorm2d):
            m.momentum = None          # running statistics = the average of the batches seen
    for _ in range(3):
        net(x + 0.1 * rng.standard_normal(x.shape))
    net.train(training)
    check_grads("Sequential (small net)", net, x, num_checks=60)


class _WrongReLU6(tn.ReLU6):
    """Lets the gradient through above 6: wrong exactly where ReLU6 saturates."""

    def backward(self, dout):
        (x,) = self.take()
        return dout * (x > 0)


class _ScaledLinear(tn.Linear):
    """A gradient off by 0.1%: small, but far above the tolerance."""

    def backward(self, dout):
        return super().backward(dout) * 1.001


def test_checker_fails_on_wrong_gradients(rng):
    errors = tn.gradcheck(_WrongReLU6(), rng.uniform(-2, 10, (3, 8)))
    assert errors["input"] > 1e-2
    fc = _ScaledLinear(4, 3).astype(np.float64)
    errors = tn.gradcheck(fc, rng.standard_normal((2, 4)))
    assert errors["input"] > 1e-4 and errors["weight"] < 1e-7


def test_checker_refuses_float32(rng):
    with pytest.raises(TypeError, match="float64"):
        tn.gradcheck(tn.Linear(3, 2), rng.standard_normal((2, 3)).astype(np.float32))


def test_rel_error_definition():
    assert tn.rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert tn.rel_error(np.array([1.0]), np.array([1.1])) == pytest.approx(0.1 / 2.1)
    assert tn.rel_error(np.array([0.0]), np.array([1e-12])) == pytest.approx(1e-4)   # floor 1e-8


def test_kink_crossings_are_skipped_not_hidden(rng):
    """Entries within the stencil of a kink would give a wrong quotient; they are replaced."""
    x = rng.standard_normal(40)
    x[:10] = rng.uniform(-1e-3, 1e-3, 10)                 # within 2h = 2e-3 of ReLU's kink
    relu = tn.ReLU()
    relu(x)
    dx = relu.backward(np.ones_like(x))
    naive = tn.numerical_gradient(lambda: tn.ReLU()(x), x, np.ones_like(x))
    assert tn.rel_error(dx[:10], naive[:10]) > 1e-2   # the quotient across the kink is wrong
    errors = tn.gradcheck(relu, x)
    assert errors.skipped["input"] == 10 and errors["input"] < 1e-7
    # a wrong backward is still caught when many entries are skipped
    errors = tn.gradcheck(_WrongReLU6(), np.concatenate([x, rng.uniform(6.5, 9, 10)]))
    assert errors.skipped["input"] == 10 and errors["input"] > 1e-2


def test_checker_says_when_every_entry_crosses_a_kink():
    with pytest.raises(RuntimeError, match="every entry of input .* smaller h"):
        tn.gradcheck(tn.ReLU6(), np.array([1e-4, 6 - 1e-4]))
