"""Optimizers, learning-rate schedules and the weight EMA, with ``torch.optim``'s names.

>>> opt = tinynets.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
>>> sched = tinynets.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
"""
from . import ema, lr_scheduler
from .adam import Adam, AdamW
from .ema import ExponentialMovingAverage
from .optimizer import Optimizer, param_groups_no_decay
from .rmsprop import RMSprop, RMSpropTF
from .sgd import SGD

__all__ = ["Adam", "AdamW", "ExponentialMovingAverage", "Optimizer", "RMSprop", "RMSpropTF",
           "SGD", "ema", "lr_scheduler", "param_groups_no_decay"]
