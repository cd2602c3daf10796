"""Folding eval-mode BatchNorm into the convolution before it.

In eval mode BatchNorm is a fixed affine map per channel c::

    bn(z)[c] = gamma[c] * (z[c] - mean[c]) / sqrt(var[c] + eps) + beta[c]
             = s[c] * z[c] + (beta[c] - s[c] * mean[c]),       s = gamma / sqrt(var + eps)

and a convolution is linear in its weight, so with z = W * x + b::

    bn(W * x + b) = (s W) * x + (s (b - mean) + beta)

``fold_bn`` rewrites every conv -> BN pair this way: the conv gets the weight s W
(each output channel's filter scaled) and the bias s (b - mean) + beta, and the BN is
replaced by an ``Identity``. Outputs stay equal up to float rounding; the network
then skips one pass over every activation map (in ``Conv2dNormActivation`` the bias
and the activation are added in one in-place pass, ``tinynets.kernels.norm.bias_act_``).

Only pairs that run one after the other are folded: consecutive children of a
``Chain`` (``Sequential``, ``Conv2dNormActivation``, ``DepthwiseSeparable``, the
models), whose forward runs the children in registration order.
"""
from __future__ import annotations

import copy
from typing import List, Tuple

import numpy as np

from ..nn.containers import Chain, Identity
from ..nn.conv import Conv2d
from ..nn.module import Module, Parameter
from ..nn.norm import BatchNorm2d

__all__ = ["fold_bn", "fold_conv_bn"]


def fold_conv_bn(conv: Conv2d, bn: BatchNorm2d) -> Tuple[np.ndarray, np.ndarray]:
    """The folded (weight, bias) of ``conv`` followed by eval-mode ``bn``.

    Returns
    -------
    weight : (C_out, C_in // groups, KH, KW), bias : (C_out,), both in the conv's dtype.
    The sums are formed in float64 and rounded once.
    """
    if conv.out_channels != bn.num_features:
        raise ValueError(f"fold_conv_bn: {conv!r} has {conv.out_channels} output channels but "
                         f"{bn!r} normalises {bn.num_features}")
    dt = conv.weight.data.dtype
    s = bn.weight.data.astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    b = conv.bias.data.astype(np.float64) if conv.bias is not None else 0.0
    weight = conv.weight.data.astype(np.float64) * s[:, None, None, None]
    bias = s * (b - bn.running_mean.astype(np.float64)) + bn.bias.data.astype(np.float64)
    return weight.astype(dt), bias.astype(dt)


def fold_bn(model: Module) -> Module:
    """A copy of ``model`` for inference with every conv -> BatchNorm pair folded.

    The copy is in eval mode; ``model`` is not changed. Each folded conv carries the
    BN's scale in its weight and its shift in a bias (``<conv>.bias`` in the state
    dict); each folded BN becomes an ``Identity``. The copy can still be run in train
    mode or under gradients, but it no longer has BatchNorm: it is meant for inference.

    Returns
    -------
    the folded copy; ``folded.folded_pairs`` lists the (conv, bn) names that were folded.
    """
    folded = copy.deepcopy(model).eval()
    pairs: List[Tuple[str, str]] = []
    for prefix, parent in list(folded.named_modules()):
        if not isinstance(parent, Chain):
            continue
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = parent._modules[first], parent._modules[second]
            if isinstance(conv, Conv2d) and isinstance(bn, BatchNorm2d):
                weight, bias = fold_conv_bn(conv, bn)
                conv.weight.data[...] = weight
                if conv.bias is None:
                    conv.bias = Parameter(bias)
                else:
                    conv.bias.data[...] = bias
                setattr(parent, second, Identity())
                dot = f"{prefix}." if prefix else ""
                pairs.append((dot + first, dot + second))
    folded.folded_pairs = pairs
    return folded
