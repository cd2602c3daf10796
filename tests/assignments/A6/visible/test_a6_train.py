"""A6, visible: your training loop trains a tiny MobileNet on the digits.

Everything in the run is yours: ``loop.train_epoch`` drives your ``SGD`` (Nesterov
momentum 0.9, weight decay 5e-4 but not on BatchNorm and biases), the warm-up + cosine
schedule made of your ``LinearLR`` and ``CosineAnnealingLR``, and your
``CrossEntropyLoss`` (label smoothing 0.1). Three epochs on the 1,438 training digits at
32x32, seed 0, batch 32; the reference solution reaches about 97% test accuracy, and the
test asks for 85%. The library's own ``Trainer`` may not run. Most of the time goes to
Numba compiling the convolution kernels on their first call.
"""
import numpy as np
import pytest

import tinynets as tn
from tinynets import data, optim
from tinynets.models import init_weights
from tinynets.training import loop, trainer

pytestmark = [pytest.mark.A6]

EPOCHS = 3
ACCURACY = 0.85


def tiny_mobilenet():
    """Lesson 07's tiny MobileNet: a stride-2 stem, four inverted residuals, a classifier."""
    model = tn.Sequential(
        tn.Conv2dNormActivation(3, 16, 3, stride=2),
        tn.InvertedResidual(16, 24, stride=2, expand_ratio=4),
        tn.InvertedResidual(24, 24, stride=1, expand_ratio=4),
        tn.InvertedResidual(24, 48, stride=2, expand_ratio=4),
        tn.InvertedResidual(48, 48, stride=1, expand_ratio=4),
        tn.GlobalAvgPool2d(), tn.Flatten(), tn.Linear(48, 10))
    init_weights(model, linear="normal")
    return model


def _counting(calls, name, method):
    def counted(*args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        return method(*args, **kwargs)
    return counted


def test_train_loop_tiny_mobilenet_digits(no_trainer):
    train_set, test_set = data.load_digits(resolution=32)
    mean, std = train_set.channel_stats()
    loader = data.DataLoader(train_set, batch_size=32, shuffle=True, drop_last=True, seed=0,
                             augment=data.DATASETS["digits"]["augment"], mean=mean, std=std)
    tn.manual_seed(0)
    model = tiny_mobilenet()
    steps = len(loader)
    opt = optim.SGD(optim.param_groups_no_decay(model, 5e-4), lr=0.1, momentum=0.9,
                    nesterov=True)
    sched = trainer.warmup_cosine(opt, total_steps=EPOCHS * steps, warmup_steps=steps // 2)
    loss_fn = tn.CrossEntropyLoss(label_smoothing=0.1)
    calls, batch_losses = {}, []
    forward = loss_fn.forward

    def recorded_forward(logits, y):
        loss = forward(logits, y)
        batch_losses.append((float(loss), len(y)))
        return loss

    opt.step = _counting(calls, "optimizer.step", opt.step)
    opt.zero_grad = _counting(calls, "optimizer.zero_grad", opt.zero_grad)
    sched.step = _counting(calls, "scheduler.step", sched.step)
    loss_fn.forward = _counting(calls, "loss_fn", recorded_forward)
    history = []
    for epoch in range(EPOCHS):
        batch_losses.clear()
        result = loop.train_epoch(model, loader.batches(epoch), loss_fn, opt, sched)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise AssertionError(f"train_epoch should return (mean loss, accuracy), got {result!r}")
        weighted = sum(l * n for l, n in batch_losses) / max(1, sum(n for _, n in batch_losses))
        if not abs(float(result[0]) - weighted) <= 1e-6 * abs(weighted):
            raise AssertionError(f"epoch {epoch + 1}: train_epoch returned mean loss {result[0]}, "
                                 f"but its batches' losses weighted by size average {weighted:.6f}")
        history.append(result)
    want = EPOCHS * steps
    for name in ("loss_fn", "optimizer.step", "scheduler.step"):
        if calls.get(name, 0) != want:
            raise AssertionError(f"{EPOCHS} epochs of {steps} batches: {name} should run {want} "
                                 f"times (once per batch), it ran {calls.get(name, 0)} times")
    if calls.get("optimizer.zero_grad", 0) < want - 1:
        raise AssertionError(f"optimizer.zero_grad ran {calls.get('optimizer.zero_grad', 0)} times "
                             f"in {want} batches; backward adds to .grad, so every batch needs it")
    if not history[-1][0] < history[0][0]:
        raise AssertionError(f"the mean training loss should fall from epoch 1 to epoch {EPOCHS}, "
                             f"got {[round(float(h[0]), 4) for h in history]}")
    model.eval()
    xt, yt = next(data.DataLoader(test_set, len(test_set), mean=mean, std=std).batches(0))
    with tn.no_grad():
        predicted = np.concatenate([model(xt[i:i + 128]) for i in range(0, len(xt), 128)]).argmax(1)
    accuracy = float((predicted == yt).mean())
    if not accuracy >= ACCURACY:
        raise AssertionError(f"test accuracy after {EPOCHS} epochs should be at least "
                             f"{ACCURACY:.0%} (the reference reaches about 97%), got {accuracy:.2%}; "
                             f"mean training loss per epoch {[round(float(h[0]), 4) for h in history]}")
