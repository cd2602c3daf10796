"""A4, visible: MobileNetV3's bneck (``InvertedResidualV3``) and EfficientNet's ``MBConv``,
built from their parts (``tinynets/nn/residual.py``).

A block's state_dict must have torchvision's keys and shapes, in order
(``tests/fixtures/torchvision_keys.json``); its parts must be the ones the docstring
lists, with the right activations, strides and BatchNorm settings.
"""
import numpy as np
import pytest

import tinynets as tn
from tinynets.nn.residual import InvertedResidualV3, MBConv

pytestmark = [pytest.mark.A4]

# torchvision block -> (in, kernel, expanded, out, use_se, activation, stride)
V3_BLOCKS = {
    ("mobilenet_v3_large", "features.1."): (16, 3, 16, 16, False, tn.ReLU, 1),
    ("mobilenet_v3_large", "features.4."): (24, 5, 72, 40, True, tn.ReLU, 2),
    ("mobilenet_v3_large", "features.7."): (40, 3, 240, 80, False, tn.HardSwish, 2),
    ("mobilenet_v3_small", "features.1."): (16, 3, 16, 16, True, tn.ReLU, 2),
}
# torchvision block -> (in, out, expand_ratio, kernel, stride)
MB_BLOCKS = {
    "features.1.0.": (32, 16, 1, 3, 1),
    "features.2.0.": (16, 24, 6, 3, 2),
    "features.2.1.": (24, 24, 6, 3, 1),
    "features.3.0.": (24, 40, 6, 5, 2),
    "features.6.1.": (192, 192, 6, 5, 1),
}


def test_inverted_residual_v3_torchvision_keys(a4):
    """Four bnecks of torchvision's MobileNetV3: without expansion, with SE, h-swish."""
    for (model, prefix), args in V3_BLOCKS.items():
        block = InvertedResidualV3(*args)
        a4.expect_keys(f"InvertedResidualV3{args[:5]} ({model} {prefix[:-1]})", block,
                       a4.torchvision_entries(model, prefix))


def _check_cna(what, cna, c_in, c_out, k, stride, groups, act, eps, momentum):
    conv, bn = cna[0], cna[1]
    got = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.groups)
    want = (c_in, c_out, (k, k), stride, groups)
    if got != want:
        raise AssertionError(f"{what}: conv (in, out, kernel, stride, groups) should be {want}, "
                             f"got {got}")
    if (bn.eps, bn.momentum) != (eps, momentum):
        raise AssertionError(f"{what}: BatchNorm eps, momentum should be {(eps, momentum)}, got "
                             f"{(bn.eps, bn.momentum)}")
    has = type(cna[2]) if len(cna) > 2 else None
    if has is not act:
        raise AssertionError(f"{what}: activation should be {getattr(act, '__name__', act)}, got "
                             f"{getattr(has, '__name__', has)}")


def test_inverted_residual_v3_layers_and_residual(a4):
    """Expand (only when E != in), depthwise (stride, groups E), SE (V3's squeeze width,
    ReLU and HardSigmoid), linear projection; the residual when stride 1 and in == out."""
    cases = [  # args, norm (eps, momentum), squeeze width, residual
        ((24, 3, 72, 24, False, tn.ReLU, 1), (1e-3, 0.01), None, True),
        ((40, 5, 120, 40, True, tn.HardSwish, 1), (1e-5, 0.1), 32, True),
        ((16, 3, 16, 16, True, tn.ReLU, 2), (1e-3, 0.01), 8, False),
        ((48, 5, 96, 40, True, tn.HardSwish, 1), (1e-3, 0.01), 24, False),
    ]
    for args, (eps, mom), squeeze, residual in cases:
        c_in, k, E, c_out, use_se, act, s = args
        what = f"InvertedResidualV3{args[:5]}, stride {s}"
        block = InvertedResidualV3(*args, norm_eps=eps, norm_momentum=mom, dtype=np.float64)
        if block.use_res_connect != residual:
            raise AssertionError(f"{what}: use_res_connect should be {residual}")
        part = a4.parts(block)
        want_len = (E != c_in) + 2 + use_se
        if len(part) != want_len:
            raise AssertionError(f"{what}: block should have {want_len} parts, got {len(part)}")
        i = 0
        if E != c_in:
            _check_cna(f"{what}, expand", part[0], c_in, E, 1, 1, 1, act, eps, mom)
            i = 1
        _check_cna(f"{what}, depthwise", part[i], E, E, k, s, E, act, eps, mom)
        if use_se:
            se = part[i + 1]
            got = (type(se).__name__, getattr(se, "input_channels", None),
                   getattr(se, "squeeze_channels", None))
            if got != ("SqueezeExcitation", E, squeeze):
                raise AssertionError(f"{what}: part {i + 1} should be SqueezeExcitation({E}, "
                                     f"{squeeze}), got {got}")
            acts = (type(se.activation), type(se.scale_activation))
            if acts != (tn.ReLU, tn.HardSigmoid) or se.fc1.weight.dtype != np.float64:
                raise AssertionError(f"{what}: the SE should have ReLU and HardSigmoid and the "
                                     f"block's dtype, got {[a.__name__ for a in acts]}, "
                                     f"{se.fc1.weight.dtype}")
        _check_cna(f"{what}, project", part[-1], E, c_out, 1, 1, 1, None, eps, mom)


def test_mbconv_torchvision_keys(a4):
    """Five MBConv blocks of torchvision's EfficientNet-B0 (t = 1, stride 2, residual, k5)."""
    for prefix, args in MB_BLOCKS.items():
        block = MBConv(*args)
        a4.expect_keys(f"MBConv{args} (efficientnet_b0 {prefix[:-1]})", block,
                       a4.torchvision_entries("efficientnet_b0", prefix))


def test_mbconv_widths_se_and_residual_drop(a4):
    """E = make_divisible(in * t, 8), the SE squeezes to max(1, in // 4) with SiLU and
    Sigmoid, se=False leaves it out, and every block has its StochasticDepth(p, 'row')."""
    cases = [  # args, keywords, E, squeeze or None, residual
        ((10, 10, 6, 3, 1, 0.25), {}, 64, 2, True),
        ((3, 8, 1, 3, 2, 0.1), {}, 8, 1, False),
        ((24, 24, 6, 5, 1, 0.0), dict(se=False, activation=tn.ReLU6), 144, None, True),
        ((16, 24, 4.5, 3, 2, 0.2), dict(norm_eps=1e-3, norm_momentum=0.01), 72, 4, False),
    ]
    for args, kw, E, squeeze, residual in cases:
        c_in, c_out, t, k, s, p = args
        what = f"MBConv{args}" + (f" with {kw}" if kw else "")
        block = MBConv(*args, **kw)
        if block.use_res_connect != residual:
            raise AssertionError(f"{what}: use_res_connect should be {residual}")
        part = a4.parts(block)
        dw = part[1 if E != c_in else 0]
        if dw[0].out_channels != E or dw[0].groups != E:
            raise AssertionError(f"{what}: expanded width should be make_divisible({c_in} * {t}, 8)"
                                 f" = {E}, the depthwise conv has {dw[0].out_channels} channels")
        act = kw.get("activation", tn.SiLU)
        if type(dw[2]) is not act:
            raise AssertionError(f"{what}: the depthwise conv's activation should be "
                                 f"{act.__name__}, got {type(dw[2]).__name__}")
        se = [m for m in part if isinstance(m, tn.SqueezeExcitation)]
        if squeeze is None and se:
            raise AssertionError(f"{what}: se=False should leave the SqueezeExcitation out")
        if squeeze is not None:
            if len(se) != 1 or (se[0].input_channels, se[0].squeeze_channels) != (E, squeeze):
                raise AssertionError(f"{what}: expected one SqueezeExcitation({E}, max(1, "
                                     f"{c_in} // 4) = {squeeze})")
            if (type(se[0].activation), type(se[0].scale_activation)) != (tn.SiLU, tn.Sigmoid):
                raise AssertionError(f"{what}: EfficientNet's SE has SiLU and a Sigmoid gate")
        sd = block._modules.get("stochastic_depth")
        if not isinstance(sd, tn.StochasticDepth) or (sd.p, sd.mode) != (p, "row"):
            raise AssertionError(f"{what}: every MBConv needs stochastic_depth = "
                                 f"StochasticDepth({p}, 'row'), got {sd!r}")
        eps, mom = kw.get("norm_eps", 1e-5), kw.get("norm_momentum", 0.1)
        bns = [m for m in block.modules() if isinstance(m, tn.BatchNorm2d)]
        if any((bn.eps, bn.momentum) != (eps, mom) for bn in bns):
            raise AssertionError(f"{what}: every BatchNorm should have eps {eps}, momentum {mom}")
