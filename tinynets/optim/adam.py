"""Adam and AdamW (decoupled weight decay), as ``torch.optim.Adam`` and ``AdamW``."""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    r"""Adam, ``torch.optim.Adam`` (weight decay added to the gradient, as L2).

    .. math::
        g &\leftarrow g + wd\,p \quad\text{(AdamW: } p \leftarrow (1 - lr\,wd)\,p
            \text{ instead)} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g,\qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &= \max(\hat v, v) \text{ if amsgrad, else } v \\
        p &\leftarrow p - \frac{lr}{1 - \beta_1^t}\,
            \frac{m}{\sqrt{\hat v} / \sqrt{1 - \beta_2^t} + \epsilon}

    Defaults as torch: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    amsgrad=False``.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False,
                 decoupled_weight_decay: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, p, g, state, group):
        """One Adam step of one parameter, in place (``Optimizer.step`` calls it per parameter).

        Parameters
        ----------
        p : Parameter; update ``p.data`` in place (``p.data -= ...``), keeping its dtype
        g : p's gradient (``p.grad``), same shape and dtype; do not modify it
        state : dict, this parameter's state, empty before its first step; fill it then
            with ``'step'`` (int, 0), ``'exp_avg'`` (m) and ``'exp_avg_sq'`` (v), zero arrays
            like p, and with amsgrad also ``'max_exp_avg_sq'`` (zeros like p). Every step
            does ``state['step'] += 1`` first (t counts from 1) and stores the new arrays
        group : dict of options, ``lr``, ``betas`` (beta1, beta2), ``eps``, ``weight_decay``
            (wd), ``amsgrad`` (bool), ``decoupled_weight_decay`` (bool, AdamW); use the
            numbers as Python floats so that a float32 parameter stays float32

        With wd != 0: decoupled, p <- (1 - lr wd) p before the step; otherwise g <- g + wd p
        (a new array). Then m <- beta1 m + (1 - beta1) g, v <- beta2 v + (1 - beta2) g^2,
        v_hat = max_exp_avg_sq <- max(max_exp_avg_sq, v) with amsgrad (else v_hat = v), and
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps), where eps
        is added after the bias correction of the square root, as torch does.
        """
        ### BEGIN SOLUTION A6.adam_step
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p.data *= 1.0 - lr * wd
            else:
                g = g + wd * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1.0 - beta1) * (g - m)
        v *= beta2
        v += (1.0 - beta2) * g * g
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = np.sqrt(v)
        denom /= math.sqrt(1.0 - beta2 ** t)
        denom += eps
        p.data -= (lr / (1.0 - beta1 ** t)) * (m / denom)
        ### END SOLUTION


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), ``torch.optim.AdamW``:
    p <- (1 - lr wd) p before the Adam step of :class:`Adam`; the decay never enters m or v.
    Defaults as torch: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2``.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=True)
