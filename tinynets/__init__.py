"""tinynets: MobileNets and EfficientNets by hand in NumPy, with Numba kernels.

Every layer has a ``forward`` and a ``backward`` you can read; there is no autograd.
"""
import ctypes
import os
import sys

# Numba's OpenMP threads otherwise spin after each kernel and fight OpenBLAS's
# threads for the cores: on 2 cores a stem conv took 59 ms instead of 2.7 ms.
# Must be set before the first parallel kernel starts the OpenMP pool.
_OMP_POLICY_SET_HERE = "OMP_WAIT_POLICY" not in os.environ   # the bench undoes it for torch
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks under 32 MB for reuse instead of handing them back to
    the OS: every training step allocates the same activations again, and fresh pages
    must be faulted in and zeroed. MobileNetV2's train step (batch 16, 224): 1.65-2.0 s
    before, 1.1-1.45 s after. Memory that a step freed stays mapped until the process
    ends (``ctypes.CDLL("libc.so.6").malloc_trim(0)`` returns it). TINYNETS_MALLOC=default
    leaves glibc alone."""
    if os.environ.get("TINYNETS_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)               # M_MMAP_THRESHOLD: heap, not mmap, below 32 MB
        libc.mallopt(-1, 2 ** 31 - 1)            # M_TRIM_THRESHOLD: never give the heap top back
    except (OSError, AttributeError):            # not glibc (e.g. musl): nothing to tune
        pass


_keep_freed_memory()
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
from .fold import fold_bn
from . import ema, lr_scheduler, optim
from .io import load_checkpoint, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "BatchNorm2d", "Conv2d", "Conv2dNormActivation", "CrossEntropyLoss", "DepthwiseSeparable",
    "Dropout", "Flatten", "GlobalAvgPool2d", "HardSigmoid", "Hardsigmoid", "Hardswish",
    "HardSwish", "Identity", "InvertedResidual", "InvertedResidualV3", "Linear", "MBConv",
    "Module", "Parameter", "ReLU", "ReLU6", "Sequential", "Sigmoid", "SiLU",
    "SqueezeExcitation", "StochasticDepth", "Swish", "count_flops", "count_macs",
    "count_params", "ema", "fold_bn", "get_rng", "gradcheck", "is_grad_enabled",
    "load_checkpoint", "log_softmax", "lr_scheduler", "make_divisible", "manual_seed", "models",
    "no_grad", "numerical_gradient", "optim", "rel_error", "save_checkpoint", "sigmoid",
    "summary", "tf_same_padding",
]
