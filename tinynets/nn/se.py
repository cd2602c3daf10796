"""Squeeze-and-Excitation: re-weight channels by a gate computed from their means.

Forward, for x of shape (N, C, H, W)::

    z = mean_{H,W}(x)                     (N, C, 1, 1)   squeeze
    s = gate(fc2(act(fc1(z))))            (N, C, 1, 1)   excite: C -> S -> C, 1x1 convs with bias
    y = x * s                             (N, C, H, W)   scale every channel

Backward is the product rule: x reaches y directly and through s, so::

    dx = dout * s                                   (direct path)
       + (d/dz of the branch)(sum_{H,W} dout * x) / (H*W), broadcast over H, W

The pooling's backward does the /(H*W) and the broadcast (the plain version, which
``backward``'s docstring describes).

The library's own forward and backward run their passes over the whole (N, C, H, W)
array (the mean and x * s; the sum of dout * x and dout * s + the gate path) on
``tinynets.kernels.channels``: fused float32 passes on every thread, each beside the
NumPy expression it computes. Its backward takes the pooling's dz / (H*W) unbroadcast
(``spread=False``) and adds it in the last pass instead of writing it out first. On
(16, 144, 56, 56) float32, 2 cores, NumPy's version and this one alternating: forward
4.5 -> 1.3-2.1 ms, backward 9.8 -> 2.3-3.2 ms (medians of runs as memory bandwidth varied).

Names follow ``torchvision.ops.SqueezeExcitation`` (``fc1``, ``fc2``), so the state_dict keys
are ``...fc1.weight``, ``...fc1.bias``, ``...fc2.weight``, ``...fc2.bias``.

Which squeeze width and which activations, per family (as torchvision builds them):
MobileNetV3 uses S = make_divisible(C_expanded // 4, 8), ReLU, HardSigmoid;
EfficientNet uses S = max(1, C_block_input // 4), SiLU, Sigmoid.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Type

import numpy as np

from ..kernels import channels
from .activations import HardSigmoid, ReLU
from .conv import Conv2d
from .layers import GlobalAvgPool2d
from .counting import LayerCount
from .module import Module, check_array


class SqueezeExcitation(Module):
    """Channel attention of Hu et al. (2018), as MobileNetV3 and EfficientNet use it.

    Parameters
    ----------
    input_channels : int        C, the channels being re-weighted
    squeeze_channels : int      S, the bottleneck width of the gate
    activation : Module class   between fc1 and fc2 (ReLU in V3, SiLU in EfficientNet)
    scale_activation : Module class
        the gate (HardSigmoid in V3, Sigmoid in EfficientNet)
    dtype : float32 or float64

    Shapes
    ------
    x (N, C, H, W) -> y (N, C, H, W); fc1.weight (S, C, 1, 1), fc1.bias (S,),
    fc2.weight (C, S, 1, 1), fc2.bias (C,).

    Cache: x and the gate s (N, C, 1, 1); the children keep their own.
    """

    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation: Type[Module] = ReLU, scale_activation: Type[Module] = HardSigmoid,
                 dtype=np.float32):
        super().__init__()
        self.input_channels, self.squeeze_channels = input_channels, squeeze_channels
        # registration order = torchvision's (avgpool, fc1, fc2, activation, scale_activation)
        self.avgpool = GlobalAvgPool2d(kernel=True)         # the mean on tinynets.kernels.channels
        self.fc1 = Conv2d(input_channels, squeeze_channels, 1, bias=True, dtype=dtype)
        self.fc2 = Conv2d(squeeze_channels, input_channels, 1, bias=True, dtype=dtype)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def extra_repr(self) -> str:
        return f"{self.input_channels}, {self.squeeze_channels}"

    def _gate_layers(self) -> List[Tuple[str, Module]]:
        """The squeeze branch in the order it runs (not the registration order)."""
        return [(n, self._modules[n]) for n in ("avgpool", "fc1", "activation", "fc2", "scale_activation")]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = x * s, with the gate s = scale_activation(fc2(activation(fc1(avgpool(x))))).

        Parameters
        ----------
        x : (N, C, H, W), C = ``input_channels``, in the layers' dtype (checked above)

        Returns
        -------
        y : (N, C, H, W), same dtype: every channel of every image times its own gate.

        Run the five layers of ``self._gate_layers()`` in that order, calling each one
        (``s = layer(s)``, so that each keeps its own cache for backward), starting from
        s = x: the shapes go (N, C, H, W) -> (N, C, 1, 1) -> (N, S, 1, 1) -> (N, S, 1, 1)
        -> (N, C, 1, 1) -> (N, C, 1, 1). Then keep ``(x, s)`` for backward with
        ``self.keep(x, s)`` (s of shape (N, C, 1, 1)) and return ``x * s`` (broadcast over
        H and W). Use the layers the instance holds, whatever their activations are.
        """
        check_array(self, x, 4, self.input_channels)
        ### BEGIN SOLUTION A4.se_forward
        s = x
        for _, layer in self._gate_layers():
            s = layer(s)                                    # ends as (N, C, 1, 1)
        self.keep(x, s)
        return channels.scale(x, s)                         # = x * s, broadcast over H, W
        ### END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dL/dx for y = x * s(x), by the product rule; the gate's layers accumulate
        their parameters' gradients (fc1, fc2 ``.grad +=``) in their own backward.

        Parameters
        ----------
        dout : (N, C, H, W), dL/dy

        Returns
        -------
        dx : (N, C, H, W) = dout * s (the direct path) + the gate path.

        With ``x, s = self.take()`` (the forward's cache, taken above): the gate s was
        broadcast over H and W, so dL/ds = sum over H, W of dout * x, shape (N, C, 1, 1)
        (keepdims). Send it back through the five layers of ``self._gate_layers()`` in
        reverse order, ``ds = layer.backward(ds)``: the pooling's backward returns
        (N, C, H, W), already divided by H*W and broadcast. Return dout * s + that.
        """
        x, s = self.take()
        check_array(self, dout, 4, self.input_channels, what="dout")
        if dout.shape != x.shape:
            raise ValueError(f"{self!r}: dout must have the input's shape {x.shape}, got {dout.shape}")
        ### BEGIN SOLUTION A4.se_backward
        ds = channels.sum_product(dout, x)                  # = np.sum(dout * x, axis=(2, 3), keepdims=True)
        for _, layer in reversed(self._gate_layers()[1:]):  # the gate, back to the pooled means
            ds = layer.backward(ds)
        g = self.avgpool.backward(ds, spread=False)         # (N, C, 1, 1) = ds / (H*W), not yet spread
        return channels.scale_add(dout, s, g)               # = dout * s + g, g broadcast over H, W
        ### END SOLUTION

    def profile(self, input_shape, prefix: str = "") -> Tuple[Tuple[int, ...], List[LayerCount]]:
        """Rows for the pooling, fc1, activation, fc2 and gate, then one row for the
        channel scaling x * s (1 FLOP per value, no MACs, as tinynets.nn.counting says)."""
        shape = tuple(int(d) for d in input_shape)
        rows: List[LayerCount] = []
        s_shape: Optional[Tuple[int, ...]] = shape
        for name, layer in self._gate_layers():
            s_shape, child_rows = layer.profile(s_shape, f"{prefix}.{name}" if prefix else name)
            rows.extend(child_rows)
        rows.append(LayerCount(f"{prefix}.scale" if prefix else "scale", "ChannelScale", shape,
                               0, 0, int(np.prod(shape))))
        return shape, rows
