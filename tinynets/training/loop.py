"""The training loop in its plainest form: one epoch of batches, and an evaluation.

:class:`tinynets.training.Trainer` runs the same steps with a progress bar, checkpoints,
exact resume and per-epoch metrics; these two functions are the algorithm alone::

    for epoch in range(epochs):
        train_loss, train_acc = train_epoch(model, loader.batches(epoch), loss_fn, opt, sched)
        test_loss, test_acc = evaluate(model, test_loader.batches(0))
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import numpy as np

from ..nn.grad_mode import no_grad
from ..nn.loss import CrossEntropyLoss
from ..nn.module import Module

Batches = Iterable[Tuple[np.ndarray, np.ndarray]]


def train_epoch(model: Module, batches: Batches, loss_fn: CrossEntropyLoss, optimizer,
                scheduler=None) -> Tuple[float, float]:
    """Train ``model`` for one pass over ``batches``; return (mean loss, accuracy).

    Parameters
    ----------
    model : Module; put it in train mode (``model.train()``) before the first batch
    batches : iterable of (x, y), images (B, C, H, W) and integer labels (B,), e.g.
        ``DataLoader.batches(epoch)``; B may differ between batches
    loss_fn : a loss such as ``CrossEntropyLoss``: ``loss_fn(logits, y)`` returns the
        batch's mean loss and ``loss_fn.backward()`` its gradient with respect to the logits
    optimizer : ``step()`` updates the parameters from their ``.grad``, ``zero_grad()``
        sets every ``.grad`` to 0 (backward adds to it, so each batch must start from 0;
        a new model's gradients are 0)
    scheduler : or None; ``scheduler.step()`` once per batch, after ``optimizer.step()``

    Per batch: logits = model(x) (B, K); loss = loss_fn(logits, y);
    ``model.backward(loss_fn.backward())`` (fills every ``param.grad``); then
    ``optimizer.step()``, ``scheduler.step()``, ``optimizer.zero_grad()``.

    Returns
    -------
    (mean_loss, accuracy) : Python floats over all images of the epoch: the batch losses
        weighted by B, sum(B * loss) / sum(B), and the share of images whose largest logit
        is at their label, counted before the batch's update.
    """
    ### BEGIN SOLUTION A6.train_loop
    model.train()
    total, correct, seen = 0.0, 0, 0
    for x, y in batches:
        logits = model(x)
        loss = float(loss_fn(logits, y))
        model.backward(loss_fn.backward())
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad()
        total += loss * len(y)
        correct += int((logits.argmax(axis=1) == y).sum())
        seen += len(y)
    return total / seen, correct / seen
    ### END SOLUTION


def evaluate(model: Module, batches: Batches) -> Tuple[float, float]:
    """(mean cross-entropy without smoothing, accuracy) of ``model`` in eval mode, under
    ``no_grad`` (no caches kept); the model is back in train mode afterwards."""
    loss_fn = CrossEntropyLoss()
    total, correct, n = 0.0, 0, 0
    model.eval()
    with no_grad():
        for x, y in batches:
            logits = model(x)
            total += float(loss_fn(logits, y)) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
    model.train()
    return total / n, correct / n
