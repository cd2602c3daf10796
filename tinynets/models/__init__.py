"""The four model families, built from tinynets.nn.blocks, with torchvision's names and keys.

>>> from tinynets.models import get_model, list_models
>>> model = get_model("mobilenet_v2", num_classes=10)

Every constructor takes ``dtype`` (float32 default) and ``num_classes``; each model has
``forward``/``backward`` for the whole network and a ``default_resolution``.
"""
from __future__ import annotations

from typing import Callable, Dict, List

from ._utils import ImageClassifier, init_weights, make_divisible
from .efficientnet import (EfficientNet, compound_coefficients, compound_scaling_table,
                           efficientnet, efficientnet_b0, efficientnet_b1, efficientnet_b2,
                           efficientnet_b3, efficientnet_b4, efficientnet_b5, efficientnet_b6,
                           efficientnet_b7, efficientnet_lite0, efficientnet_lite1,
                           efficientnet_lite2, efficientnet_lite3, efficientnet_lite4)
from .mobilenet_v1 import MobileNetV1, mobilenet_v1
from .mobilenet_v2 import MobileNetV2, mobilenet_v2
from .mobilenet_v3 import MobileNetV3, mobilenet_v3_large, mobilenet_v3_small

MODELS: Dict[str, Callable[..., ImageClassifier]] = {
    f.__name__: f for f in (
        mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small,
        efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3,
        efficientnet_b4, efficientnet_b5, efficientnet_b6, efficientnet_b7,
        efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, efficientnet_lite3,
        efficientnet_lite4)
}


def list_models() -> List[str]:
    """Names accepted by :func:`get_model`."""
    return list(MODELS)


def get_model(name: str, **kwargs) -> ImageClassifier:
    """Build a model by name, e.g. ``get_model("efficientnet_b0", num_classes=10)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


__all__ = [
    "MODELS", "get_model", "list_models", "make_divisible", "init_weights", "ImageClassifier",
    "MobileNetV1", "MobileNetV2", "MobileNetV3", "EfficientNet", "mobilenet_v1", "mobilenet_v2",
    "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet", "compound_coefficients",
    "compound_scaling_table", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "efficientnet_lite3",
    "efficientnet_lite4",
]
