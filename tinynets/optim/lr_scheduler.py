"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s semantics.

A scheduler sets ``group['lr']`` of its optimizer's parameter groups. As in torch, the
constructor stores ``group['initial_lr']`` (the base lrs) and makes the first step, so
``get_last_lr()`` is already the lr of step 0; call ``scheduler.step()`` after each
``optimizer.step()``. ``last_epoch`` counts the ``step()`` calls, per epoch or per
iteration as you choose. ``state_dict()`` holds everything but the optimizer.

The papers' schedule (MobileNetV2/V3, EfficientNet: decay 0.97 every 2.4 epochs, 5
warm-up epochs in EfficientNet) is :class:`ExponentialDecayLR`, stepped per iteration
with fractional epochs turned into iterations::

    ExponentialDecayLR(opt, decay_steps=2.4 * steps_per_epoch, decay_rate=0.97,
                       warmup_steps=5 * steps_per_epoch)

and ``tinynets.optim.ema.ExponentialMovingAverage`` keeps the weights the papers evaluate.
"""
from __future__ import annotations

import copy
import math
from bisect import bisect_right
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .optimizer import Optimizer


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``state_dict()``/``load_state_dict()``.

    Subclasses define ``get_lr()`` (torch's chainable rule, from the current lrs) and,
    where a closed form exists, ``_closed_form_lr()`` (from ``base_lrs``), used by
    :class:`SequentialLR` when it starts a scheduler at a milestone.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr' "
                               f"to resume from last_epoch={last_epoch}")
        self.base_lrs: List[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> List[float]:
        raise NotImplementedError

    def _lrs(self) -> List[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one epoch (or iteration) and set every group's lr."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: Optional[int] = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = (self._closed_form_lr() if hasattr(self, "_closed_form_lr")
                      else self.get_lr())
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = self._lrs()

    def get_last_lr(self) -> List[float]:
        """The lrs the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> Dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items()
                if k not in ("optimizer", "lr_lambdas", "_schedulers")}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.__dict__.update(copy.deepcopy(state_dict))


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(last_epoch); one function, or one per group (which
    ``state_dict`` leaves out: pass the same functions when resuming)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Union[Callable[[int], float], Sequence],
                 last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"LambdaLR: expected {n} lr_lambdas, got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [b * f(self.last_epoch) for f, b in zip(self.lr_lambdas, self.base_lrs)]


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (last_epoch // step_size): times gamma every step_size steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}; "
                             "for a fractional period use ExponentialDecayLR")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]

    def _closed_form_lr(self):
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** last_epoch: times gamma every step."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self._lrs() if self._is_initial else [lr * self.gamma for lr in self._lrs()]

    def _closed_form_lr(self):
        return [b * self.gamma ** self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2, without restarts.

    Computed, as torch does, by the recursion
    lr_t = eta_min + (lr_{t-1} - eta_min) (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max)),
    which past T_max climbs back up (a cosine of period 2 T_max).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The lrs of step t = ``self.last_epoch`` (already advanced), one per parameter group.

        At construction (``self._is_initial``, t = 0) return the current lrs, ``self._lrs()``,
        unchanged. Afterwards lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2,
        with base_lr from ``self.base_lrs`` and ``self.T_max``, ``self.eta_min``. Use that
        formula, or torch's recursion from the current lrs (class docstring; where its
        ratio is 0 / 0, at t - 1 - T_max a multiple of 2 T_max, torch adds
        (base_lr - eta_min)(1 - cos(pi / T_max)) / 2 to the current lr instead): both give
        the same numbers.
        """
        ### BEGIN SOLUTION A6.schedules
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._lrs()
        if (t - 1 - T) % (2 * T) == 0:          # at the trough the ratio below is 0 / 0
            return [lr + (b - lo) * (1 - math.cos(math.pi / T)) / 2
                    for b, lr in zip(self.base_lrs, self._lrs())]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - lo) + lo for lr in self._lrs()]
        ### END SOLUTION

    def _closed_form_lr(self):
        """The lrs of step ``self.last_epoch`` from ``self.base_lrs`` by the formula alone
        (:class:`SequentialLR` calls it when it starts this schedule at a milestone)."""
        ### BEGIN SOLUTION A6.schedules
        return [self.eta_min + (b - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch
                                                                  / self.T_max)) / 2
                for b in self.base_lrs]
        ### END SOLUTION


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the factor from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps: lr_t = base_lr * (s + (e - s) min(t, total_iters) / total_iters)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The lrs of step t = ``self.last_epoch`` (already advanced), one per parameter group.

        With s = ``self.start_factor``, e = ``self.end_factor``, n = ``self.total_iters``:
        at t = 0 (construction) return the current lrs ``self._lrs()`` times s; afterwards
        lr_t = base_lr * (s + (e - s) min(t, n) / n), base_lr from ``self.base_lrs`` (so
        base_lr * e from t = n on). Use that formula, or torch's chainable rule from the
        current lrs: lr_t = lr_{t-1} (1 + (e - s) / (n s + (t - 1)(e - s))) for 0 < t <= n,
        unchanged after n; both give the same numbers.
        """
        ### BEGIN SOLUTION A6.schedules
        s, e, n, t = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        if t == 0:
            return [lr * s for lr in self._lrs()]
        if self._is_initial or t > n:
            return self._lrs()
        return [lr * (1.0 + (e - s) / (n * s + (t - 1) * (e - s))) for lr in self._lrs()]
        ### END SOLUTION

    def _closed_form_lr(self):
        """The lrs of step ``self.last_epoch`` from ``self.base_lrs`` by the formula alone
        (:class:`SequentialLR` calls it when it starts this schedule at a milestone)."""
        ### BEGIN SOLUTION A6.schedules
        s, e, n = self.start_factor, self.end_factor, self.total_iters
        return [b * (s + (e - s) * min(n, self.last_epoch) / n) for b in self.base_lrs]
        ### END SOLUTION


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i-1]`` on; at a milestone the next scheduler
    restarts from its epoch 0 (e.g. ``LinearLR`` warm-up, then ``CosineAnnealingLR``)."""

    def __init__(self, optimizer: Optimizer, schedulers: List[LRScheduler],
                 milestones: List[int], last_epoch: int = -1):
        if not schedulers:
            raise ValueError("SequentialLR: expects at least one scheduler")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("SequentialLR: all schedulers must belong to the same optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need "
                             f"{len(schedulers) - 1} milestones, got {len(milestones)}")
        self._schedulers, self._milestones = list(schedulers), list(milestones)
        self.optimizer, self.last_epoch = optimizer, last_epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in self._schedulers:               # undo the step each constructor made
            s.last_epoch -= 1
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        state = dict(state_dict)
        for s, saved in zip(self._schedulers, state.pop("_schedulers")):
            s.load_state_dict(saved)
        super().load_state_dict(state)


class ExponentialDecayLR(LRScheduler):
    """TensorFlow's ``exponential_decay`` with linear warm-up, the papers' schedule.

    With t = ``last_epoch`` (step it once per *iteration*)::

        lr_t = base_lr * t / warmup_steps                        if t < warmup_steps
        lr_t = base_lr * decay_rate ** floor(t / decay_steps)    otherwise (staircase)
        lr_t = base_lr * decay_rate ** (t / decay_steps)         (staircase=False)

    ``decay_steps`` may be fractional: "0.97 every 2.4 epochs" is ``decay_rate=0.97,
    decay_steps=2.4 * steps_per_epoch``, the EfficientNet reference code's rule (its
    warm-up is 5 epochs, and the decay counts from step 0, not from the warm-up's end).
    """

    def __init__(self, optimizer: Optimizer, decay_steps: float, decay_rate: float,
                 staircase: bool = True, warmup_steps: int = 0, last_epoch: int = -1):
        if not decay_steps > 0:
            raise ValueError(f"ExponentialDecayLR: decay_steps must be > 0, got {decay_steps}")
        self.decay_steps, self.decay_rate = float(decay_steps), decay_rate
        self.staircase, self.warmup_steps = staircase, warmup_steps
        super().__init__(optimizer, last_epoch)

    def _closed_form_lr(self):
        t = self.last_epoch
        if t < self.warmup_steps:
            return [b * (t / self.warmup_steps) for b in self.base_lrs]
        k = t / self.decay_steps
        return [b * self.decay_rate ** (math.floor(k) if self.staircase else k)
                for b in self.base_lrs]

    get_lr = _closed_form_lr
