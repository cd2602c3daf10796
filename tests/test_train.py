"""tinynets.train: optimizers and schedule, safe atomic checkpoints, exact resume, the CLI.

Every run here is tiny (MobileNetV2 at width 0.1 on 16x16 digits, a few batches per
epoch) and nothing is timed.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import tinynets as tn
from tinynets.training import state as train_state, trainer as train
from tinynets.io.checkpoint import TRAIN_FORMAT
from tinynets.models import mobilenet_v2
from tinynets.training import TrainConfig

pytestmark = pytest.mark.task_train


def tiny_config(out=None, **changes) -> TrainConfig:
    base = dict(width_mult=0.1, resolution=16, batch_size=16, max_batches=4, epochs=2,
                eval_batch_size=128, warmup_epochs=0.5)
    return TrainConfig.for_data("digits", out=None if out is None else str(out), **{**base, **changes})


def weights(trainer) -> dict:
    return trainer.model.state_dict()


@pytest.mark.parametrize("name", train.OPTIMIZERS)
def test_every_optimizer_trains_and_bn_gets_no_decay(name):
    model = mobilenet_v2(num_classes=10, width_mult=0.1)
    opt = train.make_optimizer(name, model, lr=0.01, weight_decay=1e-4)
    no_decay, decay = opt.param_groups
    assert no_decay["weight_decay"] == 0 and decay["weight_decay"] == 1e-4
    assert all(p.data.ndim == 1 for p in no_decay["params"])
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    before = model.state_dict()
    loss = tn.CrossEntropyLoss()
    loss(model(x), np.arange(4))
    model.backward(loss.backward())
    opt.step()
    assert any(not np.array_equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="sgd"):
        train.make_optimizer("lbfgs", model, 0.1)


def test_warmup_cosine_schedule():
    model = mobilenet_v2(num_classes=10, width_mult=0.1)
    opt = train.make_optimizer("sgd", model, lr=0.2)
    sched = train.warmup_cosine(opt, total_steps=100, warmup_steps=10)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(100):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[0] == pytest.approx(0.02) and max(lrs) == pytest.approx(0.2)
    assert int(np.argmax(lrs)) == 10 and lrs[100] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))            # cosine: non-increasing


def test_checkpoint_round_trip_loads_without_pickle(tmp_path):
    trainer = train.build(tiny_config(epochs=1, optimizer="adamw"), progress=False, log=lambda s: None)
    trainer.fit()
    path = tmp_path / "ck.npz"
    trainer.save(path)
    with np.load(path, allow_pickle=False) as z:                       # no object arrays inside
        assert all(z[k].dtype != object for k in z.files) and z["meta"].dtype.kind == "U"
    other = train.build(tiny_config(epochs=1, optimizer="adamw", seed=9), progress=False)
    assert any(not np.array_equal(weights(trainer)[k], v) for k, v in weights(other).items())
    other.resume(path)
    for k, v in weights(trainer).items():
        assert np.array_equal(v, weights(other)[k]), k
    a, b = trainer.optimizer.state_dict(), other.optimizer.state_dict()
    assert a["param_groups"] == b["param_groups"] and a["state"].keys() == b["state"].keys()
    for i, s in a["state"].items():
        assert s["step"] == b["state"][i]["step"]
        assert np.array_equal(s["exp_avg"], b["state"][i]["exp_avg"])
    assert trainer.scheduler.state_dict() == other.scheduler.state_dict()
    assert other.history == trainer.history and other.epoch == 1


def test_loading_a_pickled_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"format": TRAIN_FORMAT}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        train.load_training_state(path, mobilenet_v2(num_classes=10, width_mult=0.1))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    trainer = train.build(tiny_config(epochs=1), progress=False, log=lambda s: None)
    path = tmp_path / "checkpoint.npz"
    trainer.save(path)
    good = path.read_bytes()

    def crash(file, arrays):                    # half a file, then the process "dies"
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")
    monkeypatch.setattr(train_state, "write_npz", crash)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(path)
    assert path.read_bytes() == good                                   # the old one intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]   # no temp left


def test_resume_is_exact(tmp_path):
    """2 epochs straight == 1 epoch, a new process-like rebuild, resume, 1 more epoch; and
    the same when stopped in the middle of an epoch (by a real SIGINT)."""
    quiet = dict(progress=False, log=lambda s: None)
    ref = train.build(tiny_config(), **quiet)
    ref.fit()

    first = train.build(tiny_config(tmp_path / "a"), **quiet)
    first.epochs = 1                                    # the 2-epoch schedule, stopped after 1
    first.fit()
    second = train.build(tiny_config(tmp_path / "a"), **quiet)
    second.resume()
    assert second.epoch == 1 and len(second.history) == 1
    second.fit()
    for k, v in weights(ref).items():
        assert np.array_equal(v, weights(second)[k]), k
    assert [h["test_acc"] for h in second.history] == [h["test_acc"] for h in ref.history]

    def interrupt(trainer, loss, acc):                  # Ctrl-C during epoch 2, batch 2
        if trainer.epoch == 1 and trainer.batch == 2:
            os.kill(os.getpid(), signal.SIGINT)
    stopped = train.build(tiny_config(tmp_path / "b"), on_batch=interrupt, **quiet)
    with pytest.raises(KeyboardInterrupt):
        stopped.fit()
    assert (stopped.epoch, stopped.batch) == (1, 2)
    resumed = train.build(tiny_config(tmp_path / "b"), **quiet)
    resumed.resume()
    assert (resumed.epoch, resumed.batch) == (1, 2)
    resumed.fit()
    for k, v in weights(ref).items():
        assert np.array_equal(v, weights(resumed)[k]), k
    assert resumed.history[-1]["train_loss"] == pytest.approx(ref.history[-1]["train_loss"], rel=1e-12)


def test_fit_writes_metrics_and_curves(tmp_path):
    trainer = train.fit(tiny_config(tmp_path, epochs=2), progress=False)
    assert [h["epoch"] for h in trainer.history] == [1, 2]
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {"train_loss", "test_acc", "images_per_s", "lr"} <= set(rows[0])
    assert float(rows[1]["test_acc"]) == trainer.history[1]["test_acc"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0.0 <= trainer.history[-1]["test_acc"] <= 1.0


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tinynets", "train", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_train_and_resume(tmp_path):
    out = tmp_path / "run"
    args = ["--data", "digits", "--width-mult", "0.1", "--resolution", "16", "--batch-size", "16",
            "--max-batches", "3", "--epochs", "1", "--optimizer", "adamw", "--lr", "0.003",
            "--out", str(out), "--no-progress"]
    result = _cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "final test accuracy" in result.stdout and "epoch   1/1" in result.stdout
    assert {p.name for p in out.iterdir()} == {"checkpoint.npz", "metrics.csv", "curves.png"}
    again = _cli("--out", str(out), "--resume", "--no-progress")       # nothing left to do
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resumed" in again.stdout and "final test accuracy" in again.stdout
    bad = _cli("--out", str(tmp_path / "none"), "--resume")
    assert bad.returncode == 2 and "no checkpoint" in bad.stderr


def test_cifar10_pipeline_on_a_tiny_archive(tmp_path, monkeypatch):
    """build() on CIFAR-10 end to end (uint8 images, flips, resizing), on the generated archive;
    only the md5 is faked, since a tiny archive cannot have the real one."""
    from test_data import make_archive
    from tinynets.data import datasets as data

    make_archive(tmp_path, n=8)
    monkeypatch.setattr(data, "file_digest", lambda path, algorithm: data.CIFAR10_MD5)
    config = TrainConfig.for_data("cifar10", data_dir=str(tmp_path), width_mult=0.1, resolution=16,
                                  batch_size=8, epochs=1, max_batches=2)
    trainer = train.build(config, progress=False, log=lambda s: None)
    assert trainer.train_loader.augment.hflip and trainer.train_loader.resolution == 16
    x, y = next(trainer.train_loader.batches(0))
    assert x.shape == (8, 3, 16, 16) and x.dtype == np.float32
    history = trainer.fit()
    assert len(history) == 1 and 0.0 <= history[0]["test_acc"] <= 1.0
