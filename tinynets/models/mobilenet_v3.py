"""MobileNetV3 Large and Small (Howard et al. 2019, arXiv 1905.02244), as torchvision builds them.

bneck blocks (inverted residual + optional SE), ReLU early and HardSwish late, a 1x1
conv to 6x the last width, then a Linear + HardSwish "head" before the classifier::

    features.0        conv3x3 s2 3 -> 16 + BN + HardSwish        (N, 16, 112, 112)
    features.1..15    bnecks (Large; 1..11 in Small)              (N, 160, 7, 7)
    features.16       conv1x1 160 -> 960 + BN + HardSwish         (N, 960, 7, 7)
    pool, flatten                                                 (N, 960)
    classifier        Linear 960 -> 1280, HardSwish, Dropout(0.2), Linear 1280 -> 1000

Width multiplier w (torchvision's rules): adjust(c) = make_divisible(c * w, 8) is
applied to the absolute in, expanded and out widths of every row of the table; the
hidden Linear width adjust(1280) / adjust(1024) is width-scaled too. SE squeeze =
make_divisible(expanded // 4, 8). BN eps 1e-3, momentum 0.01. No stochastic depth.
state_dict keys equal torchvision's (Large 312, Small 244 entries).

Counting convention (tinynets.nn.counting): params include BN weight and bias; MACs are
conv (SE 1x1 convs included) + Linear multiply-accumulates for one image. At 224:
Large 5,483,032 params / 216,589,760 MACs; Small 2,542,856 / 56,510,400.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..nn.activations import HardSwish, ReLU
from ..nn.blocks import Conv2dNormActivation
from ..nn.residual import InvertedResidualV3
from ..nn.layers import Dropout, Flatten, GlobalAvgPool2d, Linear
from ..nn.containers import Sequential
from ._utils import ImageClassifier, init_weights, make_divisible

# (in, kernel, expanded, out, use_se, activation "RE"/"HS", stride), paper Tables 1 and 2
BNECK = Tuple[int, int, int, int, bool, str, int]
LARGE: List[BNECK] = [
    (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
]
SMALL: List[BNECK] = [
    (16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1),
]
ARCHS = {"large": (LARGE, 1280), "small": (SMALL, 1024)}
ACTIVATIONS = {"RE": ReLU, "HS": HardSwish}


class MobileNetV3(ImageClassifier):
    """MobileNetV3 ("large" or "small") with torchvision's layout and init.

    Parameters
    ----------
    arch : "large" or "small"
    num_classes : int
    width_mult : float          w, applied by adjust(c) = make_divisible(c * w, 8)
    dropout : float             after the hidden Linear + HardSwish (0.2)
    norm_eps, norm_momentum : BatchNorm settings (torchvision: 1e-3, 0.01)
    dtype : float32 or float64

    Shapes: x (N, 3, H, W) -> logits (N, num_classes).
    """

    default_resolution = 224

    def __init__(self, arch: str = "large", num_classes: int = 1000, width_mult: float = 1.0,
                 dropout: float = 0.2, norm_eps: float = 1e-3, norm_momentum: float = 0.01,
                 dtype=np.float32):
        """Build ``features``, ``avgpool``, ``flatten``, ``last_channel`` and ``classifier``
        from ``table, last = ARCHS[arch]``, with adjust(c) = make_divisible(c * width_mult, 8)
        and norm_eps, norm_momentum, dtype for every block:

        * ``features`` = Sequential of: the stem Conv2dNormActivation(3, adjust(in of the
          first row), 3, stride=2, activation=HardSwish); one InvertedResidualV3 per row
          (c_in, k, exp, c_out, use_se, act, s) -> (adjust(c_in), k, adjust(exp),
          adjust(c_out), use_se, ACTIVATIONS[act], s); a Conv2dNormActivation(C, 6 * C, 1,
          activation=HardSwish) with C = adjust(c_out of the last row);
        * ``avgpool`` = GlobalAvgPool2d(), ``flatten`` = Flatten(), ``last_channel`` =
          adjust(last);
        * ``classifier`` = Sequential(Linear(6 * C, last_channel), HardSwish(),
          Dropout(dropout), Linear(last_channel, num_classes)).

        ``init_weights`` (below) then draws torchvision's initial weights.
        """
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"MobileNetV3: arch must be 'large' or 'small', got {arch!r}")
        self.arch, self.width_mult, self.num_classes = arch, width_mult, num_classes
        self.family = f"mobilenet_v3_{arch}"                # for tinynets.io.keymaps
        table, last = ARCHS[arch]

        def adjust(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        bn = dict(norm_eps=norm_eps, norm_momentum=norm_momentum, dtype=dtype)
        ### BEGIN SOLUTION A4.mobilenet_v3
        layers = [Conv2dNormActivation(3, adjust(table[0][0]), 3, stride=2, activation=HardSwish,
                                       **bn)]                                   # (N, 16, 112, 112)
        for c_in, k, exp, c_out, use_se, act, s in table:
            layers.append(InvertedResidualV3(adjust(c_in), k, adjust(exp), adjust(c_out), use_se,
                                             ACTIVATIONS[act], s, **bn))
        lastconv_in = adjust(table[-1][3])
        lastconv_out = 6 * lastconv_in                                          # 960 / 576
        layers.append(Conv2dNormActivation(lastconv_in, lastconv_out, 1, activation=HardSwish, **bn))
        self.features = Sequential(*layers)                                     # (N, 960, 7, 7)
        self.avgpool = GlobalAvgPool2d()                                        # (N, 960, 1, 1)
        self.flatten = Flatten()                                                # (N, 960)
        self.last_channel = adjust(last)                                        # 1280 / 1024
        self.classifier = Sequential(
            Linear(lastconv_out, self.last_channel, dtype=dtype), HardSwish(),  # (N, 1280)
            Dropout(dropout), Linear(self.last_channel, num_classes, dtype=dtype))
        ### END SOLUTION
        init_weights(self, linear="normal")


def mobilenet_v3_large(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                       **kwargs) -> MobileNetV3:
    """torchvision's ``mobilenet_v3_large`` (untrained); see :class:`MobileNetV3`."""
    return MobileNetV3("large", num_classes=num_classes, width_mult=width_mult, dropout=dropout,
                       **kwargs)


def mobilenet_v3_small(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                       **kwargs) -> MobileNetV3:
    """torchvision's ``mobilenet_v3_small`` (untrained); see :class:`MobileNetV3`."""
    return MobileNetV3("small", num_classes=num_classes, width_mult=width_mult, dropout=dropout,
                       **kwargs)
