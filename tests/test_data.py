"""tinynets.data: the embedded digits, the CIFAR-10 reader (offline, on a tiny archive it
writes), the safe unpickler, the loader's seeds and the augmentations."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

from tinynets.data import datasets as data
from tinynets.data import Augment, DataLoader, ImageDataset

pytestmark = pytest.mark.task_data


# ------------------------------------------------------------------ digits
def test_digits_shapes_dtypes_and_range():
    train, test = data.load_digits()
    assert train.images.shape == (1438, 3, 32, 32) and test.images.shape == (359, 3, 32, 32)
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int64
    assert train.images.flags.c_contiguous
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0 and train.images.max() > 0.9
    assert np.array_equal(train.images[:, 0], train.images[:, 2])        # grey, repeated
    one, _ = data.load_digits(resolution=16, in_channels=1)
    assert one.images.shape == (1438, 1, 16, 16)


def test_digits_are_deterministic_and_the_split_is_stratified():
    a_train, a_test = data.load_digits()
    b_train, b_test = data.load_digits()
    assert np.array_equal(a_train.images, b_train.images) and np.array_equal(a_test.labels, b_test.labels)
    from sklearn.datasets import load_digits
    y = load_digits().target
    tr, te = data.stratified_split(y, 0.2, seed=0)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(y) == 1797
    for c in range(10):                                  # each class: round(20%) in test
        assert (y[te] == c).sum() == round(0.2 * (y == c).sum())
    assert np.array_equal(np.bincount(a_test.labels), np.bincount(y[te]))
    tr1, te1 = data.stratified_split(y, 0.2, seed=1)
    assert not np.array_equal(te, te1)


def test_resize_bilinear_half_pixel_centres():
    x = np.array([[[[0.0, 1.0]]]], dtype=np.float32).repeat(2, axis=2)     # (1, 1, 2, 2)
    up = data.resize_bilinear(x, 4)
    assert up.dtype == np.float32 and up.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(up[0, 0, 0], [0.0, 0.25, 0.75, 1.0], atol=1e-7)
    const = np.full((2, 3, 8, 8), 0.7, np.float32)
    np.testing.assert_allclose(data.resize_bilinear(const, 13), 0.7, atol=1e-6)
    y = np.random.default_rng(0).random((1, 1, 8, 8))   # downsampling by 2 averages 2x2 blocks
    np.testing.assert_allclose(data.resize_bilinear(y, 4), y.reshape(1, 1, 4, 2, 4, 2).mean((3, 5)))


# ------------------------------------------------------------------ CIFAR-10
NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _pickle_batch(x: np.ndarray, y: np.ndarray, label: str) -> bytes:
    return pickle.dumps({b"batch_label": label.encode(), b"labels": [int(v) for v in y],
                         b"data": x.reshape(len(x), -1),
                         b"filenames": [f"img_{i}.png".encode() for i in range(len(x))]}, protocol=2)


def make_archive(folder, n: int = 4, replace: dict = None) -> tuple:
    """cifar-10-python.tar.gz in the real layout with ``n`` images per batch; returns the
    path and the (train, test) images and labels it holds."""
    rng = np.random.default_rng(7)
    members, arrays = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        arrays[name] = (x, y)
        members[name] = _pickle_batch(x, y, name)
    members["batches.meta"] = pickle.dumps({b"num_cases_per_batch": n, b"num_vis": 3072,
                                            b"label_names": [s.encode() for s in NAMES]}, protocol=2)
    members.update(replace or {})
    path = folder / data.CIFAR10_FILE
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    train = [arrays[f"data_batch_{i}"] for i in range(1, 6)]
    return path, (np.concatenate([a for a, _ in train]), np.concatenate([b for _, b in train])), arrays["test_batch"]


def test_cifar_reader_on_a_tiny_archive(tmp_path):
    path, (x_train, y_train), (x_test, y_test) = make_archive(tmp_path)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    assert data.file_digest(path, "md5") == md5
    train, test = data.load_cifar10(tmp_path, download=False, md5=md5)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert np.array_equal(train.images, x_train) and np.array_equal(train.labels, y_train)
    assert np.array_equal(test.images, x_test) and np.array_equal(test.labels, y_test)
    assert train.classes == NAMES
    xb, yb = train[np.arange(3)]
    assert xb.dtype == np.float32 and np.allclose(xb, x_train[:3] / 255.0)


def test_cifar_bad_checksum_is_refused(tmp_path):
    make_archive(tmp_path)
    with pytest.raises(ValueError, match="md5"):
        data.load_cifar10(tmp_path, download=False)                    # the real md5
    assert data.CIFAR10_MD5 == "c58f30108f718f92721af3b95e74349a"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps({b"data": _Evil(marker), b"labels": [0]}, protocol=2)
    path, _, _ = make_archive(tmp_path, replace={"data_batch_1": blob})
    with pytest.raises(pickle.UnpicklingError, match="system"):
        data.load_cifar10(tmp_path, download=False, md5=None)
    assert not marker.exists()
    for payload in (pickle.dumps(eval, protocol=2), pickle.dumps(np.ma.masked_array([1]), protocol=2)):
        with pytest.raises(pickle.UnpicklingError):
            data.safe_load(io.BytesIO(payload))
    assert not marker.exists()
    # the real thing still loads: arrays, dtypes, bytes through _codecs.encode, lists
    ok = data.safe_load(io.BytesIO(_pickle_batch(np.zeros((1, 3, 32, 32), np.uint8), [3], "b")))
    assert ok[b"labels"] == [3] and ok[b"data"].shape == (1, 3072) and ok[b"batch_label"] == b"b"


def test_offline_download_says_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(RuntimeError, match="--data-dir") as err:
        data.load_cifar10(tmp_path / "empty")
    assert data.CIFAR10_URL in str(err.value)
    assert [p.name for p in (tmp_path / "empty").iterdir()] == []     # no partial file left
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        data.load_cifar10(tmp_path / "empty", download=False)


# ------------------------------------------------------------------ loader
def _toy(n=50):
    x = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 4, 4), np.float32)
    return ImageDataset(x, np.arange(n) % 10, tuple("0123456789"))


def test_loader_batches_shuffling_and_seeds():
    ds = _toy(50)
    loader = DataLoader(ds, batch_size=16, shuffle=True, seed=3)
    assert len(loader) == 4 and len(DataLoader(ds, 16, drop_last=True)) == 3
    epoch0 = list(loader)
    assert [len(y) for _, y in epoch0] == [16, 16, 16, 2]
    seen = np.concatenate([x[:, 0, 0, 0] for x, _ in epoch0]).astype(int)
    assert sorted(seen) == list(range(50)) and list(seen) != list(range(50))
    for x, y in epoch0:                                   # labels travel with their images
        assert np.array_equal(x[:, 0, 0, 0].astype(int) % 10, y) and x.dtype == np.float32
    epoch1 = list(loader)
    assert loader.epoch == 2 and not np.array_equal(epoch0[0][1], epoch1[0][1])
    again = DataLoader(ds, batch_size=16, shuffle=True, seed=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(epoch0, again))
    other = DataLoader(ds, batch_size=16, shuffle=True, seed=4)
    assert not np.array_equal(next(iter(other))[1], epoch0[0][1])
    plain = DataLoader(ds, batch_size=16, drop_last=True)
    assert np.array_equal(np.concatenate([y for _, y in plain]), np.arange(48) % 10)


def test_resuming_mid_epoch_gives_the_same_batches():
    train, _ = data.load_digits(resolution=16)
    loader = DataLoader(train, 32, shuffle=True, seed=5, augment=Augment(2, True))
    full = list(loader.batches(3))
    tail = list(loader.batches(3, start=20))
    assert len(tail) == len(full) - 20
    for (xa, ya), (xb, yb) in zip(full[20:], tail):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


def test_augment_crop_is_a_shift_and_flip_a_mirror():
    rng = np.random.default_rng(0)
    x = rng.random((64, 3, 8, 8)).astype(np.float32) + 1.0           # no zeros inside
    p = 2
    out = Augment(crop_padding=p)(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    shifts = set()
    for i in range(len(x)):
        match = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                 if np.array_equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert match, f"image {i} is not a crop of the padded image"
        shifts.add(match[0])
    assert len(shifts) > 10                                            # many offsets drawn
    flipped = Augment(hflip=True)(x, np.random.default_rng(2))
    is_flip = np.array([np.array_equal(f, a[..., ::-1]) for f, a in zip(flipped, x)])
    is_same = np.array([np.array_equal(f, a) for f, a in zip(flipped, x)])
    assert np.all(is_flip | is_same) and 10 < is_flip.sum() < 54
    assert np.array_equal(Augment()(x, rng), x)
    assert not data.DATASETS["digits"]["augment"].hflip and data.DATASETS["cifar10"]["augment"].hflip


def test_normalisation_gives_zero_mean_unit_std():
    train, _ = data.load_digits(resolution=16)
    mean, std = train.channel_stats()
    assert mean.shape == (3,) and mean.dtype == np.float32
    x = np.concatenate([x for x, _ in DataLoader(train, 200, mean=mean, std=std)])
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-4)
    big = DataLoader(train, 8, resolution=24)
    assert next(iter(big))[0].shape == (8, 3, 24, 24)
