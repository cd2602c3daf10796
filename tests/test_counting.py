"""The closed-form counts of ``tinynets.nn.counting`` (one layer from its hyperparameters)
against the layers' own counts, and the EfficientNet width/depth rounding against
``make_divisible`` and the built models.

The layers' ``macs``, ``output_shape`` and parameters are what ``count_macs`` and
``count_params`` sum, so equality here means the closed forms describe the library.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import tinynets as tn
from tinynets.models.efficientnet import EFFICIENTNET_PARAMS, STAGES, round_filters, round_repeats
from tinynets.nn import counting as C

pytestmark = pytest.mark.task_models

# (C_in, C_out, kernel, stride, padding, groups, bias, H, W)
CONVS = [(3, 32, 3, 2, 1, 1, False, 224, 224), (32, 32, 3, 1, 1, 32, False, 112, 112),
         (32, 64, 1, 1, 0, 1, False, 112, 112), (12, 18, (3, 5), 2, (1, 2), 3, True, 17, 9),
         (8, 16, 5, 3, 0, 8, True, 20, 21), (6, 4, (1, 3), 1, (0, 1), 2, False, 5, 6),
         (240, 10, 1, 1, 0, 1, True, 1, 1)]


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("case", CONVS, ids=[f"conv{i}" for i in range(len(CONVS))])
def test_conv_closed_forms_match_the_layer(case):
    c_in, c_out, k, s, p, g, bias, H, W = case
    conv = tn.Conv2d(c_in, c_out, k, stride=s, padding=p, groups=g, bias=bias)
    _, _, OH, OW = conv.output_shape((1, c_in, H, W))
    (KH, KW), (PH, PW) = _pair(k), _pair(p)
    assert C.conv_output_size(H, KH, s, PH) == OH and C.conv_output_size(W, KW, s, PW) == OW
    assert C.conv_output_size(H, KH, s, (PH, PH)) == OH
    assert C.conv2d_params(c_in, c_out, k, g, bias) == tn.count_params(conv)
    assert C.conv2d_macs(c_in, c_out, k, (OH, OW), g) == conv.macs((1, c_in, H, W))
    assert C.conv2d_macs(c_in, c_out, k, (OH, OW), g) == tn.count_macs(conv, (c_in, H, W))


def test_conv_output_size_asymmetric_padding():
    for size, k, s, before, after in itertools.product((5, 8, 13), (1, 3, 4), (1, 2, 3),
                                                       (0, 1), (0, 2)):
        want = len(range(0, size + before + after - k + 1, s))      # window starts that fit
        assert C.conv_output_size(size, k, s, (before, after)) == want


def test_conv_counts_reject_bad_groups():
    with pytest.raises(ValueError, match="groups"):
        C.conv2d_params(6, 4, 3, groups=4)
    with pytest.raises(ValueError, match="groups"):
        C.conv2d_macs(6, 9, 3, 7, groups=2)


@pytest.mark.parametrize("n_in,n_out,bias", [(1280, 1000, True), (7, 3, False), (1, 1, True)])
def test_bn_and_linear_closed_forms_match_the_layers(n_in, n_out, bias):
    lin = tn.Linear(n_in, n_out, bias=bias)
    assert C.linear_params(n_in, n_out, bias) == tn.count_params(lin)
    assert C.linear_macs(n_in, n_out) == lin.macs((1, n_in))
    assert C.batchnorm2d_params(n_out) == tn.count_params(tn.BatchNorm2d(n_out))


def test_closed_forms_return_python_ints():
    values = [C.conv_output_size(np.int64(9), 3, 2, 1), C.conv2d_params(np.int64(4), 8, 3),
              C.conv2d_macs(4, 8, 3, np.int64(5)), C.batchnorm2d_params(np.int64(3)),
              C.linear_params(np.int64(3), 2), C.linear_macs(np.int64(3), 2)]
    assert all(type(v) is int for v in values)


def test_round_filters_is_make_divisible():
    for c, w in itertools.product(range(1, 700, 3), (0.25, 0.35, 0.5, 0.7, 1.0, 1.1, 1.2, 1.4,
                                                      1.6, 1.8, 2.0, 2.2, 3.1)):
        assert round_filters(c, w) == tn.make_divisible(c * w, 8), (c, w)
    for c, d in itertools.product(range(1, 200), (4, 16)):
        assert round_filters(c, 1.3, d) == tn.make_divisible(c * 1.3, d), (c, d)
    assert type(round_filters(32, 1.1)) is int


@pytest.mark.parametrize("phi", range(8))
def test_rounding_rebuilds_every_released_b(phi):
    name = f"efficientnet_b{phi}"
    w, d, _, _ = EFFICIENTNET_PARAMS[name]
    model = tn.models.EfficientNet(width_mult=w, depth_mult=d)
    built = [(stage[-1].block[-1][0].out_channels, len(stage)) for stage in list(model.features)[1:-1]]
    derived = [(round_filters(c_out, w), round_repeats(n, d)) for (_, _, _, _, c_out, n) in STAGES]
    assert built == derived, name
    assert model.features[0][0].out_channels == round_filters(32, w)
    assert model.last_channel == 4 * derived[-1][0]
    assert type(round_repeats(3, 1.1)) is int and round_repeats(3, 1.1) == math.ceil(3 * 1.1)
