"""RMSprop as ``torch.optim.RMSprop``, and ``RMSpropTF``, TensorFlow's variant that
EfficientNet and MobileNetV3 were trained with."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, ParamsT


def _rms_state(state: Dict[str, Any], p: Parameter, mu: float, centered: bool,
               square_avg: float) -> None:
    """RMSprop's state on first use (square average, momentum and mean buffers); count the step."""
    if not state:
        state["step"] = 0
        state["square_avg"] = np.full_like(p.data, square_avg)
        if mu > 0:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if centered:
            state["grad_avg"] = np.zeros_like(p.data)
    state["step"] += 1


class RMSprop(Optimizer):
    r"""RMSprop exactly as ``torch.optim.RMSprop`` (eps *outside* the square root).

    .. math::
        g &\leftarrow g + wd\,p \\
        v &\leftarrow \alpha v + (1 - \alpha) g^2 \qquad (v_0 = 0) \\
        \bar g &\leftarrow \alpha \bar g + (1 - \alpha) g,\quad
            \tilde v = v - \bar g^2 \text{ if centered, else } \tilde v = v \\
        b &\leftarrow \mu b + g / (\sqrt{\tilde v} + \epsilon),\quad p \leftarrow p - lr\,b
            \qquad (\mu > 0) \\
        p &\leftarrow p - lr\, g / (\sqrt{\tilde v} + \epsilon) \qquad (\mu = 0)

    Defaults as torch: ``lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False``. For the papers' TensorFlow variant use :class:`RMSpropTF`.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _update(self, p, g, state, group):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        mu, wd = float(group["momentum"]), float(group["weight_decay"])
        _rms_state(state, p, mu, group["centered"], square_avg=0.0)   # torch: v starts at 0
        if wd != 0:
            g = g + wd * p.data
        v = state["square_avg"]
        v *= alpha
        v += (1.0 - alpha) * g * g
        if group["centered"]:
            gbar = state["grad_avg"]
            gbar += (1.0 - alpha) * (g - gbar)
            avg = np.sqrt(v - gbar * gbar)
        else:
            avg = np.sqrt(v)
        avg += eps
        if mu > 0:
            buf = state["momentum_buffer"]
            buf *= mu
            buf += g / avg
            p.data -= lr * buf
        else:
            p.data -= lr * (g / avg)


class RMSpropTF(Optimizer):
    r"""RMSprop as TensorFlow 1's ``tf.train.RMSPropOptimizer``, which MobileNetV2/V3 and
    EfficientNet were trained with (decay 0.9, momentum 0.9, epsilon 1e-3); the rule of
    timm's ``RMSpropTF``.

    .. math::
        g &\leftarrow g + wd\,p \quad\text{(or } p \leftarrow (1 - lr\,wd)\,p
            \text{ if decoupled\_decay)} \\
        v &\leftarrow v + (1 - \alpha)(g^2 - v) \qquad (v_0 = 1) \\
        \bar g &\leftarrow \bar g + (1 - \alpha)(g - \bar g),\quad
            \tilde v = v - \bar g^2 \text{ if centered, else } \tilde v = v \\
        b &\leftarrow \mu b + lr\, g / \sqrt{\tilde v + \epsilon},\quad p \leftarrow p - b
            \qquad (\mu > 0) \\
        p &\leftarrow p - lr\, g / \sqrt{\tilde v + \epsilon} \qquad (\mu = 0)

    How it differs from :class:`RMSprop` (torch):

    1. epsilon is *inside* the square root, sqrt(v + eps), not sqrt(v) + eps: the papers'
       eps = 1e-3 caps the gain 1 / sqrt(v + eps) at about 32, where torch's
       1 / (sqrt(v) + eps) with the same eps could reach 1000 (the values don't transfer);
    2. the square average starts at **ones**, not zeros: the first steps are small
       (about lr * g) instead of lr * g / sqrt((1 - alpha) g^2) = +-lr / sqrt(1 - alpha);
    3. with momentum, the learning rate is applied *inside* the buffer
       (``lr_in_momentum=True``): a change of lr only affects new gradients, while torch
       rescales the whole buffer by the new lr; with a constant lr the two agree.

    ``lr_in_momentum=False`` gives torch's b <- mu b + g / sqrt(v + eps), p <- p - lr b.
    Defaults are timm's: ``lr=1e-2, alpha=0.9, eps=1e-10``; the papers used eps=1e-3.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.9, eps: float = 1e-10,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 decoupled_decay: bool = False, lr_in_momentum: bool = True):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered,
                                      decoupled_decay=decoupled_decay,
                                      lr_in_momentum=lr_in_momentum))

    def _update(self, p, g, state, group):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        mu, wd = float(group["momentum"]), float(group["weight_decay"])
        _rms_state(state, p, mu, group["centered"], square_avg=1.0)   # TF: v starts at 1
        if wd != 0:
            if group["decoupled_decay"]:
                p.data *= 1.0 - lr * wd
            else:
                g = g + wd * p.data
        v = state["square_avg"]
        v += (1.0 - alpha) * (g * g - v)
        if group["centered"]:
            gbar = state["grad_avg"]
            gbar += (1.0 - alpha) * (g - gbar)
            avg = v - gbar * gbar
            avg += eps
        else:
            avg = v + eps
        np.sqrt(avg, out=avg)
        if mu > 0:
            buf = state["momentum_buffer"]
            buf *= mu
            if group["lr_in_momentum"]:
                buf += lr * (g / avg)
                p.data -= buf
            else:
                buf += g / avg
                p.data -= lr * buf
        else:
            p.data -= lr * (g / avg)
