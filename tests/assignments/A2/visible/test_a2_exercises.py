"""A2, visible: lesson 02's Try its and its question, run from their cells.

Each answer cell of ``lessons/02_batchnorm_activations.ipynb`` runs on its own, with
``np``, ``math`` and the names it reads, given new numbers (never the lesson's), and
without tinynets: the exercises ask for your own NumPy code. Keep each cell's first line
as it was handed out; it is how the grader finds the cell.
"""
import numbers

import numpy as np
import pytest

pytestmark = [pytest.mark.A2, pytest.mark.numpy_only]

NO_LIBRARY = ("tinynets", "BatchNorm2d", "update_running_stats", "batch_norm_forward")


def test_try_cumulative_average(checks):
    """Try it 1: with momentum=None the running statistics are the plain averages of the
    batches' means and unbiased variances."""
    rng = np.random.default_rng(101)
    b1, b2, b3 = (rng.standard_normal((2, 3, 4, 4)) * [[[2.0]], [[0.5]], [[1.0]]] + 1.0
                  for _ in range(3))
    ns = checks.exercise("02", "A2.try_cumulative", forbid=NO_LIBRARY, b1=b1, b2=b2, b3=b3)
    batches = (b1, b2, b3)
    want_m = sum(b.mean(axis=(0, 2, 3)) for b in batches) / 3
    want_v = sum(b.var(axis=(0, 2, 3), ddof=1) for b in batches) / 3
    checks.expect_close("Try it 1: rm3", checks.defined(ns, "rm3", "A2.try_cumulative"), want_m)
    checks.expect_close("Try it 1: rv3 (the average of unbiased variances)",
                        checks.defined(ns, "rv3", "A2.try_cumulative"), want_v)


def test_try_bn_affine(checks, a2):
    """Try it 2: eval-mode BatchNorm is scale[c] * x + shift[c]."""
    rng = np.random.default_rng(202)
    bn = a2.random_bn(3, rng)
    ns = checks.exercise("02", "A2.try_bn_affine", forbid=NO_LIBRARY + ("fold_conv_bn", "fold_bn"),
                         bn_eval=bn)
    scale = np.asarray(checks.defined(ns, "scale", "A2.try_bn_affine"))
    shift = np.asarray(checks.defined(ns, "shift", "A2.try_bn_affine"))
    if scale.shape != (3,) or shift.shape != (3,):
        raise AssertionError(f"Try it 2: scale and shift should have shape (3,), got "
                             f"{scale.shape} and {shift.shape}")
    x = rng.standard_normal((2, 3, 4, 4))
    g, b = bn.weight.data[:, None, None], bn.bias.data[:, None, None]
    mu, var = bn.running_mean[:, None, None], bn.running_var[:, None, None]
    want = g * (x - mu) / np.sqrt(var + bn.eps) + b
    checks.expect_close("Try it 2: scale[c] * x + shift[c] vs eval-mode BatchNorm",
                        scale[:, None, None] * x + shift[:, None, None], want)


def _hswish(x):
    return x * np.clip(x + 3, 0, 6) / 6


def test_try_dhswish(checks, a2):
    """Try it 3: dhswish(x) against finite differences of h-swish, away from the kinks."""
    ns = checks.exercise("02", "A2.try_dhswish", forbid=("tinynets", "HardSwish", "Hardswish"))
    dhswish = checks.defined(ns, "dhswish", "A2.try_dhswish")
    x = np.linspace(-7, 7, 250)                      # steps of 0.056: no point lands on -1.5,
    x = x[np.abs(np.abs(x) - 3) > 1e-2]              # where the slope is 0; none on a kink
    got = dhswish(x)
    if np.shape(got) != x.shape:
        raise AssertionError(f"Try it 3: dhswish(x) should have x's shape {x.shape}, "
                             f"got {np.shape(got)}")
    checks.expect_close("Try it 3: dhswish vs finite differences of h-swish", got,
                        a2.derivative(_hswish, x), 1e-7)


def test_q_keras_momentum_is_a_number(checks):
    """The question's answer is a number (whether it is right is graded, not shown)."""
    ns = checks.exercise("02", "A2.q_keras_momentum", forbid=("tinynets",))
    answer = checks.defined(ns, "answer", "A2.q_keras_momentum")
    if not isinstance(answer, numbers.Real) or isinstance(answer, bool):
        raise AssertionError(f"A2.q_keras_momentum: answer should be a number, got "
                             f"{type(answer).__name__}")
    if not 0 <= answer <= 1:
        raise AssertionError(f"A2.q_keras_momentum: a momentum lies in [0, 1], got {answer}")
