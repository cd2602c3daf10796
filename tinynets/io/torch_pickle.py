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

:class:`TorchUnpickler` is :class:`tinynets.io.safe_pickle.SafeUnpickler` (its own opcode
interpreter, after a pre-scan) with the handful of globals in :data:`ALLOWED_GLOBALS`;
anything else (``posix.system``, ``builtins.exec``, ...) raises :class:`UnsafeCheckpointError`
before anything is built. BUILD is allowed only on an ``OrderedDict`` (torch's
``state_dict()._metadata``), and its state is dropped. Storage types, storages and tensors
are immutable tuples, so nothing a file does reaches the next file.

Tensors are built only once every storage is read, each after its bounds check (lowest and
highest address inside its storage, no more elements than the storage), identical views
once, and all of them together at most 32 MB beyond the tensor bytes the file stores. They come
back as NumPy arrays that own their data.
"""
from __future__ import annotations

import io
import math
import mmap
import struct
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Dict, NamedTuple, Tuple

import numpy as np

from .limits import (MAX_EXPANSION, BoundedReader, CheckpointError, UnsafeCheckpointError,
                     read_exact, read_record, short)
from .safe_pickle import SafeUnpickler

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C          # torch/serialization.py MAGIC_NUMBER
LEGACY_PROTOCOL = 1001
MAX_DEPTH = 64                                 # containers nested deeper than this: refused

# safetensors dtype code -> little-endian raw dtype; BF16 is read as its 16 raw bits
RAW_DTYPES: Dict[str, str] = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
                              "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "|i1",
                              "U8": "|u1", "BOOL": "|b1"}
STORAGE_CODES: Dict[str, str] = {"DoubleStorage": "F64", "FloatStorage": "F32",
                                 "HalfStorage": "F16", "BFloat16Storage": "BF16",
                                 "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16",
                                 "CharStorage": "I8", "ByteStorage": "U8", "BoolStorage": "BOOL"}


def decode(raw: np.ndarray, code: str) -> np.ndarray:
    """Raw elements (any byte order) -> a native array; bfloat16 -> float32 (its high 16 bits)."""
    if code == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(raw.dtype.newbyteorder("="), copy=False)


class _StorageType(NamedTuple):
    """Stands in for ``torch.FloatStorage`` etc.: only its element type matters."""
    name: str
    code: str


class _Storage(NamedTuple):
    """A storage as a persistent id names it: its key, element type and element count; a
    legacy *view* also has its first element in the storage ``key``."""
    key: str
    code: str
    numel: int
    start: int = 0


class _Tensor(NamedTuple):
    """A tensor to build once the storages are read (the legacy layout stores them last)."""
    storage: _Storage
    offset: int
    size: Tuple[int, ...]
    stride: Tuple[int, ...]


def _ints(value: Any, what: str) -> tuple:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise CheckpointError(f"_rebuild_tensor_v2: {what} must be a tuple of ints >= 0, "
                              f"got {short(value)}")
    return tuple(value)


def check_bounds(t: _Tensor) -> None:
    """The lowest and the highest element the tensor addresses lie inside its storage, and
    it has no more elements than its storage (zero strides cannot blow 4 bytes up to 40 MB)."""
    if 0 in t.size:
        return
    low = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride) if s < 0)
    high = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride) if s > 0)
    if low < 0 or high >= t.storage.numel:
        raise CheckpointError(f"a tensor of size {t.size}, stride {t.stride} and offset {t.offset} "
                              f"reaches past its storage of {t.storage.numel} elements "
                              f"(elements {low} to {high})")
    if math.prod(t.size) > t.storage.numel:
        raise CheckpointError(f"a tensor of size {t.size} has more elements than its storage "
                              f"of {t.storage.numel} (zero strides?): refused")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _Tensor:
    """torch._utils._rebuild_tensor_v2, deferred: checks the arguments, builds later."""
    if type(storage) is not _Storage:
        raise CheckpointError(f"_rebuild_tensor_v2: expected a storage, got {type(storage).__name__}")
    (offset,) = _ints((storage_offset,), "storage_offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise CheckpointError(f"_rebuild_tensor_v2: size {size} and stride {stride} differ in length")
    tensor = _Tensor(storage, offset, size, stride)
    check_bounds(tensor)
    return tensor


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> _Tensor:
    """torch._utils._rebuild_parameter: an ``nn.Parameter`` is just its tensor here."""
    if type(data) is not _Tensor:
        raise CheckpointError(f"_rebuild_parameter: expected a tensor, got {type(data).__name__}")
    return data


def _ordered_dict(items=()) -> OrderedDict:
    """collections.OrderedDict(), or OrderedDict([[key, value], ...]) as Python 2 pickled it."""
    if type(items) not in (list, tuple) or not all(type(p) in (list, tuple) and len(p) == 2
                                                   for p in items):
        raise CheckpointError("OrderedDict(...) takes a list of (key, value) pairs here")
    return OrderedDict(items)


ALLOWED_GLOBALS: Dict[tuple, Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name, code) for name, code in STORAGE_CODES.items()},
}


class TorchUnpickler(SafeUnpickler):
    """:class:`tinynets.io.safe_pickle.SafeUnpickler` with the globals of a tensor checkpoint.

    ``storages`` maps each storage key named by the persistent ids to its :class:`_Storage`.
    """
    ALLOWED = ALLOWED_GLOBALS
    REDUCERS = (_ordered_dict, _rebuild_tensor_v2, _rebuild_parameter)
    Refused = UnsafeCheckpointError
    Corrupt = CheckpointError

    def __init__(self, file: BinaryIO):
        super().__init__(file, encoding="utf-8")
        self.storages: Dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        raise UnsafeCheckpointError(
            f"refusing to load global '{module}.{name}': only collections.OrderedDict, "
            "torch._utils._rebuild_tensor_v2/_rebuild_parameter and torch.<dtype>Storage "
            "are allowed, as a file of tensors needs nothing else")

    def build(self, obj: Any, state: Any) -> None:
        """torch writes one BUILD per state dict: ``OrderedDict._metadata``; it is dropped."""
        if type(obj) is not OrderedDict or id(obj) in self._built or type(state) is not dict:
            raise UnsafeCheckpointError(
                f"BUILD on a {type(obj).__name__} with a {type(state).__name__}: a tensor "
                "checkpoint sets state only once on an OrderedDict (its _metadata)")
        self._built.add(id(obj))

    def persistent_load(self, pid: Any) -> _Storage:
        if not (type(pid) is tuple and len(pid) in (5, 6) and pid[0] == "storage"
                and type(pid[1]) is _StorageType and type(pid[4]) is int and pid[4] >= 0):
            raise CheckpointError(f"unexpected persistent id {short(pid)}: expected ('storage', "
                                  "<type>Storage, key, location, numel[, view_metadata])")
        code, key, numel = pid[1].code, str(pid[2]), pid[4]
        storage = self.storages.setdefault(key, _Storage(key, code, numel))
        if (storage.code, storage.numel) != (code, numel):
            raise CheckpointError(f"storage {key!r} is named twice with different types or sizes")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return storage
        if not (type(view) is tuple and len(view) == 3 and type(view[1]) is int
                and type(view[2]) is int and 0 <= view[1] and 0 <= view[2]
                and view[1] + view[2] <= numel):
            raise CheckpointError(f"storage view {short(view)} lies outside storage {key!r} ({numel})")
        return _Storage(key, code, view[2], view[1])


class _Materializer:
    """Replaces every deferred tensor in nested dicts, lists and tuples by its array.

    Each container is copied once (a graph of shared references stays a graph, not a tree
    that doubles at each level); identical views give one array; all arrays together may
    exceed the tensor bytes the file stores by at most ``MAX_EXPANSION`` (32 MB).
    """

    def __init__(self, raws: Dict[str, np.ndarray]):
        self.raws = raws
        self.stored = sum(r.nbytes for r in raws.values())
        self.left = self.stored + MAX_EXPANSION
        self.memo: Dict[int, tuple] = {}
        self.views: Dict[_Tensor, np.ndarray] = {}

    def __call__(self, obj: Any, depth: int = 0) -> Any:
        if id(obj) in self.memo:
            return self.memo[id(obj)][1]
        if depth > MAX_DEPTH:
            raise CheckpointError(f"containers nested more than {MAX_DEPTH} deep")
        kind = type(obj)
        if kind is _Tensor:
            out = self.tensor(obj)
        elif kind in (dict, OrderedDict, list):
            out = kind()
            self.memo[id(obj)] = (obj, out)          # before the items: cycles end here
            if kind is list:
                out.extend(self(v, depth + 1) for v in obj)
            else:
                for k, v in obj.items():
                    out[k] = self(v, depth + 1)
        elif kind is tuple:
            out = tuple(self(v, depth + 1) for v in obj)
        else:
            return obj
        self.memo[id(obj)] = (obj, out)
        return out

    def tensor(self, t: _Tensor) -> np.ndarray:
        if t in self.views:
            return self.views[t]
        raw = self.raws.get(t.storage.key)
        if raw is None:
            raise CheckpointError(f"a tensor refers to storage {t.storage.key!r}, whose data "
                                  "is not in the file")
        check_bounds(t)
        nbytes = math.prod(t.size) * raw.itemsize
        if nbytes > self.left:
            raise CheckpointError(
                f"a tensor of size {t.size} takes the tensors {MAX_EXPANSION >> 20} MB past "
                f"the {self.stored} bytes of tensor data the file stores (overlapping views): "
                "refused")
        self.left -= nbytes
        if nbytes == 0:
            out = decode(np.empty(t.size, raw.dtype), t.storage.code)
        else:
            flat = raw[t.storage.start + t.offset:]
            strides = [s * raw.itemsize if n > 1 else 0 for n, s in zip(t.size, t.stride)]
            view = np.lib.stride_tricks.as_strided(flat, t.size, strides, writeable=False)
            out = decode(np.array(view), t.storage.code)
        self.views[t] = out
        return out


def _raw(data: np.ndarray, code: str, byteorder: str) -> np.ndarray:
    dtype = np.dtype(RAW_DTYPES[code])
    return data.view(dtype.newbyteorder(">") if byteorder == "big" else dtype)


def load_legacy(f: BinaryIO) -> Any:
    """The object of a legacy (non-zip) ``torch.save`` file, tensors as arrays. ``f``: an
    ``mmap`` of the file (fastest), or any seekable binary file."""
    f = f if isinstance(f, mmap.mmap) else BoundedReader(f)
    magic = TorchUnpickler(f).load()
    if magic != LEGACY_MAGIC:
        raise CheckpointError("a pickle, but not a PyTorch checkpoint (its magic number is missing)")
    protocol = TorchUnpickler(f).load()
    if protocol != LEGACY_PROTOCOL:
        raise CheckpointError(f"legacy PyTorch protocol {short(protocol)}, only {LEGACY_PROTOCOL} "
                              "is known")
    sys_info = TorchUnpickler(f).load()
    byteorder = "little" if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) \
        else "big"
    unpickler = TorchUnpickler(f)
    obj = unpickler.load()
    keys = TorchUnpickler(f).load()
    if not (type(keys) is list and all(type(k) is str for k in keys)
            and len(set(keys)) == len(keys) and set(keys) == set(unpickler.storages)):
        raise CheckpointError("the list of storage keys does not match the storages in the pickle")
    count_format = "<q" if byteorder == "little" else ">q"
    raws = {}
    for key in keys:
        code, numel = unpickler.storages[key].code, unpickler.storages[key].numel
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"storage {key!r}: the file ends before its data (truncated?)")
        (count,) = struct.unpack(count_format, head)
        if count != numel:
            raise CheckpointError(f"storage {key!r}: {count} elements stored, {numel} declared")
        nbytes = count * np.dtype(RAW_DTYPES[code]).itemsize
        left = len(f) - f.tell()
        raws[key] = _raw(read_exact(f, nbytes, f"storage {key!r}", left), code, byteorder)
    return _Materializer(raws)(obj)


def load_zip(zf: zipfile.ZipFile) -> Any:
    """The object of a zip ``torch.save`` file (``<top>/data.pkl``), tensors as arrays. The
    records' sizes and compression must have passed :func:`tinynets.io.limits.check_zip`."""
    pickles = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pickles) != 1:
        raise CheckpointError(f"a zip file, but not a PyTorch checkpoint: {len(pickles)} data.pkl "
                              "records at its top level, 1 expected")
    prefix = pickles[0][:-len("data.pkl")]
    names = set(zf.namelist())
    byteorder = "little"
    if prefix + "byteorder" in names:
        size = min(zf.getinfo(prefix + "byteorder").file_size, 8)
        byteorder = read_record(zf, prefix + "byteorder", size).tobytes().decode("latin-1")
    if byteorder not in ("little", "big"):
        raise CheckpointError(f"unknown byteorder record {byteorder!r}")
    data = read_record(zf, pickles[0], zf.getinfo(pickles[0]).file_size)
    unpickler = TorchUnpickler(io.BytesIO(data))
    obj = unpickler.load()
    raws = {}
    for key, storage in unpickler.storages.items():
        code, numel, name = storage.code, storage.numel, f"{prefix}data/{key}"
        if name not in names:
            raise CheckpointError(f"storage {key!r}: no record {name!r} in the zip file")
        nbytes = numel * np.dtype(RAW_DTYPES[code]).itemsize
        raws[key] = _raw(read_record(zf, name, nbytes), code, byteorder)
    return _Materializer(raws)(obj)


__all__: list = ["CheckpointError", "UnsafeCheckpointError", "TorchUnpickler", "load_legacy",
                 "load_zip", "decode", "check_bounds", "RAW_DTYPES", "STORAGE_CODES",
                 "ALLOWED_GLOBALS"]
