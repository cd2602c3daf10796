"""Writing files safely, and hashing them: the one place tinynets writes ``.npz`` files.

``atomic_write`` writes beside the target under a temporary name and renames it over the
target, so a crash never leaves half a file; ``write_npz`` is NumPy's ``.npz`` layout with
no pickles; ``file_digest`` hashes a file in blocks.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import secrets
import zipfile
from typing import Any, BinaryIO, Callable, Mapping, Union

import numpy as np

__all__ = ["atomic_write", "write_npz", "file_digest"]

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[Any], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it over ``path``.

    The temporary file is created with mode 0o666, which the kernel narrows by the umask as
    for any new file; the process umask itself is never read or changed (``os.umask`` can
    only be read by setting it, which would loosen the files other threads create then).
    """
    path = pathlib.Path(path)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"atomic_write: no free temporary name beside '{path}'")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_npz(f: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    """np.savez's layout (one ``<key>.npy`` per array), written without its keyword API so
    that any key, even ``file``, is kept."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for key, a in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as g:
                np.lib.format.write_array(g, a, allow_pickle=False)


def file_digest(path: PathLike, algorithm: str = "sha256") -> str:
    """The file's hex digest (``algorithm``: any hashlib name), read in 1 MB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
