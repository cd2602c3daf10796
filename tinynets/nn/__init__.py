"""The teaching core: the module protocol, the layers and the blocks of the networks.

Every layer has a ``forward`` and a ``backward`` side by side (lessons 01-06):

* ``module``, ``containers``, ``grad_mode``: ``Parameter``, ``Module``, ``Sequential``,
  ``no_grad``; ``caches`` (what ``keep``/``take`` guard against) and ``errors``
  (``check_array``, qualified names in errors);
* ``conv``, ``norm``, ``activations``, ``layers``, ``loss``: the layers;
* ``se``, ``blocks``, ``residual``: squeeze-and-excitation, the plain blocks and the
  residual blocks of MobileNet and EfficientNet;
* ``counting``: parameters, MACs and FLOPs from each layer's own shape arithmetic.
"""
from .activations import (HardSigmoid, Hardsigmoid, HardSwish, Hardswish, ReLU, ReLU6, Sigmoid,
                          SiLU, Swish, sigmoid)
from .blocks import Conv2dNormActivation, DepthwiseSeparable, StochasticDepth, make_divisible
from .containers import Chain, Identity, Sequential
from .conv import Conv2d, tf_same_padding
from .counting import LayerCount, Summary, count_flops, count_macs, count_params, summary
from .grad_mode import get_rng, is_grad_enabled, manual_seed, no_grad
from .layers import Dropout, Flatten, GlobalAvgPool2d, Linear
from .loss import CrossEntropyLoss, log_softmax
from .module import Module, Parameter, check_array
from .norm import BatchNorm2d
from .residual import InvertedResidual, InvertedResidualV3, MBConv
from .se import SqueezeExcitation

__all__ = [
    "BatchNorm2d", "Chain", "Conv2d", "Conv2dNormActivation", "CrossEntropyLoss",
    "DepthwiseSeparable", "Dropout", "Flatten", "GlobalAvgPool2d", "HardSigmoid", "Hardsigmoid",
    "HardSwish", "Hardswish", "Identity", "InvertedResidual", "InvertedResidualV3", "LayerCount",
    "Linear", "MBConv", "Module", "Parameter", "ReLU", "ReLU6", "Sequential", "Sigmoid", "SiLU",
    "SqueezeExcitation", "StochasticDepth", "Summary", "Swish", "check_array", "count_flops",
    "count_macs", "count_params", "get_rng", "is_grad_enabled", "log_softmax", "make_divisible",
    "manual_seed", "no_grad", "sigmoid", "summary", "tf_same_padding",
]
