"""A4, hidden: MobileNetV3 at other widths and resolutions (the reference's 0.75 rows, and
counts computed here layer by layer from the paper's tables), torchvision's keys for
Large, and the head's layers and settings."""
import math

import numpy as np
import pytest

import tinynets as tn
from tinynets.models.mobilenet_v3 import LARGE, SMALL, mobilenet_v3_large, mobilenet_v3_small

pytestmark = [pytest.mark.A4, pytest.mark.hidden]

ARCH = {"large": (LARGE, 1280, mobilenet_v3_large), "small": (SMALL, 1024, mobilenet_v3_small)}


def _divisible(v, d=8):
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


def _counts(arch, width, res, classes=1000):
    """(params, MACs) of MobileNetV3 from its table, one layer at a time."""
    table, last, _ = ARCH[arch]
    adj = lambda c: _divisible(c * width)          # noqa: E731
    c0 = adj(table[0][0])
    H = math.ceil(res / 2)
    params, macs = 27 * c0 + 2 * c0, 27 * c0 * H * H
    for c_in, k, e, c_out, se, _, s in table:
        c_in, e, c_out = adj(c_in), adj(e), adj(c_out)
        if e != c_in:
            params += c_in * e + 2 * e
            macs += c_in * e * H * H
        H = math.ceil(H / s)
        params += k * k * e + 2 * e
        macs += k * k * e * H * H
        if se:
            q = _divisible(e // 4)
            params += 2 * e * q + e + q
            macs += 2 * e * q
        params += e * c_out + 2 * c_out
        macs += e * c_out * H * H
    c_last, hidden = 6 * c_out, adj(last)
    params += c_out * c_last + 2 * c_last + c_last * hidden + hidden + hidden * classes + classes
    macs += c_out * c_last * H * H + c_last * hidden + hidden * classes
    return params, macs


def test_mobilenet_v3_counts_other_widths(a4):
    for row in a4.v3_targets(0.75):
        a4.expect_counts(row)
    for row in a4.v3_targets(1.0) + a4.v3_targets(0.75):           # the layer-by-layer count is right
        arch = row["model"].split("_")[-1]
        assert _counts(arch, row["kwargs"]["width_mult"], row["resolution"]) == \
            (row["params"], row["macs"])
    for arch in ("large", "small"):
        for width, res, classes in ((0.5, 224, 1000), (1.25, 192, 10), (0.35, 160, 100)):
            model = ARCH[arch][2](num_classes=classes, width_mult=width)
            got = (tn.count_params(model), tn.count_macs(model, (3, res, res)))
            want = _counts(arch, width, res, classes)
            if got != want:
                raise AssertionError(f"mobilenet_v3_{arch}(width_mult={width}, num_classes="
                                     f"{classes}) at {res}: (params, MACs) should be {want}, "
                                     f"got {got}")


def test_mobilenet_v3_large_keys_and_head(a4):
    a4.expect_keys("mobilenet_v3_large()", mobilenet_v3_large(),
                   a4.torchvision_entries("mobilenet_v3_large", ""))
    model = mobilenet_v3_small(num_classes=10, dropout=0.3, norm_eps=1e-5, norm_momentum=0.1,
                               dtype=np.float64)
    head = [type(m).__name__ for m in model.classifier]
    if head != ["Linear", "HardSwish", "Dropout", "Linear"]:
        raise AssertionError(f"MobileNetV3 classifier should be Linear, HardSwish, Dropout, "
                             f"Linear, got {head}")
    if model.classifier[2].p != 0.3 or model.classifier[3].out_features != 10:
        raise AssertionError("MobileNetV3(dropout=0.3, num_classes=10): the Dropout should have "
                             "p = 0.3 and the last Linear 10 outputs")
    if model.last_channel != 1024 or model.classifier[0].in_features != 576:
        raise AssertionError(f"MobileNetV3-Small: last_channel 1024 and the hidden Linear "
                             f"576 -> 1024 expected, got last_channel {model.last_channel}")
    if not (isinstance(model.avgpool, tn.GlobalAvgPool2d) and isinstance(model.flatten, tn.Flatten)):
        raise AssertionError("MobileNetV3: avgpool should be GlobalAvgPool2d, flatten Flatten")
    bns = [m for m in model.modules() if isinstance(m, tn.BatchNorm2d)]
    if any((bn.eps, bn.momentum) != (1e-5, 0.1) for bn in bns):
        raise AssertionError("MobileNetV3(norm_eps=1e-5, norm_momentum=0.1): every BatchNorm "
                             "should get them")
    if any(p.data.dtype != np.float64 for p in model.parameters()):
        raise AssertionError("MobileNetV3(dtype=np.float64): every parameter should be float64")
    if model.output_shape((1, 3, 64, 64)) != (1, 10):
        raise AssertionError(f"MobileNetV3-Small(num_classes=10) on 64x64: expected (1, 10), "
                             f"got {model.output_shape((1, 3, 64, 64))}")
    acts = [type(m[-1]).__name__ for m in (model.features[0], model.features[-1])]
    if acts != ["HardSwish", "HardSwish"]:
        raise AssertionError(f"MobileNetV3: the stem and the last 1x1 conv use HardSwish, got {acts}")
