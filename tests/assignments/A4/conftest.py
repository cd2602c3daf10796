"""Checks shared by A4's tests: squeeze-and-excitation in NumPy, finite differences of a
module's own forward, torchvision's state_dict keys, and blocks made smooth for a
gradient check.

Squeeze-and-excitation is graded with ReLU inside and a Sigmoid gate (the V3 gate,
HardSigmoid, and EfficientNet's SiLU belong to another lesson's work). A gradient check
of a whole block swaps every activation for a Sigmoid: a smooth function has no kink
for a finite difference to step across, so any weights will do.
"""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

import tinynets as tn
from tinynets.nn.counting import LayerCount

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
KEYS = os.path.join(FIXTURES, "torchvision_keys.json")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def se_weights(se):
    """(W1 (S, C), b1 (S,), W2 (C, S), b2 (C,)) of a SqueezeExcitation, as float64 copies."""
    return (se.fc1.weight.data[:, :, 0, 0].astype(np.float64), se.fc1.bias.data.astype(np.float64),
            se.fc2.weight.data[:, :, 0, 0].astype(np.float64), se.fc2.bias.data.astype(np.float64))


def se_numpy(se, x, act=lambda a: np.maximum(a, 0), gate=sigmoid):
    """(y, s): the three equations of squeeze-and-excitation in NumPy, s of shape (N, C)."""
    W1, b1, W2, b2 = se_weights(se)
    z = x.astype(np.float64).mean(axis=(2, 3))
    s = gate(act(z @ W1.T + b1) @ W2.T + b2)
    return x * s[:, :, None, None], s


def make_se(C, S, seed, margin=True):
    """A float64 SqueezeExcitation(C, S, ReLU, Sigmoid) with random weights. ``margin``:
    fc1's biases are +-0.8 and its weights small, so that no ReLU input comes near 0 for
    inputs of size ~1 (then a finite difference never steps across the kink)."""
    rng = np.random.default_rng(seed)
    se = tn.SqueezeExcitation(C, S, tn.ReLU, tn.Sigmoid, dtype=np.float64)
    se.fc1.weight.data[...] = rng.standard_normal(se.fc1.weight.shape) * (0.15 / np.sqrt(C))
    se.fc1.bias.data[...] = np.resize([0.8, -0.8], S) if margin else rng.standard_normal(S)
    se.fc2.weight.data[...] = rng.standard_normal(se.fc2.weight.shape)
    se.fc2.bias.data[...] = rng.standard_normal(C) * 0.5
    return se


def run_no_grad(module, x):
    """The module's forward without caches (finite differences call it many times)."""
    with tn.no_grad():
        return module(x)


def five_point(loss, array, h=1e-3):
    """d loss() / d array by five-point central differences, ``array`` perturbed in place
    and restored. The stencil's error is of order h^4, so with h = 1e-3 rounding (~1e-12)
    is the limit."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(array.size):
        old = flat[i]
        values = []
        for step in (2 * h, h, -h, -2 * h):
            flat[i] = old + step
            values.append(loss())
        flat[i] = old
        gflat[i] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
    return grad


def numerical(checks, module, array, x, dout, h=1e-3, seed=None):
    """Five-point differences of sum(module(x) * dout) with respect to ``array`` (x itself
    or a parameter's data). ``seed``: ``tn.manual_seed(seed)`` before every forward, so that
    a stochastic depth mask stays the same."""
    def loss():
        if seed is not None:
            tn.manual_seed(seed)
        return np.sum(run_no_grad(module, x) * dout)

    return five_point(loss, array, h)


def expect_gradient(checks, what, got, num, tol=1e-7):
    """CS231n relative error of a gradient against finite differences, except on entries
    where both are below 1e-10 (an exactly zero gradient, e.g. of a ReLU unit that is
    off, against the differences' rounding noise): those count as equal."""
    got, num = np.asarray(got), np.asarray(num)
    if got.shape != num.shape:
        raise AssertionError(f"{what}: expected shape {num.shape}, got {got.shape}")
    tiny = (np.abs(got) < 1e-10) & (np.abs(num) < 1e-10)
    checks.expect_close(what, np.where(tiny, 0.0, got), np.where(tiny, 0.0, num), tol)


def torchvision_entries(model: str, prefix: str):
    """[(key without the prefix, shape)] of torchvision's ``model`` under ``prefix``."""
    with open(KEYS, encoding="utf-8") as f:
        entries = json.load(f)["models"][model]["entries"]
    return [(k[len(prefix):], tuple(s)) for k, s in entries if k.startswith(prefix)]


def expect_keys(what: str, module, want) -> None:
    """The module's state_dict keys and shapes, in order, must be ``want``."""
    got = [(k, tuple(np.shape(v))) for k, v in module.state_dict().items()]
    if got == want:
        return
    missing = [k for k, _ in want if k not in dict(got)]
    extra = [k for k, _ in got if k not in dict(want)]
    shapes = [f"{k}: {dict(got)[k]} (torchvision {s})" for k, s in want
              if k in dict(got) and dict(got)[k] != s]
    detail = "; ".join(part for part in (
        f"missing {missing[:4]}" if missing else "", f"unexpected {extra[:4]}" if extra else "",
        f"wrong shapes {shapes[:3]}" if shapes else "") if part) or "the same keys in another order"
    raise AssertionError(f"{what}: state_dict should have torchvision's {len(want)} keys and "
                         f"shapes in order, got {len(got)}: {detail}")


def v3_targets(width):
    """The rows of ``targets.json`` for MobileNetV3 Large and Small at this width."""
    with open(os.path.join(FIXTURES, "targets.json"), encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    return [r for r in rows if r["model"] in ("mobilenet_v3_large", "mobilenet_v3_small")
            and r["kwargs"]["width_mult"] == width]


def expect_counts(row) -> None:
    """tinynets' model of a ``targets.json`` row must have its params and MACs."""
    model = getattr(tn.models, row["model"])(**row["kwargs"])
    r = row["resolution"]
    what = f"{row['model']}(width_mult={row['kwargs']['width_mult']})"
    params, macs = tn.count_params(model), tn.count_macs(model, (3, r, r))
    if params != row["params"]:
        raise AssertionError(f"{what}: {row['params']:,} parameters expected ({row['source']}), "
                             f"got {params:,} (a difference of {params - row['params']:+,})")
    if macs != row["macs"]:
        raise AssertionError(f"{what}: {row['macs']:,} MACs at {r}x{r} expected, got {macs:,} "
                             f"(a difference of {macs - row['macs']:+,})")


def smooth(block, seed):
    """Every activation of ``block`` (including inside its SE) becomes a Sigmoid, every
    parameter and BN statistic random; float64 blocks only."""
    rng = np.random.default_rng(seed)
    for m in list(block.modules()):
        for name, child in list(m._modules.items()):
            if isinstance(child, (tn.ReLU, tn.ReLU6, tn.HardSwish, tn.HardSigmoid, tn.SiLU)):
                setattr(m, name, tn.Sigmoid())
    for _, p in block.named_parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.5
    for m in block.modules():
        if isinstance(m, tn.BatchNorm2d):
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.running_mean[...] = rng.uniform(-0.2, 0.2, m.num_features)
            m.running_var[...] = rng.uniform(0.5, 1.5, m.num_features)
    return block


def parts(block):
    """The entries of a bneck's or MBConv's ``block`` Sequential, as a list."""
    if "block" not in getattr(block, "_modules", {}):
        raise AssertionError(f"{type(block).__name__}: expected a Sequential named 'block' "
                             "(torchvision's name, so the keys are block.0..., block.1...)")
    return list(block.block)


# ------------------------------------------------------------ lesson 05's exercises
def silu_se_weights(C, S, seed):
    """A float64 SqueezeExcitation(C, S, SiLU, Sigmoid) with random weights whose own forward
    and backward refuse to run (the exercise works from the weights)."""
    se = tn.SqueezeExcitation(C, S, tn.SiLU, tn.Sigmoid, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for p in se.parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.5

    def refuse(*args, **kwargs):
        raise AssertionError("A4.try_se_silu_backward: compute dx from the weights; the layer's "
                             "forward and backward may not run")
    se.forward = refuse
    se.backward = refuse
    return se


def silu_se_forward(se, x):
    """y = x * sigmoid(W2 silu(W1 mean_HW(x) + b1) + b2), in NumPy."""
    W1, b1 = se.fc1.weight.data[:, :, 0, 0], se.fc1.bias.data
    W2, b2 = se.fc2.weight.data[:, :, 0, 0], se.fc2.bias.data
    a1 = x.mean(axis=(2, 3)) @ W1.T + b1
    u = a1 / (1 + np.exp(-a1))
    s = 1 / (1 + np.exp(-(u @ W2.T + b2)))
    return x * s[:, :, None, None]


def check_silu_backward(checks, fn, cases):
    for k, (N, C, H, W, S) in enumerate(cases):
        se = silu_se_weights(C, S, seed=k)
        rng = np.random.default_rng(30 + k)
        x, dout = rng.standard_normal((2, N, C, H, W))
        dx = fn(se, x.copy(), dout.copy())
        num = five_point(lambda: np.sum(silu_se_forward(se, x) * dout), x)
        expect_gradient(checks, f"se_silu_backward, SqueezeExcitation({C}, {S}) on {x.shape}, "
                        "vs finite differences", dx, num)


class Summary:
    """What the exercises read of a ``Summary``: rows, params, macs."""

    def __init__(self, rows, params):
        self.rows, self.params, self.macs = rows, params, sum(r.macs for r in rows)


NO_SE = ("count_params", "count_macs", "count_flops", "summary", "profile", "Identity", "models",
         "mobilenet_v3_large", "MobileNetV3")


def fake_rows(spatial, fixed):
    """LayerCount rows: ``spatial`` (channels, H at 224, MACs per pixel) as 4-D conv rows,
    ``fixed`` (name, out_shape, MACs) as rows on pooled vectors."""
    rows = [LayerCount(f"features.{i}.0", "Conv2d", (1, c, h, h), 10, a * h * h, 2 * a * h * h)
            for i, (c, h, a) in enumerate(spatial)]
    rows += [LayerCount(name, "Linear" if len(shape) == 2 else "Conv2d", shape, 7, m, 2 * m)
             for name, shape, m in fixed]
    return rows


def expect_macs_at(fn, spatial, fixed, resolutions):
    for r in resolutions:
        want = sum(a * (h * r // 224) ** 2 for _, h, a in spatial) + sum(m for *_, m in fixed)
        got = fn(r)
        if not abs(got - want) < 0.5:
            raise AssertionError(f"macs_at({r}) should be {want:,}, got {got}")


@pytest.fixture
def no_dropout(monkeypatch):
    """StochasticDepth's task is the per-sample mask written out: the library's Dropout (its
    forward, backward and _keep_mask) refuses to run while a test uses this fixture."""
    from tinynets.nn import layers

    def refuse(*args, **kwargs):
        raise AssertionError("StochasticDepth should not call Dropout's forward, backward or "
                             "_keep_mask: write the per-sample mask and its backward yourself")
    for name in ("forward", "backward", "_keep_mask"):
        monkeypatch.setattr(layers.Dropout, name, refuse)


@pytest.fixture
def a4():
    return SimpleNamespace(
        se_numpy=se_numpy, se_weights=se_weights, make_se=make_se, sigmoid=sigmoid,
        five_point=five_point, numerical=numerical, expect_gradient=expect_gradient,
        run_no_grad=run_no_grad, torchvision_entries=torchvision_entries,
        expect_keys=expect_keys, smooth=smooth, parts=parts, v3_targets=v3_targets,
        expect_counts=expect_counts, silu_se_weights=silu_se_weights,
        check_silu_backward=check_silu_backward, NO_SE=NO_SE, Summary=Summary,
        fake_rows=fake_rows, expect_macs_at=expect_macs_at)
