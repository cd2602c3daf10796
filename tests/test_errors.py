"""Bad input gets a clear error that names the layer, what was expected and what was given."""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn

pytestmark = pytest.mark.task_errors

X = np.zeros((2, 3, 8, 8), dtype=np.float32)


def test_wrong_ndim():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*4-D input \(N, C, H, W\).*\(3, 8, 8\)"):
        tn.Conv2d(3, 8, 3)(X[0])
    with pytest.raises(ValueError, match=r"Linear.*\(N, \*, 3\).*\(2, 3, 8, 8\)"):
        tn.Linear(3, 4)(X)


def test_wrong_channels():
    with pytest.raises(ValueError, match=r"Conv2d\(4, 8.*expected input with 4 channels.*got 3"):
        tn.Conv2d(4, 8, 3)(X)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(5.*5 channels.*got 3"):
        tn.BatchNorm2d(5)(X)
    with pytest.raises(ValueError, match=r"Linear.*\(N, \*, 10\).*got \(2, 3\)"):
        tn.Linear(10, 2)(np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("layer", [tn.Conv2d(3, 8, 3), tn.BatchNorm2d(3), tn.ReLU6(), tn.GlobalAvgPool2d()],
                         ids=lambda m: type(m).__name__)
def test_integer_arrays(layer):
    with pytest.raises(TypeError, match=rf"{type(layer).__name__}.*floating-point.*got dtype int64"):
        layer(np.zeros((2, 3, 8, 8), dtype=np.int64))


def test_not_an_array():
    with pytest.raises(TypeError, match=r"Conv2d.*numpy.ndarray, got list"):
        tn.Conv2d(3, 8, 3)([[1.0]])


def test_dtype_mismatch_is_not_silently_cast():
    with pytest.raises(TypeError, match=r"Conv2d.*float64 does not match parameter dtype float32"):
        tn.Conv2d(3, 8, 3)(X.astype(np.float64))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"Conv2d.*kernel 7x7 is larger than the padded input 3x3"):
        tn.Conv2d(3, 8, 7, padding=0)(np.zeros((1, 3, 3, 3), np.float32))


@pytest.mark.parametrize("kwargs", [dict(groups=2), dict(groups=4)])
def test_groups_must_divide_channels(kwargs):
    with pytest.raises(ValueError, match=r"groups=\d must divide in_channels=3"):
        tn.Conv2d(3, 8, 3, **kwargs)


@pytest.mark.parametrize("layer", [tn.Conv2d(3, 8, 3), tn.BatchNorm2d(3), tn.HardSwish(), tn.Linear(3, 2),
                                   tn.GlobalAvgPool2d(), tn.Flatten(), tn.CrossEntropyLoss()],
                         ids=lambda m: type(m).__name__)
def test_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}.*backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((2, 3), np.float32))


def test_backward_after_no_grad_forward():
    conv = tn.Conv2d(3, 8, 3)
    with tn.no_grad():
        conv(X)
    with pytest.raises(RuntimeError, match="no_grad"):
        conv.backward(np.zeros((2, 8, 8, 8), np.float32))


def test_wrong_dout_shape():
    conv = tn.Conv2d(3, 8, 3, stride=2, padding=1)
    conv(X)
    with pytest.raises(ValueError, match=r"Conv2d.*dout must have the forward output's shape \(2, 8, 4, 4\).*\(2, 8, 8, 8\)"):
        conv.backward(np.zeros((2, 8, 8, 8), np.float32))
    relu = tn.ReLU()
    relu(X)
    with pytest.raises(ValueError, match=r"ReLU.*dout must have the input's shape"):
        relu.backward(X[:1])


def test_batchnorm_single_value_per_channel_in_training():
    with pytest.raises(ValueError, match=r"BatchNorm2d.*more than one value per channel.*\(1, 3, 1, 1\)"):
        tn.BatchNorm2d(3)(np.zeros((1, 3, 1, 1), np.float32))
    tn.BatchNorm2d(3).eval()(np.zeros((1, 3, 1, 1), np.float32))        # fine in eval


def test_cross_entropy_labels():
    loss = tn.CrossEntropyLoss()
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match=r"integer labels of shape \(3,\).*float64"):
        loss(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\).*max 4"):
        loss(logits, np.array([0, 1, 4]))


def test_load_state_dict_errors():
    bn = tn.BatchNorm2d(3)
    with pytest.raises(RuntimeError, match=r'BatchNorm2d:\n\tMissing key\(s\) in state_dict: "running_var"'):
        bn.load_state_dict({k: v for k, v in bn.state_dict().items() if k != "running_var"})
    state = bn.state_dict()
    state["weight"] = np.ones(4, np.float32)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape "
                                           r"\(4,\) from checkpoint, the shape in current model is \(3,\)"):
        bn.load_state_dict(state)


def test_constructor_arguments():
    with pytest.raises(ValueError, match="Dropout: p must be in"):
        tn.Dropout(1.5)
    with pytest.raises(ValueError, match="kernel_size"):
        tn.Conv2d(3, 3, -1)
    with pytest.raises(ValueError, match="stride"):
        tn.Conv2d(3, 3, 3, stride=0)
