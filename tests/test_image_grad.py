"""``image_grad``: a network can skip dL/dimages, which training never uses, and
``Conv2d.input_grad`` is what it switches. The parameters' gradients must not change."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import tinynets as tn
from tinynets.models import get_model

pytestmark = pytest.mark.task_models


def _grads(model, x, dout):
    model.zero_grad()
    model.train()
    tn.manual_seed(5)                           # the same dropout masks in both runs
    model(x)
    dx = model.backward(dout)
    return dx, {k: p.grad.copy() for k, p in model.named_parameters()}


@pytest.mark.parametrize("path", [dict(kernel_size=3, stride=2, padding=1),      # im2col
                                  dict(kernel_size=1),                              # pointwise
                                  dict(kernel_size=3, padding=1, groups=4)])        # depthwise
def test_conv_without_input_grad_keeps_weight_and_bias_grads(path):
    tn.manual_seed(0)
    conv = tn.Conv2d(4, 8 if path.get("groups") is None else 4, bias=True, dtype=np.float64, **path)
    x = np.random.default_rng(1).standard_normal((2, 4, 9, 9))
    dout = np.random.default_rng(2).standard_normal(conv.output_shape(x.shape))
    conv(x)
    dx = conv.backward(dout)
    full = conv.weight.grad.copy(), conv.bias.grad.copy()
    conv.weight.grad[...] = 0
    conv.bias.grad[...] = 0
    conv.input_grad = False
    conv(x)
    assert conv.backward(dout) is None and dx.shape == x.shape
    np.testing.assert_array_equal(conv.weight.grad, full[0])
    np.testing.assert_array_equal(conv.bias.grad, full[1])


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"])
def test_network_without_image_grad_returns_none_and_the_same_parameter_grads(name):
    tn.manual_seed(0)
    model = get_model(name, num_classes=10)
    assert model.stem() is next(m for m in model.modules() if isinstance(m, tn.Conv2d))
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(model.stem().weight.data.dtype)
    dout = np.random.default_rng(2).standard_normal((2, 10)).astype(x.dtype)
    assert model.image_grad
    dx, full = _grads(model, x, dout)
    assert dx.shape == x.shape
    model.image_grad = False
    assert not model.image_grad and not model.stem().input_grad
    none, skipped = _grads(model, x, dout)
    assert none is None and skipped.keys() == full.keys()
    for k in full:
        np.testing.assert_array_equal(skipped[k], full[k], err_msg=k)


def test_trainer_step_skips_image_grad_and_leaves_the_setting_alone():
    from tinynets.training.trainer import Trainer
    tn.manual_seed(0)
    model = get_model("mobilenet_v3_small", num_classes=10)
    stem, seen = model.stem(), []
    original = stem.backward

    def spy(dout):
        seen.append(stem.input_grad)
        return original(dout)
    stem.backward = spy                         # an instance attribute: the chain calls it
    trainer = Trainer.__new__(Trainer)          # only the model is needed here
    trainer.model = model
    with trainer._without_image_grad():
        model(np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))
        model.backward(np.ones((2, 10), np.float32))
    assert seen == [False] and model.image_grad
    assert "_without_image_grad" in inspect.getsource(Trainer.train_step)
