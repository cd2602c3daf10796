"""The building blocks of MobileNetV1/V2/V3 and EfficientNet, with forward and backward.

=======================  ==============================================  ==============
block                    branch                                          residual
=======================  ==============================================  ==============
Conv2dNormActivation     conv (no bias) -> BN -> activation              no
DepthwiseSeparable (V1)  dw3x3-BN-act -> pw1x1-BN-act                    no
InvertedResidual (V2)    [1x1 expand] -> dw -> 1x1 linear project        s=1, in == out
InvertedResidualV3       [1x1 expand] -> dw k x k -> [SE] -> project     s=1, in == out
MBConv (EfficientNet)    [1x1 expand] -> dw k x k -> [SE] -> project     + stochastic depth
=======================  ==============================================  ==============

This file has the plain blocks, stochastic depth and ``make_divisible``; the three
residual blocks, made of them, are in ``residual.py``. Attribute names follow
torchvision, so state_dict keys match theirs.
"""
from __future__ import annotations

from typing import List, Optional, Type

import numpy as np

from .activations import ReLU6
from .conv import Conv2d
from .layers import Dropout
from ..kernels import norm as kernels_norm
from .containers import Chain, Identity, Sequential
from .grad_mode import get_rng, is_grad_enabled
from .module import Module, check_array
from .norm import FUSED_ACTIVATIONS, BatchNorm2d, activation_code


def make_divisible(v: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (torchvision's ``_make_divisible``).

    Rounds to the nearest multiple (halves up), at least ``min_value``, and adds one
    more ``divisor`` if rounding lost over 10% of ``v``: 11.2 -> 16, 17.6 -> 16, 18 -> 24.
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class Conv2dNormActivation(Sequential):
    """Conv2d (bias=False, BN follows) -> BatchNorm2d -> activation, keys ``.0``, ``.1``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, groups : as ``Conv2d``
    norm_eps, norm_momentum : BatchNorm settings (torchvision: 1e-5/0.1 or 1e-3/0.01)
    activation : Module class or None (None: a linear conv + BN, e.g. a projection)
    padding : None (symmetric (k-1)//2, as torchvision) or any ``Conv2d`` padding, e.g.
              'tf_same' (TensorFlow's SAME, for ported TensorFlow weights)

    Shapes: (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, norm_eps: float = 1e-5, norm_momentum: float = 0.1,
                 activation: Optional[Type[Module]] = ReLU6, padding=None, dtype=np.float32):
        layers: List[Module] = [
            Conv2d(in_channels, out_channels, kernel_size, stride,
                   padding=(kernel_size - 1) // 2 if padding is None else padding, groups=groups,
                   bias=False, dtype=dtype),
            BatchNorm2d(out_channels, eps=norm_eps, momentum=norm_momentum, dtype=dtype)]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)

    def _fusable(self) -> bool:
        """BN and activation run as one kernel while the block is still conv -> BN ->
        [activation], with an activation the kernels know whose forward is not replaced on
        the instance (its forward pre-hooks, e.g. gradcheck's kink watch, still run: BN
        calls them). After ``fold_bn`` (the conv has the bias and ``self[1]`` is an
        Identity; any other module there must run) the folded kernel works in place, so it
        is taken only where no backward can follow and nothing watches the activation."""
        if len(self) not in (2, 3):
            return False
        act = self[2] if len(self) == 3 else None
        if act is not None and (type(act) not in FUSED_ACTIVATIONS or "forward" in act.__dict__):
            return False
        if isinstance(self[1], BatchNorm2d):
            return True
        return (type(self[1]) is Identity and isinstance(self[0], Conv2d) and self[0].bias is not None
                and not is_grad_enabled() and not (act is not None and act._forward_pre_hooks))

    def forward(self, x: np.ndarray) -> np.ndarray:
        fused = self._fusable()
        self.fused = fused                              # which path the last forward took
        self.keep(fused)                                # backward takes the path forward took
        if not fused:
            return super().forward(x)
        act = self[2] if len(self) > 2 else None
        if isinstance(self[1], BatchNorm2d):
            return self[1](self[0](x), activation=act)  # conv, then BN + activation in one pass
        out = self[0].convolve(x)                       # folded BN: the conv has its scale and bias,
        code = activation_code(self, act, out.dtype)    # added with the activation in one pass
        kernels_norm.bias_act_(out, self[0].bias.data, code, kernels_norm.act_constants(out.dtype))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (fused,) = self.take()
        if not fused:
            return super().backward(dout)
        return self[0].backward(self[1].backward(dout))


class DepthwiseSeparable(Chain):
    """MobileNetV1's block: dw3x3 (stride) + BN + act, then pw1x1 + BN + act.

    Keys as timm's ``DepthwiseSeparableConv``: ``conv_dw``, ``bn1``, ``conv_pw``, ``bn2``.
    A plain chain: children run in registration order, and the default ``profile`` applies.
    Shapes: (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 activation: Type[Module] = ReLU6, norm_eps: float = 1e-5, norm_momentum: float = 0.1,
                 dtype=np.float32):
        """Register six children, in this order (it is the order they run in):

        ``conv_dw`` Conv2d(in, in, 3, stride, padding=1, groups=in, bias=False): depthwise;
        ``bn1`` BatchNorm2d(in, norm_eps, norm_momentum); ``act1`` an ``activation()``;
        ``conv_pw`` Conv2d(in, out, 1, bias=False): pointwise, stride 1;
        ``bn2`` BatchNorm2d(out, norm_eps, norm_momentum); ``act2`` an ``activation()``.
        Every layer gets ``dtype``. state_dict: ``conv_dw.weight`` (in, 1, 3, 3),
        ``bn1.*`` (in,), ``conv_pw.weight`` (out, in, 1, 1), ``bn2.*`` (out,).
        """
        super().__init__()
        ### BEGIN SOLUTION A3.depthwise_separable
        self.conv_dw = Conv2d(in_channels, in_channels, 3, stride, padding=1, groups=in_channels,
                              bias=False, dtype=dtype)
        self.bn1 = BatchNorm2d(in_channels, norm_eps, norm_momentum, dtype=dtype)
        self.act1 = activation()
        self.conv_pw = Conv2d(in_channels, out_channels, 1, bias=False, dtype=dtype)
        self.bn2 = BatchNorm2d(out_channels, norm_eps, norm_momentum, dtype=dtype)
        self.act2 = activation()
        ### END SOLUTION


class StochasticDepth(Dropout):
    """Drop a residual branch per sample (Huang et al. 2016), ``torchvision.ops.StochasticDepth``.

    Train mode: y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) of shape (N, 1, 1, 1)
    ("row": one draw per sample) or (1, 1, 1, 1) ("batch"); eval mode or p == 0: y = x.
    Backward multiplies by the same mask: it is ``Dropout`` with another mask shape,
    written out here. Cache: the scaled mask (None when identity).
    """

    def __init__(self, p: float, mode: str = "row"):
        super().__init__(p)
        if mode not in ("row", "batch"):
            raise ValueError(f"StochasticDepth: mode must be 'row' or 'batch', got {mode!r}")
        self.mode = mode

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, ...) -> y, x's shape and dtype: x * keep / (1 - p) in train mode, x itself
        (``self.keep(None)``) in eval mode or when p == 0.

        keep = ``get_rng().random(size) < 1 - p`` (tinynets' generator, so ``manual_seed``
        repeats it), size (N, 1, ..., 1) in "row" mode (one draw per sample) or (1, ..., 1)
        in "batch" mode, x.ndim axes either way. scaled = keep as x's dtype, divided by
        (1 - p) when p < 1 (p == 1: y = 0). ``self.keep(scaled)``; return ``x * scaled``.
        """
        check_array(self, x, None)
        ### BEGIN SOLUTION A4.stochastic_depth
        if not self.training or self.p == 0:
            self.keep(None)
            return x
        size = (x.shape[0],) + (1,) * (x.ndim - 1) if self.mode == "row" else (1,) * x.ndim
        scaled = (get_rng().random(size) < 1.0 - self.p).astype(x.dtype)
        if self.p < 1:
            scaled /= x.dtype.type(1 - self.p)      # E[y] = x, so eval mode needs no rescale
        self.keep(scaled)
        return x * scaled
        ### END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * the scaled mask that forward kept (``(scaled,) = self.take()``), or
        dout itself when forward was the identity (the cache holds None). Shape of dout."""
        ### BEGIN SOLUTION A4.stochastic_depth
        (scaled,) = self.take()
        return dout if scaled is None else dout * scaled
        ### END SOLUTION
