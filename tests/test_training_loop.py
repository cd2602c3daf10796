"""tinynets.training.loop: the plain loop gives exactly what the Trainer gives.

Tiny runs (MobileNetV2 at width 0.1 on 16x16 digits, a few batches); nothing is timed.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinynets as tn
from tinynets.training import TrainConfig, loop, trainer as train

pytestmark = pytest.mark.task_train


def tiny_trainer(seed=0, **changes):
    config = TrainConfig.for_data("digits", width_mult=0.1, resolution=16, batch_size=16,
                                  max_batches=5, epochs=1, eval_batch_size=128,
                                  warmup_epochs=0.4, seed=seed, **changes)
    return train.build(config, progress=False, log=lambda s: None)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_train_epoch_matches_the_trainer_bit_for_bit(optimizer):
    reference = tiny_trainer(optimizer=optimizer)
    reference.fit()
    mine = tiny_trainer(optimizer=optimizer)          # same seed: the same initial weights
    batches = itertools.islice(mine.train_loader.batches(0), mine.steps_per_epoch)
    loss, acc = loop.train_epoch(mine.model, batches, mine.loss, mine.optimizer, mine.scheduler)
    h = reference.history[0]
    assert loss == pytest.approx(h["train_loss"], rel=1e-12) and acc == h["train_acc"]
    for key, value in reference.model.state_dict().items():
        np.testing.assert_array_equal(mine.model.state_dict()[key], value, err_msg=key)
    assert mine.scheduler.get_last_lr() == reference.scheduler.get_last_lr()
    test_loss, test_acc = loop.evaluate(mine.model, mine.test_loader.batches(0))
    assert (test_loss, test_acc) == (h["test_loss"], h["test_acc"])
    assert mine.model.training                         # evaluate puts train mode back


def test_train_epoch_weights_batches_by_size_and_needs_no_scheduler():
    tn.manual_seed(0)
    model = tn.Sequential(tn.Flatten(), tn.Linear(12, 3, dtype=np.float64))
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((n, 3, 2, 2)), rng.integers(0, 3, n)) for n in (5, 2, 7)]
    opt = tn.optim.SGD(model.parameters(), lr=0.0)     # lr 0: every batch sees the same weights
    model.eval()
    loss, acc = loop.train_epoch(model, batches, tn.CrossEntropyLoss(), opt)
    assert model.training
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    with tn.no_grad():
        logits = model(x)
    assert loss == pytest.approx(float(tn.CrossEntropyLoss()(logits, y)), rel=1e-12)
    assert acc == float((logits.argmax(1) == y).mean())
    assert all(not p.grad.any() for p in model.parameters())     # zeroed after the last step
