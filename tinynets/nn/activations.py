"""Element-wise activations, each with its derivative beside it.

=============  =========================  ===========================================
layer          y = f(x)                   f'(x) (value at a kink as in PyTorch)
=============  =========================  ===========================================
ReLU           max(x, 0)                  1 if x > 0 else 0
ReLU6          min(max(x, 0), 6)          1 if 0 < x < 6 else 0
Sigmoid        1 / (1 + e^-x)             y (1 - y)
HardSigmoid    ReLU6(x + 3) / 6           1/6 if -3 < x < 3 else 0
SiLU (swish)   x sigmoid(x)               s (1 + x (1 - s)),  s = sigmoid(x)
HardSwish      x ReLU6(x + 3) / 6         piece by piece (lesson 02); 0 at -3, 1 at 3
=============  =========================  ===========================================

Shapes: any; y and dx have the shape and dtype of x. Cache: what f' needs (x or y),
stored by ``forward`` with ``self.keep(...)`` and taken back by ``backward`` with
``self.take()``, which returns the tuple that was kept.
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
    """min(max(x, 0), 6) (MobileNetV2); ``torch.nn.ReLU6``."""

    flops_per_element = 2
    kinks = (0.0, 6.0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = min(max(x, 0), 6) element-wise, same shape and dtype as x; cache x for backward
        with ``self.keep(x)``."""
        self._check(x)
        ### BEGIN SOLUTION A2.relu6
        self.keep(x)
        return np.clip(x, 0, 6)
        ### END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * f'(x), f'(x) = 1 if 0 < x < 6 else 0 (0 at both kinks, as PyTorch).
        ``(x,) = self.take()`` gives back the cache; check dout with
        ``self._check_dout(dout, x)``."""
        ### BEGIN SOLUTION A2.relu6
        (x,) = self.take()
        self._check_dout(dout, x)
        return dout * ((x > 0) & (x < 6))
        ### END SOLUTION


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

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = ReLU6(x + 3) / 6 = min(max(x / 6 + 1/2, 0), 1) element-wise, same shape and
        dtype as x; cache x for backward with ``self.keep(x)``."""
        self._check(x)
        ### BEGIN SOLUTION A2.hardsigmoid
        self.keep(x)
        return np.clip(x / 6 + 0.5, 0, 1)
        ### END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * f'(x), f'(x) = 1/6 if -3 < x < 3 else 0 (0 at both kinks, as PyTorch).
        ``(x,) = self.take()`` gives back the cache; check dout with
        ``self._check_dout(dout, x)``."""
        ### BEGIN SOLUTION A2.hardsigmoid
        (x,) = self.take()
        self._check_dout(dout, x)
        return dout * ((x > -3) & (x < 3)) / 6
        ### END SOLUTION


class SiLU(Activation):
    """Swish with beta = 1: x * sigmoid(x) (EfficientNet)."""

    flops_per_element = 5

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = x * sigmoid(x) element-wise, same shape and dtype as x, finite for every
        finite x (use ``sigmoid`` above, which never overflows); cache x and s = sigmoid(x)
        for backward with ``self.keep(x, s)``."""
        self._check(x)
        ### BEGIN SOLUTION A2.silu
        s = sigmoid(x)
        self.keep(x, s)
        return x * s
        ### END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * s * (1 + x * (1 - s)), with x and s = sigmoid(x) from ``self.take()``;
        check dout with ``self._check_dout(dout, x)``."""
        ### BEGIN SOLUTION A2.silu
        x, s = self.take()
        self._check_dout(dout, x)
        return dout * s * (1 + x * (1 - s))
        ### END SOLUTION


class HardSwish(Activation):
    """x * ReLU6(x + 3) / 6 (MobileNetV3); ``torch.nn.Hardswish``."""

    flops_per_element = 5
    kinks = (-3.0, 3.0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = x * ReLU6(x + 3) / 6 element-wise, same shape and dtype as x; cache x for
        backward with ``self.keep(x)``."""
        self._check(x)
        ### BEGIN SOLUTION A2.hardswish
        self.keep(x)
        return x * np.clip(x + 3, 0, 6) / 6
        ### END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * f'(x), same dtype as x, where f'(x) is the derivative of
        f(x) = x * ReLU6(x + 3) / 6 on each of its three pieces x < -3, -3 < x < 3, x > 3
        (lesson 02, Try it 3). At the kinks, PyTorch's convention: the outer piece,
        f'(-3) = 0 and f'(3) = 1. ``(x,) = self.take()`` gives back the cache; check dout
        with ``self._check_dout(dout, x)``."""
        ### BEGIN SOLUTION A2.hardswish
        (x,) = self.take()
        self._check_dout(dout, x)
        slope = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype, copy=False)
        return dout * slope
        ### END SOLUTION


Swish = SiLU
Hardsigmoid, Hardswish = HardSigmoid, HardSwish        # PyTorch's spellings
