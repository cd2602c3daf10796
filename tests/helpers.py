"""Helpers shared by several test files (imported as ``from helpers import ...``)."""
from __future__ import annotations

import numpy as np


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| / max |ref|: the error relative to the reference's scale, for parity."""
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(a - ref)) / max(float(np.max(np.abs(ref))), 1e-300))
