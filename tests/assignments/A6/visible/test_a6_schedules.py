"""A6, visible: CosineAnnealingLR and LinearLR, against PyTorch's learning rates.

Each case is a PyTorch scheduler on two parameter groups (base lrs 0.1 and 0.02): the lr
after construction and after every ``step()`` must match to a relative error below 1e-8.
"""
import pytest

pytestmark = [pytest.mark.A6, pytest.mark.numpy_only]


def _check(a6, prefix):
    got, want = a6.schedule_run(prefix)
    cfg = a6.config(prefix)
    a6.expect(f"get_last_lr() after construction and each of {cfg['steps']} steps, PyTorch "
              f"case {prefix} ({cfg['name']}: {cfg['scheduler']})", got, want)


def test_schedules_cosine_annealing_pytorch(a6):
    """T_max 10, eta_min 1e-3, for 25 steps: down to eta_min and, past T_max, back up."""
    _check(a6, "sched/02")


def test_schedules_linear_pytorch(a6):
    """A warm-up (factor 0.25 -> 1 over 4 steps) and a decay (1 -> 0.1 over 5 steps)."""
    _check(a6, "sched/03")
    _check(a6, "sched/04")
