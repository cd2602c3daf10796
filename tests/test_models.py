"""The model families: exact params/MACs, torchvision's state_dict keys, shapes, gradients.

* Counts: every row of ``fixtures/targets.json`` (a copy of shared/reference/targets.json),
  computed by the layers' own shape arithmetic, no forward pass.
* Keys: ``fixtures/torchvision_keys.json`` (``fixtures/make_torchvision_keys.py`` says how
  to regenerate it with torch), so these tests need no torch.
* Whole-network gradient check, see ``test_network_gradient`` for why it differs from the
  per-layer and per-block checks.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

import tinynets as tn
from tinynets.tools.gradcheck import KinkWatch
from tinynets.nn.blocks import StochasticDepth
from tinynets.nn.residual import MBConv
from tinynets.models import (compound_coefficients, compound_scaling_table, efficientnet,
                             get_model, list_models)

pytestmark = pytest.mark.task_models

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TARGETS = json.loads((FIXTURES / "targets.json").read_text())["rows"]
TV_KEYS = json.loads((FIXTURES / "torchvision_keys.json").read_text())["models"]

# small members of each family, for running data through them
TINY = {
    "mobilenet_v1": dict(width_mult=0.25),
    "mobilenet_v2": dict(width_mult=0.35),
    "mobilenet_v3_large": dict(width_mult=0.35),
    "mobilenet_v3_small": dict(width_mult=0.35),
    "efficientnet_b0": dict(width_mult=0.25, depth_mult=0.5),
    "efficientnet_lite0": dict(width_mult=0.25, depth_mult=0.5),
}


@functools.lru_cache(maxsize=1)           # consecutive rows share a model; big ones are not kept
def _build(name: str, kwargs_json: str):
    return get_model(name, **json.loads(kwargs_json))


# ------------------------------------------------------------------ (a) params and MACs
@pytest.mark.parametrize("row", TARGETS, ids=lambda r: "{}-{}-{}".format(
    r["model"], "-".join(f"{k}{v}" for k, v in r["kwargs"].items()), r["resolution"]))
def test_counts_match_targets(row):
    model = _build(row["model"], json.dumps(row["kwargs"], sort_keys=True))
    res = row["resolution"]
    assert tn.count_params(model) == row["params"]
    assert tn.count_macs(model, (3, res, res)) == row["macs"]


def test_targets_fixture_is_the_shared_reference():
    """fixtures/targets.json is a copy of shared/reference/targets.json; catch drift."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "targets.json"
    if not shared.exists():
        pytest.skip("shared/reference/ is not beside the repository")
    assert json.loads(shared.read_text()) == json.loads((FIXTURES / "targets.json").read_text())


def test_mobilenet_v2_headline_counts():
    model = get_model("mobilenet_v2")
    assert (tn.count_params(model), tn.count_macs(model, (3, 224, 224))) == (3_504_872, 300_774_272)
    rows = model.profile((1, 3, 224, 224))[1]
    assert sum(r.flops for r in rows if r.type == "ResidualAdd") == sum(
        r.out_shape[1] * r.out_shape[2] * r.out_shape[3] for r in rows if r.type == "ResidualAdd")
    assert len([r for r in rows if r.type == "ResidualAdd"]) == 10       # §2: 10 residual adds


# ------------------------------------------------------------------ (b) state_dict keys
def _entries(model):
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def _digest(entries) -> str:
    text = "\n".join(f"{k} {','.join(map(str, s))}" for k, s in entries)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("name", list(TV_KEYS))
def test_state_dict_keys_equal_torchvision(name):
    ref = TV_KEYS[name]
    entries = _entries(get_model(name))
    if "entries" in ref:                          # full list stored: show the first difference
        for i, (ours, theirs) in enumerate(zip(entries, ref["entries"])):
            assert ours == theirs, f"entry {i}: {ours} != torchvision {theirs}"
    assert len(entries) == ref["count"]
    assert _digest(entries) == ref["sha256"]     # names, order and shapes


@pytest.mark.parametrize("name,width", [("mobilenet_v2", 0.5), ("mobilenet_v3_large", 0.75),
                                        ("efficientnet_b0", 0.5)])
def test_key_names_do_not_depend_on_width(name, width):
    keys = [k for k, _ in _entries(get_model(name, width_mult=width))]
    assert keys == [k for k, _ in TV_KEYS[name]["entries"]]


def test_mobilenet_v1_and_lite_layouts():
    v1 = get_model("mobilenet_v1").state_dict()
    assert len(v1) == 164                                               # timm: §1
    assert list(v1)[:2] == ["conv_stem.weight", "bn1.weight"]
    assert "blocks.3.5.conv_pw.weight" in v1 and list(v1)[-2:] == ["classifier.weight", "classifier.bias"]
    lite = get_model("efficientnet_lite0").state_dict()
    assert len(lite) == 296                                             # §5: every layout has 296
    assert lite["features.1.0.block.1.0.weight"].shape == (16, 32, 1, 1)   # stage 1: dw, project
    assert lite["features.7.0.block.2.0.weight"].shape == (320, 1152, 1, 1)
    assert not any("fc1" in k for k in lite)


# ------------------------------------------------------------------ configuration details
@pytest.mark.parametrize("name,eps,momentum", [
    ("mobilenet_v2", 1e-5, 0.1), ("mobilenet_v3_large", 1e-3, 0.01), ("mobilenet_v3_small", 1e-3, 0.01),
    ("efficientnet_b0", 1e-5, 0.1), ("efficientnet_b4", 1e-5, 0.1), ("efficientnet_b5", 1e-3, 0.01),
    ("efficientnet_b7", 1e-3, 0.01), ("efficientnet_lite0", 1e-3, 0.01)])
def test_batchnorm_settings(name, eps, momentum):
    model = get_model(name, width_mult=0.25)                            # §7.5; width is irrelevant
    bns = [m for m in model.modules() if isinstance(m, tn.BatchNorm2d)]
    assert bns and all((b.eps, b.momentum) == (eps, momentum) for b in bns)


@pytest.mark.parametrize("name,p,res", [
    ("efficientnet_b0", 0.2, 224), ("efficientnet_b1", 0.2, 240), ("efficientnet_b2", 0.3, 260),
    ("efficientnet_b3", 0.3, 300), ("efficientnet_b4", 0.4, 380), ("efficientnet_b5", 0.4, 456),
    ("efficientnet_b6", 0.5, 528), ("efficientnet_b7", 0.5, 600), ("efficientnet_lite4", 0.3, 300),
    ("mobilenet_v2", 0.2, 224)])
def test_dropout_and_resolution(name, p, res):
    model = get_model(name, width_mult=0.25)
    assert model.classifier[0].p == p and model.default_resolution == res


def test_mobilenet_v3_head():
    model = get_model("mobilenet_v3_large", width_mult=0.75)
    fc1, act, drop, fc2 = model.classifier
    assert (fc1.in_features, fc1.out_features) == (720, 960)            # §3: 120 -> 720, 720 -> 960
    assert isinstance(act, tn.HardSwish) and drop.p == 0.2
    small = get_model("mobilenet_v3_small", width_mult=0.75)
    assert (small.classifier[0].in_features, small.classifier[0].out_features) == (432, 768)


def test_mobilenet_v2_last_channel_never_shrinks():
    assert get_model("mobilenet_v2", width_mult=0.35).last_channel == 1280
    assert get_model("mobilenet_v2", width_mult=1.4).last_channel == 1792


def test_efficientnet_stochastic_depth_schedule():
    model = get_model("efficientnet_b0")
    ps = [m.stochastic_depth.p for m in model.modules() if isinstance(m, MBConv)]
    assert len(ps) == 16
    np.testing.assert_allclose(ps, [0.2 * b / 16 for b in range(16)])   # §7.7: 0, .0125, ..., .1875


def test_lite_same_padding_everywhere():
    model = get_model("efficientnet_lite0", width_mult=0.25, padding="tf_same")
    convs = [m for m in model.modules() if isinstance(m, tn.Conv2d)]
    assert convs and all(c.padding == "tf_same" for c in convs)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with tn.no_grad():
        assert model.eval()(x).shape == (1, 1000)


def test_init_follows_torchvision():
    tn.manual_seed(0)
    v2 = get_model("mobilenet_v2")
    w = v2.features[18][0].weight.data                                  # (1280, 320, 1, 1)
    assert abs(w.std() / math.sqrt(2 / 1280) - 1) < 0.02                # kaiming normal, fan_out
    dw = v2.features[17].conv[1][0].weight.data                         # (960, 1, 3, 3)
    assert abs(dw.std() / math.sqrt(2 / (960 * 9)) - 1) < 0.05          # fan_out ignores groups
    fc = v2.classifier[1]
    assert abs(fc.weight.data.std() / 0.01 - 1) < 0.02 and not fc.bias.data.any()
    b0 = get_model("efficientnet_b0")
    fc = b0.classifier[1]
    bound = 1 / math.sqrt(1000)
    assert np.abs(fc.weight.data).max() <= bound and fc.weight.data.max() > 0.99 * bound
    se = b0.features[2][0].block[2]
    assert not se.fc1.bias.data.any() and not se.fc2.bias.data.any()
    bns = [m for m in b0.modules() if isinstance(m, tn.BatchNorm2d)]
    assert all((b.weight.data == 1).all() and not b.bias.data.any() for b in bns)


@pytest.mark.parametrize("name", list(TINY))
def test_dtype_keyword(name):
    model = get_model(name, dtype=np.float64, **TINY[name])
    assert {p.data.dtype for p in model.parameters()} == {np.dtype(np.float64)}
    assert get_model(name, **TINY[name]).dtype == np.float32


def test_registry_and_compound_scaling():
    names = list_models()
    assert len(names) == 17 and "efficientnet_b7" in names and "efficientnet_lite4" in names
    with pytest.raises(ValueError, match="unknown model"):
        get_model("resnet50")
    c = compound_coefficients(1)
    assert c["depth_mult"] == pytest.approx(1.2) and c["width_mult"] == pytest.approx(1.1)
    assert c["resolution"] == pytest.approx(224 * 1.15)
    assert c["official"] == {"model": "efficientnet_b1", "width_mult": 1.0, "depth_mult": 1.1,
                             "resolution": 240}
    assert compound_coefficients(2.5)["official"] is None
    assert "efficientnet_b7" in compound_scaling_table()
    b0 = efficientnet(0)                                                # phi = 0 is B0
    assert tn.count_params(b0) == 5_288_548 and b0.default_resolution == 224
    assert efficientnet(1, width_mult=0.25).default_resolution == 258


# ------------------------------------------------------------------ (c) shapes, forward and backward
@pytest.mark.parametrize("name", list_models())
def test_forward_backward_shapes(name, rng):
    kwargs = TINY.get(name) or {"width_mult": 0.25}                      # B1-B7 keep their depth
    tn.manual_seed(0)
    model = get_model(name, num_classes=10, **kwargs)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 10) == model.output_shape(x.shape) and y.dtype == np.float32
    model.zero_grad()
    dx = model.backward(np.ones_like(y))
    assert dx.shape == x.shape and np.isfinite(dx).all()
    last = [m for m in model.modules() if isinstance(m, tn.Linear)][-1]
    assert all(np.isfinite(p.grad).all() for p in model.parameters()) and last.weight.grad.any()


# ------------------------------------------------------------------ (d) whole-network gradient



def _calibrate(model, res, n=16):
    """Eval-mode BN statistics = those of a batch of n images, so activations stay O(1)."""
    bns = [m for m in model.modules() if isinstance(m, tn.BatchNorm2d)]
    saved = [b.momentum for b in bns]
    for b in bns:
        b.momentum = None                                # cumulative average: one batch, exact
    model.train()
    for m in model.modules():
        if isinstance(m, (tn.Dropout, StochasticDepth)):
            m.training = False
    with tn.no_grad():
        model(np.random.default_rng(123).standard_normal((n, 3, res, res)))
    for b, momentum in zip(bns, saved):
        b.momentum = momentum
        b.running_var = np.maximum(b.running_var, 0.1)   # no 1/sqrt(eps) gains on dead channels
    return model.eval()


def _network_errors(model, x, n_arrays=30, per_array=2, h=1e-3, order=4, seed=0):
    """Relative errors of the input and a random sample of parameter arrays, with the
    CS231n floor scaled to the network: |a - n| / max(|a| + |n|, 1e-6 * max |a|).
    Entries whose stencil moves an activation input across a kink are replaced."""
    dout = np.random.default_rng(seed + 1).standard_normal((x.shape[0], 10))
    watch = KinkWatch(model)

    def f():
        watch.begin_forward()
        out = model(x)
        watch.end_forward()
        return out

    with watch:
        model.zero_grad()
        f()
        dx = model.backward(dout)
        params = list(model.named_parameters())
        pick = np.random.default_rng(seed + 2)
        chosen = sorted(pick.choice(len(params), min(n_arrays, len(params)), replace=False))
        arrays = [("input", x, dx)] + [(params[i][0], params[i][1].data, params[i][1].grad.copy())
                                       for i in chosen]
        pairs = []
        for name, array, grad in arrays:
            ok, nums = [], []
            for i in pick.permutation(array.size):
                num = tn.numerical_gradient(f, array, dout, h, [i], order, watch).reshape(-1)[i]
                if not np.isnan(num):                    # NaN: the stencil crossed a kink
                    ok.append(i)
                    nums.append(num)
                if len(ok) == per_array:
                    break
            pairs.append((name, grad.reshape(-1)[ok], np.array(nums)))
    floor = 1e-6 * max(np.abs(a).max() for _, a, _ in pairs if a.size)
    return {name: float(np.max(np.abs(a - n) / np.maximum(floor, np.abs(a) + np.abs(n))))
            for name, a, n in pairs if a.size}


@pytest.mark.parametrize("name", list(TINY))
def test_network_gradient(name):
    """The blocks' backwards compose into the network's: float64, eval mode, tolerance 1e-5.

    The real activations stay; an entry whose stencil moves any of the ~1e4 activation
    inputs across a kink is replaced by another (the per-layer and per-block checks are
    < 1e-7, tests/test_gradcheck_layers.py and tests/test_blocks.py). Why not the same
    recipe here? (i) Train-mode BN over 1x1 maps of one image is so curved that no step
    h is both above rounding and below truncation, and it makes some gradients exactly 0,
    so the check runs in eval mode with calibrated statistics; (ii) gradients span ~10
    orders of magnitude, and entries below ~1e-13 |L| / h cannot be resolved from
    float64 losses, hence the floor relative to the largest gradient. A wrong backward
    anywhere gives errors of 1e-3 or more; what remains here is float64 rounding: the
    worst measured is 3.8e-6 (EfficientNet-B0, an SE fc1 weight), 1e-9 to 7e-7 elsewhere.
    """
    tn.manual_seed(0)
    model = get_model(name, num_classes=10, dtype=np.float64, **TINY[name])
    _calibrate(model, 32)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32))
    errors = _network_errors(model, x)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-5, f"{name}: worst {worst} {errors[worst]:.1e}"


# ------------------------------------------------------------------ (e) no_grad keeps nothing
@pytest.mark.parametrize("name", list(TINY))
def test_no_grad_leaves_no_cache(name, rng):
    model = get_model(name, num_classes=10, **TINY[name])
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    model(x)                                                            # caches filled
    assert any(m.cache is not None for m in model.modules())
    with tn.no_grad():
        model(x)
    assert all(m.cache is None for _, m in model.named_modules())
    with pytest.raises(RuntimeError, match="no_grad"):
        model.backward(np.ones((2, 10), dtype=np.float32))


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0"])
def test_profile_shapes_and_summary(name):
    model = get_model(name)
    out, rows = model.profile((1, 3, 224, 224))
    assert out == (1, 1000)
    assert sum(r.params for r in rows) == tn.count_params(model)
    assert tn.count_flops(model, (3, 224, 224)) > 2 * tn.count_macs(model, (3, 224, 224))
    assert "params" in str(tn.summary(model, (3, 224, 224)))
