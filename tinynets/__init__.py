"""tinynets: MobileNets and EfficientNets by hand in NumPy, with Numba kernels.

Every layer has a ``forward`` and a ``backward`` you can read; there is no autograd.
"""
import os

# Numba's OpenMP threads otherwise spin after each kernel and fight OpenBLAS's
# threads for the cores: on 2 cores a stem conv took 59 ms instead of 2.7 ms.
# Must be set before the first parallel kernel starts the OpenMP pool.
_OMP_POLICY_SET_HERE = "OMP_WAIT_POLICY" not in os.environ   # the bench undoes it for torch
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from .activations import (HardSigmoid, Hardsigmoid, HardSwish, Hardswish, ReLU, ReLU6, Sigmoid,
                          SiLU, Swish, sigmoid)
from .conv import Conv2d, tf_same_padding
from .counting import count_flops, count_macs, count_params, summary
from .gradcheck import gradcheck, numerical_gradient, rel_error
from .layers import Dropout, Flatten, GlobalAvgPool2d, Linear
from .loss import CrossEntropyLoss, log_softmax
from .module import (Identity, Module, Parameter, Sequential, get_rng, is_grad_enabled,
                     manual_seed, no_grad)
from .norm import BatchNorm2d
from .se import SqueezeExcitation
from .blocks import (Conv2dNormActivation, DepthwiseSeparable, InvertedResidual,
                     InvertedResidualV3, MBConv, StochasticDepth, make_divisible)
from . import models
from . import ema, lr_scheduler, optim

__version__ = "0.1.0"

__all__ = [
    "BatchNorm2d", "Conv2d", "Conv2dNormActivation", "DepthwiseSeparable", "InvertedResidual",
    "InvertedResidualV3", "MBConv", "SqueezeExcitation", "StochasticDepth", "make_divisible", "models", "count_flops", "count_macs", "count_params", "summary", "CrossEntropyLoss", "Dropout", "Flatten", "GlobalAvgPool2d",
    "HardSigmoid", "Hardsigmoid", "HardSwish", "Hardswish", "Identity", "Linear", "Module",
    "Parameter", "ReLU", "ReLU6", "Sequential", "Sigmoid", "SiLU", "Swish", "get_rng",
    "gradcheck", "is_grad_enabled", "log_softmax", "manual_seed", "no_grad",
    "numerical_gradient", "rel_error", "sigmoid", "tf_same_padding",
]
