"""``Conv2d``: standard, grouped, depthwise and pointwise convolution.

One layer, three fast paths, picked from the configuration:

=============  ===============================  ====================================
path           when                             how
=============  ===============================  ====================================
pointwise      1x1, groups=1, no padding        one BLAS GEMM per image, NCHW as is
depthwise      groups == in_channels > 1        direct Numba kernel (``kernels/depthwise.py``)
im2col         everything else                  Numba im2col + batched GEMM
=============  ===============================  ====================================

The plain-NumPy versions that compute the same thing are in ``kernels/conv_naive.py``.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import numpy as np

from ..kernels import depthwise, im2col, warm
from ..kernels.conv_naive import out_size
from .grad_mode import get_rng, is_grad_enabled
from .module import Module, Parameter, check_array

IntPair = Union[int, Tuple[int, int]]
_DW_BLOCK = 1024        # output positions per GEMM in the im2col weight gradient


def _pair(v: IntPair, name: str) -> Tuple[int, int]:
    pair = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(pair) != 2 or any(int(p) != p or p < 0 for p in pair):
        raise ValueError(f"Conv2d: {name} must be a non-negative int or a pair of them, got {v!r}")
    return int(pair[0]), int(pair[1])


def tf_same_padding(size: int, k: int, stride: int) -> Tuple[int, int]:
    """TensorFlow 'SAME' padding along one axis: output = ceil(size / stride).

    pad_total = max((ceil(size/s) - 1) * s + k - size, 0); the extra pixel goes
    *after* (bottom/right), so stride 2 on an even size is asymmetric.
    """
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class Conv2d(Module):
    """2-D convolution, exactly ``torch.nn.Conv2d`` (no dilation).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (KH, KW)
    stride : int or (s, s)
        The same stride along H and W (the kernels take one).
    padding : int, (ph, pw), 'valid', 'same' or 'tf_same'
        PyTorch's meanings: an int or a pair pads symmetrically (default 0, 'valid');
        'same' keeps H x W at stride 1, the odd pixel of an even kernel going after.
        'tf_same' is TensorFlow's SAME at any stride: output = ceil(H / stride) and, for
        an even input at stride 2, one pixel less before than after. Ported TensorFlow
        weights need it.
    groups : int
        1 standard, in_channels depthwise (out_channels = m * in_channels for a
        channel multiplier m), anything between grouped.
    bias : bool, default True
    dtype : float32 (default) or float64

    Shapes
    ------
    x : (N, C_in, H, W) -> out : (N, C_out, H', W'),
    H' = 1 + (H + p_top + p_bottom - KH) // stride (likewise W').
    weight : (C_out, C_in // groups, KH, KW), bias : (C_out,)

    input_grad : bool attribute, default True
        False: ``backward`` fills the weight and bias gradients and returns None instead
        of dL/dx (the images' gradient, which training does not need; see
        ``ImageClassifier.image_grad``).

    Cache (train or eval, not under ``no_grad``)
    ---------------------------------------------
    pointwise: the input as (N, C_in, H'*W'); depthwise: the input;
    im2col: the columns (N, groups, C_in/groups*KH*KW, H'*W').
    """

    input_grad = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: Union[IntPair, str] = 0, groups: int = 1,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        sh, sw = _pair(stride, "stride")
        if sh < 1 or sw < 1:
            raise ValueError(f"Conv2d: stride must be >= 1, got {stride!r}")
        if sh != sw:                                 # the kernels take one stride for both axes
            raise ValueError(f"Conv2d: stride must be the same along H and W, got {stride!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = sh
        KH, KW = self.kernel_size
        if padding == "valid":
            padding = 0
        if padding == "same" and self.stride != 1:
            raise ValueError("Conv2d: padding='same' is PyTorch's, for stride 1 only (as in "
                             "PyTorch); TensorFlow's SAME at any stride is padding='tf_same'")
        self.padding = padding if padding in ("same", "tf_same") else _pair(padding, "padding")
        fan_in = in_channels // groups * KH * KW
        bound = 1.0 / math.sqrt(fan_in)               # torch's kaiming_uniform_(a=sqrt(5))
        rng = get_rng()
        shape = (out_channels, in_channels // groups, KH, KW)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_channels).astype(dtype)) if bias else None
        if groups == in_channels and groups > 1:
            self.path = "depthwise"
        elif (KH, KW) == (1, 1) and groups == 1 and sum(self.pads(1, 1)) == 0:
            self.path = "pointwise"                  # 'same' and 'tf_same' pad nothing for 1x1
        else:
            self.path = "im2col"

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}"
        if self.groups > 1:
            s += f", groups={self.groups}"
        return s + f", bias={self.bias is not None}"

    # ------------------------------------------------------------- geometry
    def pads(self, H: int, W: int) -> Tuple[int, int, int, int]:
        """(top, bottom, left, right) zero padding for an H x W input."""
        KH, KW = self.kernel_size
        if self.padding == "tf_same":
            return tf_same_padding(H, KH, self.stride) + tf_same_padding(W, KW, self.stride)
        if self.padding == "same":                   # stride 1: k - 1 in all, the odd one after
            return (KH - 1) // 2, KH // 2, (KW - 1) // 2, KW // 2
        ph, pw = self.padding
        return ph, ph, pw, pw

    def output_shape(self, input_shape) -> Tuple[int, int, int, int]:
        """(N, C_in, H, W) -> (N, C_out, H', W'); raises if the kernel does not fit."""
        N, C, H, W = input_shape
        if C != self.in_channels:
            raise ValueError(f"{self!r}: expected {self.in_channels} input channels, got {C} "
                             f"(input shape {tuple(input_shape)})")
        t, b, l, r = self.pads(H, W)
        KH, KW = self.kernel_size
        if H + t + b < KH or W + l + r < KW:
            raise ValueError(f"{self!r}: kernel {KH}x{KW} is larger than the padded input "
                             f"{H + t + b}x{W + l + r} (input {H}x{W})")
        return N, self.out_channels, out_size(H, KH, self.stride, t, b), out_size(W, KW, self.stride, l, r)

    def macs(self, input_shape) -> int:
        """C_out * (C_in / groups) * KH * KW * H' * W' per image."""
        N, Co, OH, OW = self.output_shape(input_shape)
        KH, KW = self.kernel_size
        return N * Co * (self.in_channels // self.groups) * KH * KW * OH * OW

    def flops(self, input_shape) -> int:
        """2 per MAC, plus one add per output for the bias."""
        N, Co, OH, OW = self.output_shape(input_shape)
        return 2 * self.macs(input_shape) + (N * Co * OH * OW if self.bias is not None else 0)

    # ------------------------------------------------------------- forward
    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self.convolve(x)                                              # (N, C_out, H', W')
        if self.bias is not None:
            out += self.bias.data[:, None, None]
        return out

    def convolve(self, x: np.ndarray) -> np.ndarray:
        """The convolution without the bias; ``forward`` adds it. (``fold_bn``'s inference
        path adds bias and activation in one pass instead.)"""
        check_array(self, x, 4, self.in_channels)
        N, C, H, W = x.shape
        _, Co, OH, OW = self.output_shape(x.shape)
        t, _, l, _ = self.pads(H, W)
        KH, KW = self.kernel_size
        s, G, w = self.stride, self.groups, self.weight.data
        x = np.ascontiguousarray(x)
        if self.path != "pointwise" and self.training and is_grad_enabled():
            warm.expect(self._warm_key(x.dtype), self._backward_kernels, x.dtype)
        if self.path == "pointwise":
            xs = np.ascontiguousarray(x[:, :, ::s, ::s]) if s > 1 else x
            xr = xs.reshape(N, C, OH * OW)                                  # (N, C_in, L)
            out = np.matmul(w.reshape(Co, C), xr).reshape(N, Co, OH, OW)    # (N, C_out, H', W')
            self.keep(xr, x.shape)
        elif self.path == "depthwise":
            out = depthwise.depthwise_forward(x, w, s, t, l, OH, OW)          # (N, C_out, H', W')
            self.keep(x, x.shape)
        else:
            cols = im2col.im2col(x, KH, KW, s, t, l, OH, OW)               # (N, C*KH*KW, L)
            cols = cols.reshape(N, G, C // G * KH * KW, OH * OW)            # (N, G, Cg*KH*KW, L)
            wmat = w.reshape(G, Co // G, C // G * KH * KW)                  # (G, Og, Cg*KH*KW)
            out = np.matmul(wmat, cols).reshape(N, Co, OH, OW)
            self.keep(cols, x.shape)
        return out

    # ------------------------------------------------------------- backward
    def _warm_key(self, dtype) -> tuple:
        return ("conv", self.path, self.kernel_size, self.stride, np.dtype(dtype).str)

    def _backward_kernels(self) -> list:
        """The Numba kernels backward will run (``kernels/warm.py`` compiles them ahead)."""
        if self.path == "depthwise":
            return [("depthwise", n) for n in depthwise.backward_kernel_names(*self.kernel_size, self.stride)]
        return [("im2col", "_col2im")] if self.input_grad else []

    def backward(self, dout: np.ndarray) -> Optional[np.ndarray]:
        saved, x_shape = self.take()
        check_array(self, dout, 4, self.out_channels, what="dout")
        expected = self.output_shape(x_shape)
        if dout.shape != expected:
            raise ValueError(f"{self!r}: dout must have the forward output's shape {expected}, "
                             f"got {dout.shape}")
        N, C, H, W = x_shape
        _, Co, OH, OW = expected
        t, _, l, _ = self.pads(H, W)
        KH, KW = self.kernel_size
        s, G, w = self.stride, self.groups, self.weight.data
        dout = np.ascontiguousarray(dout)
        if self.path != "pointwise":
            warm.ready(self._warm_key(dout.dtype))       # the helper compiled its kernels
        if self.bias is not None:
            self.bias.grad += dout.sum(axis=(0, 2, 3))
        if self.path == "pointwise":
            xr = saved                                          # (N, C_in, L)
            d = dout.reshape(N, Co, OH * OW)
            if OH * OW == 1:                                    # an SE's fc: one GEMM over the batch,
                dw = d.reshape(N, Co).T @ xr.reshape(N, C)      # as N GEMMs of K = 1 are slow in BLAS
            else:
                dw = d[0] @ xr[0].T                             # (C_out, L) @ (L, C_in)
                for n in range(1, N):
                    dw += d[n] @ xr[n].T
            self.weight.grad += dw.reshape(self.weight.grad.shape)
            if not self.input_grad:
                return None
            if OH * OW == 1:
                dxr = (d.reshape(N, Co) @ w.reshape(Co, C)).reshape(N, C, 1)
            else:
                dxr = np.matmul(w.reshape(Co, C).T, d)          # (N, C_in, L)
            if s == 1:
                return dxr.reshape(N, C, H, W)
            dx = np.zeros((N, C, H, W), dtype=dout.dtype)
            dx[:, :, ::s, ::s] = dxr.reshape(N, C, OH, OW)      # a strided 1x1 reads only these
            return dx
        if self.path == "depthwise":
            x = saved
            self.weight.grad += depthwise.depthwise_backward_weight(dout, x, KH, KW, s, t, l)
            if not self.input_grad:
                return None
            return depthwise.depthwise_backward_input(dout, w, C, s, t, l, H, W)
        cols = saved                                                      # (N, G, Cg*KH*KW, L)
        d = dout.reshape(N, G, Co // G, OH * OW)                          # (N, G, Og, L)
        wmat = w.reshape(G, Co // G, C // G * KH * KW)
        dwm = np.zeros(wmat.shape, dtype=dout.dtype)                      # (G, Og, Cg*KH*KW)
        B = _DW_BLOCK
        for n in range(N):                  # in blocks of columns: a stem's L = 12544 as one K
            for l0 in range(0, OH * OW, B):  # ran at half the speed in BLAS
                for g in range(G):          # one 2-D product per group
                    dwm[g] += d[n, g, :, l0:l0 + B] @ cols[n, g, :, l0:l0 + B].T
        self.weight.grad += dwm.reshape(self.weight.grad.shape)
        if not self.input_grad:
            return None
        dcols = np.matmul(wmat.transpose(0, 2, 1), d)                     # (N, G, Cg*KH*KW, L)
        dcols = dcols.reshape(N, C * KH * KW, OH * OW)
        return im2col.col2im(dcols, C, H, W, KH, KW, s, t, l, OH, OW)
