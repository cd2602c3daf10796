"""A6, hidden: SGD and Adam on runs and inputs the student has not seen.

Never ships. PyTorch's other runs (parameter groups, AMSGrad, a scheduler), random
gradient sequences against the update rules written out here, float32 parameters.
"""
import math

import numpy as np
import pytest

import tinynets as tn
from tinynets import optim

pytestmark = [pytest.mark.A6, pytest.mark.hidden]


def _run(make, w0, grads):
    p = tn.Parameter(w0.copy())
    opt = make([p])
    for g in grads:
        p.grad[...] = g
        before = p.grad.copy()
        opt.step()
        if not np.array_equal(p.grad, before):
            raise AssertionError("the optimizer's step changed p.grad; it must leave the gradient as is")
    return p, opt


def _sgd(w, grads, lr, mu=0.0, tau=0.0, wd=0.0, nesterov=False):
    w, b = w.copy(), None
    for g in grads:
        g = g + wd * w
        if mu:
            b = g.copy() if b is None else mu * b + (1 - tau) * g
            g = g + mu * b if nesterov else b
        w = w - lr * g
    return w, b


def _adam(w, grads, lr, b1, b2, eps, wd=0.0, amsgrad=False, decoupled=False):
    w, m, v, vmax = w.copy(), 0 * w, 0 * w, 0 * w
    for t, g in enumerate(grads, 1):
        if decoupled:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vh = vmax if amsgrad else v
        w = w - lr / (1 - b1 ** t) * m / (np.sqrt(vh) / math.sqrt(1 - b2 ** t) + eps)
    return w, m, v, vmax


SGD_CASES = [dict(lr=0.1), dict(lr=0.05, momentum=0.9), dict(lr=0.02, momentum=0.8, dampening=0.5),
             dict(lr=0.03, momentum=0.9, nesterov=True, weight_decay=0.1),
             dict(lr=0.1, weight_decay=0.3)]


def test_sgd_step_definition_random(checks):
    """Eight random gradients per option set, float64 and float32, with torch's state."""
    rng = np.random.default_rng(61)
    for kw in SGD_CASES:
        w0 = rng.standard_normal((3, 4))
        grads = [rng.standard_normal((3, 4)) for _ in range(8)]
        p, opt = _run(lambda ps: optim.SGD(ps, **kw), w0, grads)
        want, b = _sgd(w0, grads, kw["lr"], kw.get("momentum", 0.0), kw.get("dampening", 0.0),
                       kw.get("weight_decay", 0.0), kw.get("nesterov", False))
        checks.expect_close(f"SGD({kw}) after 8 random gradients", p.data, want)
        state = opt.state_dict()["state"].get(0, {})
        if kw.get("momentum"):
            if "momentum_buffer" not in state:
                raise AssertionError(f"SGD({kw}): the state should hold 'momentum_buffer', it "
                                     f"holds {sorted(state)}")
            checks.expect_close(f"SGD({kw}) momentum_buffer after 8 steps", state["momentum_buffer"], b)
        elif state:
            raise AssertionError(f"SGD({kw}) without momentum keeps no state, got {sorted(state)}")
        p32, _ = _run(lambda ps: optim.SGD(ps, **kw), w0.astype(np.float32),
                      [g.astype(np.float32) for g in grads])
        if p32.data.dtype != np.float32:
            raise AssertionError(f"SGD({kw}) turned a float32 parameter into {p32.data.dtype}")
        checks.expect_close(f"SGD({kw}) in float32", p32.data, want, 1e-4)


def test_sgd_step_parameter_groups_pytorch(a6):
    """Two groups (BatchNorm and biases: lr 0.02, no decay; weights: decay 0.05)."""
    a6.replay("train/13", "SGD with parameter groups")


def test_adam_step_amsgrad_pytorch(a6):
    """AMSGrad with betas (0.8, 0.99) and L2 decay; AdamW + AMSGrad under ExponentialLR."""
    a6.replay("train/10", "Adam with amsgrad")
    a6.replay("train/12", "AdamW with amsgrad")


def test_adam_step_definition_random(checks):
    """Random gradients of mixed scales, every option, float32, the step count."""
    rng = np.random.default_rng(62)
    cases = [dict(lr=0.01), dict(lr=0.003, betas=(0.5, 0.9), eps=1e-6),
             dict(lr=0.01, weight_decay=0.1), dict(lr=0.02, weight_decay=0.1, amsgrad=True),
             dict(lr=0.01, weight_decay=0.2, decoupled_weight_decay=True, amsgrad=True)]
    for kw in cases:
        w0 = rng.standard_normal(6)
        grads = [rng.standard_normal(6) * 10.0 ** rng.integers(-3, 3) for _ in range(7)]
        p, opt = _run(lambda ps: optim.Adam(ps, **kw), w0, grads)
        b1, b2 = kw.get("betas", (0.9, 0.999))
        want, m, v, vmax = _adam(w0, grads, kw["lr"], b1, b2, kw.get("eps", 1e-8),
                                 kw.get("weight_decay", 0.0), kw.get("amsgrad", False),
                                 kw.get("decoupled_weight_decay", False))
        checks.expect_close(f"Adam({kw}) after 7 random gradients", p.data, want)
        state = opt.state_dict()["state"].get(0, {})
        names = ["exp_avg", "exp_avg_sq", "step"] + (["max_exp_avg_sq"] if kw.get("amsgrad") else [])
        if sorted(state) != sorted(names):
            raise AssertionError(f"Adam({kw}): the state should hold {sorted(names)}, it holds "
                                 f"{sorted(state)}")
        if state["step"] != 7:
            raise AssertionError(f"Adam({kw}): state['step'] should be 7 after 7 steps, got {state['step']}")
        checks.expect_close(f"Adam({kw}) exp_avg", state["exp_avg"], m)
        checks.expect_close(f"Adam({kw}) exp_avg_sq", state["exp_avg_sq"], v)
        if kw.get("amsgrad"):
            checks.expect_close(f"Adam({kw}) max_exp_avg_sq", state["max_exp_avg_sq"], vmax)
        p32, _ = _run(lambda ps: optim.Adam(ps, **kw), w0.astype(np.float32),
                      [g.astype(np.float32) for g in grads])
        if p32.data.dtype != np.float32:
            raise AssertionError(f"Adam({kw}) turned a float32 parameter into {p32.data.dtype}")
        checks.expect_close(f"Adam({kw}) in float32", p32.data, want, 1e-3)
