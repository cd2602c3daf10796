"""Shared pieces of the model files: channel rounding, torchvision's init, the classifier chain."""
from __future__ import annotations

import math


from ..nn.blocks import make_divisible
from ..nn.conv import Conv2d
from ..nn.layers import Linear
from ..nn.containers import Chain
from ..nn.grad_mode import get_rng
from ..nn.module import Module
from ..nn.norm import BatchNorm2d

__all__ = ["make_divisible", "init_weights", "ImageClassifier"]


def init_weights(model: Module, linear: str) -> None:
    """torchvision's initialisation (``torchvision.models.mobilenetv2``/``efficientnet``), drawn from ``tinynets.get_rng()``.

    * conv (also the SE 1x1 convs): kaiming normal, mode fan_out: N(0, 2 / fan_out) with
      fan_out = C_out * KH * KW (torch does not divide by groups); bias 0;
    * BatchNorm: weight 1, bias 0;
    * Linear: ``linear="normal"`` N(0, 0.01^2) (MobileNets) or ``"uniform"``
      U(-1/sqrt(out_features), +1/sqrt(out_features)) (EfficientNet); bias 0.
    """
    rng = get_rng()
    for m in model.modules():
        if isinstance(m, Conv2d):
            w = m.weight.data
            std = math.sqrt(2.0 / (w.shape[0] * w.shape[2] * w.shape[3]))
            w[...] = rng.standard_normal(w.shape, dtype=w.dtype) * w.dtype.type(std)
            if m.bias is not None:
                m.bias.data[...] = 0
        elif isinstance(m, BatchNorm2d):
            m.weight.data[...] = 1
            m.bias.data[...] = 0
        elif isinstance(m, Linear):
            w = m.weight.data
            if linear == "normal":
                w[...] = rng.standard_normal(w.shape, dtype=w.dtype) * w.dtype.type(0.01)
            elif linear == "uniform":
                r = 1.0 / math.sqrt(m.out_features)
                w[...] = rng.uniform(-r, r, w.shape)
            else:
                raise ValueError(f"init_weights: linear must be 'normal' or 'uniform', got {linear!r}")
            if m.bias is not None:
                m.bias.data[...] = 0


class ImageClassifier(Chain):
    """A network whose children run in registration order: features -> pool -> ... -> logits.

    Subclasses register their children in forward order; ``forward``, ``backward`` and
    the default ``profile`` (counting) then all walk the same chain.
    """

    default_resolution = 224

    # forward (N, 3, H, W) -> (N, num_classes) logits; backward dL/dlogits -> dL/dimages,
    # filling every param.grad on the way: both inherited from Chain.

    def stem(self) -> Conv2d:
        """The layer that receives the images: the first leaf of the chain, a Conv2d."""
        m: Module = self
        while m._modules:
            m = next(iter(m._modules.values()))
        if not isinstance(m, Conv2d):
            raise TypeError(f"{type(self).__name__}: the first layer is {type(m).__name__}, "
                            "expected the stem Conv2d")
        return m

    @property
    def image_grad(self) -> bool:
        """Whether ``backward`` computes and returns dL/dimages (default True).

        Training needs only the parameters' gradients, so ``Trainer`` sets it to False: the
        stem conv then skips its input gradient (for the im2col stem, a GEMM and a col2im
        per step) and ``backward`` returns None, as torch skips the gradient of images that
        do not require grad. Gradient checks and parity tests keep the default."""
        return self.stem().input_grad

    @image_grad.setter
    def image_grad(self, enabled: bool) -> None:
        self.stem().input_grad = bool(enabled)
