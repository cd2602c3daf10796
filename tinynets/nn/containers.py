"""Containers: ``Chain`` (named children run in order), ``Sequential`` and ``Identity``."""
from __future__ import annotations

from typing import Iterator, Union

import numpy as np

from .module import Module, annotate


class Chain(Module):
    """Children run in registration order; backward runs them in reverse.

    The base of ``Sequential`` (children named 0, 1, ...) and of blocks and networks
    whose children have names (``conv_dw``, ``bn1``, ... or ``features``, ``classifier``).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self._modules.values()):
            try:
                dout = layer.backward(dout)
            except Exception as err:
                annotate(err)            # say which layer of the network raised it
                raise
        return dout


class Sequential(Chain):
    """Children named 0, 1, ..., run in order; backward runs them in reverse."""

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __getitem__(self, i: Union[int, slice]) -> Union[Module, "Sequential"]:
        """``seq[i]`` is a child; ``seq[a:b]`` a new ``Sequential`` of those same children
        under their own names (``seq[1:]`` has keys ``1``, ``2``, ...), as in PyTorch."""
        if not isinstance(i, slice):
            return list(self._modules.values())[i]
        part = Sequential()
        for name, child in list(self._modules.items())[i]:
            setattr(part, name, child)
        return part

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Identity(Module):
    """y = x; dx = dout."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout
