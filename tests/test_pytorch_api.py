"""Where a PyTorch user would trip: Conv2d's defaults and paddings, slicing, Linear on (N, *, in),
Dropout(p=1). Each behaviour is PyTorch's; the values come from the teaching versions."""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn
from tinynets.kernels import conv_naive as naive

pytestmark = pytest.mark.task_layers


def test_conv2d_defaults_are_pytorchs():
    conv = tn.Conv2d(3, 8, 3)                                  # padding=0, bias=True
    assert conv.padding == (0, 0) and conv.bias is not None
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = conv(x)
    assert y.shape == (2, 8, 30, 30)
    ref = naive.conv2d_loops(x, conv.weight.data, conv.bias.data, 1, (0, 0, 0, 0), 1)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    assert tn.count_params(conv) == 8 * 3 * 9 + 8


@pytest.mark.parametrize("stride", [2, (2, 2), [2, 2]])
def test_stride_is_an_int_or_a_pair(stride):
    conv = tn.Conv2d(3, 4, 3, stride=stride, padding=1)
    assert conv.stride == 2 and conv.output_shape((1, 3, 9, 9)) == (1, 4, 5, 5)


def test_unequal_strides_are_refused_clearly():
    with pytest.raises(ValueError, match=r"Conv2d: stride must be the same along H and W, got \(1, 2\)"):
        tn.Conv2d(3, 4, 3, stride=(1, 2))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_padding_same_is_pytorchs(k):
    """Stride 1, output H x W; for an even kernel the extra pixel goes after (PyTorch)."""
    rng = np.random.default_rng(k)
    conv = tn.Conv2d(2, 3, k, padding="same", dtype=np.float64)
    x = rng.standard_normal((1, 2, 7, 6))
    y = conv(x)
    assert y.shape == (1, 3, 7, 6)
    before, after = (k - 1) // 2, k - 1 - (k - 1) // 2
    ref = naive.conv2d_loops(x, conv.weight.data, conv.bias.data, 1, (before, after, before, after), 1)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_padding_valid_is_zero():
    assert tn.Conv2d(2, 3, 3, padding="valid").pads(8, 8) == (0, 0, 0, 0)


def test_padding_same_at_stride_2_points_to_tf_same():
    with pytest.raises(ValueError, match="tf_same"):
        tn.Conv2d(2, 2, 3, stride=2, padding="same")
    assert tn.Conv2d(2, 2, 3, stride=2, padding="tf_same").output_shape((1, 2, 8, 8)) == (1, 2, 4, 4)


def test_sequential_slices_are_sequentials_of_the_same_children():
    a, b, c = tn.Linear(4, 5), tn.ReLU(), tn.Linear(5, 2)
    seq = tn.Sequential(a, b, c)
    head = seq[0:2]
    assert isinstance(head, tn.Sequential) and list(head) == [a, b]
    tail = seq[1:]
    assert list(tail._modules) == ["1", "2"]                   # names kept, as PyTorch
    assert list(tail.state_dict()) == ["2.weight", "2.bias"]
    assert seq[-1] is c
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(seq[0:2](x), b(a(x)))


def test_linear_takes_any_leading_axes(check_grads, rng):
    lin = tn.Linear(4, 3, dtype=np.float64)
    x = rng.standard_normal((2, 5, 4))
    y = lin(x)
    assert y.shape == (2, 5, 3)
    np.testing.assert_allclose(y, x @ lin.weight.data.T + lin.bias.data, rtol=1e-13)
    assert lin.output_shape((2, 5, 4)) == (2, 5, 3) and lin.macs((2, 5, 4)) == 10 * 4 * 3
    check_grads("Linear", lin, rng.standard_normal((2, 3, 5, 4)))


def test_dropout_p_one_drops_everything():
    drop = tn.Dropout(1.0)
    x = np.ones((4, 6), np.float32)
    y = drop(x)
    assert np.all(y == 0) and np.all(np.isfinite(y))
    assert np.all(drop.backward(np.ones_like(y)) == 0)
    assert drop.eval()(x) is x


def test_stochastic_depth_is_dropout_with_one_draw_per_sample():
    tn.manual_seed(3)
    sd = tn.StochasticDepth(0.5, "row")
    y = sd(np.ones((64, 2, 3, 3), np.float32))
    per_sample = y.reshape(64, -1)
    assert isinstance(sd, tn.Dropout)
    assert np.all((per_sample == 0).all(1) | (per_sample == 2).all(1))   # whole samples, scaled 1/(1-p)
    assert 0 < (per_sample[:, 0] == 0).sum() < 64
