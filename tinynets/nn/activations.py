"""Element-wise activations, each with its derivative beside it.

=============  =========================  ===========================================
layer          y = f(x)                   f'(x) (value at a kink as in PyTorch)
=============  =========================  ===========================================
ReLU           max(x, 0)                  1 if x > 0 else 0
ReLU6          min(max(x, 0), 6)          1 if 0 < x < 6 else 0
Sigmoid        1 / (1 + e^-x)             y (1 - y)
HardSigmoid    ReLU6(x + 3) / 6           1/6 if -3 < x < 3 else 0
SiLU (swish)   x sigmoid(x)               s (1 + x (1 - s)),  s = sigmoid(x)
HardSwish      x ReLU6(x + 3) / 6         0 if x <= -3, x/3 + 1/2 if x < 3, else 1
=============  =========================  ===========================================

Shapes: any; y and dx have the shape of x. Cache: what f' needs (x or y).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .module import Module, check_array


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow: only e^-|x| <= 1 is ever computed."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Activation(Module):
    """Shared input check and op count; subclasses write ``forward`` and ``backward``."""

    flops_per_element = 1       # our convention, per class below (see tinynets/nn/counting.py)
    kinks: Tuple[float, ...] = ()   # inputs where the derivative jumps (gradcheck avoids them)

    def flops(self, input_shape) -> int:
        return self.flops_per_element * int(np.prod(input_shape))

    def _check(self, x: np.ndarray, what: str = "input") -> None:
        check_array(self, x, None, what=what)

    def _check_dout(self, dout: np.ndarray, like: np.ndarray) -> None:
        self._check(dout, "dout")
        if dout.shape != like.shape:
            raise ValueError(f"{self!r}: dout must have the input's shape {like.shape}, got {dout.shape}")


class ReLU(Activation):
    kinks = (0.0,)

    def forward(self, x):
        self._check(x)
        out = np.maximum(x, 0)
        self.keep(out)
        return out

    def backward(self, dout):
        (out,) = self.take()
        self._check_dout(dout, out)
        return dout * (out > 0)


class ReLU6(Activation):
    flops_per_element = 2
    kinks = (0.0, 6.0)

    def forward(self, x):
        self._check(x)
        self.keep(x)
        return np.clip(x, 0, 6)

    def backward(self, dout):
        (x,) = self.take()
        self._check_dout(dout, x)
        return dout * ((x > 0) & (x < 6))


class Sigmoid(Activation):
    flops_per_element = 4

    def forward(self, x):
        self._check(x)
        out = sigmoid(x)
        self.keep(out)
        return out

    def backward(self, dout):
        (out,) = self.take()
        self._check_dout(dout, out)
        return dout * out * (1 - out)


class HardSigmoid(Activation):
    """Piece-wise linear sigmoid (MobileNetV3's SE gate); ``torch.nn.Hardsigmoid``."""

    flops_per_element = 4
    kinks = (-3.0, 3.0)

    def forward(self, x):
        self._check(x)
        self.keep(x)
        return np.clip(x / 6 + 0.5, 0, 1)

    def backward(self, dout):
        (x,) = self.take()
        self._check_dout(dout, x)
        return dout * ((x > -3) & (x < 3)) / 6


class SiLU(Activation):
    """Swish with beta = 1: x * sigmoid(x) (EfficientNet)."""

    flops_per_element = 5

    def forward(self, x):
        self._check(x)
        s = sigmoid(x)
        self.keep(x, s)
        return x * s

    def backward(self, dout):
        x, s = self.take()
        self._check_dout(dout, x)
        return dout * s * (1 + x * (1 - s))


class HardSwish(Activation):
    """x * ReLU6(x + 3) / 6 (MobileNetV3); ``torch.nn.Hardswish``."""

    flops_per_element = 5
    kinks = (-3.0, 3.0)

    def forward(self, x):
        self._check(x)
        self.keep(x)
        return x * np.clip(x + 3, 0, 6) / 6

    def backward(self, dout):
        (x,) = self.take()
        self._check_dout(dout, x)
        slope = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype, copy=False)
        return dout * slope


Swish = SiLU
Hardsigmoid, Hardswish = HardSigmoid, HardSwish        # PyTorch's spellings
