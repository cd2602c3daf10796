"""MobileNetV2 (Sandler et al. 2018, arXiv 1801.04381), paper Table 2, as torchvision builds it.

Inverted residuals with linear bottlenecks. Shapes at 224 input, width 1::

    features.0      conv3x3 s2 3 -> 32 + BN + ReLU6              (N, 32, 112, 112)
    features.1      t=1  32 -> 16                                 (N, 16, 112, 112)
    features.2-3    t=6  -> 24, first s2                          (N, 24, 56, 56)
    features.4-6    t=6  -> 32, first s2                          (N, 32, 28, 28)
    features.7-10   t=6  -> 64, first s2                          (N, 64, 14, 14)
    features.11-13  t=6  -> 96                                    (N, 96, 14, 14)
    features.14-16  t=6  -> 160, first s2                         (N, 160, 7, 7)
    features.17     t=6  -> 320                                   (N, 320, 7, 7)
    features.18     conv1x1 320 -> 1280 + BN + ReLU6              (N, 1280, 7, 7)
    pool, flatten, Dropout(0.2), Linear 1280 -> 1000              (N, 1000)

Width multiplier w: stem and stage widths make_divisible(c * w, 8); the last conv
make_divisible(1280 * max(1, w), 8), so it never shrinks. state_dict keys equal
torchvision's (314 entries): ``features.i.conv.k...`` and ``classifier.1``.

Counting convention (tinynets.nn.counting): params include BN weight and bias (torchvision's
``num_params``); MACs are conv + Linear multiply-accumulates for one image (the paper's
Mult-Adds, torchvision's "GFLOPS"). At w = 1, 224: 3,504,872 params, 300,774,272 MACs.
"""
from __future__ import annotations

import numpy as np

from ..nn.blocks import Conv2dNormActivation
from ..nn.residual import InvertedResidual
from ..nn.layers import Dropout, Flatten, GlobalAvgPool2d, Linear
from ..nn.containers import Sequential
from ._utils import ImageClassifier, init_weights, make_divisible

# (expand_ratio t, out_channels c, repeats n, first stride s), paper Table 2
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


class MobileNetV2(ImageClassifier):
    """MobileNetV2 with torchvision's layout, BN (eps 1e-5, momentum 0.1) and init.

    Parameters
    ----------
    num_classes : int
    width_mult : float      .35, .5, .75, 1, 1.3, 1.4 in the TF releases
    dropout : float         before the classifier Linear (0.2)
    round_nearest : int     channel divisor for make_divisible (8)
    norm_eps, norm_momentum : BatchNorm settings
    dtype : float32 or float64

    Shapes: x (N, 3, H, W) -> logits (N, num_classes).
    """
    family = "mobilenet_v2"          # for tinynets.io.keymaps


    default_resolution = 224

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                 round_nearest: int = 8, norm_eps: float = 1e-5, norm_momentum: float = 0.1,
                 dtype=np.float32):
        super().__init__()
        self.width_mult, self.num_classes = width_mult, num_classes
        bn = dict(norm_eps=norm_eps, norm_momentum=norm_momentum, dtype=dtype)
        channels = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        layers = [Conv2dNormActivation(3, channels, 3, stride=2, **bn)]       # (N, 32, 112, 112)
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t, **bn))
                channels = out
        layers.append(Conv2dNormActivation(channels, self.last_channel, 1, **bn))  # (N, 1280, 7, 7)
        self.features = Sequential(*layers)
        self.avgpool = GlobalAvgPool2d()            # torchvision pools functionally: no keys either way
        self.flatten = Flatten()                                                # (N, 1280)
        self.classifier = Sequential(Dropout(dropout),
                                     Linear(self.last_channel, num_classes, dtype=dtype))
        init_weights(self, linear="normal")


def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                 **kwargs) -> MobileNetV2:
    """torchvision's ``mobilenet_v2`` (untrained); see :class:`MobileNetV2`."""
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult, dropout=dropout, **kwargs)
