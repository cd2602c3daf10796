"""A6, visible: lesson 07's Try its, run from their cells alone.

Each test runs the exercise cell of ``lessons/07_training.ipynb`` whose first line names
the task, with only ``np``, ``math`` and what the test gives it; a cell that names a
forbidden library function (the one the exercise asks you to write) fails before it runs.
"""
import numpy as np
import pytest

import tinynets as tn
from tinynets import data

pytestmark = [pytest.mark.A6]


@pytest.mark.numpy_only
def test_try_xent_grad_pytorch(checks, a6):
    """Try it 1: smoothed_xent_grad(z, y, eps) against PyTorch's gradients."""
    ns = checks.exercise("07", "A6.try_xent_grad", forbid=a6.NO_LOSS)
    grad = checks.defined(ns, "smoothed_xent_grad", "A6.try_xent_grad")
    for c in a6.xent_cases("xent/00", "xent/01", "xent/03"):
        a6.expect(f"smoothed_xent_grad, case {c.name}",
                  grad(c.logits.copy(), c.labels, c.label_smoothing), c.dlogits)


@pytest.mark.numpy_only
def test_try_nesterov_constant_gradient(checks, a6):
    """Try it 2: with the same g every step, step t moves w by lr g (1 - mu^(t+1)) / (1 - mu)."""
    ns = checks.exercise("07", "A6.try_nesterov", forbid=a6.NO_SGD)
    steps = checks.defined(ns, "nesterov_steps", "A6.try_nesterov")
    w0, g = np.array([0.5, -1.0, 2.0]), np.array([0.3, 0.1, -0.2])
    for lr, mu, T in [(0.1, 0.9, 1), (0.1, 0.9, 6), (0.05, 0.5, 4)]:
        want = w0 - lr * g * sum((1 - mu ** (t + 1)) / (1 - mu) for t in range(1, T + 1))
        checks.expect_close(f"nesterov_steps(w, [g] * {T}, lr={lr}, mu={mu})",
                            steps(w0.copy(), [g.copy() for _ in range(T)], lr, mu), want)


@pytest.mark.numpy_only
def test_try_lr_at_pytorch(checks, a6):
    """Try it 3: lr_at(t, 0.1, 3, 10) is what PyTorch's LinearLR + CosineAnnealingLR set."""
    ns = checks.exercise("07", "A6.try_lr_at", forbid=a6.NO_SCHEDULE)
    lr_at = checks.defined(ns, "lr_at", "A6.try_lr_at")
    want = a6.optim_data["train/14/lr"][:, 0]       # warm-up 3 steps from 0.01, cosine over 7
    got = [float(lr_at(t, 0.1, 3, 10)) for t in range(10)]
    checks.expect_close("[lr_at(t, 0.1, 3, 10) for t in range(10)] against PyTorch", got, want)


def _linear_digits_model():
    """A linear classifier of 8x8 digits fitted by least squares (no training needed)."""
    train_set, test_set = data.load_digits(resolution=8)
    X = train_set.images.reshape(len(train_set.images), -1).astype(np.float64)
    Y = np.eye(10)[train_set.labels]
    A = np.c_[X, np.ones(len(X))]
    W = np.linalg.lstsq(A, Y, rcond=None)[0]
    model = tn.Sequential(tn.Flatten(), tn.Linear(X.shape[1], 10))
    model[1].weight.data = W[:-1].T.astype(np.float32).copy()
    model[1].bias.data = W[-1].astype(np.float32).copy()
    return model, test_set.images.copy(), test_set.labels.copy()


def test_try_flip_accuracy_linear_model(checks, a6):
    """Try it 4: acc_flipped of a linear digit classifier, whose accuracy the test knows."""
    model, xt, yt = _linear_digits_model()
    with tn.no_grad():
        want = float((model.eval()(np.ascontiguousarray(xt[..., ::-1])).argmax(1) == yt).mean())
    ns = checks.exercise("07", "A6.try_flip_accuracy", forbid=a6.NO_EVALUATE, model=model,
                         xt=xt, yt=yt)
    got = checks.defined(ns, "acc_flipped", "A6.try_flip_accuracy")
    if not abs(float(got) - want) < 1e-9:
        raise AssertionError(f"acc_flipped should be the accuracy on xt[..., ::-1], {want:.4f} for "
                             f"this model, got {float(got):.4f}")
