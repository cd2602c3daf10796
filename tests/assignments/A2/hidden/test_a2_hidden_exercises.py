"""A2, hidden: lesson 02's Try its on other shapes and numbers, and the question's answer.

These tests never ship.
"""
import numpy as np
import pytest

pytestmark = [pytest.mark.A2, pytest.mark.hidden, pytest.mark.numpy_only]

NO_LIBRARY = ("tinynets", "BatchNorm2d", "update_running_stats", "batch_norm_forward")


def test_try_cumulative_hidden(checks):
    """Five channels, batches of different sizes, one with two values per channel (where the
    unbiased variance is twice the biased one)."""
    rng = np.random.default_rng(301)
    shapes = [(1, 5, 2, 1), (3, 5, 2, 3), (2, 5, 1, 1)]
    b1, b2, b3 = (rng.standard_normal(s) * 3 - 1 for s in shapes)
    ns = checks.exercise("02", "A2.try_cumulative", forbid=NO_LIBRARY, b1=b1, b2=b2, b3=b3)
    batches = (b1, b2, b3)
    want_m = sum(b.mean(axis=(0, 2, 3)) for b in batches) / 3
    want_v = sum(b.var(axis=(0, 2, 3), ddof=1) for b in batches) / 3
    checks.expect_close("Try it 1 on batches of shapes " + ", ".join(map(str, shapes)) + ": rm3",
                        checks.defined(ns, "rm3", "A2.try_cumulative"), want_m)
    checks.expect_close("Try it 1 on batches of shapes " + ", ".join(map(str, shapes)) + ": rv3",
                        checks.defined(ns, "rv3", "A2.try_cumulative"), want_v)


def test_try_bn_affine_hidden(checks, a2):
    """Six channels, eps = 1e-3, negative gammas, tiny running variances."""
    rng = np.random.default_rng(302)
    bn = a2.random_bn(6, rng, eps=1e-3)
    bn.running_var[:2] = [1e-4, 2e-3]                  # where eps matters
    ns = checks.exercise("02", "A2.try_bn_affine", forbid=NO_LIBRARY + ("fold_conv_bn", "fold_bn"),
                         bn_eval=bn)
    scale = np.asarray(checks.defined(ns, "scale", "A2.try_bn_affine"))
    shift = np.asarray(checks.defined(ns, "shift", "A2.try_bn_affine"))
    g, b, mu, var = bn.weight.data, bn.bias.data, bn.running_mean, bn.running_var
    want_scale = g / np.sqrt(var + 1e-3)
    checks.expect_close("Try it 2 (6 channels, eps 1e-3): scale", scale, want_scale)
    checks.expect_close("Try it 2 (6 channels, eps 1e-3): shift", shift, b - want_scale * mu)


def test_try_dhswish_hidden(checks, a2):
    """A 2-D array, points 1e-3 beside the kinks, and far out (+-100)."""
    ns = checks.exercise("02", "A2.try_dhswish", forbid=("tinynets", "HardSwish", "Hardswish"))
    dhswish = checks.defined(ns, "dhswish", "A2.try_dhswish")
    rng = np.random.default_rng(303)
    pts = np.concatenate([[-3.001, -2.999, 2.999, 3.001, -100.0, 100.0, 0.0],
                          rng.uniform(-5, 5, 29)]).reshape(4, 9)
    got = dhswish(pts)
    if np.shape(got) != pts.shape:
        raise AssertionError(f"Try it 3: dhswish of a {pts.shape} array should have that shape, "
                             f"got {np.shape(got)}")
    mask = np.abs(np.abs(pts) - 3) > 5e-4               # the stencil must not cross a kink
    num = a2.derivative(lambda x: x * np.clip(x + 3, 0, 6) / 6, pts)
    checks.expect_close("Try it 3: dhswish on a 2-D array vs finite differences",
                        np.asarray(got)[mask], num[mask], 1e-7)


def test_q_keras_momentum(checks):
    """Keras' momentum is TensorFlow's decay: tinynets' momentum is 1 - 0.997."""
    ns = checks.exercise("02", "A2.q_keras_momentum", forbid=("tinynets",))
    answer = checks.defined(ns, "answer", "A2.q_keras_momentum")
    try:
        ok = abs(float(answer) - 0.003) < 1e-9
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise AssertionError(f"A2.q_keras_momentum: {answer!r} is not the momentum that keeps "
                             "the same running statistics")
