"""A4, hidden: every bneck of both MobileNetV3 tables against torchvision's keys, and
whole blocks (bneck and MBConv, with stochastic depth) gradient-checked by finite
differences of their own forward, every activation made a Sigmoid (smooth: no kinks)."""
import numpy as np
import pytest

import tinynets as tn
from tinynets.models.mobilenet_v3 import ACTIVATIONS, LARGE, SMALL
from tinynets.nn.residual import InvertedResidualV3, MBConv

pytestmark = [pytest.mark.A4, pytest.mark.hidden]


def test_inverted_residual_v3_all_torchvision_blocks(a4):
    for model, table in (("mobilenet_v3_large", LARGE), ("mobilenet_v3_small", SMALL)):
        for i, (c_in, k, exp, c_out, use_se, act, s) in enumerate(table, 1):
            block = InvertedResidualV3(c_in, k, exp, c_out, use_se, ACTIVATIONS[act], s)
            a4.expect_keys(f"InvertedResidualV3 of {model} features.{i}", block,
                           a4.torchvision_entries(model, f"features.{i}."))


def _grad_check(checks, a4, what, block, x, seed=None, param=None):
    rng = np.random.default_rng(x.size)
    if seed is not None:
        tn.manual_seed(seed)
    y = block(x)
    dout = rng.standard_normal(y.shape)
    block.zero_grad()
    dx = block.backward(dout)
    a4.expect_gradient(checks, f"{what}: dx vs finite differences", dx,
                       a4.numerical(checks, block, x, x, dout, seed=seed))
    if param is not None:
        name, p = param
        a4.expect_gradient(checks, f"{what}: {name}.grad vs finite differences", p.grad,
                           a4.numerical(checks, block, p.data, x, dout, seed=seed))


def test_inverted_residual_v3_numerical_gradient(checks, a4):
    """Residual with SE, stride 2 with SE, no expansion: train and eval mode."""
    cases = [(4, 3, 12, 4, True, 1), (4, 5, 8, 6, True, 2), (6, 3, 6, 6, False, 1)]
    for j, (c_in, k, E, c_out, use_se, s) in enumerate(cases):
        for training in (True, False):
            tn.manual_seed(j)
            block = a4.smooth(InvertedResidualV3(c_in, k, E, c_out, use_se, tn.ReLU, s,
                                                 dtype=np.float64), seed=j).train(training)
            x = np.random.default_rng(j).standard_normal((3, c_in, 5, 5))
            first = next(iter(block.named_parameters()))
            _grad_check(checks, a4, f"InvertedResidualV3({c_in}, {k}, {E}, {c_out}, se={use_se}, "
                        f"stride {s}) in {'train' if training else 'eval'} mode", block, x,
                        param=first)


def test_mbconv_numerical_gradient_with_residual_drop(checks, a4):
    """A residual MBConv with p = 0.5 in train mode (the same mask in every forward: some
    samples dropped, some kept), and a stride-2 one in eval mode."""
    tn.manual_seed(3)
    block = a4.smooth(MBConv(4, 4, 3, 3, 1, 0.5, dtype=np.float64), seed=3)
    x = np.random.default_rng(4).standard_normal((4, 4, 5, 5))
    for seed in range(50):
        tn.manual_seed(seed)
        block(x)
        mask = block.stochastic_depth.cache
        if mask is None or mask[0] is None:
            raise AssertionError("MBConv(4, 4, 3, 3, 1, 0.5) in train mode: its stochastic_depth "
                                 "kept no mask; the branch should go through it before the add")
        kept = np.count_nonzero(mask[0])
        block.backward(np.zeros_like(x))
        if 0 < kept < 4:
            break
    _grad_check(checks, a4, "MBConv(4, 4, 3, 3, 1, p=0.5) in train mode", block, x, seed=seed,
                param=next(iter(block.named_parameters())))
    tn.manual_seed(5)
    block = a4.smooth(MBConv(4, 6, 6, 5, 2, 0.3, dtype=np.float64), seed=5).eval()
    _grad_check(checks, a4, "MBConv(4, 6, 6, 5, 2) in eval mode", block,
                np.random.default_rng(6).standard_normal((2, 4, 6, 6)))


def test_mbconv_dropped_sample_and_padding(checks):
    """In eval mode with only stochastic_depth training, a dropped sample passes through
    exactly (y_n = x_n, dx_n = dout_n); ``padding`` reaches every conv."""
    block = MBConv(8, 8, 4, 3, 1, 0.5, se=False, activation=tn.ReLU, dtype=np.float64).eval()
    block.stochastic_depth.train()
    rng = np.random.default_rng(7)
    x, dout = rng.standard_normal((2, 8, 8, 5, 5))
    tn.manual_seed(1)
    y = block(x)
    dx = block.backward(dout)
    dropped = [np.array_equal(y[n], x[n]) for n in range(8)]
    if not any(dropped) or all(dropped):
        raise AssertionError(f"MBConv with stochastic depth p = 0.5 on 8 samples: expected some "
                             f"dropped (y_n = x_n) and some kept, got {sum(dropped)} dropped")
    for n in range(8):
        if dropped[n] != np.array_equal(dx[n], dout[n]):
            raise AssertionError(f"MBConv with stochastic depth: sample {n} was "
                                 f"{'dropped' if dropped[n] else 'kept'} in forward, but dx_{n} "
                                 f"{'differs from' if dropped[n] else 'equals'} dout_{n}")
    same = MBConv(8, 6, 6, 3, 2, padding="tf_same", activation=tn.ReLU6)
    convs = [m for m in same.modules() if isinstance(m, tn.Conv2d) and m.kernel_size != (1, 1)]
    if not convs or any(c.padding != "tf_same" for c in convs):
        raise AssertionError("MBConv(padding='tf_same'): every Conv2dNormActivation should get "
                             "the padding")
    if same.output_shape((1, 8, 9, 9)) != (1, 6, 5, 5):
        raise AssertionError(f"MBConv(8, 6, 6, 3, 2, padding='tf_same') on 9x9: expected output "
                             f"(1, 6, 5, 5), got {same.output_shape((1, 8, 9, 9))}")
