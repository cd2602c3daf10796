"""tinynets.optim and tinynets.lr_scheduler: parity with PyTorch, state, groups, dtypes, errors.

The references are in ``tests/fixtures/optim.npz``, written by
``tests/fixtures/make_optim_fixtures.py`` where torch is installed (see its docstring for
the runs and how to regenerate). This file never imports torch.

Parity (float64): each recorded run is replayed from the same initial weights and batches
with the tinynets optimizer, scheduler and EMA; the loss and lr of every step, the final
state dict (parameters and BatchNorm buffers), the optimizer's state and the EMA's must
all satisfy rel_err = max|a - ref| / max|ref| <= 1e-10. The worst error per run is recorded
as the user property ``worst_rel_error`` and printed at the end of the session.
"""
from __future__ import annotations

import copy
import json
import math
import os
import pickle
from typing import Dict

import numpy as np
import pytest

import tinynets as tn
from helpers import rel_err
from tinynets.optim import lr_scheduler as lrs
from tinynets import optim
from tinynets.optim.ema import ExponentialMovingAverage

pytestmark = pytest.mark.task_optim

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "optim.npz")
TOL = 1e-10
WORST: Dict[str, float] = {}
OPTIMIZERS = {"SGD": optim.SGD, "RMSprop": optim.RMSprop, "RMSpropTF": optim.RMSpropTF,
              "Adam": optim.Adam, "AdamW": optim.AdamW}

with np.load(FIXTURE, allow_pickle=False) as _npz:
    DATA = {k: _npz[k] for k in _npz.files}
INIT = {k[len("model/init/"):]: v for k, v in DATA.items() if k.startswith("model/init/")}
TRAIN = sorted(k[:-len("/config")] for k in DATA if k.startswith("train/") and k.endswith("/config"))
SCHED = sorted(k[:-len("/config")] for k in DATA if k.startswith("sched/") and k.endswith("/config"))


def config(prefix: str) -> dict:
    return json.loads(str(DATA[prefix + "/config"]))


def ids(prefixes):
    return [f"{p}-{config(p)['name']}" for p in prefixes]


class _Report:
    """Prints the worst parity error per run after pytest's summary (a plugin object)."""

    def pytest_terminal_summary(self, terminalreporter):
        if WORST:
            terminalreporter.section(f"optimizer parity with PyTorch (float64, tolerance {TOL:.0e})")
            for name, err in sorted(WORST.items(), key=lambda kv: -kv[1]):
                terminalreporter.write_line(f"  {name:<44} worst {err:.2e}")


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    manager = request.config.pluginmanager
    if not manager.has_plugin("tinynets-optim-report"):
        manager.register(_Report(), "tinynets-optim-report")


# ---------------------------------------------------------------- building the runs
def build_model(dtype=np.float64) -> tn.Sequential:
    """The fixture's model, with torch's state-dict names, loaded with its initial weights."""
    model = tn.Sequential(
        tn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False, dtype=dtype), tn.BatchNorm2d(8, dtype=dtype),
        tn.ReLU(),
        tn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False, dtype=dtype), tn.BatchNorm2d(8, dtype=dtype),
        tn.ReLU(),
        tn.GlobalAvgPool2d(), tn.Flatten(), tn.Linear(8, 5, dtype=dtype))
    # copies: Module.load_state_dict keeps a contiguous array of the right dtype as the
    # parameter itself, and the optimizers update parameters in place
    model.load_state_dict({k: v.copy() for k, v in INIT.items()})
    return model.train()


def make_optimizer(model, cfg):
    kwargs = dict(cfg["kwargs"])
    params = model.parameters()
    if cfg.get("groups") == "no_decay":
        params = optim.param_groups_no_decay(model, cfg["group_weight_decay"])
        for group, extra in zip(params, cfg.get("group_options", [{}, {}])):
            group.update(extra)
    return OPTIMIZERS[cfg["optimizer"]](params, **kwargs)


def make_scheduler(opt, spec):
    kind = spec["type"]
    if kind == "SequentialLR":
        inner = [make_scheduler(opt, s) for s in spec["schedulers"]]
        return lrs.SequentialLR(opt, inner, spec["milestones"])
    if kind == "tf_exponential_decay":
        return lrs.ExponentialDecayLR(opt, **spec["kwargs"])
    if kind == "LambdaLR":
        total, power = spec["poly"]["total"], spec["poly"]["power"]
        return lrs.LambdaLR(opt, lambda t: max(0.0, 1 - t / total) ** power)
    return getattr(lrs, kind)(opt, **spec["kwargs"])


def make_run(cfg, dtype=np.float64):
    model = build_model(dtype)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg["scheduler"]) if cfg.get("scheduler") else None
    ema = ExponentialMovingAverage(model, cfg["ema"]) if cfg.get("ema") else None
    return model, opt, sched, ema


def train(run, cfg, steps, dtype=np.float64):
    """Steps ``steps`` of the fixture's loop; returns (losses, lrs used)."""
    model, opt, sched, ema = run
    loss_fn = tn.CrossEntropyLoss()
    losses, lr_used = [], []
    for step in steps:
        lr_used.append([g["lr"] for g in opt.param_groups])
        opt.zero_grad()
        loss = loss_fn(model(DATA["data/x"][step].astype(dtype)), DATA["data/y"][step])
        model.backward(loss_fn.backward())
        opt.step()
        if sched is not None:
            sched.step()
        if ema is not None:
            ema.update(model, step=step + 1)     # steps taken, TF's num_updates
        losses.append(float(loss))
    return np.array(losses), np.array(lr_used)


class Checker:
    """Collects every array's relative error before asserting, and records the worst."""

    def __init__(self, label: str):
        self.label, self.errors, self.problems = label, {}, []

    def __call__(self, name, got, ref):
        got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape:
            self.problems.append(f"{name}: shape {got.shape} != reference {ref.shape}")
            self.errors[name] = math.inf
            return
        err = rel_err(got, ref)
        self.errors[name] = err
        if not err <= TOL:
            self.problems.append(f"{name}: relative error {err:.3e} > {TOL:.0e}")

    def finish(self, node):
        worst = max(self.errors.values())
        WORST[self.label] = worst
        node.user_properties.append(("worst_rel_error", worst))
        assert not self.problems, f"{self.label}: " + "; ".join(self.problems)


# ---------------------------------------------------------------- parity with torch
@pytest.mark.parametrize("prefix", TRAIN, ids=ids(TRAIN))
def test_training_matches_torch(prefix, request):
    cfg = config(prefix)
    run = make_run(cfg)
    steps = len(DATA[prefix + "/loss"])
    losses, lr_used = train(run, cfg, range(steps))
    model, opt, _, ema = run
    check = Checker(f"{cfg['optimizer']}: {cfg['name']}")
    check("loss", losses, DATA[prefix + "/loss"])
    check("lr", lr_used, DATA[prefix + "/lr"])
    final = model.state_dict()
    for key, ref in ((k[len(prefix) + 7:], v) for k, v in DATA.items()
                     if k.startswith(prefix + "/final/")):
        check(key, final[key], ref)
    assert final["1.num_batches_tracked"] == DATA[prefix + "/final/1.num_batches_tracked"]
    state = opt.state_dict()["state"]
    ref_state = {}
    for k, v in DATA.items():
        if k.startswith(prefix + "/state/"):
            index, name = k[len(prefix) + 7:].split("/")
            ref_state.setdefault(int(index), {})[name] = v
    assert {i: sorted(s) for i, s in state.items()} == {i: sorted(s) for i, s in ref_state.items()}
    for index, entries in ref_state.items():
        for name, ref in entries.items():
            check(f"state[{index}].{name}", state[index][name], ref)
    if ema is not None:
        averaged = ema.state_dict()
        for key, ref in ((k[len(prefix) + 5:], v) for k, v in DATA.items()
                         if k.startswith(prefix + "/ema/")):
            check(f"ema.{key}", averaged[key], ref)
    check.finish(request.node)


@pytest.mark.parametrize("prefix", SCHED, ids=ids(SCHED))
def test_schedule_matches_torch(prefix, request):
    cfg = config(prefix)
    params = [tn.Parameter(np.zeros(1)) for _ in cfg["base_lrs"]]
    opt = optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, cfg["base_lrs"])])
    sched = make_scheduler(opt, cfg["scheduler"])
    got = [sched.get_last_lr()]
    for _ in range(cfg["steps"]):
        opt.step()
        sched.step()
        got.append(sched.get_last_lr())
        assert got[-1] == [g["lr"] for g in opt.param_groups]
    check = Checker(f"schedule: {cfg['name']}")
    check("lr", got, DATA[prefix + "/lr"])
    check.finish(request.node)


# ---------------------------------------------------------------- state, groups, dtypes
@pytest.mark.parametrize("prefix", TRAIN, ids=ids(TRAIN))
def test_state_dict_round_trip_resumes_identically(prefix):
    cfg = config(prefix)
    straight = make_run(cfg)
    train(straight, cfg, range(10))

    first = make_run(cfg)
    train(first, cfg, range(5))
    model, opt, sched, ema = first
    saved = pickle.loads(pickle.dumps(dict(
        model=model.state_dict(), opt=opt.state_dict(),
        sched=sched.state_dict() if sched else None, ema=ema.state_dict() if ema else None)))
    snapshot = copy.deepcopy(saved)
    train(first, cfg, range(5, 10))            # the saved copies must not move with it

    resumed = make_run(cfg)
    model2, opt2, sched2, ema2 = resumed
    model2.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["opt"])         # after the scheduler, as in torch
    if sched2:
        sched2.load_state_dict(saved["sched"])
    if ema2:
        ema2.load_state_dict(saved["ema"])
    train(resumed, cfg, range(5, 10))

    for key, value in straight[0].state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[key], value, err_msg=key)
    if ema2:
        for key, value in straight[3].state_dict().items():
            np.testing.assert_array_equal(ema2.state_dict()[key], value, err_msg=key)
    assert opt2.param_groups[0]["lr"] == straight[1].param_groups[0]["lr"]
    for index, entries in snapshot["opt"]["state"].items():
        for name, value in entries.items():
            np.testing.assert_array_equal(saved["opt"]["state"][index][name], value)


def test_state_dict_layout_follows_torch():
    model = build_model()
    opt = optim.Adam(optim.param_groups_no_decay(model, 1e-2), lr=0.1, amsgrad=True)
    sd = opt.state_dict()
    assert sd["state"] == {} and [g["params"] for g in sd["param_groups"]] == [[0, 1, 2, 3, 4], [5, 6, 7]]
    assert sd["param_groups"][1]["weight_decay"] == 1e-2 and sd["param_groups"][0]["lr"] == 0.1
    opt.step()
    state = opt.state_dict()["state"]
    assert sorted(state) == list(range(8))
    assert sorted(state[0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"] and state[0]["step"] == 1
    assert all(isinstance(v, np.ndarray) for s in state.values() for k, v in s.items() if k != "step")


def test_param_groups_no_decay_splits_and_skips_decay():
    model = build_model()
    groups = optim.param_groups_no_decay(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in groups[0]["params"]] == ["1.weight", "1.bias", "4.weight",
                                                           "4.bias", "8.bias"]
    assert [names[id(p)] for p in groups[1]["params"]] == ["0.weight", "3.weight", "8.weight"]
    assert (groups[0]["weight_decay"], groups[1]["weight_decay"]) == (0.0, 0.1)
    before = model.state_dict()
    opt = optim.SGD(groups, lr=0.5)              # zero gradients: only decay moves weights
    opt.step()
    after = model.state_dict()
    for name in ("1.weight", "1.bias", "4.weight", "4.bias", "8.bias"):
        np.testing.assert_array_equal(after[name], before[name])
    for name in ("0.weight", "3.weight", "8.weight"):
        np.testing.assert_allclose(after[name], before[name] * (1 - 0.5 * 0.1), rtol=1e-15)
    extra = optim.param_groups_no_decay(model, 0.1, no_decay_names=["8.weight"])
    assert len(extra[0]["params"]) == 6 and len(extra[1]["params"]) == 2


def test_group_options_override_defaults():
    model = build_model()
    groups = optim.param_groups_no_decay(model, 1e-3)
    groups[0]["lr"] = 0.5
    opt = optim.RMSpropTF(groups, lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert all(g["momentum"] == 0.9 and g["alpha"] == 0.9 for g in opt.param_groups)


@pytest.mark.parametrize("cls,kwargs", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=1e-2)),
    (optim.RMSpropTF, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=1e-2, eps=1e-3)),
    (optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=1e-2)),
    (optim.AdamW, dict(lr=0.01, amsgrad=True)),
], ids=["SGD", "RMSprop", "RMSpropTF", "Adam", "AdamW"])
def test_float32_stays_float32_in_place(cls, kwargs):
    model = build_model(np.float32)
    kwargs["lr"] = np.float64(kwargs["lr"])        # a NumPy float64 option must not promote
    opt = cls(model.parameters(), **kwargs)
    ema = ExponentialMovingAverage(model, decay=np.float64(0.99))
    arrays = [p.data for p in model.parameters()]
    before = [a.copy() for a in arrays]
    train((model, opt, None, ema), {}, range(3), dtype=np.float32)
    for p, a, b in zip(model.parameters(), arrays, before):
        assert p.data is a and p.data.dtype == np.float32       # updated in place
        assert not np.array_equal(a, b)
    for s in opt.state.values():
        assert all(v.dtype == np.float32 for v in s.values() if isinstance(v, np.ndarray))
    assert all(v.dtype == np.float32 for k, v in ema.state_dict().items() if "num_batches" not in k)


class _Float32Only(np.ndarray):
    """An array that records the dtype of every ufunc result computed from it."""
    seen: set = set()

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = [np.asarray(x) if isinstance(x, _Float32Only) else x for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, _Float32Only) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        for r in result if isinstance(result, tuple) else (result,):
            _Float32Only.seen.add(np.asarray(r).dtype)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return result.view(_Float32Only) if isinstance(result, np.ndarray) else result


@pytest.mark.parametrize("cls,kwargs", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=1e-2)),
    (optim.RMSprop, dict(lr=0.01)),
    (optim.RMSpropTF, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=1e-2,
                           decoupled_decay=True)),
    (optim.RMSpropTF, dict(lr=0.01, momentum=0.9, lr_in_momentum=False, weight_decay=1e-2)),
    (optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=1e-2)),
    (optim.AdamW, dict(lr=0.01)),
], ids=["SGD", "SGD-nesterov", "RMSprop-centered", "RMSprop", "RMSpropTF-centered",
        "RMSpropTF-lr-outside", "Adam-amsgrad", "AdamW"])
def test_no_float64_temporaries(cls, kwargs):
    rng = np.random.default_rng(0)
    params = [tn.Parameter(rng.standard_normal(shape).astype(np.float32)) for shape in [(4, 3), (5,)]]
    for p in params:
        p.data, p.grad = p.data.view(_Float32Only), p.grad.view(_Float32Only)
    opt = cls(params, **{k: np.float64(v) if isinstance(v, float) else v for k, v in kwargs.items()})
    ema_model = tn.Linear(3, 4)
    ema = ExponentialMovingAverage(ema_model, decay=0.9)
    for m in (ema.module, ema_model):
        for p in m.parameters():
            p.data = p.data.view(_Float32Only)
    _Float32Only.seen = set()
    for _ in range(3):
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
        opt.step()
        ema.update(ema_model, step=1)
    assert _Float32Only.seen == {np.dtype(np.float32)}


# ---------------------------------------------------------------- the update rules by hand
def _one_param(value, grad):
    p = tn.Parameter(np.array(value, dtype=np.float64))
    p.grad[...] = grad
    return p


def test_rmsproptf_differs_from_torch_rmsprop_as_documented():
    g = np.array([0.5, -2.0, 1e-3])
    tf_p, pt_p = _one_param(np.zeros(3), g), _one_param(np.zeros(3), g)
    optim.RMSpropTF([tf_p], lr=0.1, alpha=0.9, eps=1e-3).step()
    optim.RMSprop([pt_p], lr=0.1, alpha=0.9, eps=1e-3).step()
    # TF: v = 1 + 0.1 (g^2 - 1), eps inside the sqrt; torch: v = 0.1 g^2, eps outside.
    np.testing.assert_allclose(tf_p.data, -0.1 * g / np.sqrt(0.9 + 0.1 * g * g + 1e-3), rtol=1e-14)
    np.testing.assert_allclose(pt_p.data, -0.1 * g / (np.sqrt(0.1 * g * g) + 1e-3), rtol=1e-14)
    # lr inside the momentum buffer: a later lr change leaves the buffered steps alone.
    p = _one_param(np.zeros(1), [1.0])
    opt = optim.RMSpropTF([p], lr=1.0, alpha=0.5, eps=0.0, momentum=0.5)
    opt.step()                                 # v = 1, b = 1, p = -1
    opt.param_groups[0]["lr"] = 0.0
    opt.step()                                 # b = 0.5 b + 0 -> p = -1.5
    np.testing.assert_allclose(p.data, [-1.5], rtol=1e-15)


def test_sgd_nesterov_and_adamw_by_hand():
    p = _one_param([1.0], [2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.5)
    opt.step()                                 # g = 2.5, b = 2.5, d = 2.5 + 1.25
    np.testing.assert_allclose(p.data, [1.0 - 0.375], rtol=1e-15)
    q = _one_param([1.0], [2.0])
    optim.AdamW([q], lr=0.1, weight_decay=0.5).step()   # (1 - 0.05) * 1 - 0.1 * m_hat / (|g| + eps)
    np.testing.assert_allclose(q.data, [0.95 - 0.1 * 2.0 / (2.0 + 1e-8)], rtol=1e-15)


def test_step_closure_and_zero_grad():
    p = _one_param([1.0], [3.0])
    opt = optim.SGD([p], lr=0.1)
    assert opt.step(lambda: 42.0) == 42.0
    opt.zero_grad()
    assert p.grad[0] == 0.0


# ---------------------------------------------------------------- schedules and EMA
def test_papers_schedule_decays_every_2_4_epochs():
    steps_per_epoch, base = 100, 0.256
    p = tn.Parameter(np.zeros(1))
    opt = optim.RMSpropTF([p], lr=base)
    sched = lrs.ExponentialDecayLR(opt, decay_steps=2.4 * steps_per_epoch, decay_rate=0.97,
                                   warmup_steps=5 * steps_per_epoch)
    got = [sched.get_last_lr()[0]]
    for _ in range(1000):
        sched.step()
        got.append(opt.param_groups[0]["lr"])
    assert got[0] == 0.0 and got[250] == pytest.approx(base / 2) and got[499] < base
    assert got[500] == pytest.approx(base * 0.97 ** 2)        # floor(500 / 240) = 2
    assert got[719] == got[500] and got[720] == pytest.approx(base * 0.97 ** 3)


def test_scheduler_state_dict_round_trip():
    p = tn.Parameter(np.zeros(1))
    opt = optim.SGD([p], lr=1.0)
    sched = lrs.CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        sched.step()
    saved = sched.state_dict()
    opt2 = optim.SGD([tn.Parameter(np.zeros(1))], lr=1.0)
    sched2 = lrs.CosineAnnealingLR(opt2, T_max=10)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(saved)
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr() and sched2.last_epoch == 5
    assert "optimizer" not in saved


def test_ema_math():
    model = build_model()
    ema = ExponentialMovingAverage(model, decay=0.9)
    start = ema.state_dict()
    target = {k: (v + 1.0 if v.dtype.kind == "f" else v + 7) for k, v in start.items()}
    model.load_state_dict(target)
    for _ in range(5):
        assert ema.update(model) == 0.9
    got = ema.state_dict()
    for key, value in got.items():
        if "num_batches" in key:
            assert value == target[key]                      # integers are copied
        else:                                                # e_n = w + d^n (e_0 - w)
            assert rel_err(value, target[key] - 0.9 ** 5) < 1e-14, key
    assert [ema.update(model, step=s) for s in (0, 1, 100)] == [0.1, 2 / 11, 0.9]
    assert not ema.module.training and model.training
    fresh = build_model()
    ema.copy_to(fresh)
    for key, value in ema.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value)
    ema.set(model)
    np.testing.assert_array_equal(ema.state_dict()["0.weight"], target["0.weight"])
    x = DATA["data/x"][0]
    with tn.no_grad():
        np.testing.assert_array_equal(ema(x), ema.module(x))


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", list(OPTIMIZERS.values()), ids=list(OPTIMIZERS))
def test_negative_lr_names_the_optimizer(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: invalid lr -0.1"):
        cls(build_model().parameters(), lr=-0.1)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: invalid lr"):
        cls([{"params": build_model().parameters(), "lr": -1.0}], lr=0.1)


def test_errors():
    params = list(build_model().parameters())
    with pytest.raises(ValueError, match="Adam: invalid betas\\[1\\]"):
        optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="RMSprop: invalid eps"):
        optim.RMSprop(params, eps=-1e-8)
    with pytest.raises(ValueError, match="SGD: invalid weight_decay"):
        optim.SGD(params, lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="AdamW: got an empty parameter list"):
        optim.AdamW([])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": params}, {"params": params[:1]}], lr=0.1)
    with pytest.raises(TypeError, match="RMSpropTF: expected tinynets Parameters"):
        optim.RMSpropTF([np.zeros(3)])
    with pytest.raises(TypeError, match="Adam: params must be an iterable .* pass model.parameters"):
        optim.Adam(build_model())
    opt = optim.SGD(params, lr=0.1)
    other = optim.SGD(optim.param_groups_no_decay(build_model(), 0.1), lr=0.1)
    with pytest.raises(ValueError, match="SGD.load_state_dict: 2 parameter groups"):
        opt.load_state_dict(other.state_dict())
    saved = optim.SGD(params, lr=0.1, momentum=0.9)
    saved.step()
    state = saved.state_dict()
    state["state"][0]["momentum_buffer"] = np.zeros(3)
    with pytest.raises(ValueError, match="SGD.load_state_dict: state 'momentum_buffer' of parameter 0"):
        opt.load_state_dict(state)
    with pytest.raises(TypeError, match="StepLR: .* is not an Optimizer"):
        lrs.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer"):
        lrs.StepLR(opt, step_size=2.4)
    with pytest.raises(ValueError, match="SequentialLR: 2 schedulers need 1 milestones"):
        lrs.SequentialLR(opt, [lrs.StepLR(opt, 2), lrs.ExponentialLR(opt, 0.9)], [])
    with pytest.raises(KeyError, match="initial_lr"):
        lrs.StepLR(optim.SGD(params, lr=0.1), step_size=2, last_epoch=3)
    with pytest.raises(ValueError, match="ExponentialMovingAverage: decay"):
        ExponentialMovingAverage(build_model(), decay=1.5)
