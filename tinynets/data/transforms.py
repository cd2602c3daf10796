"""Transforms on (N, C, H, W) batches: bilinear resizing and random crops and flips."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: source position (i + 0.5) n_in / n_out - 0.5, clamped."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = src - i0
    a = np.zeros((n_out, n_in))
    np.add.at(a, (np.arange(n_out), i0), 1 - w)
    np.add.at(a, (np.arange(n_out), i1), w)
    return a


def resize_bilinear(x: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, C, H, W) to (N, C, size, size) by separable bilinear interpolation
    (half-pixel centres, ``align_corners=False``); keeps the dtype."""
    if x.shape[2:] == (size, size):
        return x
    ah, aw = _bilinear_matrix(x.shape[2], size), _bilinear_matrix(x.shape[3], size)
    out = np.einsum("oh,nchw,pw->ncop", ah.astype(x.dtype), x, aw.astype(x.dtype), optimize=True)
    return np.ascontiguousarray(out, dtype=x.dtype)


@dataclass(frozen=True)
class Augment:
    """Random crop after zero padding by ``crop_padding`` pixels, and horizontal flips with
    probability 1/2 (``hflip``); each image draws its own from ``rng``."""
    crop_padding: int = 0
    hflip: bool = False

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, _, h, w = x.shape
        p = self.crop_padding
        if p > 0:
            padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            dy, dx = rng.integers(0, 2 * p + 1, size=(2, n))
            x = np.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
        if self.hflip:
            flip = rng.random(n) < 0.5
            x = x.copy() if p == 0 else x
            x[flip] = x[flip, :, :, ::-1]
        return x
