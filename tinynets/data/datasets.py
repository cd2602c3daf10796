"""Image data sets: the embedded digits and CIFAR-10.

**The embedded default: scikit-learn's 8x8 handwritten digits.** 1,797 real scans of the
digits 0-9 (the UCI "optical recognition of handwritten digits" test set, 16 grey levels),
shipped inside the scikit-learn package: no network, no download, a few kilobytes. A
MobileNet trains on it to about 98-99% test accuracy in a few minutes on two cores, so it
is the data set of the lessons and of ``python -m tinynets train --data digits``.
:func:`load_digits` makes it look like a small natural-image set:

* pixels scaled from 0..16 to [0, 1], float32, NCHW;
* upsampled to ``resolution`` (32 by default) by **bilinear** interpolation with half-pixel
  centres (``align_corners=False``, as ``torch.nn.functional.interpolate`` and OpenCV):
  smooth strokes instead of 4x4 blocks (:func:`resize_bilinear`);
* the grey channel repeated to ``in_channels`` (3 by default, what the models expect);
* a fixed **stratified 80/20 split**: in each class, the images are shuffled by
  ``numpy.random.default_rng(seed)`` (seed 0) and ``round(0.2 n_class)`` go to the test
  set, so every class has its share: 1,438 training and 359 test images.

**CIFAR-10** (:func:`load_cifar10`) is read from the official python archive
``cifar-10-python.tar.gz`` (md5 checked), downloaded into ``data_dir`` when missing. Its
batches are pickles: they are read with ``tinynets.io.safe_pickle.SafeUnpickler``, which can build only numpy
arrays, dtypes, lists, dicts, strings and numbers, so a tampered archive cannot run code.

Each data set has its own default augmentation in ``DATASETS`` (flips suit CIFAR's
objects, not digits); ``tinynets.data.DataLoader`` batches them.
"""
from __future__ import annotations

import io
import os
import pathlib
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import numpy as np

from ..io.files import file_digest
from ..io.safe_pickle import safe_load
from .transforms import Augment, resize_bilinear

PathLike = Union[str, os.PathLike]
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FILE = "cifar-10-python.tar.gz"
DEFAULT_DATA_DIR = pathlib.Path.home() / ".cache" / "tinynets"


@dataclass
class ImageDataset:
    """Images (N, C, H, W), uint8 or float32, with integer labels; ``images * scale`` is in [0, 1]."""
    images: np.ndarray
    labels: np.ndarray
    classes: Tuple[str, ...]
    scale: float = 1.0
    name: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> Tuple[np.ndarray, np.ndarray]:
        """Images as float32 in [0, 1] and int64 labels, for an index array or slice."""
        return (self.images[index].astype(np.float32) * np.float32(self.scale),
                self.labels[index].astype(np.int64))

    def channel_stats(self, chunk: int = 4096) -> Tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation (float32) of the [0, 1] images."""
        s = np.zeros(self.images.shape[1]), np.zeros(self.images.shape[1])
        for i in range(0, len(self), chunk):
            x = self[i:i + chunk][0].astype(np.float64)
            s[0][:] += x.sum(axis=(0, 2, 3))
            s[1][:] += (x * x).sum(axis=(0, 2, 3))
        m = self.images[:, 0].size
        mean = s[0] / m
        return mean.astype(np.float32), np.sqrt(np.maximum(s[1] / m - mean ** 2, 1e-12)).astype(np.float32)


# ------------------------------------------------------------------ digits
def stratified_split(labels: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices: per class, shuffle with ``default_rng(seed)`` and
    put the first ``round(test_fraction * n_class)`` in the test set."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[:int(round(test_fraction * len(idx)))])
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test), test


def load_digits(resolution: int = 32, in_channels: int = 3, test_fraction: float = 0.2,
                seed: int = 0) -> Tuple[ImageDataset, ImageDataset]:
    """scikit-learn's digits as (train, test) float32 NCHW sets, see the module docstring."""
    from sklearn.datasets import load_digits as sk_digits

    digits = sk_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None]                # (1797, 1, 8, 8)
    x = np.clip(resize_bilinear(x, resolution), 0.0, 1.0)
    x = np.ascontiguousarray(np.repeat(x, in_channels, axis=1))
    y = digits.target.astype(np.int64)
    train, test = stratified_split(y, test_fraction, seed)
    classes = tuple(str(c) for c in range(10))
    return (ImageDataset(x[train], y[train], classes, name="digits"),
            ImageDataset(x[test], y[test], classes, name="digits"))


# ------------------------------------------------------------------ CIFAR-10
def download_cifar10(data_dir: PathLike, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5) -> pathlib.Path:
    """Fetch the archive into ``data_dir`` (temp file, md5 check, then rename)."""
    data_dir = pathlib.Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / CIFAR10_FILE
    fd, tmp = tempfile.mkstemp(dir=data_dir, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            while block := resp.read(1 << 20):
                out.write(block)
        if md5 and file_digest(tmp, "md5") != md5:
            raise ValueError(f"CIFAR-10: the file downloaded from {url} has md5 {file_digest(tmp, 'md5')}, "
                             f"expected {md5}")
        os.replace(tmp, target)
    except OSError as err:
        raise RuntimeError(
            f"CIFAR-10 is not in {data_dir} and could not be downloaded from {url} ({err}). "
            f"Offline? Fetch {CIFAR10_FILE} (md5 {CIFAR10_MD5}) elsewhere, put it in a folder "
            "and pass that folder as --data-dir (data_dir= in Python).") from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def load_cifar10(data_dir: Optional[PathLike] = None, download: bool = True,
                 md5: Optional[str] = CIFAR10_MD5) -> Tuple[ImageDataset, ImageDataset]:
    """(train, test) CIFAR-10 from ``data_dir/cifar-10-python.tar.gz`` (uint8 images, scale 1/255).

    Downloads the archive when it is missing and ``download`` is true; checks its md5
    (``md5=None`` skips the check); reads the batches from the archive without extracting
    it, through :func:`safe_load`. Default ``data_dir``: ``~/.cache/tinynets``.
    """
    data_dir = pathlib.Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    path = data_dir / CIFAR10_FILE
    if not path.exists():
        if not download:
            raise FileNotFoundError(f"CIFAR-10: {path} not found; download {CIFAR10_URL} "
                                    "into that folder, or pass --data-dir (data_dir=)")
        path = download_cifar10(data_dir)
    if md5 and (got := file_digest(path, "md5")) != md5:
        raise ValueError(f"CIFAR-10: {path} has md5 {got}, expected {md5}: a corrupt or "
                         f"different file; delete it and download {CIFAR10_URL} again")
    with tarfile.open(path, "r:gz") as tar:
        def read(name: str) -> dict:
            member = tar.extractfile(f"cifar-10-batches-py/{name}")
            if member is None:
                raise ValueError(f"CIFAR-10: {path} has no regular file cifar-10-batches-py/{name}")
            return safe_load(io.BytesIO(member.read()))

        classes = tuple(n.decode() for n in read("batches.meta")[b"label_names"])
        sets = []
        for names in ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]):
            batches = [read(n) for n in names]
            x = np.concatenate([np.asarray(b[b"data"], np.uint8) for b in batches])
            y = np.concatenate([np.asarray(b[b"labels"], np.int64) for b in batches])
            sets.append(ImageDataset(x.reshape(-1, 3, 32, 32), y, classes, 1 / 255, "cifar10"))
    return sets[0], sets[1]


DATASETS: Dict[str, dict] = {
    "digits": dict(augment=Augment(crop_padding=2, hflip=False)),  # a flipped 2 is no digit
    "cifar10": dict(augment=Augment(crop_padding=4, hflip=True)),
}


def load_dataset(name: str, resolution: Optional[int] = None,
                 data_dir: Optional[PathLike] = None) -> Tuple[ImageDataset, ImageDataset]:
    """``'digits'`` (at ``resolution``, default 32) or ``'cifar10'`` (32x32; the loader resizes)."""
    if name == "digits":
        return load_digits(resolution or 32)
    if name == "cifar10":
        return load_cifar10(data_dir)
    raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
