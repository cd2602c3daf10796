"""SGD with momentum, dampening, Nesterov momentum and weight decay, as ``torch.optim.SGD``."""
from __future__ import annotations

from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum, ``torch.optim.SGD``.

    .. math::
        g &\leftarrow g + wd\,p \\
        b &\leftarrow g \text{ at the first step, else } \mu b + (1 - \tau) g \\
        d &= g + \mu b \text{ (nesterov) or } b \text{ (or } g \text{ if } \mu = 0) \\
        p &\leftarrow p - lr\,d

    Defaults as torch: ``lr=1e-3, momentum=0, dampening=0 (tau), weight_decay=0,
    nesterov=False``; Nesterov needs momentum > 0 and dampening 0.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, g, state, group):
        """One SGD step of one parameter, in place (``Optimizer.step`` calls it per parameter).

        Parameters
        ----------
        p : Parameter; update ``p.data`` in place (``p.data -= ...``), keeping its dtype
        g : p's gradient (``p.grad``), same shape and dtype; do not modify it
        state : dict, this parameter's state, empty before its first step. With momentum
            (mu != 0) it holds ``'momentum_buffer'``: b, an array like p, created at the
            first step as a copy of g (after weight decay), then stored after each update
        group : dict of options, ``lr``, ``momentum`` (mu), ``dampening`` (tau),
            ``weight_decay`` (wd), ``nesterov`` (bool); use the numbers as Python floats
            (``float(group['lr'])``) so that a float32 parameter stays float32

        With wd != 0 first g <- g + wd p (a new array). Then, if mu != 0, b <- g at the
        first step, else b <- mu b + (1 - tau) g; the direction is d = g + mu b (Nesterov)
        or d = b; with mu == 0, d = g and no state is kept. Last, p <- p - lr d.
        """
        ### BEGIN SOLUTION A6.sgd_step
        lr, mu, wd = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        if wd != 0:
            g = g + wd * p.data
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= mu
                buf += (1.0 - float(group["dampening"])) * g
            g = g + mu * buf if group["nesterov"] else buf
        p.data -= lr * g
        ### END SOLUTION
