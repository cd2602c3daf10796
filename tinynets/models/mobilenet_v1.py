"""MobileNetV1 (Howard et al. 2017, arXiv 1704.04861), paper Table 1.

A 3x3 stem, then 13 depthwise-separable blocks, average pooling and one Linear::

    stem   conv3x3 s2  3 -> 32          112x112      (at 224 input)
    dw+pw  32 -> 64                     112x112      stage 0
    dw+pw  64 -> 128 (s2), 128 -> 128   56x56        stage 1
    dw+pw  128 -> 256 (s2), 256         28x28        stage 2
    dw+pw  256 -> 512 (s2), 5 x 512     14x14        stage 3
    dw+pw  512 -> 1024 (s2), 1024       7x7          stage 4 (the paper's last "s2" is s1)
    pool, Linear 1024 -> 1000

Width multiplier alpha (timm's rule): every channel count, the stem included, is
make_divisible(c * alpha, 8). Activation: ReLU6 by default (TF slim and timm use it;
the paper says ReLU, pass ``activation=tinynets.ReLU``). There is no torchvision
MobileNetV1; the state_dict keys are timm's (``conv_stem``, ``bn1``,
``blocks.s.j.{conv_dw,bn1,conv_pw,bn2}``, ``classifier``; 164 entries).

Counting convention (tinynets.nn.counting): params include BN weight and bias and the
FC bias; MACs are conv + Linear multiply-accumulates for one image, i.e. the paper's
Mult-Adds. At alpha = 1, 224: 4,231,976 params and 568,740,352 MACs (paper: 4.2 M, 569 M).
"""
from __future__ import annotations

from typing import List, Tuple, Type

import numpy as np

from ..nn.activations import ReLU6
from ..nn.blocks import DepthwiseSeparable
from ..nn.conv import Conv2d
from ..nn.layers import Dropout, Flatten, GlobalAvgPool2d, Linear
from ..nn.containers import Sequential
from ..nn.module import Module
from ..nn.norm import BatchNorm2d
from ._utils import ImageClassifier, init_weights, make_divisible

# (out_channels, stride of the first block, blocks) per stage, paper Table 1
STAGES = [(64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 2, 6), (1024, 2, 2)]


def block_settings(width_mult: float = 1.0) -> List[Tuple[int, int, int, int]]:
    """The 13 depthwise separable blocks as (stage, in_channels, out_channels, stride).

    Walks ``STAGES`` in order: stage s has ``blocks`` blocks, the first with the stage's
    stride and the others with stride 1. Every channel count is make_divisible(c *
    width_mult, 8): the first block reads the stem's make_divisible(32 * width_mult, 8)
    channels, and each block reads what the previous one wrote. At width 1 the list
    starts (0, 32, 64, 1), (1, 64, 128, 2), (1, 128, 128, 1), ... and ends (4, 1024, 1024, 1).
    """
    ### BEGIN SOLUTION A3.mobilenet_v1
    channels = make_divisible(32 * width_mult, 8)
    settings = []
    for stage, (out, stride, repeats) in enumerate(STAGES):
        out = make_divisible(out * width_mult, 8)
        for j in range(repeats):
            settings.append((stage, channels, out, stride if j == 0 else 1))
            channels = out
    return settings
    ### END SOLUTION


class MobileNetV1(ImageClassifier):
    """MobileNetV1 with width multiplier ``width_mult`` (alpha).

    Parameters
    ----------
    width_mult : float      alpha; 1, .75, .5, .25 in the paper
    num_classes : int
    dropout : float         before the classifier (timm's default drop_rate 0)
    activation : Module class, ReLU6 (default) or ReLU
    norm_eps, norm_momentum : BatchNorm settings (PyTorch defaults)
    dtype : float32 or float64

    Shapes: x (N, 3, H, W) -> logits (N, num_classes); H = W = 224 (also 192, 160, 128).
    """
    family = "mobilenet_v1"          # for tinynets.io.keymaps


    default_resolution = 224

    def __init__(self, width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.0,
                 activation: Type[Module] = ReLU6, norm_eps: float = 1e-5,
                 norm_momentum: float = 0.1, dtype=np.float32):
        super().__init__()
        self.width_mult, self.num_classes = width_mult, num_classes
        bn = dict(eps=norm_eps, momentum=norm_momentum, dtype=dtype)
        channels = make_divisible(32 * width_mult, 8)
        self.conv_stem = Conv2d(3, channels, 3, stride=2, padding=1, bias=False,
                                dtype=dtype)                            # (N, 32, 112, 112)
        self.bn1 = BatchNorm2d(channels, **bn)
        self.act1 = activation()
        stages = [[] for _ in STAGES]
        for stage, c_in, channels, stride in block_settings(width_mult):   # ends at the last width
            stages[stage].append(DepthwiseSeparable(c_in, channels, stride, activation, norm_eps,
                                                    norm_momentum, dtype=dtype))
        self.blocks = Sequential(*(Sequential(*b) for b in stages))             # (N, 1024, 7, 7)
        self.global_pool = GlobalAvgPool2d()                                    # (N, 1024, 1, 1)
        self.flatten = Flatten()                                                # (N, 1024)
        self.dropout = Dropout(dropout)
        self.classifier = Linear(channels, num_classes, dtype=dtype)            # (N, num_classes)
        self.num_features = channels
        init_weights(self, linear="normal")


def mobilenet_v1(width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.0,
                 **kwargs) -> MobileNetV1:
    """MobileNetV1 (paper Table 1); see :class:`MobileNetV1` for the keywords."""
    return MobileNetV1(width_mult=width_mult, num_classes=num_classes, dropout=dropout, **kwargs)
