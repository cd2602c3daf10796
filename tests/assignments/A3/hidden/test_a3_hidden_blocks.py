"""A3, hidden: the DepthwiseSeparable block computes what it should, and MobileNetV1 has
the paper's counts at every width and resolution, and at widths between the paper's.

The block's BatchNorms are replaced by identities after construction and its activation
is Sigmoid (see the A3 conftest), so the forward is compared with a direct computation
and the gradients with finite differences of the student's block.
"""
import numpy as np
import pytest

import tinynets as tn
from tinynets.models.mobilenet_v1 import STAGES, block_settings

pytestmark = [pytest.mark.A3, pytest.mark.hidden]


def _block(a3, M, N, s, seed):
    blk = tn.DepthwiseSeparable(M, N, s, activation=tn.Sigmoid, dtype=np.float64)
    return a3.randomize(a3.strip_bn(blk), np.random.default_rng(seed))


def test_depthwise_separable_forward(a3, checks):
    rng = np.random.default_rng(3)
    for M, N, s, H, W in [(4, 6, 2, 7, 6), (3, 5, 1, 5, 5)]:
        blk = _block(a3, M, N, s, H)
        x = rng.standard_normal((2, M, H, W))
        want = a3.sigmoid(a3.pointwise(a3.sigmoid(a3.depthwise3x3(x, blk.conv_dw.weight.data, s)),
                                       blk.conv_pw.weight.data))
        checks.expect_close(f"DepthwiseSeparable({M}, {N}, stride={s}) forward (BatchNorm "
                            "taken out, Sigmoid) vs pw(dw(x))", blk(x), want)


def test_depthwise_separable_numerical_gradient(a3, checks):
    rng = np.random.default_rng(4)
    blk = _block(a3, 3, 4, 2, 0)
    x = rng.standard_normal((2, 3, 5, 6))
    dout = rng.standard_normal(blk(x).shape)
    blk.zero_grad()
    blk(x)
    dx = blk.backward(dout)
    f = lambda: blk(x)  # noqa: E731
    checks.expect_close("DepthwiseSeparable dx vs finite differences", dx,
                        a3.smooth_gradient(f, x, dout), 1e-7)
    for name, p in blk.named_parameters():
        checks.expect_close(f"DepthwiseSeparable {name}.grad vs finite differences", p.grad,
                            a3.smooth_gradient(f, p.data, dout), 1e-7)


def v1_counts(a3, alpha, H):
    """(params, MACs) of MobileNetV1 by arithmetic: stem, 13 blocks, classifier."""
    c, D = a3.make_divisible(32 * alpha), -(-H // 2)
    params, macs = 27 * c + 2 * c, 27 * c * D * D
    for out, stride, repeats in STAGES:
        o = a3.make_divisible(out * alpha)
        for j in range(repeats):
            D = -(-D // (stride if j == 0 else 1))
            params += 9 * c + 2 * c + c * o + 2 * o
            macs += 9 * c * D * D + c * o * D * D
            c = o
    return params + c * 1000 + 1000, macs + c * 1000


def test_v1_counts_all_rows(a3):
    """All 16 (width, resolution) pairs of the paper's Tables 6 and 7."""
    want = a3.targets("mobilenet_v1")
    models = {}
    for (alpha, H), counts in sorted(want.items()):
        m = models.setdefault(alpha, tn.models.mobilenet_v1(width_mult=alpha))
        got = (tn.count_params(m), tn.count_macs(m, (3, H, H)))
        if got != counts:
            raise AssertionError(f"mobilenet_v1(width_mult={alpha}) at {H}x{H}: (params, MACs) "
                                 f"should be {counts}, got {got}")


def test_v1_other_widths(a3):
    """Widths where the rounding to multiples of 8 matters (0.35: the stem gets 16 channels),
    and odd resolutions."""
    for alpha, H in [(0.35, 224), (0.6, 160), (1.3, 96), (0.1, 100)]:
        m = tn.models.mobilenet_v1(width_mult=alpha)
        got = (tn.count_params(m), tn.count_macs(m, (3, H, H)))
        want = v1_counts(a3, alpha, H)
        if got != want:
            raise AssertionError(f"mobilenet_v1(width_mult={alpha}) at {H}x{H}: (params, MACs) "
                                 f"should be {want}, got {got}")
    got = [tuple(int(v) for v in b) for b in block_settings(0.35)]
    if got[0] != (0, 16, 24, 1) or got[-1] != (4, 360, 360, 1) or len(got) != 13:
        raise AssertionError(f"block_settings(0.35): expected 13 blocks from (0, 16, 24, 1) to "
                             f"(4, 360, 360, 1), got {got}")
