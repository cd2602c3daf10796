"""A3, visible: ``DepthwiseSeparable``'s construction and MobileNetV1's block table.

Run them with ``python -m pytest -m A3 -k "depthwise_separable or v1"``. The block must have
timm's state_dict keys and shapes and the layers its docstring lists; MobileNetV1 built on
``block_settings`` must have the paper's parameter and MAC counts (``tests/fixtures/
targets.json``), which count every weight, BatchNorm's gamma and beta and the FC bias.
"""
import numpy as np
import pytest

import tinynets as tn
from tinynets.models.mobilenet_v1 import block_settings

pytestmark = [pytest.mark.A3]


def timm_keys(M, N):
    """The state_dict a DepthwiseSeparable(M, N) must have: (key, shape), in order."""
    keys = [("conv_dw.weight", (M, 1, 3, 3))]
    for bn, C in (("bn1", M), ("bn2", N)):
        if bn == "bn2":
            keys.append(("conv_pw.weight", (N, M, 1, 1)))
        keys += [(f"{bn}.weight", (C,)), (f"{bn}.bias", (C,)), (f"{bn}.running_mean", (C,)),
                 (f"{bn}.running_var", (C,)), (f"{bn}.num_batches_tracked", ())]
    return keys


def check_keys(block, M, N, what):
    got = [(k, tuple(np.shape(v))) for k, v in block.state_dict().items()]
    want = timm_keys(M, N)
    if got != want:
        missing = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        raise AssertionError(f"{what}: state_dict should be {want}; missing {missing}, "
                             f"unexpected {extra} (or the order differs)")


def test_depthwise_separable_timm_keys():
    for M, N, s in [(32, 64, 1), (64, 128, 2), (6, 4, 2)]:
        check_keys(tn.DepthwiseSeparable(M, N, s), M, N, f"DepthwiseSeparable({M}, {N}, stride={s})")


def test_depthwise_separable_layers():
    """The children, in order, and what each is: depthwise with the stride, pointwise without."""
    blk = tn.DepthwiseSeparable(8, 12, 2, activation=tn.ReLU, norm_eps=1e-3, norm_momentum=0.01,
                                dtype=np.float64)
    names = list(blk._modules)
    if names != ["conv_dw", "bn1", "act1", "conv_pw", "bn2", "act2"]:
        raise AssertionError(f"DepthwiseSeparable: children should be conv_dw, bn1, act1, conv_pw, "
                             f"bn2, act2 in this order (the order they run in), got {names}")
    dw, pw = blk.conv_dw, blk.conv_pw
    got = dict(dw=(dw.kernel_size, dw.stride, dw.pads(9, 9), dw.groups, dw.bias is None),
               pw=(pw.kernel_size, pw.stride, pw.pads(9, 9), pw.groups, pw.bias is None))
    want = dict(dw=((3, 3), 2, (1, 1, 1, 1), 8, True), pw=((1, 1), 1, (0, 0, 0, 0), 1, True))
    if got != want:
        raise AssertionError(f"DepthwiseSeparable(8, 12, stride=2): (kernel, stride, padding, "
                             f"groups, no bias) of conv_dw and conv_pw should be {want}, got {got}")
    for name in ("bn1", "bn2"):
        bn = getattr(blk, name)
        if (bn.eps, bn.momentum) != (1e-3, 0.01):
            raise AssertionError(f"DepthwiseSeparable: {name} should have norm_eps and "
                                 f"norm_momentum (1e-3, 0.01), got {(bn.eps, bn.momentum)}")
    for name in ("act1", "act2"):
        if type(getattr(blk, name)) is not tn.ReLU:
            raise AssertionError(f"DepthwiseSeparable(activation=tn.ReLU): {name} should be a "
                                 f"ReLU, got {type(getattr(blk, name)).__name__}")
    dtypes = {p.data.dtype for p in blk.parameters()}
    if dtypes != {np.dtype(np.float64)}:
        raise AssertionError(f"DepthwiseSeparable(dtype=np.float64): parameters should be "
                             f"float64, got {dtypes}")


TABLE1 = [(0, 32, 64, 1), (1, 64, 128, 2), (1, 128, 128, 1), (2, 128, 256, 2), (2, 256, 256, 1),
          (3, 256, 512, 2)] + [(3, 512, 512, 1)] * 5 + [(4, 512, 1024, 2), (4, 1024, 1024, 1)]


def test_v1_block_settings_table():
    """The paper's Table 1 at width 1 (13 blocks, the last one at stride 1), and at width 0.5,
    where every channel count halves."""
    for alpha, want in [(1.0, TABLE1), (0.5, [(s, i // 2, o // 2, st) for s, i, o, st in TABLE1])]:
        got = [tuple(int(v) for v in b) for b in block_settings(alpha)]
        if got != want:
            raise AssertionError(f"block_settings({alpha}) should be {want}, got {got}")


def check_counts(a3, rows):
    want = a3.targets("mobilenet_v1")
    for alpha, H in rows:
        model = tn.models.mobilenet_v1(width_mult=alpha)
        got = (tn.count_params(model), tn.count_macs(model, (3, H, H)))
        if got != want[alpha, H]:
            raise AssertionError(f"mobilenet_v1(width_mult={alpha}) at {H}x{H}: (params, MACs) "
                                 f"should be {want[alpha, H]}, got {got}")


def test_v1_counts_paper(a3):
    check_counts(a3, [(1.0, 224), (0.5, 224), (1.0, 128)])
    keys = list(tn.models.mobilenet_v1(width_mult=0.25).state_dict())
    if len(keys) != 164 or "blocks.3.5.conv_pw.weight" not in keys or "blocks.4.2.bn1.bias" in keys:
        raise AssertionError(f"mobilenet_v1: the state_dict should have 164 entries with timm's "
                             f"names blocks.<stage>.<block>.(conv_dw|bn1|conv_pw|bn2), stages of "
                             f"1, 2, 2, 6, 2 blocks; got {len(keys)}")
