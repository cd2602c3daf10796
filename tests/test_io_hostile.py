"""tinynets.io under hostile files: crafted attacks, then a seeded mutation fuzz.

Each crafted file below is small and aims at one weakness a restricted unpickler can still
have: a tensor changed after its bounds check (BUILD), negative strides, a file that
changes the reader for the next file, tiny files that ask for gigabytes (zero strides,
zip bombs, length fields, memo indices, a graph of shared references), and errors that
came out raw or misnamed. For every file, :func:`run` asserts the contract: a clean load
or a ``CheckpointError`` (``UnsafeCheckpointError`` where the file asks for something
refused), under 2 s, a peak of traced memory under 2 x the file size + 64 MB (numpy's
buffers are traced too), and the process unchanged: a real file read afterwards gives its
exact values. The fuzz mutates the committed fixtures (byte flips, truncations, duplicated
ranges) with a fixed seed and holds every mutant to the same contract. CIFAR's batch reader
(``safe_pickle.safe_load``) runs on the same interpreter and gets its own crafted pickles.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import time
import tracemalloc
import zipfile
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from test_io_safety import SENTINEL, _i, _s, legacy_file, tensor_dict_pickle
from tinynets.io import CheckpointError, UnsafeCheckpointError, load_checkpoint
from tinynets.io import files

pytestmark = pytest.mark.task_io

HERE = Path(__file__).parent / "fixtures" / "checkpoints"
LIMIT_S, SLACK = 2.0, 64 << 20
MB = 1 << 20


@pytest.fixture(scope="module")
def expected():
    with np.load(HERE / "expected.npz", allow_pickle=False) as z:
        return OrderedDict((k, z[k]) for k in z.files if "/" not in k)


def assert_legit_file_is_exact(expected) -> None:
    """The process is unchanged: a real torch file still reads to its exact values."""
    got = load_checkpoint(HERE / "legacy.pth")
    assert list(got) == list(expected)
    for k, v in expected.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and np.array_equal(got[k], v), k


def run(path: Path, expected, refused=CheckpointError, match: str = None):
    """Load ``path`` under the contract; returns the state dict, or the error it raised."""
    size = path.stat().st_size
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    try:
        out = load_checkpoint(path)
    except CheckpointError as err:
        out = err
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    assert seconds < LIMIT_S, f"{path.name}: {seconds:.2f} s"
    assert peak < 2 * size + SLACK, f"{path.name}: peak {peak / MB:.1f} MB for {size} bytes"
    if refused is not None:
        assert isinstance(out, refused), f"{path.name}: {out!r:.200}"
        if match is not None:
            assert match in str(out), str(out)
    assert not Path(SENTINEL).exists(), "a payload ran"
    assert_legit_file_is_exact(expected)
    return out


def write(tmp_path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def body(pickled: bytes) -> bytes:
    """A pickle's opcodes without its PROTO header and STOP, to splice into another."""
    assert pickled[:2] == b"\x80\x02" and pickled[-1:] == b"."
    return pickled[2:-1]


def npy(shape, descr: str = "<f4", data: bytes = b"") -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False,
                                             "shape": tuple(shape)})
    return f.getvalue() + data


def zip_bytes(records, method=zipfile.ZIP_STORED) -> bytes:
    """A zip of (name, bytes or list of byte blocks) records, all with ``method``."""
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", method) as zf:
        for name, data in records:
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            with zf.open(info, "w") as g:
                for block in ([data] if isinstance(data, bytes) else data):
                    g.write(block)
    return f.getvalue()


# ------------------------------------------------------------------ 1. out-of-bounds reads
_STATE_STRIDE = b"N}" + _s("stride") + b"(" + _i(-1) + b"ts\x86b"      # BUILD (None, {stride})


def build_stride_file() -> bytes:
    """4 int64 elements; after the check, BUILD sets the stride to (-1,): before the fix
    the tensor read 3 elements in front of the buffer (a hash, a size, a type pointer)."""
    return legacy_file(tensor_dict_pickle([("t", "0", 4, 0, (4,), (1,))], "LongStorage",
                                          after=_STATE_STRIDE), {"0": [1, 2, 3, 4]}, dtype="<i8")


def build_big_stride_file() -> bytes:
    """The same with stride (-2**40,): before the fix it read 4 TB before the buffer."""
    state = b"N}" + _s("stride") + b"(" + _i(-(1 << 40)) + b"ts\x86b"
    return legacy_file(tensor_dict_pickle([("t", "0", 4, 0, (2,), (1,))], after=state),
                       {"0": [1, 2, 3, 4]})


def negative_stride_file() -> bytes:
    """A 2 x 2 view whose BUILD stride (2, -1) starts one element before the storage."""
    state = b"N}" + _s("stride") + b"(" + _i(2) + _i(-1) + b"ts\x86b"
    return legacy_file(tensor_dict_pickle([("t", "0", 4, 0, (2, 2), (2, 1))], after=state),
                       {"0": [1, 2, 3, 4]})


def test_build_cannot_change_a_tensor_after_its_check(tmp_path, expected):
    for name, data in [("stride.pth", build_stride_file()), ("big.pth", build_big_stride_file()),
                       ("negative.pth", negative_stride_file())]:
        run(write(tmp_path, name, data), expected, UnsafeCheckpointError, "BUILD on a _Tensor")


def test_bounds_are_checked_at_the_lowest_and_the_highest_address():
    from tinynets.io.torch_pickle import _Storage, _Tensor, check_bounds
    storage = _Storage("0", "F32", 4)
    check_bounds(_Tensor(storage, 3, (4,), (-1,)))               # elements 3, 2, 1, 0
    check_bounds(_Tensor(storage, 1, (2, 2), (2, -1)))           # elements 1, 0, 3, 2
    for offset, size, stride in [(2, (4,), (-1,)), (0, (2, 2), (2, -1)), (1, (4,), (1,))]:
        with pytest.raises(CheckpointError, match="reaches past its storage of 4"):
            check_bounds(_Tensor(storage, offset, size, stride))


def test_tensors_and_storages_are_immutable():
    from tinynets.io.torch_pickle import ALLOWED_GLOBALS, _Storage, _Tensor
    t = _Tensor(_Storage("0", "F32", 4), 0, (4,), (1,))
    with pytest.raises(AttributeError):
        t.stride = (-1,)
    with pytest.raises(AttributeError):
        ALLOWED_GLOBALS[("torch", "FloatStorage")].code = "I32"


# ------------------------------------------------------------------ 2. cross-file poisoning
def poison_file(slots: bool) -> bytes:
    """BUILD {'code': 'I32'} (or slot state) onto torch.FloatStorage, then a float tensor."""
    state = b"}" + _s("code") + _s("I32") + b"s"
    state = b"N" + state + b"\x86" if slots else state
    obj = b"\x80\x02ctorch\nFloatStorage\n" + state + b"b0" + body(
        tensor_dict_pickle([("t", "0", 2, 0, (2,), (1,))])) + b"."
    return legacy_file(obj, {"0": [1.5, 2.5]})


@pytest.mark.parametrize("slots", [False, True])
def test_a_file_cannot_change_how_the_next_file_reads(tmp_path, expected, slots):
    run(write(tmp_path, "poison.pth", poison_file(slots)), expected, UnsafeCheckpointError,
        "BUILD on a _StorageType")
    assert_legit_file_is_exact(expected)                         # float32 stays float32


# ------------------------------------------------------------------ 3. memory amplification
def zero_stride_file(n: int) -> bytes:
    return legacy_file(tensor_dict_pickle([("t", "0", 1, 0, (n,), (0,))]), {"0": [1.0]})


@pytest.mark.parametrize("n", [10_000_000, 10 ** 12])
def test_zero_strides_cannot_amplify(tmp_path, expected, n):
    run(write(tmp_path, "zero.pth", zero_stride_file(n)), expected, CheckpointError,
        "more elements than its storage of 1")


def overlapping_views_file(count: int = 64, numel: int = 1 << 18) -> bytes:
    """``count`` different views of most of one 1 MB storage: 64 MB built from 1 MB."""
    entries = [(f"t{i}", "0", numel, i, (numel - count,), (1,)) for i in range(count)]
    return legacy_file(tensor_dict_pickle(entries), {"0": np.zeros(numel)})


def test_overlapping_views_are_capped(tmp_path, expected):
    run(write(tmp_path, "views.pth", overlapping_views_file()), expected, CheckpointError,
        "past the 1048576 bytes of tensor data the file stores")


@lru_cache(maxsize=None)
def zip_bomb(kind: str) -> bytes:
    """100 MB of zeros deflated to about 100 kB: a torch storage record, or an npz array."""
    zeros = [bytes(MB)] * 100
    if kind == "torch":
        pkl = tensor_dict_pickle([("t", "0", 4, 0, (4,), (1,))])
        return zip_bytes([("archive/data.pkl", pkl), ("archive/byteorder", b"little"),
                          ("archive/data/0", zeros)], zipfile.ZIP_DEFLATED)
    return zip_bytes([("a.npy", [npy((25 * MB,))] + zeros)], zipfile.ZIP_DEFLATED)


@pytest.mark.parametrize("kind", ["torch", "npz"])
def test_zip_bombs_are_refused_before_reading(tmp_path, expected, kind):
    run(write(tmp_path, f"bomb_{kind}.pth", zip_bomb(kind)), expected, CheckpointError,
        "a decompression bomb")


@lru_cache(maxsize=None)
def zip_directory_bomb(records: int = 300_000) -> bytes:
    """One empty local record and ``records`` central-directory entries (51 bytes each)
    that all point at it: zipfile made ~150 MB of objects of these 15 MB."""
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 5, 0) + b"a.npy"
    entry = [struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0,
                         0, 0, 0, 0) + f"{i:05x}".encode()[-5:] for i in range(records)]
    directory = b"".join(entry)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory),
                      len(local), 0)
    return local + directory + end


def test_zip_directories_are_checked_before_parsing(tmp_path, expected):
    run(write(tmp_path, "many.npz", zip_directory_bomb()), expected, CheckpointError,
        "a zip central directory of 15300000 bytes")


def legacy_count_file(count: int) -> bytes:
    """A legacy storage that declares ``count`` float32 elements and stores 16 bytes."""
    obj = tensor_dict_pickle([("t", "0", count, 0, (1,), (1,))])
    return legacy_file(obj, {}, keys=["0"]) + struct.pack("<q", count) + bytes(16)


@pytest.mark.parametrize("count", [1 << 28, 1 << 61])
def test_legacy_storage_counts_are_checked_against_the_file(tmp_path, expected, count):
    run(write(tmp_path, "count.pth", legacy_count_file(count)), expected, CheckpointError,
        f"{count * 4} bytes declared, only 16 in the file")


def npz_file(shape, data: bytes) -> bytes:
    return zip_bytes([("w.npy", npy(shape, data=data))])


def test_npz_headers_are_checked_before_allocating(tmp_path, expected):
    run(write(tmp_path, "huge.npz", npz_file((10 ** 12,), bytes(16))), expected, CheckpointError,
        "declares shape (1000000000000,) of float32 (4000000000000 bytes) but holds 16 bytes")


def safetensors_file(header: dict, data: bytes) -> bytes:
    import json
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def safetensors_overlap_file(count: int = 200) -> bytes:
    """``count`` entries over the same 1 MB: before the fix each was copied, then refused."""
    header = {f"t{i}": {"dtype": "U8", "shape": [MB], "data_offsets": [0, MB]}
              for i in range(count)}
    return safetensors_file(header, bytes(MB))


def test_safetensors_spans_are_checked_before_any_copy(tmp_path, expected):
    run(write(tmp_path, "overlap.safetensors", safetensors_overlap_file()), expected,
        CheckpointError, "overlap or leave a hole")
    huge = {"t": {"dtype": "U8", "shape": [1 << 32, 1 << 32], "data_offsets": [0, 0]}}
    run(write(tmp_path, "huge.safetensors", safetensors_file(huge, b"")), expected,
        CheckpointError, "do not hold shape [4294967296, 4294967296]")


@pytest.mark.parametrize("text, message", [
    (b'{"x": [' + b"[]," * 1_000_000 + b"[]]}", "more than 65536 JSON objects and arrays"),
    (b'{"x": "' + b"a" * (5 << 20) + b'"}', "tinynets reads headers of up to 4 MB")])
def test_safetensors_headers_cannot_amplify(tmp_path, expected, text, message):
    """3 MB of JSON arrays were 69 MB of Python lists, and a repr of them in the error."""
    run(write(tmp_path, "json.safetensors", struct.pack("<Q", len(text)) + text), expected,
        CheckpointError, message)


MEMO_BOMB = b"\x80\x02Nr\x00\x00\x00\x02."           # LONG_BINPUT 2**25, 9 bytes


def test_memo_indices_are_bounded(tmp_path, expected):
    assert len(MEMO_BOMB) == 9
    run(write(tmp_path, "memo.pth", MEMO_BOMB), expected, CheckpointError,
        "memo index 33554432 at byte 3 exceeds the 3 opcodes before it")


def dag_file(depth: int = 24) -> bytes:
    """{'junk': L[depth], 'state_dict': {...}} with L[i + 1] = [L[i], L[i]]: a graph of
    ``depth`` lists that a tree copy turns into 2**depth lists."""
    junk = b"]q\x00" + b"".join(b"0(h%ch%clq%c" % (i, i, i + 1) for i in range(depth))
    state = tensor_dict_pickle([("w", "0", 2, 0, (2,), (1,))])
    obj = b"\x80\x02}(" + _s("junk") + junk + _s("state_dict") + body(state) + b"u."
    return legacy_file(obj, {"0": [0.5, -2.0]})


def test_shared_references_stay_shared(tmp_path, expected):
    data = dag_file()
    assert len(data) < 600
    got = run(write(tmp_path, "dag.pth", data), expected, refused=None)
    assert list(got) == ["w"] and np.array_equal(got["w"], np.array([0.5, -2.0], np.float32))


def test_deep_nesting_is_refused(tmp_path, expected):
    obj = b"\x80\x02}(" + _s("junk") + b"]" * 10_000 + b"a" * 9_999 + b"u."
    run(write(tmp_path, "deep.pth", legacy_file(obj, {})), expected, CheckpointError,
        "nested more than 64 deep")


def test_too_many_opcodes_are_refused(tmp_path, expected):
    obj = b"\x80\x02(" + b"N" * 140_000 + b"l."
    run(write(tmp_path, "long.pth", legacy_file(obj, {})), expected, CheckpointError,
        "more than 131072 pickle opcodes")


# ------------------------------------------------------------------ 4. errors, not exceptions
def test_overflow_and_memory_errors_do_not_escape(tmp_path, expected):
    # a size-1 dimension with a stride of 2**70 is harmless: it used to overflow as_strided
    huge_stride = legacy_file(tensor_dict_pickle([("t", "0", 2, 1, (1,), (1 << 70,))]),
                              {"0": [3.0, 4.0]})
    got = run(write(tmp_path, "overflow.pth", huge_stride), expected, refused=None)
    assert np.array_equal(got["t"], np.array([4.0], np.float32))
    run(write(tmp_path, "memory.pth", zero_stride_file(10 ** 12)), expected, CheckpointError)
    run(write(tmp_path, "memory.npz", npz_file((1 << 62,), b"")), expected, CheckpointError,
        "bytes) but holds 0 bytes")


def test_a_truncated_npz_says_truncated(tmp_path, expected):
    out = run(write(tmp_path, "cut.npz", npz_file((100,), bytes(40))), expected, CheckpointError,
              "holds 40 bytes of data (truncated)")
    assert not isinstance(out, UnsafeCheckpointError) and "pickle" not in str(out)


# ------------------------------------------------------------------ the CIFAR batch reader
@pytest.mark.parametrize("payload", [
    b"\x80\x02cnumpy\nndarray\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85\x85R.",   # ndarray((10**12,))
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x06\x00\x10\xa5\xd4"
    b"\xe8\x00\x85C\x01b\x87R.",                                    # _reconstruct(.., (10**12,))
    MEMO_BOMB])
def test_cifar_batches_cannot_allocate_what_they_do_not_hold(payload):
    from tinynets.io.safe_pickle import safe_load
    tracemalloc.start()
    try:
        with pytest.raises(pickle.UnpicklingError):
            safe_load(io.BytesIO(payload))
        assert tracemalloc.get_traced_memory()[1] < SLACK
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------ 5. umask
def test_atomic_write_never_touches_the_umask(tmp_path, monkeypatch):
    umask = os.umask(0o027)                     # a known umask for this test
    try:
        def forbidden(*args):
            raise AssertionError("os.umask called: it would loosen other threads' new files")
        monkeypatch.setattr(os, "umask", forbidden)
        files.atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
        assert (tmp_path / "a.bin").read_bytes() == b"x"
        assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640   # 0o666 & ~0o027
        assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    finally:
        monkeypatch.undo()
        os.umask(umask)


# ------------------------------------------------------------------ the fuzz
FUZZ_SEED, FUZZ_PER_FILE = 20261202, 30
FUZZ_FILES = sorted(p.name for p in HERE.iterdir())


def mutants(data: bytes, rng: np.random.Generator, count: int):
    """``count`` mutants of ``data``: byte flips, truncations and duplicated ranges."""
    n = len(data)
    for k in range(count):
        kind = ("flip", "truncate", "duplicate")[k % 3]
        if kind == "flip":
            b = bytearray(data)
            for at in rng.integers(0, n, rng.integers(1, 9)):
                b[at] = int(rng.integers(0, 256))
            yield kind, bytes(b)
        elif kind == "truncate":
            yield kind, data[:int(rng.integers(0, n))]
        else:
            a = int(rng.integers(0, n))
            b = int(rng.integers(a, min(n, a + 512) + 1))
            at = int(rng.integers(0, n + 1))
            yield kind, data[:at] + data[a:b] + data[at:]


def test_fuzzed_fixtures_load_or_raise_the_documented_error(tmp_path, expected, monkeypatch):
    monkeypatch.chdir(tmp_path)                 # where a payload would leave its file
    rng = np.random.default_rng(FUZZ_SEED)
    outcomes = {"loaded": 0, "refused": 0}
    for name in FUZZ_FILES:
        data = (HERE / name).read_bytes()
        for i, (kind, mutant) in enumerate(mutants(data, rng, FUZZ_PER_FILE)):
            out = run(write(tmp_path, f"{i}_{kind}_{name}", mutant), expected, refused=None)
            if isinstance(out, CheckpointError):
                outcomes["refused"] += 1
            else:
                assert isinstance(out, OrderedDict) and all(
                    isinstance(v, np.ndarray) for v in out.values()), f"{kind} {name}"
                outcomes["loaded"] += 1
            (tmp_path / f"{i}_{kind}_{name}").unlink()
    assert sum(outcomes.values()) == len(FUZZ_FILES) * FUZZ_PER_FILE >= 300
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes
