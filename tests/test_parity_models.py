"""Whole-network parity with torchvision: logits, input and parameter gradients, BN state.

The references are ``tests/fixtures/model_<name>.npz``, written by
``tests/fixtures/make_model_fixtures.py`` where torch and torchvision are installed
(see its docstring for the layout and how to regenerate). This file never imports
torch. The weights are not stored: ``tests/fixtures/weights_recipe.py`` draws them
from the fixture's ordered (key, shape) list and seed, on both sides.

Per model (MobileNetV2, MobileNetV3-Large/Small, EfficientNet-B0/B5; 1000 classes,
``dropout=0.0``, ``stochastic_depth_prob=0.0``, float64, x of shape (2, 3, 33, 33)):

* ``test_state_dict_layout``: the state_dict keys, their order and shapes equal
  torchvision's, and the BatchNorms' eps/momentum match;
* ``test_model_parity[<model>-eval]`` and ``[<model>-train]``: from the recipe state,
  ``forward(x)`` then ``backward(dout)`` (after ``zero_grad``), compared with torch:
  logits, dx, for every parameter a fixed sample of up to 16 gradient entries plus the
  gradient's L2 norm and largest |entry|, and in train mode every BN's running
  mean/var (sampled channels and the norm of the update over all channels) and
  ``num_batches_tracked``; in eval mode the running statistics must not change.

Every array must satisfy

    rel_err(a, ref) = max|a - ref| / max(max|ref|, 1e-300)  <=  1e-8

(a scalar norm: |a - ref| / |ref|). Gradients that are zero in exact arithmetic (the
fixture flags them: in train mode, the beta of a BN followed by a 1x1 conv and another
train-mode BN) are rounding noise on both sides; for those the tinynets gradient's
norm divided by the largest reference gradient norm must be <= 1e-8.

Each test records its worst error as the user property ``worst_rel_error`` (and the
worst per kind of array as ``worst_by_kind``; ``pytest --junitxml=FILE`` writes them)
and in ``WORST``.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
from typing import Dict, List

import numpy as np
import pytest

import tinynets.models
from helpers import rel_err
from tinynets.nn.norm import BatchNorm2d

pytestmark = pytest.mark.task_parity

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MODELS = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
          "efficientnet_b0", "efficientnet_b5"]
MODES = ["eval", "train"]
TOL = 1e-8
MAX_FIXTURE_BYTES = 1 << 20
WORST: Dict[str, float] = {}           # "<model>-<mode>" -> worst relative error


def _import_recipe():
    path = os.path.join(FIXTURES, "weights_recipe.py")
    spec = importlib.util.spec_from_file_location("tinynets_tests_weights_recipe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recipe = _import_recipe()


@functools.lru_cache(maxsize=None)
def fixture(name: str) -> dict:
    path = os.path.join(FIXTURES, f"model_{name}.npz")
    with np.load(path, allow_pickle=False) as npz:
        d = {k: npz[k] for k in npz.files}
    for k in ("__meta__", "entries", "params", "bns"):
        d[k] = json.loads(str(d[k]))
    d["meta"] = d.pop("__meta__")
    return d



class Checker:
    """Collects every comparison (worst per kind) and every problem before asserting."""

    def __init__(self, label: str):
        self.label = label
        self.worst: Dict[str, tuple] = {}            # kind -> (error, which)
        self.problems: List[str] = []

    def record(self, kind: str, which: str, err: float) -> None:
        if kind not in self.worst or not err <= self.worst[kind][0]:   # NaN wins
            self.worst[kind] = (err, which)

    def __call__(self, kind: str, which: str, got, ref) -> None:
        got, ref = np.asarray(got), np.asarray(ref)
        if got.shape != ref.shape:
            self.problems.append(f"{kind} {which}: shape {got.shape} != reference {ref.shape}")
            self.record(kind, which, float("inf"))
            return
        err = rel_err(got, ref)
        self.record(kind, which, err)
        if not err <= TOL:                              # also catches NaN
            g, r = got.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
            diff = np.abs(g - r)
            at = int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)))
            where = f" at flat {at}" if r.size > 1 else ""
            self.problems.append(f"{kind}{' ' + which if which else ''}: relative error {err:.3e} > "
                                 f"{TOL:.0e}{where}: tinynets {float(g[at])!r} vs torch {float(r[at])!r}")

    def zero(self, kind: str, which: str, norm: float, scale: float) -> None:
        """A gradient that is zero in exact arithmetic: its norm relative to ``scale``."""
        err = float(norm) / max(float(scale), 1e-300)
        self.record(kind, which, err)
        if not err <= TOL:
            self.problems.append(f"{kind} {which}: gradient should be 0 (torch: rounding noise), "
                                 f"tinynets norm {norm:.3e} = {err:.3e} x the largest reference "
                                 f"gradient norm")

    def finish(self, node) -> None:
        worst = max((e for e, _ in self.worst.values()), default=0.0)
        WORST[self.label] = worst
        node.user_properties.append(("worst_rel_error", worst))
        node.user_properties.append(("worst_by_kind", {k: f"{e:.2e} ({w})" for k, (e, w)
                                                       in sorted(self.worst.items())}))
        if self.problems:
            shown = self.problems[:25]
            more = len(self.problems) - len(shown)
            summary = ", ".join(f"{k} {e:.1e}" for k, (e, _) in sorted(self.worst.items()))
            pytest.fail(f"{self.label}: {len(self.problems)} problem(s):\n  " + "\n  ".join(shown)
                        + (f"\n  ... and {more} more" if more else "")
                        + f"\n  worst by kind: {summary}", pytrace=False)


# ----------------------------------------------------------------- helpers
def build(name: str):
    meta = fixture(name)["meta"]
    ctor = getattr(tinynets.models, name, None)
    if ctor is None:
        pytest.fail(f"tinynets.models has no {name}()", pytrace=False)
    model = ctor(num_classes=meta["num_classes"], **meta["kwargs"])
    return model.astype(np.float64)


def layout_problems(model, name: str) -> List[str]:
    """Differences between the model's state_dict (keys, order, shapes) and torchvision's."""
    ref = [(k, tuple(s)) for k, s in fixture(name)["entries"]]
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    if got == ref:
        return []
    ref_d, got_d = dict(ref), dict(got)
    missing = [k for k, _ in ref if k not in got_d]
    unexpected = [k for k, _ in got if k not in ref_d]
    shapes = [f"{k}: {got_d[k]} != torchvision {s}" for k, s in ref if k in got_d and got_d[k] != s]
    out = [f"{len(got)} state_dict entries, torchvision has {len(ref)}"]
    if missing:
        out.append(f"missing {len(missing)}: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        out.append(f"unexpected {len(unexpected)}: {unexpected[:8]}"
                   f"{' ...' if len(unexpected) > 8 else ''}")
    if shapes:
        out.append(f"shape mismatches {len(shapes)}: {shapes[:8]}{' ...' if len(shapes) > 8 else ''}")
    if not (missing or unexpected or shapes):
        first = next(i for i, (a, b) in enumerate(zip(got, ref)) if a[0] != b[0])
        out.append(f"same keys in another order; first difference at #{first}: "
                   f"{got[first][0]} vs torchvision {ref[first][0]}")
    return out


def bn_settings(model) -> Dict[str, list]:
    bns = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    return dict(bn_eps=sorted({float(m.eps) for m in bns}),
                bn_momentum=sorted({float(m.momentum) for m in bns}))


# ----------------------------------------------------------------- tests
def test_fixture_files():
    for name in MODELS:
        path = os.path.join(FIXTURES, f"model_{name}.npz")
        assert os.path.getsize(path) < MAX_FIXTURE_BYTES, f"{path} is larger than 1 MiB"
        d = fixture(name)
        meta = d["meta"]
        assert meta["model"] == name and meta["dtype"] == "float64"
        assert all(v.dtype != object for v in d.values() if isinstance(v, np.ndarray))
        assert all(v.dtype == np.float64 for v in d.values()
                   if isinstance(v, np.ndarray) and v.dtype.kind == "f"), "fixtures must be float64"
        assert d["x"].shape == tuple(meta["input_shape"])
        assert len(d["params"]) + 1 == len(d["grad_offsets"])
        assert len(d["bns"]) + 1 == len(d["bn_offsets"])


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_layout(name):
    model = build(name)
    problems = layout_problems(model, name)
    meta = fixture(name)["meta"]
    settings = bn_settings(model)
    for k in ("bn_eps", "bn_momentum"):
        if settings[k] != meta[k]:
            problems.append(f"BatchNorm {k[3:]} values {settings[k]} != torchvision {meta[k]}")
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MODELS)
def test_model_parity(name, mode, request):
    d = fixture(name)
    meta = d["meta"]
    check = Checker(f"{name}-{mode}")

    model = build(name)
    layout = layout_problems(model, name)
    if layout:
        pytest.fail(f"{name}: state_dict differs from torchvision's, cannot load the reference "
                    "weights: " + "; ".join(layout), pytrace=False)
    state = recipe.make_state(d["entries"], meta["seed"])
    digest = recipe.state_digest(state)
    if digest != meta["state_digest"]:
        pytest.fail(f"{name}: weights_recipe.make_state no longer reproduces the fixture's weights "
                    f"(digest {digest[:12]} != {meta['state_digest'][:12]}): the recipe or NumPy's "
                    "generator changed; regenerate with tests/fixtures/make_model_fixtures.py",
                    pytrace=False)
    model.load_state_dict(state)
    del state
    settings = bn_settings(model)
    for k in ("bn_eps", "bn_momentum"):
        if settings[k] != meta[k]:
            check.problems.append(f"BatchNorm {k[3:]} {settings[k]} != torchvision {meta[k]}")

    model.train(mode == "train")
    model.zero_grad()
    logits = model.forward(d["x"].copy())
    check("logits", "", logits, d[f"{mode}/logits"])
    dx = model.backward(d["dout"].copy())
    check("dx", "", dx, d[f"{mode}/dx"])

    # parameter gradients: samples, L2 norm and largest |entry| of each
    named = dict(model.named_parameters())
    off, idx = d["grad_offsets"], d["grad_index"]
    ref_sample, ref_norm = d[f"{mode}/grad_sample"], d[f"{mode}/grad_norm"]
    ref_absmax, is_zero = d[f"{mode}/grad_absmax"], d[f"{mode}/grad_is_zero"]
    scale = float(np.max(ref_norm))
    for p, key in enumerate(d["params"]):
        g = named[key].grad
        norm = float(np.linalg.norm(g.ravel()))
        if is_zero[p]:
            check.zero("grad_zero", key, norm, scale)
            continue
        a, b = off[p], off[p + 1]
        check("grad_sample", key, g.ravel()[idx[a:b]], ref_sample[a:b])
        check("grad_norm", key, norm, ref_norm[p])
        check("grad_absmax", key, float(np.max(np.abs(g))), ref_absmax[p])

    # BatchNorm state
    modules = dict(model.named_modules())
    initial = recipe.make_state([(k, s) for k, s in d["entries"]
                                 if k.endswith((".running_mean", ".running_var"))], meta["seed"])
    bo, bidx = d["bn_offsets"], d["bn_index"]
    for b, prefix in enumerate(d["bns"]):
        bn = modules[prefix]
        nbt = int(np.asarray(bn.num_batches_tracked))
        if mode == "eval":
            for stat in ("running_mean", "running_var"):
                if not np.array_equal(getattr(bn, stat), initial[f"{prefix}.{stat}"]):
                    check.problems.append(f"{prefix}.{stat} changed in eval mode")
            if nbt != recipe.NUM_BATCHES_TRACKED:
                check.problems.append(f"{prefix}.num_batches_tracked changed in eval mode: {nbt}")
            continue
        a, c = bo[b], bo[b + 1]
        for stat in ("running_mean", "running_var"):
            now = np.asarray(getattr(bn, stat), dtype=np.float64)
            check(stat, prefix, now[bidx[a:c]], d[f"train/{stat}"][a:c])
            check(f"{stat}_update_norm", prefix, float(np.linalg.norm(now - initial[f"{prefix}.{stat}"])),
                  d[f"train/{stat}_update_norm"][b])
        ref_nbt = int(d["train/num_batches_tracked"][b])
        check.record("num_batches_tracked", prefix, 0.0 if nbt == ref_nbt else float("inf"))
        if nbt != ref_nbt:
            check.problems.append(f"{prefix}.num_batches_tracked {nbt} != torchvision {ref_nbt}")

    check.finish(request.node)
