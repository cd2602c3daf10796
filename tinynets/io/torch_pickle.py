"""Read ``torch.save`` files without torch: a restricted unpickler and the two file layouts.

A PyTorch checkpoint is a pickle in which every tensor is the call
``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
backward_hooks[, metadata])``; ``storage`` is a *persistent id*, a tuple naming a block of
raw bytes kept outside the pickle:

* **zip** (the default since torch 1.6): ``<top>/data.pkl`` holds the pickle, with ids
  ``('storage', <dtype>Storage, key, location, numel)``; ``<top>/data/<key>`` holds the
  bytes, ``<top>/byteorder`` says ``little`` or ``big`` (absent: little). ``<top>``
  varies (``archive``, or the file's stem in older versions).
* **legacy** (``_use_new_zipfile_serialization=False``, torch < 1.6): one file of
  concatenated pickles: magic number, protocol version (1001), sys_info, the object
  (ids ``('storage', <dtype>Storage, key, location, numel, view_metadata)``), the sorted
  list of storage keys; then, per key, an int64 element count and the raw bytes.
  ``view_metadata`` is ``None`` except in files of very old torch, where it is
  ``(view_key, offset, numel)`` in elements of a slice of the storage.

The unpickler's ``find_class`` hands out only the handful of globals listed in
:data:`ALLOWED_GLOBALS`; anything else (``posix.system``, ``builtins.exec``, ...) raises
:class:`UnsafeCheckpointError` before it can be called, because ``find_class`` is the only
way a pickle reaches a callable. Tensors come back as NumPy arrays that own their data.
"""
from __future__ import annotations

import pickle
import struct
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Dict

import numpy as np

from .safe_pickle import SafeUnpickler

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C          # torch/serialization.py MAGIC_NUMBER
LEGACY_PROTOCOL = 1001

# safetensors dtype code -> little-endian raw dtype; BF16 is read as its 16 raw bits
RAW_DTYPES: Dict[str, str] = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
                              "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "|i1",
                              "U8": "|u1", "BOOL": "|b1"}
STORAGE_CODES: Dict[str, str] = {"DoubleStorage": "F64", "FloatStorage": "F32",
                                 "HalfStorage": "F16", "BFloat16Storage": "BF16",
                                 "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16",
                                 "CharStorage": "I8", "ByteStorage": "U8", "BoolStorage": "BOOL"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: unknown format, truncated or inconsistent."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The pickle asked for a global that a tensor checkpoint never needs (it may run code)."""


def decode(raw: np.ndarray, code: str) -> np.ndarray:
    """Raw elements (any byte order) -> a native array; bfloat16 -> float32 (its high 16 bits)."""
    if code == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(raw.dtype.newbyteorder("="), copy=False)


class _StorageType:
    """Stands in for ``torch.FloatStorage`` etc.: only its element type matters."""

    def __init__(self, name: str):
        self.name, self.code = name, STORAGE_CODES[name]


class _Storage:
    """One storage: element type and count, then (once read) its raw 1-D array."""
    __slots__ = ("code", "numel", "raw", "base", "start")

    def __init__(self, code: str, numel: int, base: "_Storage" = None, start: int = 0):
        self.code, self.numel, self.raw, self.base, self.start = code, numel, None, base, start


class _TensorRef:
    """A tensor to build once the storages are read (the legacy layout stores them last)."""
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _ints(value: Any, what: str) -> tuple:
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise CheckpointError(f"_rebuild_tensor_v2: {what} must be a tuple of ints >= 0, got {value!r:.80}")
    return tuple(value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _TensorRef:
    """torch._utils._rebuild_tensor_v2, deferred: checks the arguments, builds later."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"_rebuild_tensor_v2: expected a storage, got {type(storage).__name__}")
    (offset,) = _ints((storage_offset,), "storage_offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise CheckpointError(f"_rebuild_tensor_v2: size {size} and stride {stride} differ in length")
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> _TensorRef:
    """torch._utils._rebuild_parameter: an ``nn.Parameter`` is just its tensor here."""
    if not isinstance(data, _TensorRef):
        raise CheckpointError(f"_rebuild_parameter: expected a tensor, got {type(data).__name__}")
    return data


ALLOWED_GLOBALS: Dict[tuple, Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_CODES},
}


class TorchUnpickler(SafeUnpickler):
    """:class:`tinynets.data.SafeUnpickler` with the globals of a tensor checkpoint.

    ``storages`` collects one :class:`_Storage` per key named by the persistent ids.
    """
    ALLOWED = ALLOWED_GLOBALS

    def __init__(self, file: BinaryIO):
        super().__init__(file, encoding="utf-8")
        self.storages: Dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except pickle.UnpicklingError:
            raise UnsafeCheckpointError(
                f"refusing to load global '{module}.{name}': only collections.OrderedDict, "
                "torch._utils._rebuild_tensor_v2/_rebuild_parameter and torch.<dtype>Storage "
                "are allowed, as a file of tensors needs nothing else") from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[4], int) and pid[4] >= 0):
            raise CheckpointError(f"unexpected persistent id {pid!r:.100}: expected ('storage', "
                                  "<type>Storage, key, location, numel[, view_metadata])")
        code, key, numel = pid[1].code, str(pid[2]), pid[4]
        storage = self.storages.setdefault(key, _Storage(code, numel))
        if storage.code != code or storage.numel != numel:
            raise CheckpointError(f"storage {key!r} is named twice with different types or sizes")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return storage
        view_key, start, count = view
        if not (isinstance(start, int) and isinstance(count, int) and 0 <= start
                and start + count <= numel):
            raise CheckpointError(f"storage view {view!r:.80} lies outside storage {key!r} ({numel})")
        return _Storage(code, count, base=storage, start=start)


def _build(ref: _TensorRef) -> np.ndarray:
    """as_strided on the storage's raw array, bounds checked, then copied and decoded."""
    st = ref.storage
    root, start = (st.base, st.start) if st.base is not None else (st, 0)
    if root.raw is None:
        raise CheckpointError("a tensor refers to a storage whose data is not in the file")
    if 0 in ref.size:
        return decode(np.empty(ref.size, root.raw.dtype), st.code)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= st.numel:
        raise CheckpointError(f"a tensor of size {ref.size}, stride {ref.stride} and offset "
                              f"{ref.offset} reaches past its storage of {st.numel} elements")
    flat = root.raw[start + ref.offset:]
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat, ref.size, [s * item for s in ref.stride],
                                           writeable=False)
    return decode(np.array(view), st.code)


def materialize(obj: Any) -> Any:
    """Replace every deferred tensor in nested dicts, lists and tuples by its array."""
    if isinstance(obj, _TensorRef):
        return _build(obj)
    if isinstance(obj, dict):
        out = type(obj)() if type(obj) in (dict, OrderedDict) else OrderedDict()
        for k, v in obj.items():
            out[k] = materialize(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(materialize(v) for v in obj)
    return obj


def _set_raw(storage: _Storage, data: bytes, byteorder: str, where: str) -> None:
    dtype = np.dtype(RAW_DTYPES[storage.code])
    if byteorder == "big":
        dtype = dtype.newbyteorder(">")
    need = storage.numel * dtype.itemsize
    if len(data) < need:
        raise CheckpointError(f"{where}: {len(data)} bytes, {need} expected (truncated?)")
    storage.raw = np.frombuffer(data, dtype, storage.numel)


def load_legacy(f: BinaryIO) -> Any:
    """The object of a legacy (non-zip) ``torch.save`` file, tensors as arrays."""
    magic = TorchUnpickler(f).load()
    if magic != LEGACY_MAGIC:
        raise CheckpointError("a pickle, but not a PyTorch checkpoint (its magic number is missing)")
    protocol = TorchUnpickler(f).load()
    if protocol != LEGACY_PROTOCOL:
        raise CheckpointError(f"legacy PyTorch protocol {protocol!r}, only {LEGACY_PROTOCOL} is known")
    sys_info = TorchUnpickler(f).load()
    byteorder = "little" if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) \
        else "big"
    unpickler = TorchUnpickler(f)
    obj = unpickler.load()
    keys = TorchUnpickler(f).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(unpickler.storages):
        raise CheckpointError("the list of storage keys does not match the storages in the pickle")
    count_format = "<q" if byteorder == "little" else ">q"
    for key in map(str, keys):
        storage = unpickler.storages[key]
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"storage {key!r}: the file ends before its data (truncated?)")
        (count,) = struct.unpack(count_format, head)
        if count != storage.numel:
            raise CheckpointError(f"storage {key!r}: {count} elements stored, {storage.numel} declared")
        nbytes = count * np.dtype(RAW_DTYPES[storage.code]).itemsize
        _set_raw(storage, f.read(nbytes), byteorder, f"storage {key!r}")
    return materialize(obj)


def load_zip(zf: zipfile.ZipFile) -> Any:
    """The object of a zip ``torch.save`` file (``<top>/data.pkl``), tensors as arrays."""
    pickles = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pickles) != 1:
        raise CheckpointError(f"a zip file, but not a PyTorch checkpoint: {len(pickles)} data.pkl "
                              "records at its top level, 1 expected")
    prefix = pickles[0][:-len("data.pkl")]
    names = set(zf.namelist())
    byteorder = zf.read(prefix + "byteorder").decode() if prefix + "byteorder" in names else "little"
    if byteorder not in ("little", "big"):
        raise CheckpointError(f"unknown byteorder record {byteorder!r}")
    with zf.open(pickles[0]) as f:
        unpickler = TorchUnpickler(f)
        obj = unpickler.load()
    for key, storage in unpickler.storages.items():
        name = f"{prefix}data/{key}"
        if name not in names:
            raise CheckpointError(f"storage {key!r}: no record {name!r} in the zip file")
        _set_raw(storage, zf.read(name), byteorder, f"record {name!r}")
    return materialize(obj)


__all__: list = ["CheckpointError", "UnsafeCheckpointError", "TorchUnpickler", "load_legacy",
                 "load_zip", "decode", "RAW_DTYPES", "STORAGE_CODES", "ALLOWED_GLOBALS"]
