"""A6, hidden: the schedules in composition and in closed form.

Never ships. PyTorch's warm-up + cosine (SequentialLR starts the cosine at its milestone
with ``_closed_form_lr``), the library's ``warmup_cosine`` against PyTorch's lrs, and random
settings against the formulas written out here.
"""
import math

import numpy as np
import pytest

import tinynets as tn
from tinynets import optim
from tinynets.optim import lr_scheduler
from tinynets.training import trainer

pytestmark = [pytest.mark.A6, pytest.mark.hidden, pytest.mark.numpy_only]


def _holder(*lrs):
    return optim.SGD([{"params": [tn.Parameter(np.zeros(1))], "lr": lr} for lr in lrs])


def _sequence(sched, steps):
    got = [sched.get_last_lr()]
    for _ in range(steps):
        sched.step()
        got.append(sched.get_last_lr())
    return np.array(got)


def test_schedules_warmup_cosine_pytorch(a6):
    """SequentialLR(LinearLR, CosineAnnealingLR), and train.warmup_cosine(opt, 10, 3)."""
    got, want = a6.schedule_run("sched/05")
    a6.expect("LinearLR then CosineAnnealingLR (T_max 8, eta_min 1e-4) in SequentialLR, PyTorch "
              "case sched/05", got, want)
    opt = _holder(0.1)
    got = _sequence(trainer.warmup_cosine(opt, total_steps=10, warmup_steps=3), 9)
    a6.expect("train.warmup_cosine(opt, 10, 3): the lr of each step, PyTorch run train/14",
              got, a6.optim_data["train/14/lr"])


def test_schedules_closed_forms_random(checks):
    """Random T_max, eta_min and factors for 3 T_max steps; _closed_form_lr at every step;
    LinearLR started at a milestone."""
    rng = np.random.default_rng(63)
    for _ in range(4):
        base = list(rng.uniform(0.01, 1.0, 2))
        T, lo = int(rng.integers(2, 9)), float(rng.uniform(0, 0.005))
        cos = lr_scheduler.CosineAnnealingLR(_holder(*base), T_max=T, eta_min=lo)
        want = [[lo + (b - lo) * (1 + math.cos(math.pi * t / T)) / 2 for b in base]
                for t in range(3 * T + 1)]
        checks.expect_close(f"CosineAnnealingLR(T_max={T}, eta_min={lo:.4f}) over {3 * T} steps",
                            _sequence(cos, 3 * T), want)
        s, e, n = float(rng.uniform(0.05, 1)), float(rng.uniform(0, 1)), int(rng.integers(1, 7))
        lin = lr_scheduler.LinearLR(_holder(*base), start_factor=s, end_factor=e, total_iters=n)
        want_lin = [[b * (s + (e - s) * min(t, n) / n) for b in base] for t in range(2 * n + 3)]
        checks.expect_close(f"LinearLR(start_factor={s:.3f}, end_factor={e:.3f}, total_iters={n})",
                            _sequence(lin, 2 * n + 2), want_lin)
        for t in range(2 * n + 3):
            lin.last_epoch = t
            checks.expect_close(f"LinearLR._closed_form_lr() at step {t}", lin._closed_form_lr(),
                                want_lin[t])
        for t in range(3 * T + 1):
            cos.last_epoch = t
            checks.expect_close(f"CosineAnnealingLR._closed_form_lr() at step {t}",
                                cos._closed_form_lr(), want[t])
    opt = _holder(0.4)
    first = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    second = lr_scheduler.LinearLR(opt, start_factor=0.2, end_factor=1.0, total_iters=4)
    got = _sequence(lr_scheduler.SequentialLR(opt, [first, second], milestones=[3]), 9)[:, 0]
    want = [0.4 * 0.5 ** t for t in range(3)] + [0.4 * (0.2 + 0.8 * min(t, 4) / 4) for t in range(7)]
    checks.expect_close("SequentialLR([ExponentialLR(0.5), LinearLR(0.2 -> 1 over 4)], [3])", got, want)
