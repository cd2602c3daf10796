"""``python -m tinynets classify [IMAGE] [--model efficientnet_lite0] [--topk 5]``.

Classifies a photo with real ImageNet weights, in NumPy: ``--model`` is
efficientnet_lite0 (the default), efficientnet_lite1 or efficientnet_lite2. The default
image is the sample photo that matplotlib ships (``grace_hopper.jpg``); with each of
the three its top class is 'military uniform'.

Preprocessing (``tinynets.data.imaging.preprocess``, the weights' own settings from
``tinynets.models.pretrained.WEIGHTS``): read with Pillow and converted to RGB, the whole
image resized to R x R, the model's resolution (224, 240 or 260; bicubic; ``--crop``
keeps the aspect ratio and cuts the centre instead), scaled by (x - 127) / 128 to about
[-1, 1], laid out as (1, 3, R, R) float32. ``--fold`` folds BatchNorm into the
convolutions first (``tinynets.fold_bn``).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..nn.loss import log_softmax

__all__ = ["add_arguments", "run", "softmax"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="?", default=None,
                   help="an image file (JPEG, PNG, ...); default: matplotlib's grace_hopper.jpg")
    p.add_argument("--model", default="efficientnet_lite0",
                   help="a model with pretrained weights: efficientnet_lite0 (default), "
                        "efficientnet_lite1 or efficientnet_lite2")
    p.add_argument("--topk", type=int, default=5, help="how many classes to print (5)")
    p.add_argument("--crop", action="store_true",
                   help="keep the aspect ratio: shorter side to the model's resolution, "
                        "centre crop")
    p.add_argument("--fold", action="store_true", help="fold BatchNorm into the convs first")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits (N, K), in float64: exp of ``loss.log_softmax``."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64)))


def run(args: argparse.Namespace) -> int:
    from .. import models, nn
    from ..data import imaging
    from ..models.pretrained import WEIGHTS
    from .fold import fold_bn

    if args.model not in WEIGHTS:
        print(f"error: no pretrained weights for {args.model!r}; available: {', '.join(WEIGHTS)}",
              file=sys.stderr)
        return 2
    if not 1 <= args.topk <= 1000:
        print(f"error: --topk must be between 1 and 1000, got {args.topk}", file=sys.stderr)
        return 2
    try:
        path = args.image if args.image is not None else imaging.default_image_path()
        image = imaging.load_image(path)
        names = imaging.imagenet_classes()
        settings = {**WEIGHTS[args.model].preprocess, "crop": args.crop}
        x = imaging.preprocess(image, **settings)                  # (1, 3, R, R)
        model = models.get_model(args.model, pretrained=True)
    except (ModuleNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.fold:
        model = fold_bn(model)
    size = settings["size"]
    how = f"centre crop {size} x {size}" if args.crop else f"resized to {size} x {size}"
    print(f"image: {path} ({image.shape[1]} x {image.shape[0]} RGB), {how} (bicubic), "
          f"(x - {settings['mean'][0]:g}) / {settings['std'][0]:g}")
    print(f"model: {args.model}, {nn.count_params(model):,} parameters, ImageNet weights"
          f"{', BatchNorm folded' if args.fold else ''}")
    with nn.no_grad():
        start = time.perf_counter()
        logits = model(x)                                          # (1, 1000)
        ms = (time.perf_counter() - start) * 1e3
    p = softmax(logits)[0]
    top = np.argsort(-p, kind="stable")[:args.topk]
    print(f"forward: {ms:.0f} ms (the first call includes Numba's start-up)\n")
    for rank, i in enumerate(top, 1):
        print(f"{rank:>2}. {names[i]:<28} {100 * p[i]:6.2f} %   (class {i})")
    return 0
