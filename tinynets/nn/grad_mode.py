"""Process-wide switches of the module protocol: grad mode and the random generator.

``no_grad()`` tells every layer to keep no backward cache (inference); the generator
seeded by ``manual_seed`` draws initial weights, dropout masks and stochastic depth.
"""
from __future__ import annotations

import contextlib

import numpy as np

# ----------------------------------------------------------------- grad mode
_GRAD_ENABLED = True


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``."""
    return _GRAD_ENABLED


@contextlib.contextmanager
def no_grad():
    """Inference mode: layers keep no backward caches, as in ``torch.no_grad()``."""
    global _GRAD_ENABLED
    previous, _GRAD_ENABLED = _GRAD_ENABLED, False
    try:
        yield
    finally:
        _GRAD_ENABLED = previous


# ----------------------------------------------------------------- randomness
_RNG = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator used for initialization, dropout and stochastic depth."""
    global _RNG
    _RNG = np.random.default_rng(seed)


def get_rng() -> np.random.Generator:
    return _RNG
