"""Reading a file whose length fields may lie: never allocate more than the file can hold.

Every size a checkpoint declares (a storage's element count, a zip record's length, an npy
header's shape, a safetensors span) is checked against the bytes actually present before
anything of that size is allocated; these helpers are the one place that reads them.
"""
from __future__ import annotations

import pickle
import reprlib
import struct
import zipfile
from typing import BinaryIO, Iterable

import numpy as np

__all__ = ["CheckpointError", "UnsafeCheckpointError", "BoundedReader", "read_exact",
           "check_zip_directory", "check_zip", "read_record", "short", "MAX_EXPANSION"]

CHUNK = 1 << 20
MAX_EXPANSION = 32 << 20      # compressed zip records may expand to 2 x the file + this
MAX_ZIP_DIRECTORY = 4 << 20   # zipfile keeps ~10 x its central directory in objects


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: unknown format, truncated, inconsistent, or declaring
    more data than it holds."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The pickle asked for a global or an opcode that a tensor checkpoint never needs (it
    could run code or change objects outside the file)."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


def short(obj) -> str:
    """A short repr of something a file made, for error messages: ``repr`` of a huge or
    deeply nested object costs time and memory (and ``f"{obj!r:.80}"`` builds it whole)."""
    try:
        return _REPR.repr(obj)
    except Exception:                        # e.g. an int too long to print
        return f"<a {type(obj).__name__}>"


class BoundedReader:
    """A seekable binary file whose ``read(n)`` never asks for more than the bytes left, so
    a length field of 2**40 in the file costs what the file holds, not 2**40 bytes (an
    ``mmap`` does the same, faster)."""

    def __init__(self, f: BinaryIO):
        self.f = f
        here = f.tell()
        self.end = f.seek(0, 2)
        f.seek(here)

    def __len__(self) -> int:
        return self.end

    def left(self) -> int:
        return self.end - self.f.tell()

    def read(self, n: int = -1) -> bytes:
        left = self.left()
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self, *args) -> bytes:
        return self.f.readline(*args)

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)


def read_exact(f: BinaryIO, nbytes: int, what: str, available: int) -> np.ndarray:
    """``nbytes`` bytes of ``f`` into a new uint8 array (read in 1 MB blocks), after checking
    that the ``available`` bytes hold them: the array is allocated only then."""
    if nbytes > available:
        raise CheckpointError(f"{what}: {nbytes} bytes declared, only {available} in the file "
                              "(truncated?)")
    out = np.empty(nbytes, np.uint8)
    view, done = memoryview(out), 0
    while done < nbytes:
        block = f.read(min(CHUNK, nbytes - done))
        if not block:
            raise CheckpointError(f"{what}: the file ends after {done} of its {nbytes} bytes "
                                  "(truncated?)")
        view[done:done + len(block)] = block
        done += len(block)
    return out


def check_zip_directory(f: BinaryIO, file_size: int) -> None:
    """Before ``zipfile`` parses it: the central directory that the end record (or its zip64
    version) declares is at most :data:`MAX_ZIP_DIRECTORY` bytes (~40,000 records)."""
    f.seek(max(0, file_size - 22 - 65535))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise CheckpointError("a zip file without its end of central directory (truncated?)")
    (size,) = struct.unpack("<I", tail[at + 12:at + 16])
    if at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":         # zip64 locator
        (offset,) = struct.unpack("<Q", tail[at - 12:at - 4])
        f.seek(offset)
        record = f.read(56)
        if len(record) < 56 or record[:4] != b"PK\x06\x06":
            raise CheckpointError("a zip64 file whose end of central directory is corrupt")
        (size,) = struct.unpack("<Q", record[40:48])
    if size > MAX_ZIP_DIRECTORY:
        raise CheckpointError(f"a zip central directory of {size} bytes: tinynets reads up to "
                              f"{MAX_ZIP_DIRECTORY >> 20} MB (about 40,000 records)")


def check_zip(zf: zipfile.ZipFile, names: Iterable[str], file_size: int) -> None:
    """Before reading ``names``: each is stored or deflated (nothing that needs a large
    decompressor), stored ones lie within the file, and all of them together expand to at
    most 2 x ``file_size`` + :data:`MAX_EXPANSION` bytes (no decompression bombs)."""
    total = 0
    for name in names:
        info = zf.getinfo(name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"zip record {name!r} uses compression method "
                                  f"{info.compress_type}; only stored and deflated are read")
        if info.compress_type == zipfile.ZIP_STORED and (
                info.compress_size != info.file_size or info.file_size > file_size):
            raise CheckpointError(f"zip record {name!r} declares {info.file_size} bytes, stored "
                                  f"in {info.compress_size}, in a file of {file_size} (corrupt)")
        total += info.file_size
    if total > 2 * file_size + MAX_EXPANSION:
        raise CheckpointError(f"zip records that expand to {total} bytes from a file of "
                              f"{file_size} bytes: refused (a decompression bomb?)")


def read_record(zf: zipfile.ZipFile, name: str, nbytes: int) -> np.ndarray:
    """The whole record ``name`` (checked by :func:`check_zip`), which must hold exactly
    ``nbytes`` bytes, as a uint8 array; the CRC is checked at its end."""
    size = zf.getinfo(name).file_size
    if size != nbytes:
        raise CheckpointError(f"zip record {name!r} holds {size} bytes, {nbytes} expected")
    with zf.open(name) as f:
        out = read_exact(f, nbytes, f"zip record {name!r}", size)
        if f.read(1):
            raise CheckpointError(f"zip record {name!r} is longer than it declares")
    return out
