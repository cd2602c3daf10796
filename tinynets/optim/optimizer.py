"""Optimizers with ``torch.optim``'s names, defaults and update rules, on NumPy arrays.

``step()`` updates every ``param.data`` in place from ``param.grad``, keeping its dtype:
options are used as Python floats, which never promote a float32 array, so a float32
model makes no float64 temporaries. Symbols in the docstrings: p parameter, g gradient,
lr learning rate, wd weight decay, mu momentum, t step count.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np

from ..nn.module import Module, Parameter

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
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            raise ValueError(f"{self.name}: a parameter appears more than once in a parameter "
                             "group, and would be stepped twice")
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
