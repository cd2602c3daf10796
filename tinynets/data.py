"""Image datasets, batching, augmentation and normalisation, in NumPy.

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
batches are pickles: they are read with :class:`SafeUnpickler`, which can build only numpy
arrays, dtypes, lists, dicts, strings and numbers, so a tampered archive cannot run code.

:class:`DataLoader` gives seeded, shuffled batches with :class:`Augment` (random crop with
padding, horizontal flip: flips suit CIFAR's objects, not digits, so each data set has its
own default in ``DATASETS``) and per-channel normalisation.
"""
from __future__ import annotations

import hashlib
import io
import os
import pathlib
import pickle
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple, Union

import numpy as np

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


# ------------------------------------------------------------------ resizing
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


def md5sum(path: PathLike, algorithm: str = "md5") -> str:
    """The file's hex digest (``algorithm``: any hashlib name), read in 1 MB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        if md5 and md5sum(tmp) != md5:
            raise ValueError(f"CIFAR-10: the file downloaded from {url} has md5 {md5sum(tmp)}, "
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
    if md5 and (got := md5sum(path)) != md5:
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


# ------------------------------------------------------------------ augmentation, loading
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
