"""A training run's state in one ``.npz`` file: model, optimizer, scheduler, RNG, progress.

``tinynets.training`` writes one after every epoch and on Ctrl-C, and ``--resume`` reads it
back, so that a resumed run continues bit for bit. Arrays are stored as arrays and the
rest as JSON, so the file loads with ``allow_pickle=False``; ``tinynets.load_checkpoint``
returns its model state dict.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import numpy as np

from .. import optim
from ..io.checkpoint import TRAIN_FORMAT
from ..io.files import atomic_write, write_npz
from ..nn.grad_mode import get_rng
from ..nn.module import Module
from ..optim import lr_scheduler

__all__ = ["save_training_state", "load_training_state", "TRAIN_FORMAT"]


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"checkpoint: cannot store {type(v).__name__} in JSON")


def save_training_state(path: os.PathLike, model: Module, optimizer: optim.Optimizer,
                    scheduler: lr_scheduler.LRScheduler, meta: Dict[str, Any]) -> None:
    """Atomically write model, optimizer (arrays + JSON), scheduler, RNG and ``meta`` as .npz."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    sd = optimizer.state_dict()
    scalars: Dict[str, Dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for k, v in state.items():
            if isinstance(v, np.ndarray):
                arrays[f"optim/{idx}/{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = v
    meta = dict(meta, format=TRAIN_FORMAT, scheduler=scheduler.state_dict(),
                rng=get_rng().bit_generator.state,
                optimizer={"param_groups": sd["param_groups"], "scalars": scalars})
    arrays["meta"] = np.array(json.dumps(meta, default=_json_default))
    atomic_write(path, lambda f: write_npz(f, arrays))


def load_training_state(path: os.PathLike, model: Module, optimizer: Optional[optim.Optimizer] = None,
                    scheduler: Optional[lr_scheduler.LRScheduler] = None) -> Dict[str, Any]:
    """Restore what :func:`save_training_state` wrote (``allow_pickle=False``); returns the meta dict."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != TRAIN_FORMAT:
            raise ValueError(f"{path}: not a {TRAIN_FORMAT} file")
        model.load_state_dict({k[6:]: z[k] for k in z.files if k.startswith("model/")})
        if optimizer is not None:
            state: Dict[int, Dict[str, Any]] = {}
            for k in z.files:
                if k.startswith("optim/"):
                    _, idx, name = k.split("/", 2)
                    state.setdefault(int(idx), {})[name] = z[k]
            for idx, s in meta["optimizer"]["scalars"].items():
                state.setdefault(int(idx), {}).update(s)
            groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()}
                      for g in meta["optimizer"]["param_groups"]]
            optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scheduler is not None:
        scheduler.load_state_dict(meta["scheduler"])
    get_rng().bit_generator.state = meta["rng"]
    return meta
