"""A8, hidden: lesson 09's exercises on other layers and inputs, and the predictions."""
import numpy as np
import pytest

pytestmark = [pytest.mark.A8, pytest.mark.hidden]


def test_try_intensity_other_layers(checks, a8):
    ns = checks.exercise("09", "A8.try_intensity", forbid=a8.FORBID_INTENSITY)
    fn = checks.defined(ns, "depthwise_intensity", "A8.try_intensity")
    for case in [(1, 32, 112, 112, 3, 1, 1), (8, 96, 57, 57, 3, 2, 1), (2, 240, 28, 28, 5, 1, 2),
                 (4, 672, 15, 15, 5, 2, 2), (3, 16, 9, 9, 7, 3, 0)]:
        a8.check_intensity(checks, fn, case)


def test_try_bound_predictions(checks, a8):
    """Against the reference ridge, 315 / 16 FLOP/byte: the pointwise conv at 7x7 (about 30
    FLOP/byte) is compute-bound; BN + ReLU6 (well under 1) and the batch-1 classifier (under
    1: every weight is read for one image) are memory-bound."""
    prediction = checks.exercise("09", "A8.try_bound").get("prediction", {})
    want = dict(zip(a8.LAYERS, ("compute", "memory", "memory")))
    wrong = sorted(k for k in want if prediction.get(k) != want[k])
    if wrong:
        raise AssertionError(f"A8.try_bound: {len(wrong)} of 3 predictions are not right: {wrong}")


def test_try_scale_relu_other_inputs(checks, a8):
    fn = a8.scale_relu(checks)
    rng = np.random.default_rng(3)
    a8.check_scale_relu(checks, fn, rng.standard_normal(1001), -2.0, 0.5)
    a8.check_scale_relu(checks, fn, rng.standard_normal((3, 5, 7)).astype(np.float32),
                        np.float32(0.5), np.float32(-10.0))
    a8.check_scale_relu(checks, fn, np.zeros((0, 4), np.float32), np.float32(1), np.float32(1))
