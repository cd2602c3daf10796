"""tinynets.io refuses what it must: code in pickles, tensors outside their storage, broken files.

Malicious checkpoints: two written by torch (``fixtures/checkpoints/malicious_*.pth``,
whose payload ``make_checkpoint_fixtures.py`` proved live) and more assembled here from
pickle opcodes (protocol 0 INST, protocol 4 STACK_GLOBAL, a payload in the header
pickle). Each test runs in an empty working directory and asserts that the payload's
file was not created and that the error names the refused global.
"""
from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinynets.io import CheckpointError, UnsafeCheckpointError, load_checkpoint

pytestmark = pytest.mark.task_io

HERE = Path(__file__).parent / "fixtures" / "checkpoints"
SENTINEL = "pwned_by_checkpoint"
MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


# ------------------------------------------------------------------ pickles by hand
def _s(text: str) -> bytes:                            # BINUNICODE
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _i(n: int) -> bytes:                               # BININT, or LONG1 past 32 bits
    if -(1 << 31) <= n < (1 << 31):
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes(n.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _ints(values) -> bytes:                            # MARK ... TUPLE
    return b"(" + b"".join(_i(v) for v in values) + b"t"


_ODICT = b"ccollections\nOrderedDict\n)R"                 # OrderedDict()


def tensor_dict_pickle(entries, storage_type: str = "FloatStorage", after: bytes = b"") -> bytes:
    """Protocol 2 bytes of OrderedDict(name -> tensor), as torch's legacy save writes them;
    ``entries``: (name, storage key, storage numel, offset, size, stride); ``after``: opcodes
    run on each tensor once it is built (a BUILD, say)."""
    out = [b"\x80\x02", _ODICT, b"("]
    for name, key, numel, offset, size, stride in entries:
        pid = (b"(" + _s("storage") + f"ctorch\n{storage_type}\n".encode() + _s(key) + _s("cpu")
               + _i(numel) + b"NtQ")
        out += [_s(name), b"ctorch._utils\n_rebuild_tensor_v2\n(", pid, _i(offset), _ints(size),
                _ints(stride), b"\x89", _ODICT, b"tR", after]
    return b"".join(out) + b"u."


def legacy_file(obj: bytes, storages, keys=None, dtype: str = "<f4") -> bytes:
    """Header pickles, the object pickle, the key list, then (count, data) per key."""
    head = b"".join(pickle.dumps(x, protocol=2) for x in (MAGIC, PROTOCOL, SYS_INFO))
    keys = sorted(storages) if keys is None else keys
    data = b"".join(struct.pack("<q", len(storages[k])) + np.asarray(storages[k], dtype).tobytes()
                    for k in sorted(storages))
    return head + obj + pickle.dumps(keys, protocol=2) + data


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def write(tmp_path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_the_hand_made_pickles_are_read(tmp_path):
    path = write(tmp_path, "ok.pth", legacy_file(
        tensor_dict_pickle([("t", "0", 6, 0, (3, 2), (1, 3)), ("v", "0", 6, 4, (2,), (1,))]),
        {"0": np.arange(6)}))
    got = load_checkpoint(path)
    assert np.array_equal(got["t"], np.arange(6, dtype=np.float32).reshape(2, 3).T)
    assert np.array_equal(got["v"], [4, 5])


# ------------------------------------------------------------------ code is never run
@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / SENTINEL).exists(), "the payload ran"


@pytest.mark.parametrize("name, global_name", [("malicious_legacy.pth", "posix.system"),
                                               ("malicious_zip.pth", "__builtin__.exec")])
def test_crafted_torch_checkpoints_are_refused(empty_cwd, name, global_name):
    with pytest.raises(UnsafeCheckpointError, match=f"refusing to load global '{global_name}'"):
        load_checkpoint(HERE / name)


def test_refusal_is_an_unpickling_error(empty_cwd):
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(HERE / "malicious_legacy.pth")


@pytest.mark.parametrize("kind", ["protocol4_object", "inst_opcode", "header_pickle", "zip_protocol4"])
def test_payloads_in_other_places_are_refused(empty_cwd, kind):
    touch = _Evil(os.system, f"touch {SENTINEL}")
    if kind == "protocol4_object":               # STACK_GLOBAL 'posix' 'system'
        data = legacy_file(pickle.dumps(touch, protocol=4), {})
    elif kind == "inst_opcode":                  # protocol 0: INST os system
        data = legacy_file(f"(S'touch {SENTINEL}'\nios\nsystem\n.".encode(), {})
    elif kind == "header_pickle":                # in place of the magic number
        data = pickle.dumps(touch, protocol=2)
    else:
        path = empty_cwd / "evil.pt"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("evil/data.pkl", pickle.dumps(_Evil(eval, f"open({SENTINEL!r},'w')"), protocol=4))
        data = path.read_bytes()
    refused = r"refusing to load global '(posix|os|builtins)\.(system|eval)'"
    with pytest.raises(UnsafeCheckpointError, match=refused):
        load_checkpoint(write(empty_cwd, "evil.pth", data))


def test_npz_with_object_arrays_is_refused(empty_cwd):
    np.savez(empty_cwd / "obj.npz", a=np.array([_Evil(os.system, f"touch {SENTINEL}")], dtype=object))
    with pytest.raises(UnsafeCheckpointError, match="pickle"):
        load_checkpoint(empty_cwd / "obj.npz")


# ------------------------------------------------------------------ inconsistent tensors
@pytest.mark.parametrize("entry, storage, message", [
    (("t", "0", 4, 0, (5,), (1,)), [0] * 4, "reaches past its storage of 4"),
    (("t", "0", 4, 2, (2, 2), (2, 1)), [0] * 4, "reaches past"),
    (("t", "0", 4, 0, (2,), (1 << 30,)), [0] * 4, "reaches past"),
    (("t", "0", 4, 0, (2, 2), (1,)), [0] * 4, "differ in length"),
    (("t", "0", 4, 0, (2,), (-1,)), [0] * 4, "ints >= 0"),
    (("t", "0", 4, 0, (4,), (1,)), [0] * 3, "3 elements stored, 4 declared"),
])
def test_tensors_must_lie_inside_their_storage(tmp_path, entry, storage, message):
    path = write(tmp_path, "bad.pth", legacy_file(tensor_dict_pickle([entry]), {"0": storage}))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_legacy_structure_errors(tmp_path):
    obj = tensor_dict_pickle([("t", "0", 4, 0, (4,), (1,))])
    for data, message in [
        (legacy_file(obj, {"0": [0] * 4}, keys=["0", "9"]), "storage keys does not match"),
        (legacy_file(obj, {"0": [0] * 4})[:-3], "truncated"),
        (legacy_file(b"\x80\x02(X\x06\x00\x00\x00moduletQ.", {}), "unexpected persistent id"),
        (legacy_file(pickle.dumps({"epoch": 3}, protocol=2), {}), r"entries \['epoch'\] are not tensors"),
        (legacy_file(pickle.dumps([1, 2], protocol=2), {}), "holds a list"),
        (pickle.dumps({"a": 1}, protocol=2), "magic number is missing"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(write(tmp_path, "x.pth", data))


# ------------------------------------------------------------------ broken files
def test_missing_empty_and_unknown_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: '.*nothing.pth'"):
        load_checkpoint(tmp_path / "nothing.pth")
    for data in (b"", b"hello, world\n" * 3, b"\x89PNG\r\n\x1a\n" + bytes(20)):
        with pytest.raises(CheckpointError, match="not a checkpoint format tinynets reads"):
            load_checkpoint(write(tmp_path, "x.pth", data))
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError, match="neither a PyTorch checkpoint nor an .npz"):
        load_checkpoint(tmp_path / "x.zip")


@pytest.mark.parametrize("name", ["legacy.pth", "zip.pth", "nested_zip.pth", "state.safetensors"])
@pytest.mark.parametrize("keep", [0.3, 0.7, 0.97])
def test_truncated_files_give_a_clear_error(tmp_path, name, keep):
    data = (HERE / name).read_bytes()
    path = write(tmp_path, name, data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        load_checkpoint(path)


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    import json
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("header, data, message", [
    ({"a": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, bytes(2),
     "'F8_E4M3' is not supported"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "do not hold shape"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(4), "truncated"),
    ({"a": {"dtype": "F32", "shape": [2]}}, bytes(8), "needs dtype, shape and data_offsets"),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8), "ints >= 0"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
      "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, bytes(3), "overlap or leave a hole"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}, bytes(4), "overlap or leave a hole"),
    ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, bytes(5), "3 bytes after the last"),
])
def test_corrupt_safetensors(tmp_path, header, data, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(write(tmp_path, "x.safetensors", safetensors_bytes(header, data)))


def test_safetensors_header_must_be_json(tmp_path):
    data = struct.pack("<Q", 12) + b"{not json!!}"
    with pytest.raises(CheckpointError, match="header is not JSON"):
        load_checkpoint(write(tmp_path, "x.safetensors", data))
