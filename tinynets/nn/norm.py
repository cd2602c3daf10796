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

The NumPy functions ``batch_norm_forward``, ``batch_norm_backward`` and
``update_running_stats`` below are the equations above, line by line (lesson 02).
``BatchNorm2d`` runs the same equations in the Numba kernels of ``tinynets.kernels.norm``
(``tests/test_kernels.py`` checks they agree; ``tests/test_norm_teaching.py`` checks its
running statistics), which can also apply the following activation in the same pass:
``bn(x, activation=act)`` computes ``act(bn(x))`` and its backward, reading and writing
each value once and caching only x.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..kernels import norm as kernels_norm, warm
from .activations import HardSwish, ReLU, ReLU6, SiLU
from .grad_mode import is_grad_enabled
from .module import Module, Parameter, check_array

# activations the kernels can apply in the same pass (codes in tinynets.kernels.norm)
FUSED_ACTIVATIONS = {ReLU: 1, ReLU6: 2, HardSwish: 3, SiLU: 4}


def activation_code(layer: Module, activation: Optional[Module], dtype) -> int:
    """The kernels' code for ``activation`` (0 for None); ``layer`` names the caller in errors."""
    if activation is None:
        return 0
    code = FUSED_ACTIVATIONS.get(type(activation))
    if code is None:
        raise ValueError(f"{layer!r}: can fuse {', '.join(c.__name__ for c in FUSED_ACTIVATIONS)},"
                         f" not {type(activation).__name__}")
    return 5 if code == 4 and dtype == np.float32 else code   # 5: SiLU, vectorised float32 exp


# ------------------------------------------------------------- teaching version
def batch_norm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                       mean: Optional[np.ndarray] = None, var: Optional[np.ndarray] = None):
    """BatchNorm's forward in NumPy, in train or eval mode.

    Parameters
    ----------
    x : (N, C, H, W)
    gamma, beta : (C,)      the learned scale and shift
    eps : float             added to the variance
    mean, var : (C,) or None
        None (train mode): use the batch's statistics, per channel over the m = N*H*W
        values of axes (0, 2, 3): mean = sum(x) / m and the *biased* variance
        var = sum((x - mean)^2) / m. Given (eval mode): use these (the running
        statistics) as they are.

    Returns
    -------
    y : (N, C, H, W)        gamma * x_hat + beta, with x_hat = (x - mean) / sqrt(var + eps)
    cache : (x_hat, invstd)  x_hat (N, C, H, W) and invstd = 1 / sqrt(var + eps) (C,):
                            what ``batch_norm_backward`` needs
    mean, var : (C,)        the statistics used (the batch's, or the given ones)
    """
    ### BEGIN SOLUTION A2.batchnorm_forward
    if mean is None:
        mean = x.mean(axis=(0, 2, 3))                                   # (C,)
        var = np.mean((x - mean[:, None, None]) ** 2, axis=(0, 2, 3))   # biased
    invstd = 1.0 / np.sqrt(var + eps)                                   # (C,)
    x_hat = (x - mean[:, None, None]) * invstd[:, None, None]           # (N, C, H, W)
    return x_hat * gamma[:, None, None] + beta[:, None, None], (x_hat, invstd), mean, var
    ### END SOLUTION


def batch_norm_backward(dout: np.ndarray, cache, gamma: np.ndarray, training: bool):
    """Backward of ``batch_norm_forward``.

    Parameters
    ----------
    dout : (N, C, H, W)     dL/dy
    cache : (x_hat, invstd)  as ``batch_norm_forward`` returned it
    gamma : (C,)
    training : bool         True if the forward used the batch's statistics (train mode:
                            they depend on x), False if it was given them (eval mode)

    Returns
    -------
    dx : (N, C, H, W), dgamma : (C,), dbeta : (C,), with sums and means over axes (0, 2, 3)::

        dgamma = sum(dout * x_hat)            dbeta = sum(dout)
        eval:  dx = gamma * invstd * dout
        train: dx = gamma * invstd * (dout - mean(dout) - x_hat * mean(dout * x_hat))
    """
    ### BEGIN SOLUTION A2.batchnorm_backward
    x_hat, invstd = cache
    dgamma = np.sum(dout * x_hat, axis=(0, 2, 3))
    dbeta = dout.sum(axis=(0, 2, 3))
    scale = (gamma * invstd)[:, None, None]                             # gamma / sqrt(var + eps)
    if not training:
        return dout * scale, dgamma, dbeta
    m = dout.size // dout.shape[1]
    return scale * (dout - (dbeta / m)[:, None, None] - x_hat * (dgamma / m)[:, None, None]), dgamma, dbeta
    ### END SOLUTION


def update_running_stats(running_mean: np.ndarray, running_var: np.ndarray,
                         num_batches_tracked: int, mean: np.ndarray, var: np.ndarray, m: int,
                         momentum: Optional[float]):
    """The running statistics after one train-mode batch, updated as PyTorch does.

    Parameters
    ----------
    running_mean, running_var : (C,)  before this batch (not changed: return new arrays)
    num_batches_tracked : int         batches seen before this one
    mean, var : (C,)                  this batch's mean and *biased* variance (what
                                      ``batch_norm_forward`` returns in train mode)
    m : int                           values per channel in the batch, N*H*W (at least 2)
    momentum : float or None          the weight of the new batch; None: the cumulative
                                      average, every batch so far weighted equally

    Returns
    -------
    running_mean, running_var : (C,), num_batches_tracked : int, where, with
    t = num_batches_tracked + 1 and f = momentum (or 1 / t if momentum is None)::

        running_mean = (1 - f) * running_mean + f * mean
        running_var  = (1 - f) * running_var + f * var * m / (m - 1)     # unbiased variance
        num_batches_tracked = t
    """
    ### BEGIN SOLUTION A2.running_stats
    t = num_batches_tracked + 1
    f = 1.0 / t if momentum is None else momentum
    unbiased = var * (m / (m - 1))
    return (1 - f) * running_mean + f * mean, (1 - f) * running_var + f * unbiased, t
    ### END SOLUTION


def _backward_kernels() -> list:
    """The Numba kernels ``BatchNorm2d.backward`` runs (``kernels/warm.py`` compiles them ahead)."""
    return [("norm", name) for name in kernels_norm.BACKWARD]


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

    ``forward(x, activation=None)``: with a ReLU, ReLU6, HardSwish or SiLU module
    it returns activation(bn(x)) from one fused pass, and ``backward`` then takes
    the gradient w.r.t. the activation's output (the activation module is not run;
    its forward pre-hooks are, with the pre-activation bn(x)).

    Cache: x, the mean and 1/sqrt(var + eps) used (C,), scale and shift (C,).
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

    def _statistics(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Train: the batch's mean and biased variance, updating the running ones. Eval: those."""
        if not self.training:
            return self.running_mean, self.running_var
        N, C, H, W = x.shape
        m = N * H * W
        if m < 2:
            raise ValueError(f"{self!r}: train mode needs more than one value per channel, "
                             f"got input shape {x.shape}")
        mean, var = kernels_norm.bn_stats(x)                                # float64 (C,)
        self.num_batches_tracked += 1
        f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean[...] = (1 - f) * self.running_mean + f * mean
        self.running_var[...] = (1 - f) * self.running_var + (f * m / (m - 1)) * var   # unbiased
        return mean, var

    def forward(self, x: np.ndarray, activation: Optional[Module] = None) -> np.ndarray:
        check_array(self, x, 4, self.num_features)
        code = activation_code(self, activation, x.dtype)
        dt = x.dtype.type
        if self.training and is_grad_enabled():
            warm.expect(("bn", x.dtype.str), _backward_kernels, x.dtype)
        mean, var = self._statistics(x)
        invstd = 1.0 / np.sqrt(np.asarray(var, np.float64) + self.eps)               # (C,)
        scale = self.weight.data * invstd                                           # (C,)
        shift = self.bias.data - mean * scale
        mean, invstd, scale, shift = (a.astype(dt) for a in (mean, invstd, scale, shift))
        x = np.ascontiguousarray(x)
        if activation is not None and activation._forward_pre_hooks:   # e.g. gradcheck's kink
            activation.run_forward_pre_hooks(x * scale[:, None, None] + shift[:, None, None])  # watch
        out = kernels_norm.bn_act_forward(x, scale, shift, code, kernels_norm.act_constants(dt))
        self.keep(x, mean, invstd, scale, shift, code, self.training)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x, mean, invstd, scale, shift, code, training = self.take()
        check_array(self, dout, 4, self.num_features, what="dout")
        if dout.shape != x.shape:
            raise ValueError(f"{self!r}: dout must have the input's shape {x.shape}, got {dout.shape}")
        k = kernels_norm.act_constants(x.dtype)
        dout = np.ascontiguousarray(dout, dtype=x.dtype)
        warm.ready(("bn", x.dtype.str))                  # the helper compiled its kernels
        dbeta, dgamma = kernels_norm.bn_act_backward_sums(dout, x, scale, shift, mean, invstd, code, k)
        self.weight.grad += dgamma.astype(x.dtype)
        self.bias.grad += dbeta.astype(x.dtype)
        if training:                                      # mean and var depended on x
            m = dout.size // dout.shape[1]
            q, r = -scale * (dbeta / m), -scale * invstd * (dgamma / m)
        else:
            q = r = np.zeros_like(scale)
        return kernels_norm.bn_act_backward_input(dout, x, scale, shift, mean, q.astype(x.dtype),
                                             r.astype(x.dtype), code, k)
