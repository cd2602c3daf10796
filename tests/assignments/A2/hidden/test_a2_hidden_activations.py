"""A2, hidden: the activations against finite differences of the student's own forward.

These tests never ship. Points 1e-3, 1e-2 and 0.1 beside every kink and random ones; the
five-point stencil with h = 1e-4 never reaches across a kink from 1e-3 away, and is exact
on linear and quadratic pieces. Then float32 in, float32 out, and 4-D inputs.
"""
import numpy as np
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A2, pytest.mark.hidden, pytest.mark.numpy_only]


def _check(checks, a2, cls, kinks, seed, extreme=False):
    rng = np.random.default_rng(seed)
    name = cls.__name__
    x = a2.near_kinks(kinks, rng)
    dout = rng.standard_normal(x.shape)
    _, dx = a2.run_layer(cls, x, dout)
    forward = lambda z: cls()(z)  # noqa: E731
    checks.expect_close(f"{name}.backward beside the kinks {list(kinks)} vs finite "
                        "differences of your forward", dx, dout * a2.derivative(forward, x), 1e-7)
    # float32 stays float32 and agrees with float64; 4-D works
    x4 = (rng.standard_normal((2, 3, 4, 5)) * 4)
    if extreme:
        x4.flat[:6] = [-1000.0, -90.0, -40.0, 40.0, 90.0, 1000.0]
    d4 = rng.standard_normal(x4.shape)
    y64, dx64 = a2.run_layer(cls, x4, d4)
    with np.errstate(over="raise", invalid="raise"):
        y32, dx32 = a2.run_layer(cls, x4.astype(np.float32), d4.astype(np.float32))
    for what, got in (("forward", y32), ("backward", dx32)):
        if getattr(got, "dtype", None) != np.float32:
            raise AssertionError(f"{name}.{what}: float32 input should give float32, got "
                                 f"{getattr(got, 'dtype', type(got).__name__)}")
    checks.expect_close(f"{name}.forward in float32 vs float64", y32, y64, 1e-5)
    checks.expect_close(f"{name}.backward in float32 vs float64", dx32, dx64, 1e-4)


def test_relu6_numerical_gradient_near_kinks(checks, a2):
    _check(checks, a2, tn.ReLU6, (0.0, 6.0), 41)


def test_hardsigmoid_numerical_gradient_near_kinks(checks, a2):
    _check(checks, a2, tn.HardSigmoid, (-3.0, 3.0), 42)


def test_hardswish_numerical_gradient_near_kinks(checks, a2):
    _check(checks, a2, tn.HardSwish, (-3.0, 3.0), 43)


def test_silu_numerical_gradient_and_extremes(checks, a2):
    """Smooth: no kinks, but +-1000 must not overflow, in float32 either."""
    _check(checks, a2, tn.SiLU, (), 44, extreme=True)
