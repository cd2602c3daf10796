"""The residual blocks: InvertedResidual (MobileNetV2), InvertedResidualV3 (V3's bneck)
and MBConv (EfficientNet), each ``y = x + branch(x)`` when the shapes allow.

A residual block's backward adds the two paths: ``dx = dout + branch.backward(dout)``.
Counting: a residual add is a row with 1 FLOP per value and no MACs
(tinynets/nn/counting.py). Attribute names follow torchvision (``conv`` in V2, ``block``
and ``stochastic_depth`` in V3 and EfficientNet), so state_dict keys match theirs.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Type

import numpy as np

from .activations import HardSigmoid, ReLU, ReLU6, Sigmoid, SiLU
from .blocks import Conv2dNormActivation, StochasticDepth, _join, make_divisible
from .containers import Sequential
from .conv import Conv2d
from .counting import LayerCount
from .module import Module
from .norm import BatchNorm2d
from .se import SqueezeExcitation


class _ResidualBlock(Module):
    """y = x + drop(branch(x)) when ``use_res_connect``, else y = branch(x).

    Subclasses set ``self.<branch_name>`` (a Sequential), ``use_res_connect``, and
    optionally ``self.stochastic_depth``.
    """

    branch_name = "block"
    use_res_connect = False

    def _branch(self) -> Module:
        return self._modules[self.branch_name]

    def _drop(self) -> Optional[Module]:
        return self._modules.get("stochastic_depth")

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self._branch()(x)
        if self.use_res_connect:
            if self._drop() is not None:
                out = self._drop()(out)
            out = out + x
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if not self.use_res_connect:
            return self._branch().backward(dout)
        d_branch = self._drop().backward(dout) if self._drop() is not None else dout
        return dout + self._branch().backward(d_branch)   # the skip path passes dout unchanged

    def profile(self, input_shape, prefix: str = "") -> Tuple[Tuple[int, ...], List[LayerCount]]:
        """The branch's rows, then (residual blocks only) stochastic depth and the add."""
        shape, rows = self._branch().profile(input_shape, _join(prefix, self.branch_name))
        if self.use_res_connect:
            if self._drop() is not None:
                rows += self._drop().profile(shape, _join(prefix, "stochastic_depth"))[1]
            rows.append(LayerCount(_join(prefix, "add"), "ResidualAdd", shape, 0, 0,
                                   int(np.prod(shape))))
        return shape, rows


class InvertedResidual(_ResidualBlock):
    """MobileNetV2's block (Sandler et al. 2018, Fig. 3b), keys ``conv.k...`` as torchvision.

    hidden = round(in_channels * expand_ratio). Branch: 1x1 expand + BN + ReLU6 (omitted
    when expand_ratio == 1), dw3x3 (stride) + BN + ReLU6, 1x1 project + BN with no
    activation (the "linear bottleneck"). Residual iff stride == 1 and in == out.

    Shapes: (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride)).
    """

    branch_name = "conv"

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: float,
                 norm_eps: float = 1e-5, norm_momentum: float = 0.1,
                 activation: Type[Module] = ReLU6, dtype=np.float32):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        hidden = int(round(in_channels * expand_ratio))     # not make_divisible (torchvision)
        self.use_res_connect = stride == 1 and in_channels == out_channels
        bn = dict(norm_eps=norm_eps, norm_momentum=norm_momentum, activation=activation, dtype=dtype)
        layers: List[Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(in_channels, hidden, 1, **bn))
        layers += [
            Conv2dNormActivation(hidden, hidden, 3, stride, groups=hidden, **bn),
            # the project conv and its BN are two entries, not a Conv2dNormActivation
            Conv2d(hidden, out_channels, 1, bias=False, dtype=dtype),
            BatchNorm2d(out_channels, norm_eps, norm_momentum, dtype=dtype)]
        self.conv = Sequential(*layers)


class InvertedResidualV3(_ResidualBlock):
    """MobileNetV3's bneck (Howard et al. 2019), keys ``block.k...`` as torchvision: [1x1
    expand] -> dw k x k (stride) -> [SE, V3's squeeze width and gate] -> 1x1 linear project
    (``__init__`` lists the layers). ``activation``: ReLU ("RE") or HardSwish ("HS").

    Shapes: (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, in_channels: int, kernel_size: int, expanded_channels: int,
                 out_channels: int, use_se: bool, activation: Type[Module], stride: int,
                 norm_eps: float = 1e-3, norm_momentum: float = 0.01, dtype=np.float32):
        """Set ``use_res_connect`` (stride 1 and in == out) and ``block``, a Sequential of
        (E = expanded_channels; each Conv2dNormActivation with norm_eps, norm_momentum, dtype):
        [E != in: Conv2dNormActivation(in, E, 1) with ``activation``],
        Conv2dNormActivation(E, E, kernel_size, stride, groups=E) with ``activation``,
        [use_se: SqueezeExcitation(E, make_divisible(E // 4, 8), ReLU, HardSigmoid, dtype)],
        Conv2dNormActivation(E, out, 1, activation=None). Keys: ``block.0.0.weight``, ...
        """
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidualV3: stride must be 1 or 2, got {stride}")
        bn = dict(norm_eps=norm_eps, norm_momentum=norm_momentum, dtype=dtype)
        ### BEGIN SOLUTION A4.inverted_residual_v3
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: List[Module] = []
        if expanded_channels != in_channels:
            layers.append(Conv2dNormActivation(in_channels, expanded_channels, 1,
                                               activation=activation, **bn))
        layers.append(Conv2dNormActivation(expanded_channels, expanded_channels, kernel_size, stride,
                                           groups=expanded_channels, activation=activation, **bn))
        if use_se:
            squeeze = make_divisible(expanded_channels // 4, 8)
            layers.append(SqueezeExcitation(expanded_channels, squeeze, ReLU, HardSigmoid, dtype=dtype))
        layers.append(Conv2dNormActivation(expanded_channels, out_channels, 1, activation=None, **bn))
        self.block = Sequential(*layers)
        ### END SOLUTION


class MBConv(_ResidualBlock):
    """EfficientNet's mobile inverted bottleneck (Tan & Le 2019), keys ``block.k...``: [1x1
    expand] -> dw k x k (stride) -> [SE, squeezed from the block's input width; none with
    ``se=False``, as in EfficientNet-Lite] -> 1x1 linear project (``__init__`` lists the
    layers). Residual blocks (stride 1, in == out) drop the branch with probability
    ``stochastic_depth_prob`` before the add; ``stochastic_depth`` exists on every block, as
    in torchvision, but acts only there.

    Shapes: (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: float, kernel_size: int,
                 stride: int, stochastic_depth_prob: float = 0.0, se: bool = True,
                 activation: Type[Module] = SiLU, norm_eps: float = 1e-5,
                 norm_momentum: float = 0.1, padding=None, dtype=np.float32):
        """Set ``use_res_connect`` (stride 1 and in == out), ``block`` and, on every block,
        ``stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")``. E =
        make_divisible(in * expand_ratio, 8); ``block`` is a Sequential of (each
        Conv2dNormActivation with norm_eps, norm_momentum, padding, dtype):
        [E != in: Conv2dNormActivation(in, E, 1) with ``activation``],
        Conv2dNormActivation(E, E, kernel_size, stride, groups=E) with ``activation``,
        [se: SqueezeExcitation(E, max(1, in // 4), SiLU, Sigmoid, dtype)],
        Conv2dNormActivation(E, out, 1, activation=None).
        """
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"MBConv: stride must be 1 or 2, got {stride}")
        cna = dict(norm_eps=norm_eps, norm_momentum=norm_momentum, padding=padding, dtype=dtype)
        ### BEGIN SOLUTION A4.mbconv
        self.use_res_connect = stride == 1 and in_channels == out_channels
        expanded = make_divisible(in_channels * expand_ratio, 8)
        layers: List[Module] = []
        if expanded != in_channels:
            layers.append(Conv2dNormActivation(in_channels, expanded, 1, activation=activation, **cna))
        layers.append(Conv2dNormActivation(expanded, expanded, kernel_size, stride, groups=expanded,
                                           activation=activation, **cna))
        if se:
            # squeeze from the block's *input* width, not the expanded one
            layers.append(SqueezeExcitation(expanded, max(1, in_channels // 4), SiLU, Sigmoid,
                                            dtype=dtype))
        layers.append(Conv2dNormActivation(expanded, out_channels, 1, activation=None, **cna))
        self.block = Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        ### END SOLUTION
