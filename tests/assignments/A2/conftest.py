"""Checks shared by A2's tests: PyTorch's BatchNorm and activation cases, finite differences.

``a2.bn_cases("bn_train/00", ...)`` and ``a2.act_case("act/02")`` read
``tests/fixtures/layers.npz`` (PyTorch's numbers, float64). Activations are element-wise,
so their finite differences are taken for every entry at once (``a2.derivative``).
"""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

import tinynets as tn

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "layers.npz")


def bn_cases(*keys: str):
    """The fixture's BatchNorm cases as namespaces: ``name``, ``eps``, ``momentum``,
    ``state`` (weight, bias, running_mean, running_var, num_batches_tracked) and, for
    ``bn_train``, ``steps`` (a list of {x, dout, out, dx, dweight, dbias, running_mean,
    running_var, num_batches_tracked}, each after that step), for ``bn_eval`` the arrays
    x, dout, out, dx, dweight, dbias themselves."""
    cases = []
    with np.load(FIXTURE, allow_pickle=False) as npz:
        for key in keys:
            cfg = json.loads(str(npz[key + "/config"]))
            arrays = {f[len(key) + 1:]: npz[f] for f in npz.files if f.startswith(key + "/")}
            case = SimpleNamespace(name=f"{key} ({cfg['name']})", eps=cfg["eps"],
                                   momentum=cfg["momentum"],
                                   state={k: arrays[k] for k in ("weight", "bias", "running_mean",
                                                                  "running_var",
                                                                  "num_batches_tracked")})
            if "steps" in cfg:
                case.steps = [{k.split("/", 1)[1]: v for k, v in arrays.items()
                               if k.startswith(f"step{s}/")} for s in range(cfg["steps"])]
            else:
                for k in ("x", "dout", "out", "dx", "dweight", "dbias"):
                    setattr(case, k, arrays[k])
            cases.append(case)
    return cases


def act_case(key: str):
    """An ``act/*`` case: name, activation, x, dout, out, dx (torch's), and for Hardsigmoid
    dx rescaled to the exact slope 1/6 (torch multiplies by float32's 1/6 even in float64)."""
    with np.load(FIXTURE, allow_pickle=False) as npz:
        cfg = json.loads(str(npz[key + "/config"]))
        case = SimpleNamespace(name=f"{key} ({cfg['name']})", activation=cfg["activation"],
                               **{k: npz[f"{key}/{k}"] for k in ("x", "dout", "out", "dx")})
    if "torch_slope" in cfg:
        case.dx = case.dx * ((1.0 / 6.0) / cfg["torch_slope"])
    return case


def batch_stats(x: np.ndarray):
    """Per-channel mean and biased variance of x (N, C, H, W), computed here."""
    return x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))


def derivative(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """f'(x) of an element-wise f, for every entry at once, by the five-point stencil
    (exact for pieces of degree <= 4, so only rounding is left). Valid where no kink lies
    within 2h of x."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def near_kinks(kinks, rng, n: int = 40):
    """Points just beside each kink (+-1e-3, +-1e-2, +-0.1), at -8 and 8, and random ones
    at least 0.01 from every kink, shaped (2, k)."""
    near = [p + s * d for p in kinks for s in (-1, 1) for d in (1e-3, 1e-2, 0.1)]
    far = rng.uniform(-8, 8, 4 * n)
    if kinks:
        far = far[np.min(np.abs(far[:, None] - np.array(kinks)), axis=1) > 1e-2]
    pts = np.concatenate([near, [-8.0, 8.0], far[:n]])
    return pts[: 2 * (pts.size // 2)].reshape(2, -1)


def run_layer(cls, x: np.ndarray, dout: np.ndarray):
    """(y, dx) of a fresh ``cls()``: forward on x, then backward with dout."""
    layer = cls()
    y = layer(x)
    return y, layer.backward(dout)


def expect_layer(checks, cls, what: str, x, dout, out, dx, tol: float = 1e-7) -> None:
    """Forward and backward of a fresh ``cls()`` against (out, dx). 1e-7: a correct formula
    is at 1e-15 or so, but some (x / 6 + 1/2, tanh for the sigmoid) lose a few digits to
    cancellation right beside a kink or far out."""
    y, got = run_layer(cls, x, dout)
    checks.expect_close(f"{cls.__name__}.forward, {what}", y, out, tol)
    checks.expect_close(f"{cls.__name__}.backward, {what}", got, dx, tol)


class UncallableBatchNorm(tn.BatchNorm2d):
    """A BatchNorm2d in eval mode that may be read but not run (Try it 2 asks for its
    affine map from its parameters and statistics, not from calling it)."""

    def forward(self, x, activation=None):
        raise AssertionError("A2.try_bn_affine: compute scale and shift from bn_eval's "
                             "weight, bias, running statistics and eps; do not call the layer")


def random_bn(C: int, rng, eps: float = 1e-5) -> UncallableBatchNorm:
    bn = UncallableBatchNorm(C, eps=eps, dtype=np.float64).eval()
    bn.weight.data[:] = rng.uniform(0.3, 2.0, C) * rng.choice([-1.0, 1.0], C)
    bn.bias.data[:] = rng.standard_normal(C)
    bn.running_mean[:] = rng.standard_normal(C) * 2
    bn.running_var[:] = rng.uniform(0.05, 4.0, C)
    return bn


def check_backward_train(checks, cases) -> None:
    """batch_norm_backward in train mode against PyTorch's dx, dgamma and dbeta, step by step
    (the forward is the student's too: its cache feeds the backward)."""
    from tinynets.nn import norm
    for c in cases:
        gamma, beta = c.state["weight"], c.state["bias"]
        for s, step in enumerate(c.steps):
            _, cache, _, _ = norm.batch_norm_forward(step["x"], gamma, beta, c.eps)
            dx, dgamma, dbeta = norm.batch_norm_backward(step["dout"], cache, gamma, True)
            what = f"batch_norm_backward (train), case {c.name}, step {s}"
            checks.expect_close(f"{what}: dx", dx, step["dx"])
            checks.expect_close(f"{what}: dgamma", dgamma, step["dweight"])
            checks.expect_close(f"{what}: dbeta", dbeta, step["dbias"])


@pytest.fixture
def a2():
    return SimpleNamespace(bn_cases=bn_cases, act_case=act_case, batch_stats=batch_stats,
                           derivative=derivative, near_kinks=near_kinks, run_layer=run_layer,
                           expect_layer=expect_layer, random_bn=random_bn,
                           check_backward_train=check_backward_train)
