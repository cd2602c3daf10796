"""Float64 gradient checks of the network blocks (CS231n relative error < 1e-7), train and eval.

The blocks keep their real, kinked activations (ReLU, ReLU6, HardSwish, HardSigmoid).
Perturbing one conv weight moves every pre-activation of its channel, and some of them
lie within the stencil of a kink; ``tinynets.gradcheck`` notices when a perturbation
moves an activation input onto another piece and checks another entry instead (the
count is in ``errors.skipped``). Train mode uses 4 x 8 x 8 inputs, so that BN sees
enough values per channel to keep the step's truncation error small; eval mode uses
2 x 6 x 6, a smaller loss and so less rounding.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn
from tinynets.nn.blocks import (Conv2dNormActivation, DepthwiseSeparable, StochasticDepth,
                                make_divisible)
from tinynets.nn.residual import InvertedResidual, InvertedResidualV3, MBConv
from tinynets.nn.se import SqueezeExcitation

pytestmark = pytest.mark.task_blocks

F64 = np.float64
CHECK = dict(num_checks=24)             # entries per array: enough, and fast



def _randomize_bn(module, rng):
    """Non-trivial BN affine and running statistics, so eval mode is not the identity."""
    for m in module.modules():
        if isinstance(m, tn.BatchNorm2d):
            C = m.num_features
            m.weight.data[:] = rng.uniform(0.5, 1.5, C)
            m.bias.data[:] = rng.uniform(-0.3, 0.3, C)
            m.running_mean[:] = rng.uniform(-0.2, 0.2, C)
            m.running_var[:] = rng.uniform(0.5, 1.5, C)
    return module


def _mode(training):
    return "train" if training else "eval"


def _input(rng, training, C):
    """4 x 8 x 8 in train mode (BN statistics over enough values), 2 x 6 x 6 in eval."""
    return rng.standard_normal((4, C, 8, 8) if training else (2, C, 6, 6))


TRAIN_EVAL = pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])


# ------------------------------------------------------------------ Conv2dNormActivation
@TRAIN_EVAL
@pytest.mark.parametrize("case", [
    # (C_in, C_out, k, stride, groups, activation, padding, H)
    (3, 4, 3, 2, 1, tn.ReLU6, None, 9),            # stem-like, stride 2, odd size
    (4, 4, 3, 1, 4, tn.HardSwish, None, 8),        # depthwise
    (4, 6, 1, 1, 1, None, None, 8),                # linear projection (no activation)
    (4, 4, 5, 2, 4, tn.SiLU, "tf_same", 8),           # TF SAME, asymmetric at stride 2
], ids=["stem_s2", "dw", "project_linear", "dw5_same"])
def test_conv2d_norm_activation(case, training, check_grads, rng):
    C, Co, k, s, g, act, pad, H = case
    tn.manual_seed(1)
    block = _randomize_bn(Conv2dNormActivation(C, Co, k, s, g, activation=act, padding=pad,
                                               dtype=F64), rng).train(training)
    assert list(block.state_dict())[:2] == ["0.weight", "1.weight"]       # torchvision's keys
    check_grads(f"Conv2dNormActivation[{_mode(training)}]", block,
                rng.standard_normal((4, C, H, H)), **CHECK)


# ------------------------------------------------------------------ DepthwiseSeparable
@TRAIN_EVAL
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_separable(stride, training, check_grads, rng):
    tn.manual_seed(2)
    block = _randomize_bn(DepthwiseSeparable(4, 6, stride, dtype=F64), rng).train(training)
    assert [k for k in block.state_dict() if k.endswith("weight")] == \
        ["conv_dw.weight", "bn1.weight", "conv_pw.weight", "bn2.weight"]   # timm's names
    # train mode: a dw weight moves, through BN and the pointwise mixing, every one of the
    # ~1500 ReLU6 inputs, so with h = 1e-3 every entry's stencil crosses a kink; 1e-4 does not
    check_grads(f"DepthwiseSeparable[{_mode(training)}]", block,
                _input(rng, training, 4), **CHECK, **(dict(h=1e-4) if training else {}))


# ------------------------------------------------------------------ SqueezeExcitation
SE_VARIANTS = [(tn.ReLU, tn.HardSigmoid), (tn.SiLU, tn.Sigmoid)]


@TRAIN_EVAL
@pytest.mark.parametrize("acts", SE_VARIANTS, ids=["v3_relu_hardsigmoid", "effnet_silu_sigmoid"])
def test_squeeze_excitation(acts, training, check_grads, rng):
    tn.manual_seed(3)
    se = SqueezeExcitation(8, 4, *acts, dtype=F64).train(training)
    assert list(se.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    check_grads(f"SqueezeExcitation[{acts[1].__name__}]", se, rng.standard_normal((2, 8, 5, 4)),
                **CHECK)


def test_squeeze_excitation_forward_and_profile(rng):
    se = SqueezeExcitation(6, 2, tn.SiLU, tn.Sigmoid, dtype=F64)
    x = rng.standard_normal((2, 6, 3, 5))
    z = x.mean(axis=(2, 3), keepdims=True)
    s = tn.sigmoid(np.einsum("oc,ncij->noij", se.fc2.weight.data[:, :, 0, 0],
                             tn.SiLU()(np.einsum("sc,ncij->nsij", se.fc1.weight.data[:, :, 0, 0], z)
                                       + se.fc1.bias.data[:, None, None]))
                   + se.fc2.bias.data[:, None, None])
    np.testing.assert_allclose(se(x), x * s, rtol=1e-12)
    shape, rows = se.profile((1, 6, 3, 5), "se")
    assert shape == (1, 6, 3, 5)
    assert [r.name for r in rows] == ["se.avgpool", "se.fc1", "se.activation", "se.fc2",
                                      "se.scale_activation", "se.scale"]
    assert sum(r.macs for r in rows) == 6 * 2 + 2 * 6                    # the two 1x1 convs
    assert rows[-1].flops == 6 * 3 * 5 and rows[-1].macs == 0             # x * s: 1 per value


# ------------------------------------------------------------------ StochasticDepth
@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_train(mode, check_grads, rng):
    sd = StochasticDepth(0.5, mode)
    x = rng.standard_normal((6, 3, 2, 2))
    tn.manual_seed(0)                               # the seed gradcheck re-uses
    y = sd(x)
    mask = sd.cache[0]
    assert mask.shape == ((6, 1, 1, 1) if mode == "row" else (1, 1, 1, 1))
    assert set(np.unique(mask)) <= {0.0, 2.0}                            # kept values scaled by 1/(1-p)
    if mode == "row":
        assert 0 < np.count_nonzero(mask) < 6                            # some rows dropped, some kept
    np.testing.assert_array_equal(y, x * mask)
    check_grads(f"StochasticDepth[{mode}]", sd, x)


def test_stochastic_depth_identity_and_mean(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    assert StochasticDepth(0.3).eval()(x) is x
    assert StochasticDepth(0.0)(x) is x
    np.testing.assert_array_equal(StochasticDepth(1.0)(x), 0 * x)        # always dropped
    tn.manual_seed(5)
    sd = StochasticDepth(0.25)
    ones = np.ones((20000, 1, 1, 1))
    assert abs(sd(ones).mean() - 1.0) < 0.02                             # E[y] = x
    with pytest.raises(ValueError):
        StochasticDepth(1.5)
    with pytest.raises(ValueError):
        StochasticDepth(0.1, mode="column")


# ------------------------------------------------------------------ InvertedResidual (V2)
V2_CASES = [
    # (C_in, C_out, stride, expand_ratio, residual)
    (4, 4, 1, 1, True),        # t = 1 (features.1-like, here with a skip)
    (4, 6, 1, 1, False),       # t = 1, no skip: exactly features.1 of MobileNetV2
    (4, 4, 1, 6, True),        # residual
    (4, 6, 2, 6, False),       # stride 2
]


@TRAIN_EVAL
@pytest.mark.parametrize("case", V2_CASES, ids=["t1_res", "t1", "t6_res", "t6_s2"])
def test_inverted_residual(case, training, check_grads, rng):
    C, Co, s, t, residual = case
    tn.manual_seed(4)
    block = _randomize_bn(InvertedResidual(C, Co, s, t, dtype=F64), rng).train(training)
    assert block.use_res_connect == residual
    first = "conv.0.0.weight"
    assert list(block.state_dict())[0] == first
    assert ("conv.3.weight" in block.state_dict()) == (t != 1)          # project BN index
    check_grads(f"InvertedResidual[{_mode(training)}]", block,
                _input(rng, training, C), **CHECK)


# ------------------------------------------------------------------ InvertedResidualV3
V3_CASES = [
    # (C_in, k, expanded, C_out, use_se, activation, stride, residual)
    (4, 3, 4, 4, True, tn.ReLU, 2, False),          # Small's first bneck: no expand, SE, s2
    (4, 5, 12, 4, True, tn.HardSwish, 1, True),     # k5, SE, residual
    (4, 3, 8, 6, False, tn.HardSwish, 2, False),
    (4, 3, 12, 4, False, tn.ReLU, 1, True),
]


@TRAIN_EVAL
@pytest.mark.parametrize("case", V3_CASES, ids=["noexp_se_s2", "k5_se_res", "hs_s2", "re_res"])
def test_inverted_residual_v3(case, training, check_grads, rng):
    C, k, exp, Co, se, act, s, residual = case
    tn.manual_seed(5)
    block = _randomize_bn(InvertedResidualV3(C, k, exp, Co, se, act, s, dtype=F64), rng)
    block.train(training)
    assert block.use_res_connect == residual
    keys = list(block.state_dict())
    assert any(".fc1.weight" in key for key in keys) == se
    assert keys[0] == "block.0.0.weight"
    check_grads(f"InvertedResidualV3[{_mode(training)}]", block,
                _input(rng, training, C), **CHECK)


# ------------------------------------------------------------------ MBConv
MB_CASES = {
    # C_in, C_out, expand_ratio, k, stride, stochastic depth p, extra keywords
    "t1_stage1": (8, 4, 1, 3, 1, 0.0, {}),                 # SE squeeze 8 // 4 = 2
    "t6_res_sd": (8, 8, 6, 3, 1, 0.5, {}),
    "t6_res": (8, 8, 6, 5, 1, 0.0, {}),
    "t6_k5_s2": (8, 6, 6, 5, 2, 0.2, {}),
    "lite_same_s2": (4, 6, 6, 3, 2, 0.0, dict(se=False, activation=tn.ReLU6, padding="tf_same")),
    "lite_res_sd": (4, 4, 6, 3, 1, 0.5, dict(se=False, activation=tn.ReLU6)),
}


@TRAIN_EVAL
@pytest.mark.parametrize("name", list(MB_CASES))
def test_mbconv(name, training, check_grads, rng):
    C, Co, t, k, s, p, kw = MB_CASES[name]
    tn.manual_seed(6)
    block = _randomize_bn(MBConv(C, Co, t, k, s, p, dtype=F64, **kw), rng).train(training)
    assert block.use_res_connect == (s == 1 and C == Co)
    x = _input(rng, training, C)
    if training and p > 0 and block.use_res_connect:   # gradcheck's mask drops some, keeps some
        tn.manual_seed(0)
        block(x)
        assert 0 < np.count_nonzero(block.stochastic_depth.cache[0]) < len(x)
    check_grads(f"MBConv[{_mode(training)}]", block, x, **CHECK)


def test_mbconv_squeeze_uses_block_input():
    block = MBConv(24, 40, 6, 5, 2)
    se = block.block[2]
    assert (se.input_channels, se.squeeze_channels) == (144, 6)          # 24 // 4, not 144 // 4


# ------------------------------------------------------------------ structure and counting
def test_residual_profile_has_add_row():
    block = MBConv(4, 4, 6, 3, 1, 0.1)
    shape, rows = block.profile((1, 4, 8, 8), "b")
    assert shape == (1, 4, 8, 8)
    assert rows[-1].name == "b.add" and rows[-1].flops == 4 * 8 * 8 and rows[-1].macs == 0
    assert "b.stochastic_depth" in [r.name for r in rows]
    plain = MBConv(4, 6, 6, 3, 2)                                         # no skip: no add row
    _, rows = plain.profile((1, 4, 8, 8), "b")
    assert all(not r.name.endswith(("add", "stochastic_depth")) for r in rows)


@pytest.mark.parametrize("make", [
    lambda: InvertedResidual(4, 4, 1, 6), lambda: InvertedResidualV3(4, 5, 12, 4, True, tn.HardSwish, 1),
    lambda: MBConv(4, 6, 6, 5, 2, 0.2), lambda: DepthwiseSeparable(4, 8, 2),
])
def test_profile_matches_forward(make, rng):
    block = make()
    x = rng.standard_normal((1, 4, 7, 7)).astype(np.float32)
    with tn.no_grad():
        y = block(x)
    assert block.output_shape(x.shape) == y.shape
    convs = [m for m in block.modules() if isinstance(m, tn.Conv2d)]
    assert tn.count_params(block) == sum(r.params for r in block.profile(x.shape)[1])
    assert tn.count_macs(block, x.shape) >= sum(c.weight.data.size for c in convs)  # every conv counted


def test_no_grad_keeps_no_cache(rng):
    block = MBConv(4, 4, 6, 3, 1, 0.5)
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    block(x)
    assert block.block[2].cache is not None                               # SE kept x and s
    with tn.no_grad():
        block(x)
    assert all(m.cache is None for m in block.modules())


@pytest.mark.parametrize("v,expected", [(32 * 0.35, 16), (5.6, 8), (18, 24), (17.6, 16), (44, 48),
                                         (134.4, 136), (211.2, 208), (66, 64), (30, 32), (22, 24)])
def test_make_divisible(v, expected):
    assert make_divisible(v, 8) == expected                               # architectures.md §7.1
