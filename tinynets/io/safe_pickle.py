"""A restricted unpickler for data archives: it builds only plain NumPy arrays and builtins.

CIFAR-10's python batches are pickles. Unpickling calls whatever global a pickle names,
so a tampered archive could run code; ``SafeUnpickler.find_class`` resolves only the few
globals such a batch needs and refuses every other one before anything is called.
"""
from __future__ import annotations

import pickle

import numpy as np

__all__ = ["SafeUnpickler", "safe_load"]


def _reconstruct(cls, shape, dtype):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"SafeUnpickler: refuses to build a {cls!r}")
    return np.ndarray(shape, dtype=np.dtype(dtype))


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"SafeUnpickler: refuses codec {encoding!r}")
    return text.encode("latin-1")


class SafeUnpickler(pickle.Unpickler):
    """Loads only what CIFAR's batch dicts hold: numpy arrays (``_reconstruct``, ``ndarray``,
    ``dtype``), bytes written by protocol 2 (``_codecs.encode`` with latin-1) and builtins.

    Any other global (``os.system``, ``builtins.eval``, ...) raises ``UnpicklingError``
    before it is called: ``find_class`` is the only way a pickle reaches a callable.
    """
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): _latin1_encode}

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"SafeUnpickler: refuses global {module}.{name}: "
                                         "not a plain CIFAR batch") from None


def safe_load(f) -> dict:
    """Unpickle one CIFAR batch with :class:`SafeUnpickler` (``encoding='bytes'``, as the
    archive's Python 2 pickles need); the result must be a dict with no object arrays."""
    d = SafeUnpickler(f, encoding="bytes").load()
    if not isinstance(d, dict) or any(isinstance(v, np.ndarray) and v.dtype.hasobject
                                      for v in d.values()):
        raise pickle.UnpicklingError("SafeUnpickler: a CIFAR batch is a dict of plain arrays")
    return d
