"""A8, hidden: lesson 09's exercises on other layers and inputs, and the predictions."""
import importlib.util
import os

import numba
import numpy as np
import pytest

pytestmark = [pytest.mark.A8, pytest.mark.hidden]

_spec = importlib.util.spec_from_file_location(
    "a8_visible_exercises", os.path.join(os.path.dirname(__file__), "..", "visible",
                                         "test_a8_exercises.py"))
visible = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(visible)


def test_try_intensity_other_layers(checks):
    ns = checks.exercise("09", "A8.try_intensity", forbid=("tinynets", "intensity", "profile"))
    fn = checks.defined(ns, "depthwise_intensity", "A8.try_intensity")
    for case in [(1, 32, 112, 112, 3, 1, 1), (8, 96, 57, 57, 3, 2, 1), (2, 240, 28, 28, 5, 1, 2),
                 (4, 672, 15, 15, 5, 2, 2), (3, 16, 9, 9, 7, 3, 0)]:
        visible.check_intensity(checks, fn, case)


def test_try_bound_predictions(checks):
    """Against the reference ridge, 315 / 16 FLOP/byte: the pointwise conv at 7x7 (about 30
    FLOP/byte) is compute-bound; BN + ReLU6 (well under 1) and the batch-1 classifier (under
    1: every weight is read for one image) are memory-bound."""
    prediction = checks.exercise("09", "A8.try_bound").get("prediction", {})
    want = dict(zip(visible.LAYERS, ("compute", "memory", "memory")))
    wrong = sorted(k for k in want if prediction.get(k) != want[k])
    if wrong:
        raise AssertionError(f"A8.try_bound: {len(wrong)} of 3 predictions are not right: {wrong}")


def test_try_scale_relu_other_inputs(checks):
    ns = checks.exercise("09", "A8.try_scale_relu", forbid=visible.FORBID_FUSED, numba=numba)
    fn = checks.defined(ns, "scale_relu", "A8.try_scale_relu")
    rng = np.random.default_rng(3)
    visible.check_scale_relu(checks, fn, rng.standard_normal(1001), -2.0, 0.5)
    visible.check_scale_relu(checks, fn, rng.standard_normal((3, 5, 7)).astype(np.float32),
                             np.float32(0.5), np.float32(-10.0))
    visible.check_scale_relu(checks, fn, np.zeros((0, 4), np.float32), np.float32(1), np.float32(1))
