"""A5, visible: closed-form counts of one layer, against the shapes of PyTorch's layers.

Run them with ``python -m pytest -m A5 -k counts``. ``tests/fixtures/layers.npz`` holds
PyTorch's inputs, weights and outputs: a layer's parameters are its weight's (and bias's)
size, its output length is the output's shape, and its MACs per image are (outputs of one
image) x (weights each output reads). Your functions must not build layers or call the
library's counters (``count_macs``, a layer's ``macs``, ...): they compute the closed form.
"""
import math

import pytest

from tinynets.nn import counting

pytestmark = [pytest.mark.A5, pytest.mark.numpy_only]


def _convs(a5):
    return a5.layer_cases("conv/") + a5.layer_cases("conv_same/")


def test_conv_output_size_pytorch(a5):
    """H' and W' of every convolution in the fixture: stride 1 to 3, symmetric and
    asymmetric padding (given as (before, after)), 1x1 to 7x7 kernels."""
    for c in _convs(a5):
        (_, _, H, W), (_, _, KH, KW), (_, _, OH, OW) = c.x, c.weight, c.out
        top, bottom, left, right = c.config["pads_tblr"]
        s = c.config["stride"]
        with a5.by_hand("conv_output_size", own="counting.py"):
            got_h = counting.conv_output_size(H, KH, s, (top, bottom))
            got_w = counting.conv_output_size(W, KW, s, (left, right))
        a5.expect_equal(f"conv_output_size along H, case {c.name} ({c.config['name']})", got_h, OH)
        a5.expect_equal(f"conv_output_size along W, case {c.name} ({c.config['name']})", got_w, OW)
        if top == bottom:
            with a5.by_hand("conv_output_size", own="counting.py"):
                got = counting.conv_output_size(H, KH, s, top)
            a5.expect_equal(f"conv_output_size with int padding {top}, case {c.name}", got, OH)


def test_conv2d_params_pytorch(a5):
    """Standard, grouped and depthwise convolutions, with and without a bias."""
    for c in _convs(a5):
        C_out, _, KH, KW = c.weight
        want = math.prod(c.weight) + (math.prod(c.bias) if c.bias else 0)
        with a5.by_hand("conv2d_params", own="counting.py"):
            got = counting.conv2d_params(c.x[1], C_out, (KH, KW), c.config["groups"],
                                         c.bias is not None)
        a5.expect_equal(f"conv2d_params, case {c.name} ({c.config['name']})", got, want)


def test_conv2d_macs_pytorch(a5):
    """MACs for one image: every output value of one image reads C_in/groups x KH x KW weights."""
    for c in _convs(a5):
        C_out, _, KH, KW = c.weight
        want = math.prod(c.out[1:]) * math.prod(c.weight[1:])
        with a5.by_hand("conv2d_macs", own="counting.py"):
            got = counting.conv2d_macs(c.x[1], C_out, (KH, KW), c.out[2:], c.config["groups"])
        a5.expect_equal(f"conv2d_macs, case {c.name} ({c.config['name']})", got, want)


def test_batchnorm2d_params_pytorch(a5):
    """gamma and beta, one each per channel (the running statistics are not parameters)."""
    for c in a5.layer_cases("bn_train/") + a5.layer_cases("bn_eval/"):
        with a5.by_hand("batchnorm2d_params", own="counting.py"):
            got = counting.batchnorm2d_params(c.weight[0])
        a5.expect_equal(f"batchnorm2d_params, case {c.name}", got, 2 * math.prod(c.weight))


def test_linear_params_and_macs_pytorch(a5):
    for c in a5.layer_cases("linear/"):
        n_out, n_in = c.weight
        with a5.by_hand("linear_params and linear_macs", own="counting.py"):
            params = counting.linear_params(n_in, n_out, c.bias is not None)
            macs = counting.linear_macs(n_in, n_out)
        a5.expect_equal(f"linear_params, case {c.name}", params,
                        math.prod(c.weight) + (math.prod(c.bias) if c.bias else 0))
        per_row = math.prod(c.out[1:]) * n_in            # one input vector's outputs x in
        a5.expect_equal(f"linear_macs, case {c.name}", macs, per_row)
