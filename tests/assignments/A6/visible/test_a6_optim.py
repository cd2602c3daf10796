"""A6, visible: SGD and Adam steps, replaying PyTorch's training runs.

Each run trains the fixture's small network (conv, BatchNorm, depthwise conv, BatchNorm,
pooling, linear; float64) for 10 steps from PyTorch's initial weights on PyTorch's batches,
with your optimizer and your CrossEntropyLoss (so A6.cross_entropy comes first). Every
loss, every final weight and BatchNorm buffer and the optimizer's state (torch's names:
``momentum_buffer``; ``step``, ``exp_avg``, ``exp_avg_sq``) must match PyTorch to a
relative error below 1e-8.
"""
import pytest

pytestmark = [pytest.mark.A6]


def test_sgd_step_plain_and_nesterov_pytorch(a6):
    """Plain SGD (no state), then Nesterov momentum 0.9 with weight decay 0.01."""
    a6.replay("train/00", "SGD")
    a6.replay("train/02", "SGD")


def test_sgd_step_momentum_dampening_pytorch(a6):
    """Momentum 0.9 with dampening 0.3 and weight decay 0.01 (b starts as the first g)."""
    a6.replay("train/01", "SGD")


def test_adam_step_pytorch(a6):
    """Adam, lr 0.01, torch's defaults otherwise: bias-corrected m and v."""
    a6.replay("train/09", "Adam")


def test_adam_step_decoupled_weight_decay_pytorch(a6):
    """AdamW: weight decay 0.1 shrinks p before the step and never enters m or v."""
    a6.replay("train/11", "AdamW")
