"""Checks shared by A6's tests: PyTorch's cross-entropy cases and training runs.

``tests/fixtures/layers.npz`` holds PyTorch's cross-entropy losses and gradients (keys
``xent/NN/*``), ``tests/fixtures/optim.npz`` ten-step PyTorch training runs of a small
network (``train/NN/*``) and learning-rate sequences (``sched/NN/*``); the scripts
``tests/fixtures/make_layer_fixtures.py`` and ``make_optim_fixtures.py`` say what each
key is. A replayed run starts from the same weights and batches with your optimizer and
your loss, and must end where PyTorch ended.
"""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

import tinynets as tn
from tinynets import optim
from tinynets.optim import lr_scheduler

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
TOL = 1e-8          # float64: a correct implementation is at 1e-13 or below
# what lesson 07's exercise cells may not use: the library code each one asks you to write
NO_LOSS = ("tinynets", "CrossEntropyLoss", "log_softmax", "backward", "gradcheck")
NO_SGD = ("tinynets", "SGD", "optim", "Parameter")
NO_SCHEDULE = ("tinynets", "warmup_cosine", "lr_scheduler", "CosineAnnealingLR", "LinearLR",
               "SequentialLR")
NO_EVALUATE = ("evaluate", "Trainer", "accuracy_in_batches")

with np.load(os.path.join(FIXTURES, "optim.npz"), allow_pickle=False) as _npz:
    OPTIM = {k: _npz[k] for k in _npz.files}
INIT = {k[len("model/init/"):]: v for k, v in OPTIM.items() if k.startswith("model/init/")}


def config(prefix: str) -> dict:
    return json.loads(str(OPTIM[prefix + "/config"]))


def xent_cases(*names: str):
    """The fixture's cross-entropy cases ("xent/03"), as namespaces with logits, labels,
    dout (the upstream scalar), loss, dlogits, label_smoothing and name."""
    cases = []
    with np.load(os.path.join(FIXTURES, "layers.npz"), allow_pickle=False) as npz:
        for key in names:
            cfg = json.loads(str(npz[key + "/config"]))
            cases.append(SimpleNamespace(
                name=f"{key} ({cfg['name']}: N={cfg['N']}, K={cfg['K']}, "
                     f"label_smoothing={cfg['label_smoothing']})",
                logits=npz[key + "/logits"], labels=npz[key + "/labels"],
                dout=float(npz[key + "/dout"]), loss=npz[key + "/loss"],
                dlogits=npz[key + "/dlogits"], label_smoothing=cfg["label_smoothing"]))
    return cases


def schedule_run(prefix: str):
    """(lrs after construction and after each of the fixture's steps, PyTorch's lrs), one
    column per parameter group. Built from your scheduler classes; the optimizer is only
    a holder of parameter groups (its step is never called)."""
    cfg = config(prefix)
    groups = [{"params": [tn.Parameter(np.zeros(1))], "lr": lr} for lr in cfg["base_lrs"]]
    opt = optim.SGD(groups)
    sched = make_scheduler(opt, cfg["scheduler"])
    got = [sched.get_last_lr()]
    for _ in range(cfg["steps"]):
        sched.step()
        got.append(sched.get_last_lr())
    return np.array(got), OPTIM[prefix + "/lr"]


def make_scheduler(opt, spec):
    kind = spec["type"]
    if kind == "SequentialLR":
        inner = [make_scheduler(opt, s) for s in spec["schedulers"]]
        return lr_scheduler.SequentialLR(opt, inner, spec["milestones"])
    return getattr(lr_scheduler, kind)(opt, **spec["kwargs"])


def fixture_model() -> tn.Sequential:
    """The fixture's network in float64, in train mode, with its initial weights."""
    model = tn.Sequential(
        tn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False, dtype=np.float64),
        tn.BatchNorm2d(8, dtype=np.float64), tn.ReLU(),
        tn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False, dtype=np.float64),
        tn.BatchNorm2d(8, dtype=np.float64), tn.ReLU(),
        tn.GlobalAvgPool2d(), tn.Flatten(), tn.Linear(8, 5, dtype=np.float64))
    model.load_state_dict({k: v.copy() for k, v in INIT.items()})
    return model.train()


OPTIMIZERS = {"SGD": lambda: optim.SGD, "Adam": lambda: optim.Adam, "AdamW": lambda: optim.AdamW}


def replay(expect, prefix: str, what: str) -> None:
    """Replay the fixture's run ``prefix`` (e.g. "train/02") with your optimizer and
    CrossEntropyLoss; raise AssertionError naming ``what`` and the first quantity that
    differs from PyTorch: the loss of a step, a final weight or buffer, the optimizer's
    state (names and values, torch's ``state_dict`` layout). ``expect(what, got, want,
    tol)`` is the shared ``checks.expect_close``."""
    cfg = config(prefix)
    model = fixture_model()
    params = model.parameters()
    if cfg.get("groups") == "no_decay":
        params = optim.param_groups_no_decay(model, cfg["group_weight_decay"])
        for group, extra in zip(params, cfg.get("group_options", [{}, {}])):
            group.update(extra)
    kwargs = dict(cfg["kwargs"])
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    opt = OPTIMIZERS[cfg["optimizer"]]()(params, **kwargs)
    sched = make_scheduler(opt, cfg["scheduler"]) if cfg.get("scheduler") else None
    loss_fn = tn.CrossEntropyLoss()
    label = f"{what}, PyTorch run {prefix} ({cfg['name']}: {cfg['optimizer']} {cfg['kwargs']})"
    losses = []
    for step in range(len(OPTIM[prefix + "/loss"])):
        opt.zero_grad()
        loss = loss_fn(model(OPTIM["data/x"][step]), OPTIM["data/y"][step])
        model.backward(loss_fn.backward())
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(float(loss))
    expect(f"{label}: the loss of each of the 10 steps", losses, OPTIM[prefix + "/loss"])
    final = model.state_dict()
    for key in sorted(k for k in OPTIM if k.startswith(prefix + "/final/")):
        name = key[len(prefix) + 7:]
        expect(f"{label}: {name} after the last step", final[name], OPTIM[key])
    state = opt.state_dict()["state"]
    want = {}
    for key in (k for k in OPTIM if k.startswith(prefix + "/state/")):
        index, name = key[len(prefix) + 7:].split("/")
        want.setdefault(int(index), {})[name] = OPTIM[key]
    for index, entries in sorted(want.items()):
        have = state.get(index, {})
        if sorted(have) != sorted(entries):
            raise AssertionError(f"{label}: the state of parameter {index} should hold "
                                 f"{sorted(entries)}, it holds {sorted(have)}")
        for name, ref in entries.items():
            expect(f"{label}: state['{name}'] of parameter {index}", have[name], ref)
    if sorted(k for k, s in state.items() if s) != sorted(want):
        raise AssertionError(f"{label}: state kept for parameters {sorted(state)}, "
                             f"PyTorch keeps it for {sorted(want)}")


@pytest.fixture
def no_trainer(monkeypatch):
    """The library's own loop (``Trainer``) refuses to run: ``train_epoch`` must be yours."""
    from tinynets.training import trainer

    def refuse(name):
        def refused(*args, **kwargs):
            raise AssertionError(f"train_epoch must be your own loop; it called Trainer.{name}")
        return refused

    for name in ("train_step", "_run_epoch", "fit", "evaluate"):
        monkeypatch.setattr(trainer.Trainer, name, refuse(name))


@pytest.fixture
def a6(checks):
    def expect(what, got, want, tol=TOL):
        checks.expect_close(what, got, want, tol)

    return SimpleNamespace(xent_cases=xent_cases, schedule_run=schedule_run, config=config,
                           optim_data=OPTIM, expect=expect, NO_LOSS=NO_LOSS, NO_SGD=NO_SGD,
                           NO_SCHEDULE=NO_SCHEDULE, NO_EVALUATE=NO_EVALUATE,
                           replay=lambda prefix, what: replay(expect, prefix, what))
