"""Training: the trainer with evaluation, atomic checkpoints and exact resume.

>>> from tinynets.training import TrainConfig, fit
>>> trainer = fit(TrainConfig.for_data("digits", epochs=3))
"""
from .state import load_training_state, save_training_state
from .trainer import DATA_DEFAULTS, TrainConfig, Trainer, build, fit, make_optimizer

__all__ = ["DATA_DEFAULTS", "TrainConfig", "Trainer", "build", "fit", "load_training_state",
           "make_optimizer", "save_training_state"]
