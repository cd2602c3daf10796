"""A8, visible: lesson 09's exercises (arithmetic intensity, memory- or compute-bound, a
fused Numba loop), each run alone from its answer cell in ``lessons/09_making_it_fast.ipynb``.

Run them with ``python -m pytest -m A8``. Nothing here is timed: the lesson measures speed,
the grade checks numbers.
"""
import numpy as np
import pytest

pytestmark = [pytest.mark.A8]


def test_try_intensity_benchmark_layer(checks, a8):
    ns = checks.exercise("09", "A8.try_intensity", forbid=a8.FORBID_INTENSITY)
    a8.check_intensity(checks, checks.defined(ns, "depthwise_intensity", "A8.try_intensity"),
                       (16, 144, 56, 56, 5, 2, 2))


def test_try_bound_answers_each_layer(checks, a8):
    """Only the form of the answer; whether each one is right is graded after the deadline."""
    prediction = checks.defined(checks.exercise("09", "A8.try_bound"), "prediction", "A8.try_bound")
    if not isinstance(prediction, dict) or set(prediction) != set(a8.LAYERS):
        raise AssertionError(f"A8.try_bound: prediction should be a dict with the keys {a8.LAYERS}")
    bad = {k: v for k, v in prediction.items() if v not in ("memory", "compute")}
    if bad:
        raise AssertionError(f"A8.try_bound: each answer is 'memory' or 'compute', got {bad}")


def test_try_scale_relu_matches_numpy(checks, a8):
    x = np.random.default_rng(0).standard_normal((4, 16, 20, 20)).astype(np.float32)
    a8.check_scale_relu(checks, a8.scale_relu(checks), x, np.float32(1.5), np.float32(-0.25))
