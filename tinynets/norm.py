"""``BatchNorm2d``: normalise each channel, then scale and shift.

Forward (per channel c, over the m = N*H*W values of the batch)::

    mu    = mean(x)                 var = mean((x - mu)^2)      # biased, as PyTorch
    x_hat = (x - mu) / sqrt(var + eps)
    y     = gamma * x_hat + beta

Backward (train mode, where mu and var depend on x)::

    dgamma = sum(dy * x_hat)        dbeta = sum(dy)
    dx     = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))

In eval mode mu and var are the running statistics, constants, so
dx = gamma / sqrt(running_var + eps) * dy.

Running statistics follow PyTorch: ``running = (1 - momentum) * running +
momentum * batch``, with the *unbiased* variance (times m / (m - 1)). TensorFlow's
"decay" is 1 - momentum.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .module import Module, Parameter, check_array


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) for each of C channels.

    Parameters
    ----------
    num_features : int      C
    eps : float             added to the variance (1e-5 in PyTorch, 1e-3 in TF ports)
    momentum : float or None
        weight of the new batch in the running statistics; None gives the
        cumulative average over all batches seen (PyTorch's convention).

    Shapes: x (N, C, H, W) -> y (N, C, H, W); weight, bias, running_mean,
    running_var (C,); num_batches_tracked () int64.

    Cache: x_hat (N, C, H, W) and 1/sqrt(var + eps) (C,), in both modes.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=dtype))
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def flops(self, input_shape) -> int:
        return 2 * int(np.prod(input_shape))       # a multiply and an add per value (folded affine)

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, 4, self.num_features)
        N, C, H, W = x.shape
        m = N * H * W
        if self.training:
            if m < 2:
                raise ValueError(f"{self!r}: train mode needs more than one value per channel, "
                                 f"got input shape {x.shape}")
            mean = x.mean(axis=(0, 2, 3))
            xc = x - mean[:, None, None]
            var = np.mean(xc * xc, axis=(0, 2, 3))                     # biased
            self.num_batches_tracked += 1
            f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean *= 1 - f
            self.running_mean += f * mean
            self.running_var *= 1 - f
            self.running_var += (f * m / (m - 1)) * var                 # unbiased
        else:
            xc = x - self.running_mean[:, None, None]
            var = self.running_var
        invstd = 1.0 / np.sqrt(var + self.eps)                          # (C,)
        x_hat = xc * invstd[:, None, None]                              # (N, C, H, W)
        out = x_hat * self.weight.data[:, None, None] + self.bias.data[:, None, None]
        self.keep(x_hat, invstd, self.training)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_hat, invstd, training = self.take()
        check_array(self, dout, 4, self.num_features, what="dout")
        if dout.shape != x_hat.shape:
            raise ValueError(f"{self!r}: dout must have the input's shape {x_hat.shape}, got {dout.shape}")
        dgamma = np.sum(dout * x_hat, axis=(0, 2, 3))
        dbeta = dout.sum(axis=(0, 2, 3))
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        scale = (self.weight.data * invstd)[:, None, None]             # gamma / sqrt(var + eps)
        if not training:
            return dout * scale
        m = dout.size // dout.shape[1]
        return scale * (dout - (dbeta / m)[:, None, None] - x_hat * (dgamma / m)[:, None, None])
