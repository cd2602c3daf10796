"""A2, hidden: BatchNorm's NumPy functions on cases the student has not seen.

These tests never ship. The fixture cases the visible tests leave out (1x1 spatial, a
mean of 50, cumulative averages from 5 batches seen), random inputs checked against the
definition, and finite differences of the student's own forward for the backward.
"""
import numpy as np
import pytest

from tinynets.nn import norm

pytestmark = [pytest.mark.A2, pytest.mark.hidden, pytest.mark.numpy_only]

TRAIN = ("bn_train/03", "bn_train/04", "bn_train/05")
EVAL = ("bn_eval/02",)
# (N, C, H, W, eps): odd sizes, a batch of one, two values per channel and 1x1 spatial (where
# only eps lets x move y: a large eps keeps that gradient well above rounding)
SHAPES = [(3, 4, 5, 3, 1e-5), (1, 3, 2, 4, 1e-3), (2, 2, 1, 1, 0.5), (4, 5, 1, 2, 0.1)]


def _random(rng, N, C, H, W):
    x = rng.standard_normal((N, C, H, W)) * rng.uniform(0.5, 3.0, C)[:, None, None] \
        + rng.uniform(-3, 3, C)[:, None, None]
    gamma = rng.uniform(0.5, 2.0, C) * rng.choice([-1.0, 1.0], C)
    return x, gamma, rng.standard_normal(C)


def test_batchnorm_forward_train_hidden_cases(checks, a2):
    """PyTorch's other train cases, then random batches against the definition, the cache
    included: x_hat = (x - mean) / sqrt(var + eps) and invstd = 1 / sqrt(var + eps)."""
    for c in a2.bn_cases(*TRAIN):
        for s, step in enumerate(c.steps):
            y = norm.batch_norm_forward(step["x"], c.state["weight"], c.state["bias"], c.eps)[0]
            checks.expect_close(f"batch_norm_forward (train), case {c.name}, step {s}: y", y,
                                step["out"])
    rng = np.random.default_rng(31)
    for N, C, H, W, eps in SHAPES:
        x, gamma, beta = _random(rng, N, C, H, W)
        x_in = x.copy()
        y, (x_hat, invstd), mean, var = norm.batch_norm_forward(x, gamma, beta, eps)
        what = f"batch_norm_forward (train) on a random batch of shape {x.shape}, eps {eps}"
        mu, v = x_in.mean(axis=(0, 2, 3)), x_in.var(axis=(0, 2, 3))
        want_hat = (x_in - mu[:, None, None]) / np.sqrt(v + eps)[:, None, None]
        checks.expect_close(f"{what}: y", y, gamma[:, None, None] * want_hat + beta[:, None, None])
        checks.expect_close(f"{what}: cache x_hat", x_hat, want_hat)
        checks.expect_close(f"{what}: cache invstd", invstd, 1 / np.sqrt(v + eps))
        checks.expect_close(f"{what}: mean", mean, mu)
        checks.expect_close(f"{what}: the biased variance", var, v)
        if not np.array_equal(x, x_in):
            raise AssertionError(f"{what}: the input x was changed in place")


def test_batchnorm_forward_eval_hidden_cases(checks, a2):
    """A batch of one 1x1 image (fine in eval mode), and random running statistics."""
    for c in a2.bn_cases(*EVAL):
        st = c.state
        y = norm.batch_norm_forward(c.x, st["weight"], st["bias"], c.eps, st["running_mean"],
                                    st["running_var"])[0]
        checks.expect_close(f"batch_norm_forward (eval), case {c.name}: y", y, c.out)
    rng = np.random.default_rng(32)
    for N, C, H, W, eps in SHAPES:
        x, gamma, beta = _random(rng, N, C, H, W)
        rm, rv = rng.standard_normal(C), rng.uniform(0.1, 3.0, C)
        y, (x_hat, invstd), mean, var = norm.batch_norm_forward(x, gamma, beta, eps, rm, rv)
        what = f"batch_norm_forward (eval) on a random batch of shape {x.shape}, eps {eps}"
        want_hat = (x - rm[:, None, None]) / np.sqrt(rv + eps)[:, None, None]
        checks.expect_close(f"{what}: y", y, gamma[:, None, None] * want_hat + beta[:, None, None])
        checks.expect_close(f"{what}: cache x_hat", x_hat, want_hat)
        checks.expect_close(f"{what}: the mean returned (the one given)", mean, rm)
        checks.expect_close(f"{what}: the variance returned (the one given)", var, rv)


def _numerical(checks, x, gamma, beta, eps, stats, dout, h):
    """Central differences with respect to x (step h), gamma and beta (y is linear in both)."""
    f = lambda: norm.batch_norm_forward(x, gamma, beta, eps, *stats)[0]  # noqa: E731
    return (checks.numerical_gradient(f, x, dout, h=h),
            checks.numerical_gradient(f, gamma, dout), checks.numerical_gradient(f, beta, dout))


def test_batchnorm_backward_train_numerical_gradient(checks):
    """dx, dgamma, dbeta against central differences of the student's own forward in train
    mode: moving one x moves the batch's mean and variance, and so every output."""
    rng = np.random.default_rng(33)
    for N, C, H, W, eps in SHAPES:
        x, gamma, beta = _random(rng, N, C, H, W)
        _, cache, _, _ = norm.batch_norm_forward(x, gamma, beta, eps)
        dout = rng.standard_normal(x.shape)
        dx, dgamma, dbeta = norm.batch_norm_backward(dout, cache, gamma, True)
        ndx, ndgamma, ndbeta = _numerical(checks, x, gamma, beta, eps, (), dout, 1e-5)
        what = f"batch_norm_backward (train), random batch of shape {x.shape}, eps {eps}"
        checks.expect_close(f"{what}: dx vs finite differences", dx, ndx, 1e-6)
        checks.expect_close(f"{what}: dgamma vs finite differences", dgamma, ndgamma, 1e-7)
        checks.expect_close(f"{what}: dbeta vs finite differences", dbeta, ndbeta, 1e-7)


def test_batchnorm_backward_eval_numerical_gradient(checks):
    rng = np.random.default_rng(34)
    for N, C, H, W, eps in SHAPES[:3]:
        x, gamma, beta = _random(rng, N, C, H, W)
        stats = (rng.standard_normal(C), rng.uniform(0.1, 3.0, C))
        _, cache, _, _ = norm.batch_norm_forward(x, gamma, beta, eps, *stats)
        dout = rng.standard_normal(x.shape)
        dx, dgamma, dbeta = norm.batch_norm_backward(dout, cache, gamma, False)
        ndx, ndgamma, ndbeta = _numerical(checks, x, gamma, beta, eps, stats, dout, 1e-3)  # linear
        what = f"batch_norm_backward (eval), random batch of shape {x.shape}, eps {eps}"
        checks.expect_close(f"{what}: dx vs finite differences", dx, ndx, 1e-7)
        checks.expect_close(f"{what}: dgamma vs finite differences", dgamma, ndgamma, 1e-7)
        checks.expect_close(f"{what}: dbeta vs finite differences", dbeta, ndbeta, 1e-7)


def test_batchnorm_backward_hidden_cases(checks, a2):
    a2.check_backward_train(checks, a2.bn_cases(*TRAIN))
    for c in a2.bn_cases(*EVAL):
        st = c.state
        _, cache, _, _ = norm.batch_norm_forward(c.x, st["weight"], st["bias"], c.eps,
                                                 st["running_mean"], st["running_var"])
        dx, dgamma, dbeta = norm.batch_norm_backward(c.dout, cache, st["weight"], False)
        checks.expect_close(f"batch_norm_backward (eval), case {c.name}: dx", dx, c.dx)
        checks.expect_close(f"batch_norm_backward (eval), case {c.name}: dgamma", dgamma, c.dweight)


def test_running_stats_hidden_cases(checks, a2):
    """PyTorch's other train cases, then long random sequences against closed forms: with
    momentum None after t batches from 0 seen, the plain averages; with a momentum, the
    exponentially weighted sums. The inputs must not be changed."""
    for c in a2.bn_cases(*TRAIN):
        rm, rv = c.state["running_mean"], c.state["running_var"]
        seen = int(c.state["num_batches_tracked"])
        for s, step in enumerate(c.steps):
            mean, var = a2.batch_stats(step["x"])
            rm, rv, seen = norm.update_running_stats(rm, rv, seen, mean, var,
                                                     step["x"].size // step["x"].shape[1],
                                                     c.momentum)
            what = f"update_running_stats, case {c.name} (momentum {c.momentum}), step {s}"
            checks.expect_close(f"{what}: running_mean", rm, step["running_mean"])
            checks.expect_close(f"{what}: running_var", rv, step["running_var"])
            if seen != int(step["num_batches_tracked"]):
                raise AssertionError(f"{what}: num_batches_tracked should be "
                                     f"{int(step['num_batches_tracked'])}, got {seen}")
    rng = np.random.default_rng(35)
    C, T = 4, 12
    ms = rng.integers(2, 9, T)                      # values per channel, as small as 2
    means, vars_ = rng.standard_normal((T, C)), rng.uniform(0.1, 3.0, (T, C))
    for momentum in (None, 0.25):
        rm, rv, seen = np.zeros(C), np.ones(C), 0
        for t in range(T):
            args = (rm, rv, means[t].copy(), vars_[t].copy())
            kept = [a.copy() for a in args]
            rm, rv, seen = norm.update_running_stats(rm, rv, seen, args[2], args[3], int(ms[t]),
                                                     momentum)
            if not all(np.array_equal(a, b) for a, b in zip(args, kept)):
                raise AssertionError("update_running_stats changed an input array in place; "
                                     "return new arrays")
        unbiased = vars_ * (ms / (ms - 1))[:, None]
        if momentum is None:
            want_m, want_v = means.mean(axis=0), unbiased.mean(axis=0)
        else:
            w = momentum * (1 - momentum) ** np.arange(T - 1, -1, -1)     # newest weighs most
            start = (1 - momentum) ** T
            want_m, want_v = w @ means, start + w @ unbiased
        what = f"update_running_stats over {T} random batches (momentum {momentum}) from 0 seen"
        checks.expect_close(f"{what}: running_mean", rm, want_m)
        checks.expect_close(f"{what}: running_var", rv, want_v)
        if seen != T:
            raise AssertionError(f"{what}: num_batches_tracked should be {T}, got {seen}")
