"""A2, visible: BatchNorm's NumPy forward, backward and running statistics against PyTorch.

Run them with ``python -m pytest -m A2``. Each ``bn_train`` case of the fixture file is two
consecutive train-mode steps of one torch.nn.BatchNorm2d (its running statistics carry
over from the first step to the second); each ``bn_eval`` case one eval-mode step. Every
array must match to a relative error below 1e-8 (float64: a correct implementation is at
1e-14 or so).
"""
import numpy as np
import pytest

from tinynets.nn import norm

pytestmark = [pytest.mark.A2, pytest.mark.numpy_only]

TRAIN = ("bn_train/00", "bn_train/01", "bn_train/02")
EVAL = ("bn_eval/00", "bn_eval/01")
MOMENTUM = ("bn_train/00", "bn_train/01")        # momentum 0.1 and 0.01
CUMULATIVE = ("bn_train/02",)                    # momentum None, from 0 batches seen


def test_batchnorm_forward_train_pytorch(checks, a2):
    """Train mode: normalise with the batch's mean and biased variance, and return them."""
    for c in a2.bn_cases(*TRAIN):
        gamma, beta = c.state["weight"], c.state["bias"]
        for s, step in enumerate(c.steps):
            what = f"batch_norm_forward (train), case {c.name}, step {s}"
            y, cache, mean, var = norm.batch_norm_forward(step["x"], gamma, beta, c.eps)
            checks.expect_close(f"{what}: y", y, step["out"])
            want_mean, want_var = a2.batch_stats(step["x"])
            checks.expect_close(f"{what}: the mean returned", mean, want_mean)
            checks.expect_close(f"{what}: the (biased) variance returned", var, want_var)


def test_batchnorm_forward_eval_pytorch(checks, a2):
    """Eval mode: normalise with the running statistics given, and return them."""
    for c in a2.bn_cases(*EVAL):
        st = c.state
        y, cache, mean, var = norm.batch_norm_forward(c.x, st["weight"], st["bias"], c.eps,
                                                      st["running_mean"], st["running_var"])
        checks.expect_close(f"batch_norm_forward (eval), case {c.name}: y", y, c.out)
        checks.expect_close(f"batch_norm_forward (eval), case {c.name}: the mean returned "
                            "(the running mean given)", mean, st["running_mean"])
        checks.expect_close(f"batch_norm_forward (eval), case {c.name}: the variance returned "
                            "(the running variance given)", var, st["running_var"])


def test_batchnorm_backward_train_pytorch(checks, a2):
    """Train mode: dx goes through the batch statistics too."""
    a2.check_backward_train(checks, a2.bn_cases(*TRAIN))


def test_batchnorm_backward_eval_pytorch(checks, a2):
    """Eval mode: the statistics are constants."""
    for c in a2.bn_cases(*EVAL):
        st = c.state
        _, cache, _, _ = norm.batch_norm_forward(c.x, st["weight"], st["bias"], c.eps,
                                                 st["running_mean"], st["running_var"])
        dx, dgamma, dbeta = norm.batch_norm_backward(c.dout, cache, st["weight"], False)
        what = f"batch_norm_backward (eval), case {c.name}"
        checks.expect_close(f"{what}: dx", dx, c.dx)
        checks.expect_close(f"{what}: dgamma", dgamma, c.dweight)
        checks.expect_close(f"{what}: dbeta", dbeta, c.dbias)


def _running(checks, a2, names):
    """Replay each case's two steps through update_running_stats (the batch statistics
    are computed by the test) and compare with torch's running statistics."""
    for c in a2.bn_cases(*names):
        rm, rv = c.state["running_mean"], c.state["running_var"]
        seen = int(c.state["num_batches_tracked"])
        for s, step in enumerate(c.steps):
            mean, var = a2.batch_stats(step["x"])
            m = step["x"].size // step["x"].shape[1]
            rm, rv, seen = norm.update_running_stats(rm, rv, seen, mean, var, m, c.momentum)
            what = f"update_running_stats, case {c.name} (momentum {c.momentum}), step {s}"
            checks.expect_close(f"{what}: running_mean", rm, step["running_mean"])
            checks.expect_close(f"{what}: running_var", rv, step["running_var"])
            if seen != int(step["num_batches_tracked"]):
                raise AssertionError(f"{what}: num_batches_tracked should be "
                                     f"{int(step['num_batches_tracked'])}, got {seen}")


def test_running_stats_momentum_pytorch(checks, a2):
    _running(checks, a2, MOMENTUM)


def test_running_stats_cumulative_pytorch(checks, a2):
    """momentum=None: the plain average of every batch's statistics so far."""
    _running(checks, a2, CUMULATIVE)
