"""Optimizers with ``torch.optim``'s names, defaults and update rules, on NumPy arrays.

``step()`` updates every ``param.data`` in place from ``param.grad``, keeping its dtype:
options are used as Python floats, which never promote a float32 array, so a float32
model makes no float64 temporaries. Symbols in the docstrings: p parameter, g gradient,
lr learning rate, wd weight decay, mu momentum, t step count.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np

from .module import Module, Parameter

ParamsT = Union[Iterable[Parameter], Iterable[Dict[str, Any]]]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, ``state_dict``.

    Parameters
    ----------
    params : iterable of Parameter, or of dicts
        ``model.parameters()``, or parameter groups: dicts with ``'params'`` and any of the
        options below for that group (e.g. ``weight_decay=0`` for BN and biases, see
        :func:`param_groups_no_decay`); options a group leaves out take the defaults.
    defaults : dict
        the optimizer's options (``lr``, ``momentum``, ``weight_decay``, ... as in torch).

    Subclasses define ``_update(p, g, state, group)`` for one parameter.
    ``state_dict()`` is torch's ``{'state': {index: {name: array or step}},
    'param_groups': [{..., 'params': [index, ...]}]}``, parameters numbered across the
    groups in order, arrays copied.
    """

    def __init__(self, params: ParamsT, defaults: Dict[str, Any]):
        self.defaults = defaults
        self.state: Dict[Parameter, Dict[str, Any]] = {}
        self.param_groups: List[Dict[str, Any]] = []
        if isinstance(params, (Parameter, Module)):
            raise TypeError(f"{self.name}: params must be an iterable of Parameters or of dicts, "
                            f"got a {type(params).__name__}; pass model.parameters()")
        params = list(params)
        if not params:
            raise ValueError(f"{self.name}: got an empty parameter list")
        for group in (params if isinstance(params[0], dict) else [{"params": params}]):
            self.add_param_group(group)

    @property
    def name(self) -> str:
        return type(self).__name__

    def add_param_group(self, group: Dict[str, Any]) -> None:
        """Add a group; options it leaves out take the optimizer's defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{self.name}: a parameter group is a dict with a 'params' key")
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Parameter) else list(params)
        for p in group["params"]:
            if not isinstance(p, Parameter):
                raise TypeError(f"{self.name}: expected tinynets Parameters, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen & {id(p) for p in group["params"]}:
            raise ValueError(f"{self.name}: some parameters appear in more than one parameter group")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group: Dict[str, Any]) -> None:
        """Raise ``ValueError`` naming the optimizer for an out-of-range option."""
        for key in ("lr", "eps", "weight_decay", "momentum", "alpha"):
            if key in group and not float(group[key]) >= 0.0:
                raise ValueError(f"{self.name}: invalid {key} {group[key]!r}, must be >= 0")
        for i, beta in enumerate(group.get("betas", ())):
            if not 0.0 <= float(beta) < 1.0:
                raise ValueError(f"{self.name}: invalid betas[{i}] {beta!r}, must be in [0, 1)")

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (backward accumulates into it)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad.fill(0)

    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """Update every parameter once from its ``.grad``; returns ``closure()`` if given.

        Unlike torch, where a parameter without a gradient (``grad is None``) is skipped,
        every parameter of the groups is updated: leave frozen ones out of the optimizer.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                self._update(p, p.grad, self.state.setdefault(p, {}), group)
        return loss

    def _update(self, p: Parameter, g: np.ndarray, state: Dict[str, Any],
                group: Dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        """``{'state': {index: {name: array or step}}, 'param_groups': [{..., 'params': [index]}]}``."""
        index: Dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore options and state saved by ``state_dict`` for the same parameter layout."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{self.name}.load_state_dict: {len(saved)} parameter groups saved, "
                             f"the optimizer has {len(self.param_groups)}")
        by_index: Dict[int, Parameter] = {}
        for i, (ours, theirs) in enumerate(zip(self.param_groups, saved)):
            if len(ours["params"]) != len(theirs["params"]):
                raise ValueError(f"{self.name}.load_state_dict: group {i} has {len(ours['params'])} "
                                 f"parameters, the saved one {len(theirs['params'])}")
            by_index.update(zip(theirs["params"], ours["params"]))
        self.state = {}
        for idx, s in state_dict["state"].items():
            p = by_index[int(idx)]
            restored = {}
            for k, v in s.items():
                if isinstance(v, np.ndarray) and v.ndim:
                    if v.shape != p.data.shape:
                        raise ValueError(f"{self.name}.load_state_dict: state '{k}' of parameter "
                                         f"{idx} has shape {v.shape}, the parameter {p.data.shape}")
                    restored[k] = np.array(v, dtype=p.data.dtype)   # a copy in the param's dtype
                else:                                               # the step count
                    restored[k] = v.item() if isinstance(v, np.ndarray) else copy.deepcopy(v)
            self.state[p] = restored
        for ours, theirs in zip(self.param_groups, saved):
            ours.update({k: copy.deepcopy(v) for k, v in theirs.items() if k != "params"})

    def __repr__(self) -> str:
        return "\n".join([f"{self.name} ("] + [
            f"  group {i}: {len(g['params'])} params, "
            + ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            for i, g in enumerate(self.param_groups)] + [")"])


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


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), ``torch.optim.AdamW``:
    p <- (1 - lr wd) p before the Adam step of :class:`Adam`; the decay never enters m or v.
    Defaults as torch: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2``.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=True)


def param_groups_no_decay(model: Module, weight_decay: float,
                          no_decay_names: Iterable[str] = ()) -> List[Dict[str, Any]]:
    """Two parameter groups: ``[{'params': no_decay, 'weight_decay': 0.0},
    {'params': decay, 'weight_decay': weight_decay}]``, the order of timm's helper.

    1-D parameters (BatchNorm weight and bias, every bias) and the names in
    ``no_decay_names`` go to the first group; convolution and linear weights to the second.
    The papers' TensorFlow code adds ``wd * sum(w^2) / 2`` to the loss for every variable
    except BatchNorm's, i.e. the coupled ``weight_decay`` of :class:`RMSpropTF`.

    >>> opt = RMSpropTF(param_groups_no_decay(model, 1e-5), lr=0.016, momentum=0.9, eps=1e-3)
    """
    skip = set(no_decay_names)
    no_decay, decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.data.ndim <= 1 or name in skip else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0},
            {"params": decay, "weight_decay": float(weight_decay)}]
