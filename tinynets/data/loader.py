"""Seeded, shuffled, augmented and normalised batches of an ``ImageDataset``."""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np

from .datasets import ImageDataset
from .transforms import Augment, resize_bilinear


class DataLoader:
    """Batches of (float32 NCHW images, int64 labels): shuffled, augmented, normalised.

    Parameters
    ----------
    dataset : ImageDataset
    batch_size : int
    shuffle : bool          a new order every epoch
    drop_last : bool        drop the last, smaller batch
    seed : int              epoch ``e`` shuffles with ``default_rng((seed, e))`` and batch ``b``
                            augments with ``default_rng((seed, e, b))``: any batch of any
                            epoch can be reproduced on its own, which makes resuming exact
    augment : Augment or None
    mean, std : per-channel arrays or None; images become (x - mean) / std
    resolution : int or None  bilinear resize of each batch when the images differ

    ``for x, y in loader`` runs epoch ``loader.epoch`` and counts it; ``batches(epoch, start)``
    gives one epoch from batch ``start`` on.
    """

    def __init__(self, dataset: ImageDataset, batch_size: int = 64, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0, augment: Optional[Augment] = None,
                 mean: Optional[np.ndarray] = None, std: Optional[np.ndarray] = None,
                 resolution: Optional[int] = None):
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), shuffle
        self.drop_last, self.seed, self.augment, self.resolution = drop_last, seed, augment, resolution
        shape = (1, -1, 1, 1)
        self.mean = None if mean is None else np.asarray(mean, np.float32).reshape(shape)
        self.std = None if std is None else np.asarray(std, np.float32).reshape(shape)
        self.epoch = 0

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of ``epoch``, in the order they are served."""
        n = len(self.dataset)
        return np.random.default_rng((self.seed, epoch)).permutation(n) if self.shuffle else np.arange(n)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        order = self.order(epoch)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x, y = self.dataset[idx]
            if self.augment is not None:
                x = self.augment(x, np.random.default_rng((self.seed, epoch, b)))
            if self.resolution is not None:
                x = resize_bilinear(x, self.resolution)
            if self.mean is not None:
                x = (x - self.mean) / self.std
            yield np.ascontiguousarray(x, dtype=np.float32), y

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self.batches(epoch)
