"""An exponential moving average of a model's weights, as EfficientNet evaluates it."""
from __future__ import annotations

import copy
from typing import Dict, Optional

import numpy as np

from ..nn.module import Module


class ExponentialMovingAverage:
    """EMA of a model's weights *and* BatchNorm statistics, as timm's ``ModelEmaV2``/``V3``.

    ``ema.module`` is a deep copy of the model, in eval mode, that you evaluate instead of
    the model. After each optimizer step, ``ema.update(model)`` does, for every floating
    entry of the state dict (parameters, ``running_mean``, ``running_var``)::

        e <- d e + (1 - d) w,    d = decay,  or  d = min(decay, (1 + step) / (10 + step))

    the latter when ``step`` is passed: TensorFlow's ``ExponentialMovingAverage`` with
    ``num_updates``, as EfficientNet's reference code uses it (``step`` = the optimizer
    steps taken so far, this one included: 1 at the first update), so that the average
    follows the model closely early on. Integer buffers (``num_batches_tracked``) are
    copied, as ``ModelEmaV3`` does. EfficientNet used ``decay=0.9999`` per iteration; mind
    the decay against the number of steps per epoch. ``copy_to(model)`` writes the
    averages into a model; ``set(model)`` copies a model in.
    """

    def __init__(self, model: Module, decay: float = 0.9999):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ExponentialMovingAverage: decay must be in [0, 1], got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()

    def update(self, model: Module, step: Optional[int] = None) -> float:
        """Average ``model`` in (same architecture); returns the decay used."""
        d = self.decay if step is None else min(self.decay, (1.0 + step) / (10.0 + step))
        params = dict(self.module.named_parameters())
        buffers = dict(self.module.named_buffers())
        pairs = [(params.get(k), p.data) for k, p in model.named_parameters()]
        pairs = [(None if e is None else e.data, w) for e, w in pairs]
        pairs += [(buffers.get(k), b) for k, b in model.named_buffers()]
        for e, w in pairs:
            if e is None or e.shape != w.shape:
                raise ValueError("ExponentialMovingAverage.update: the model's parameters and "
                                 "buffers do not match the averaged copy's")
            if np.issubdtype(e.dtype, np.floating):
                e *= d
                e += (1.0 - d) * w.astype(e.dtype, copy=False)
            else:
                e[...] = w
        return d

    def set(self, model: Module) -> None:
        """Copy ``model``'s weights and buffers into the average."""
        self.module.load_state_dict(model.state_dict())

    def copy_to(self, model: Module) -> None:
        """Write the averaged weights and buffers into ``model`` (e.g. to evaluate or save)."""
        model.load_state_dict(self.module.state_dict())

    def state_dict(self) -> Dict[str, np.ndarray]:
        return self.module.state_dict()

    def load_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        self.module.load_state_dict({k: np.array(v, copy=True) for k, v in state.items()})

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)
