"""tinynets: MobileNets and EfficientNets by hand in NumPy, with Numba kernels.

Every layer has a ``forward`` and a ``backward`` you can read; there is no autograd.
The subpackages, from the idea to the plumbing:

* ``nn``: the module protocol, layers and blocks (what the lessons teach);
* ``kernels``: the Numba kernels beside their plain-NumPy teaching versions;
* ``models``: MobileNetV1/V2/V3 and EfficientNet, and their pretrained weights;
* ``optim``: optimizers, schedules, weight EMA;
* ``data``, ``training``: data sets, loader, augmentation; the trainer;
* ``io``: checkpoint files without torch;
* ``tools``: gradcheck, BatchNorm folding, classify, the command line;
* ``bench``: the benchmark harness (not imported here).

The common names are re-exported here: ``tinynets.Conv2d``, ``tinynets.gradcheck``, ...
"""
from . import runtime

runtime.apply()                 # the process-wide settings, all in runtime.py
from . import io, models, nn, optim, tools
from .io import load_checkpoint, save_checkpoint
from .nn import (BatchNorm2d, Conv2d, Conv2dNormActivation, CrossEntropyLoss, DepthwiseSeparable,
                 Dropout, Flatten, GlobalAvgPool2d, HardSigmoid, Hardsigmoid, HardSwish, Hardswish,
                 Identity, InvertedResidual, InvertedResidualV3, Linear, MBConv, Module, Parameter,
                 ReLU, ReLU6, Sequential, Sigmoid, SiLU, SqueezeExcitation, StochasticDepth, Swish,
                 count_flops, count_macs, count_params, get_rng, is_grad_enabled, log_softmax,
                 make_divisible, manual_seed, no_grad, sigmoid, summary, tf_same_padding)
from .tools import fold_bn, gradcheck, numerical_gradient, rel_error

__version__ = "0.1.0"

__all__ = [
    "BatchNorm2d", "Conv2d", "Conv2dNormActivation", "CrossEntropyLoss", "DepthwiseSeparable",
    "Dropout", "Flatten", "GlobalAvgPool2d", "HardSigmoid", "Hardsigmoid", "Hardswish",
    "HardSwish", "Identity", "InvertedResidual", "InvertedResidualV3", "Linear", "MBConv",
    "Module", "Parameter", "ReLU", "ReLU6", "Sequential", "Sigmoid", "SiLU",
    "SqueezeExcitation", "StochasticDepth", "Swish", "count_flops", "count_macs",
    "count_params", "fold_bn", "get_rng", "gradcheck", "io", "is_grad_enabled",
    "load_checkpoint", "log_softmax", "make_divisible", "manual_seed", "models", "nn",
    "no_grad", "numerical_gradient", "optim", "rel_error", "runtime", "save_checkpoint",
    "sigmoid", "summary", "tf_same_padding", "tools",
]
