"""``Parameter``: a trainable array ``data`` and the gradient ``grad`` that backward fills."""
from __future__ import annotations

from typing import Tuple

import numpy as np


class Parameter:
    """A trainable array ``data`` and its accumulated gradient ``grad`` (same shape and
    dtype: assigning ``data`` an array of another dtype casts ``grad``, of another shape
    gives a new zero ``grad``)."""

    def __init__(self, data: np.ndarray):
        self._data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self._data)

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.shape != self._data.shape:
            self.grad = np.zeros(value.shape, value.dtype)
        elif value.dtype != self._data.dtype:
            self.grad = self.grad.astype(value.dtype)
        self._data = value

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
