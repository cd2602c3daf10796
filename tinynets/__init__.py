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
    "no_grad", "numerical_gradient", "optim", "rel_error", "save_checkpoint", "sigmoid",
    "summary", "tf_same_padding", "tools",
]
