"""A6, hidden: lesson 07's Try its on other inputs, and its two questions.

Never ships. Other PyTorch cases and logits in the thousands, random gradients against
Nesterov's rule written out here, other schedules, a model with BatchNorm handed over in
train mode, and the answers to the questions.
"""
import math

import numpy as np
import pytest

import tinynets as tn
from tinynets import data

pytestmark = [pytest.mark.A6, pytest.mark.hidden]


@pytest.mark.numpy_only
def test_try_xent_grad_hidden_cases(checks, a6):
    ns = checks.exercise("07", "A6.try_xent_grad", forbid=a6.NO_LOSS)
    grad = checks.defined(ns, "smoothed_xent_grad", "A6.try_xent_grad")
    for c in a6.xent_cases("xent/02", "xent/04", "xent/05"):
        a6.expect(f"smoothed_xent_grad, case {c.name}",
                  grad(c.logits.copy(), c.labels, c.label_smoothing), c.dlogits)
    rng = np.random.default_rng(65)
    z = rng.standard_normal((6, 5)) * 3000
    y = rng.integers(0, 5, 6)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    q = np.full_like(p, 0.3 / 5)
    q[np.arange(6), y] += 0.7
    got = grad(z.copy(), y, 0.3)
    checks.expect_close("smoothed_xent_grad of logits in the thousands (eps 0.3)", got, (p - q) / 6)


@pytest.mark.numpy_only
def test_try_nesterov_hidden_random(checks, a6):
    ns = checks.exercise("07", "A6.try_nesterov", forbid=a6.NO_SGD)
    steps = checks.defined(ns, "nesterov_steps", "A6.try_nesterov")
    rng = np.random.default_rng(66)
    for lr, mu, T in [(0.05, 0.9, 7), (0.2, 0.3, 3)]:
        w0 = rng.standard_normal(4)
        grads = [rng.standard_normal(4) for _ in range(T)]
        w, b = w0.copy(), None
        for g in grads:
            b = g if b is None else mu * b + g
            w = w - lr * (g + mu * b)
        given = w0.copy()
        got = steps(given, [g.copy() for g in grads], lr, mu)
        checks.expect_close(f"nesterov_steps on {T} random gradients (lr {lr}, mu {mu})", got, w)
        if not np.array_equal(given, w0):
            raise AssertionError("nesterov_steps changed the w it was given; return a new array")


@pytest.mark.numpy_only
def test_try_lr_at_hidden_schedules(checks, a6):
    ns = checks.exercise("07", "A6.try_lr_at", forbid=a6.NO_SCHEDULE)
    lr_at = checks.defined(ns, "lr_at", "A6.try_lr_at")
    for base, warmup, total in [(0.3, 7, 50), (1.0, 1, 12), (0.02, 44, 352)]:
        want = [base * (0.1 + 0.9 * t / warmup) if t < warmup else
                base / 2 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup)))
                for t in range(total)]
        got = [float(lr_at(t, base, warmup, total)) for t in range(total)]
        checks.expect_close(f"lr_at(t, {base}, {warmup}, {total}) for t in range({total})", got, want)


def test_try_flip_accuracy_eval_mode(checks, a6):
    """A model with BatchNorm, handed over in train mode: the accuracy is eval mode's, and
    xt is left as it was."""
    train_set, test_set = data.load_digits(resolution=8)
    bn = tn.BatchNorm2d(3)
    bn.running_mean[...] = -0.5                       # far from the batch's statistics
    bn.running_var[...] = 0.5
    X = (train_set.images[:, 0] - -0.5) / np.sqrt(0.5 + bn.eps)      # channel 0, as in eval mode
    X = X.reshape(len(X), -1).astype(np.float64)
    W = np.linalg.lstsq(np.c_[X, np.ones(len(X))], np.eye(10)[train_set.labels], rcond=None)[0]
    model = tn.Sequential(bn, tn.Flatten(), tn.Linear(3 * X.shape[1], 10))
    weight = np.zeros((10, 3 * X.shape[1]), np.float32)
    weight[:, :X.shape[1]] = W[:-1].T
    model[2].weight.data = weight
    model[2].bias.data = W[-1].astype(np.float32).copy()
    xt, yt = test_set.images.copy(), test_set.labels.copy()
    flipped = np.ascontiguousarray(xt[:, :, :, ::-1])
    state = model.state_dict()
    with tn.no_grad():
        want = float((model.eval()(flipped).argmax(1) == yt).mean())
        upside_down = float((model(np.ascontiguousarray(xt[:, :, ::-1])).argmax(1) == yt).mean())
        in_train_mode = float((model.train()(flipped).argmax(1) == yt).mean())
    model.load_state_dict(state)                      # train-mode passes move the running stats
    assert min(abs(in_train_mode - want), abs(upside_down - want)) > 1.5 / len(yt)  # tells apart
    ns = checks.exercise("07", "A6.try_flip_accuracy", forbid=a6.NO_EVALUATE, model=model,
                         xt=xt, yt=yt)
    got = float(checks.defined(ns, "acc_flipped", "A6.try_flip_accuracy"))
    if not np.array_equal(xt, test_set.images):
        raise AssertionError("the cell changed xt; flip a copy (xt[..., ::-1] is a view)")
    if abs(got - in_train_mode) < 1e-9:
        raise AssertionError(f"acc_flipped {got:.4f} is the accuracy in train mode; evaluate in "
                             "eval mode (model.eval())")
    if not abs(got - want) < 1e-9:
        raise AssertionError(f"acc_flipped should be {want:.4f} for this model (eval mode, flipped "
                             f"left-right), got {got:.4f}")


@pytest.mark.numpy_only
def test_question_adam_first_step(checks):
    ns = checks.exercise("07", "A6.q_adam_first_step")
    answer = float(checks.defined(ns, "answer", "A6.q_adam_first_step"))
    want = 0.003 * 0.002 / (0.002 + 1e-8)            # bias correction: m_hat = g, v_hat = g^2
    if not abs(answer - want) <= 1e-3 * want:
        raise AssertionError(f"A6.q_adam_first_step: the answer {answer:.6g} is not the size of "
                             "Adam's first step (within 0.1%)")


@pytest.mark.numpy_only
def test_question_smoothing_floor(checks):
    ns = checks.exercise("07", "A6.q_smoothing_floor")
    answer = float(checks.defined(ns, "answer", "A6.q_smoothing_floor"))
    want = -(0.91 * math.log(0.91) + 9 * 0.01 * math.log(0.01))    # the entropy of q
    if not abs(answer - want) <= 2e-3:
        raise AssertionError(f"A6.q_smoothing_floor: the answer {answer:.4f} is not the smallest "
                             "smoothed loss (within 0.002 nats)")
