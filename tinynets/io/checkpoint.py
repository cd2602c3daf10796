"""Checkpoint files without torch and without running code: load and save state dicts.

>>> from tinynets.io import load_checkpoint, save_checkpoint
>>> state = load_checkpoint("efficientnet-lite0-57934424.pth")    # OrderedDict of arrays
>>> save_checkpoint(model.state_dict(), "lite0.safetensors")

:func:`load_checkpoint` reads, choosing the format by the file's first bytes (not its name):

* PyTorch ``.pth``/``.pt``, both the zip layout (torch >= 1.6) and the legacy one, through
  a restricted unpickler (:mod:`tinynets.io.torch_pickle`): a pickle that asks for any
  global beyond ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
  ``torch._utils._rebuild_parameter`` and the ``torch.<dtype>Storage`` types raises
  :class:`UnsafeCheckpointError` before anything runs. dtypes: float64/32/16, bfloat16
  (returned as float32: NumPy has no bfloat16), int64/32/16/8, uint8, bool.
* ``.safetensors``: an 8-byte little-endian header length, a JSON header
  (``dtype``, ``shape``, ``data_offsets`` per tensor, optional ``__metadata__``), then the
  data, which the tensors must tile exactly (no overlaps, no holes); all of it is checked
  before any data is read.
* ``.npz`` (no pickles: object arrays are refused), including the training checkpoints of
  :mod:`tinynets.training`, whose model state dict is returned. Each record's header
  (shape, dtype) must match the bytes it holds before its array is allocated.

Sizes are checked against the file before anything of that size is allocated
(:mod:`tinynets.io.limits`): zip records must be stored or deflated and may expand to at
most 2 x the file + 32 MB, legacy storage counts and npz shapes must fit in the bytes
present, and tensors may not view more than their storage holds. Reading a file takes time
and memory in proportion to its size (about 2 x its size at the peak).

It returns an ``OrderedDict`` of arrays that own their data, in the file's order. When the
file holds a dict whose values are not all tensors but whose ``state_dict``, ``model`` or
``model_state_dict`` entry (checked in that order) is a dict of tensors, as training
scripts save them, that inner dict is returned.

:func:`save_checkpoint` writes ``.npz`` or ``.safetensors`` (by suffix), atomically.
"""
from __future__ import annotations

import json
import math
import mmap
import os
import pathlib
import struct
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Dict, Mapping, Union

import numpy as np

from .files import atomic_write, write_npz
from .limits import (CheckpointError, UnsafeCheckpointError, check_zip, check_zip_directory,
                     read_exact, short)
from .torch_pickle import RAW_DTYPES, decode, load_legacy, load_zip

__all__ = ["load_checkpoint", "save_checkpoint", "CheckpointError", "UnsafeCheckpointError",
           "TRAIN_FORMAT"]

PathLike = Union[str, os.PathLike]
NESTED_KEYS = ("state_dict", "model", "model_state_dict")
TRAIN_FORMAT = "tinynets-checkpoint-1"        # tinynets.training.state's .npz files
_MAX_HEADER = 100 << 20                       # the safetensors library's own limit
# JSON costs up to ~15 x its size in Python objects: headers of up to 4 MB (~27,000
# tensors) and 65,536 objects and arrays in them keep that under 64 MB
_READ_HEADER, _READ_CONTAINERS = 4 << 20, 1 << 16
_CODES = {np.dtype(v).newbyteorder("<").str: k for k, v in RAW_DTYPES.items() if k != "BF16"}


def load_checkpoint(path: PathLike) -> "OrderedDict[str, np.ndarray]":
    """Read a state dict from a PyTorch, safetensors or npz file (see the module docstring).

    Raises ``FileNotFoundError`` for a missing file, :class:`UnsafeCheckpointError` for a
    pickle that asks for a global or an opcode outside the allowed few (its message names
    it), and :class:`CheckpointError` for anything else wrong with the file: unknown,
    truncated or inconsistent, or declaring more data than it holds. No other exception
    comes out of a file's content (MemoryError, RecursionError, zlib.error, ... included).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: no such file: '{path}'")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    try:
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            obj = _load_zip(path, size)
        elif head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                obj = load_legacy(m)
        elif len(head) >= 9 and head[8:9] == b"{" and 2 <= struct.unpack("<Q", head[:8])[0] <= _MAX_HEADER:
            obj = _load_safetensors(path, size)
        else:
            raise CheckpointError(
                f"load_checkpoint: '{path}' is not a checkpoint format tinynets reads (PyTorch zip "
                f"or legacy pickle, .safetensors, .npz); its {size} bytes start with {head[:8]!r}")
        return _state_dict_of(obj, path)
    except UnsafeCheckpointError as err:
        raise UnsafeCheckpointError(f"load_checkpoint: '{path}': {err}") from None
    except CheckpointError as err:
        if str(err).startswith("load_checkpoint:"):
            raise
        raise CheckpointError(f"load_checkpoint: '{path}': {err}") from None
    except MemoryError:
        raise CheckpointError(f"load_checkpoint: '{path}' declares more data than this process "
                              "can allocate (corrupt?)") from None
    except RecursionError:
        raise CheckpointError(f"load_checkpoint: '{path}' nests its objects too deeply "
                              "(corrupt?)") from None
    except Exception as err:                   # zipfile, zlib, struct, json, pickletools, ...
        raise CheckpointError(f"load_checkpoint: '{path}' is truncated or corrupt "
                              f"({type(err).__name__}: {str(err)[:200]})") from None


def _is_state(obj: Any) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())


def _state_dict_of(obj: Any, path: pathlib.Path) -> "OrderedDict[str, np.ndarray]":
    """The dict of tensors itself, or the one under a ``NESTED_KEYS`` entry."""
    if _is_state(obj):
        return OrderedDict(obj)
    if isinstance(obj, dict):
        for name in NESTED_KEYS:
            if _is_state(obj.get(name)):
                return OrderedDict(obj[name])
        others = [f"{short(k)}" for k, v in obj.items() if not isinstance(v, np.ndarray)][:10]
        raise CheckpointError(
            f"load_checkpoint: '{path}' holds a dict whose entries [{', '.join(others)}] are not "
            f"tensors, and no {'/'.join(NESTED_KEYS)} entry that is a dict of tensors")
    raise CheckpointError(f"load_checkpoint: '{path}' holds a {type(obj).__name__}, "
                          "expected a dict of tensors")


def _load_zip(path: pathlib.Path, size: int) -> Any:
    """A zip file is either a PyTorch checkpoint (``data.pkl``) or an npz (``.npy`` records)."""
    with open(path, "rb") as f:
        check_zip_directory(f, size)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        check_zip(zf, names, size)
        if any(n.endswith("data.pkl") for n in names):
            return load_zip(zf)
        if not names or not all(n.endswith(".npy") for n in names):
            raise CheckpointError(f"a zip file that is neither a PyTorch checkpoint nor an .npz "
                                  f"(records {names[:5]})")
        arrays = OrderedDict((n[:-4], _read_npy(zf, n)) for n in names)
    meta = arrays.get("meta")
    if meta is not None and meta.dtype.kind == "U" and TRAIN_FORMAT in str(meta):
        return OrderedDict((k[6:], v) for k, v in arrays.items() if k.startswith("model/"))
    return arrays


def _read_npy(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """One ``.npy`` record: its header's shape and dtype must match the bytes it holds, and
    are checked before the array is allocated (no object dtypes: they need pickle)."""
    size = zf.getinfo(name).file_size
    with zf.open(name) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise CheckpointError(f"npz record {name!r}: .npy format {version} is not read")
        if dtype.hasobject:
            raise UnsafeCheckpointError(f"npz record {name!r} holds objects: it needs pickle, "
                                        "which is refused")
        nbytes = math.prod(shape) * dtype.itemsize
        left = size - f.tell()
        if nbytes != left:
            raise CheckpointError(
                f"npz record {name!r} declares shape {shape} of {dtype} ({nbytes} bytes) but "
                f"holds {left} bytes of data ({'truncated' if left < nbytes else 'corrupt'})")
        data = read_exact(f, nbytes, f"npz record {name!r}", left).view(dtype)
    return data.reshape(shape[::-1]).T if fortran else data.reshape(shape)


def _load_safetensors(path: pathlib.Path, size: int) -> "OrderedDict[str, np.ndarray]":
    """Header first; every entry and the tiling of the data checked; only then any data."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if 8 + n > size:
            raise CheckpointError(f"safetensors header of {n} bytes, but only {size - 8} follow "
                                  "the length (truncated?)")
        if n > _READ_HEADER:
            raise CheckpointError(f"safetensors header of {n} bytes: tinynets reads headers of "
                                  f"up to {_READ_HEADER >> 20} MB (about 27,000 tensors)")
        text = f.read(n)
        if text.count(b"{") + text.count(b"[") > _READ_CONTAINERS:
            raise CheckpointError(f"safetensors header with more than {_READ_CONTAINERS} JSON "
                                  "objects and arrays: refused")
        try:
            header = json.loads(text.decode("utf-8"), object_pairs_hook=OrderedDict)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"safetensors header is not JSON ({err})") from None
        if not isinstance(header, dict):
            raise CheckpointError("safetensors header is not a JSON object")
        body = size - 8 - n
        entries = [(name,) + _safetensors_entry(name, info, body)
                   for name, info in header.items() if name != "__metadata__"]
        position = 0
        for begin, end, name in sorted((e[3], e[4], e[0]) for e in entries):
            if begin != position:
                raise CheckpointError(f"safetensors entry {name!r} starts at {begin}, expected "
                                      f"{position}: tensors overlap or leave a hole")
            position = end
        if position != body:
            raise CheckpointError(f"safetensors data has {body - position} bytes after the "
                                  "last tensor")
        out: "OrderedDict[str, np.ndarray]" = OrderedDict()
        for name, code, shape, begin, end in entries:
            f.seek(8 + n + begin)
            raw = read_exact(f, end - begin, f"safetensors entry {name!r}", body - begin)
            out[name] = decode(raw.view(RAW_DTYPES[code]).reshape(shape), code)
    return out


def _safetensors_entry(name: str, info: Any, body: int) -> tuple:
    """(code, shape, begin, end) of one header entry, checked against the ``body`` bytes."""
    try:
        code, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise CheckpointError(f"safetensors entry {short(name)}: needs dtype, shape and "
                              f"data_offsets [begin, end], got {short(info)}") from None
    if code not in RAW_DTYPES:
        raise CheckpointError(f"safetensors entry {short(name)}: dtype {short(code)} is not "
                              f"supported ({', '.join(RAW_DTYPES)})")
    if not all(type(d) is int and d >= 0 for d in shape + (begin, end)):
        raise CheckpointError(f"safetensors entry {short(name)}: shape {short(list(shape))} and "
                              f"offsets {short([begin, end])} must be ints >= 0")
    if end - begin != math.prod(shape) * np.dtype(RAW_DTYPES[code]).itemsize or end > body:
        raise CheckpointError(
            f"safetensors entry {short(name)}: offsets [{begin}, {end}] do not hold shape "
            f"{short(list(shape))} of {code} within the {body} data bytes (truncated?)")
    return code, shape, begin, end


# ------------------------------------------------------------------ writing
def _checked(state: Mapping[str, Any]) -> "OrderedDict[str, np.ndarray]":
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for key, value in state.items():
        a = np.asarray(value)
        a = a if a.flags.c_contiguous else a.copy(order="C")   # (ascontiguousarray makes 0-d 1-d)
        if not isinstance(key, str) or not key:
            raise ValueError(f"save_checkpoint: keys must be non-empty strings, got {key!r}")
        if a.dtype.newbyteorder("<").str not in _CODES:
            raise ValueError(f"save_checkpoint: '{key}' has dtype {a.dtype}; supported: "
                             "float64/32/16, int64/32/16/8, uint8, bool")
        out[key] = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return out


def _write_safetensors(f: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    header: Dict[str, Any] = OrderedDict()
    position = 0
    for key, a in arrays.items():
        header[key] = {"dtype": _CODES[a.dtype.str], "shape": list(a.shape),
                       "data_offsets": [position, position + a.nbytes]}
        position += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)           # the data starts 8-byte aligned
    f.write(struct.pack("<Q", len(text)) + text)
    for a in arrays.values():
        f.write(a.tobytes())


def save_checkpoint(state: Mapping[str, Any], path: PathLike) -> None:
    """Write ``state`` (name -> array, order kept) to ``path``: ``.npz`` or ``.safetensors``.

    The file is written beside ``path`` under a temporary name and renamed over it
    (``os.replace``), so a crash never leaves half a file. float64/32/16, int64/32/16/8,
    uint8 and bool arrays; scalars become 0-d arrays.
    """
    path = pathlib.Path(path)
    writers = {".npz": write_npz, ".safetensors": _write_safetensors}
    writer = writers.get(path.suffix.lower())
    if writer is None:
        raise ValueError(f"save_checkpoint: '{path}' must end in .npz or .safetensors")
    arrays = _checked(state)
    atomic_write(path, lambda f: writer(f, arrays))
