"""The small layers around the convolutions: Linear, pooling, flatten, dropout."""
from __future__ import annotations

import math

import numpy as np

from ..kernels import channels
from .grad_mode import get_rng
from .module import Module, Parameter, check_array


class Linear(Module):
    """y = x W^T + b, exactly ``torch.nn.Linear``.

    Shapes: x (N, *, in_features) -> y (N, *, out_features), any leading axes (often just N);
    weight (out, in); bias (out,).
    Backward, with x and dy flattened to (M, in) and (M, out): dW += dy^T x, db += sum_m dy,
    dx = dy W.  Cache: x.
    Initialisation as PyTorch: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        rng = get_rng()
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype)) if bias else None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def _check(self, x: np.ndarray, features: int, what: str) -> None:
        check_array(self, x, None, what=what)
        if x.ndim < 1 or x.shape[-1] != features:
            raise ValueError(f"{self!r}: expected {what} of shape (N, *, {features}), got {x.shape}")

    def output_shape(self, input_shape):
        if len(input_shape) < 1 or input_shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input shape (N, *, {self.in_features}), "
                             f"got {tuple(input_shape)}")
        return tuple(input_shape[:-1]) + (self.out_features,)

    def macs(self, input_shape) -> int:
        return math.prod(input_shape[:-1]) * self.in_features * self.out_features

    def flops(self, input_shape) -> int:
        rows = math.prod(input_shape[:-1])
        return 2 * self.macs(input_shape) + (rows * self.out_features if self.bias is not None else 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x, self.in_features, "input")
        self.keep(x)
        out = x @ self.weight.data.T                        # (N, *, out)
        if self.bias is not None:
            out += self.bias.data
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (x,) = self.take()
        self._check(dout, self.out_features, "dout")
        if dout.shape[:-1] != x.shape[:-1]:
            raise ValueError(f"{self!r}: dout must have the output's shape "
                             f"{x.shape[:-1] + (self.out_features,)}, got {dout.shape}")
        d2 = dout.reshape(-1, self.out_features)            # (M, out)
        self.weight.grad += d2.T @ x.reshape(-1, self.in_features)   # (out, in)
        if self.bias is not None:
            self.bias.grad += d2.sum(axis=0)
        return dout @ self.weight.data                      # (N, *, in)


class GlobalAvgPool2d(Module):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1), as ``nn.AdaptiveAvgPool2d(1)``.

    Backward spreads each gradient evenly: dx = dy / (H*W). Cache: the input shape.

    ``kernel=True`` takes the mean with ``tinynets.kernels.channels.mean`` (float32: a
    parallel pass, 3.5x NumPy's speed on (16, 144, 56, 56), at the cost of one compile of
    about 0.4 s on an empty cache). ``SqueezeExcitation``'s pooling does, on maps up to
    112x112; a classifier head pools a 7x7 map, where it would save about 0.4 ms of a
    0.6 s train step at batch 16, so by default it does not (MobileNetV1 and V2 compile
    nothing for it).
    """

    def __init__(self, kernel: bool = False):
        super().__init__()
        self.kernel = kernel

    def output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (1, 1)

    def flops(self, input_shape) -> int:
        return int(np.prod(input_shape))                    # one add per input value

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, 4)
        self.keep(x.shape)
        if self.kernel:
            return channels.mean(x)                         # = x.mean(axis=(2, 3), keepdims=True)
        return x.mean(axis=(2, 3), keepdims=True)

    def backward(self, dout: np.ndarray, spread: bool = True) -> np.ndarray:
        """dx (N, C, H, W) = dy / (H*W) broadcast over H, W. ``spread=False`` returns the
        (N, C, 1, 1) value dy / (H*W) that every pixel of a plane gets, without writing it
        H*W times, for a caller that adds it to its own gradient in one pass
        (``SqueezeExcitation``)."""
        (shape,) = self.take()
        N, C, H, W = shape
        if dout.shape != (N, C, 1, 1):
            raise ValueError(f"{self!r}: dout must have shape {(N, C, 1, 1)}, got {dout.shape}")
        g = dout / (H * W)
        return np.broadcast_to(g, shape).copy() if spread else g


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...); backward reshapes back. Cache: the input shape."""

    def output_shape(self, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:])))

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, None)
        if x.ndim < 2:
            raise ValueError(f"{self!r}: expected at least 2-D input (N, ...), got shape {x.shape}")
        self.keep(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (shape,) = self.take()
        return dout.reshape(shape)


class Dropout(Module):
    """Inverted dropout: in training, zero each value with probability p and scale
    the rest by 1/(1-p), so eval mode is the identity (p = 1 zeroes everything, as in
    PyTorch). Cache: the scaled mask (train only; None when the layer is the identity).

    ``StochasticDepth`` (nn/blocks.py) is the same idea with one draw per sample instead
    of per value, written out in its own forward and backward.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def _keep_mask(self, x: np.ndarray) -> np.ndarray:
        """True where a value is kept, broadcastable to x."""
        return get_rng().random(x.shape, dtype=x.dtype) >= self.p

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, None)
        if not self.training or self.p == 0:
            self.keep(None)
            return x
        mask = self._keep_mask(x).astype(x.dtype)
        if self.p < 1:
            mask /= x.dtype.type(1 - self.p)     # keeps E[y] = x, so eval needs no rescale
        self.keep(mask)
        return x * mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (mask,) = self.take()
        return dout if mask is None else dout * mask
