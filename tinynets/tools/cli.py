"""Command line: ``python -m tinynets <command>``.

gradcheck   check every layer's backward against finite differences (float64)
summary     per-layer table of a model's params, MACs and FLOPs
bench       time layers and networks (against PyTorch when installed): assets/bench.md, .png
train       train a model (default: MobileNetV2 on the embedded digits), with checkpoints
classify    name the objects in a photo with real ImageNet weights (EfficientNet-Lite0)
assign      (teachers) write a student version with blanks and a grader bundle
grade       (teachers) grade a submission, or a folder of them, with a grader bundle
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Callable, List, Tuple

import numpy as np

from .. import nn as tn
from .gradcheck import gradcheck

TOLERANCE = 1e-7


def _layer_catalog() -> List[Tuple[str, Callable[[], tn.Module], Tuple[int, ...]]]:
    """(label, constructor, input shape): one small case per layer and mode."""

    def bn(train: bool):
        def make():
            layer = tn.BatchNorm2d(4)
            layer.weight.data[:] = [0.5, 1.0, 1.5, 2.0]
            layer.running_var[:] = [0.5, 1.0, 1.5, 2.0]
            return layer.train(train)
        return make

    return [
        ("Conv2d 3x3 s2 (im2col)", lambda: tn.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 9, 9)),
        ("Conv2d 3x3 grouped", lambda: tn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 7, 6)),
        ("Conv2d 5x5 s2 depthwise", lambda: tn.Conv2d(4, 4, 5, stride=2, padding=2, groups=4), (2, 4, 9, 8)),
        ("Conv2d 3x3 s2 depthwise TF SAME", lambda: tn.Conv2d(4, 4, 3, 2, "tf_same", groups=4), (2, 4, 8, 8)),
        ("Conv2d 1x1 (pointwise)", lambda: tn.Conv2d(6, 5, 1), (2, 6, 5, 5)),
        ("Linear", lambda: tn.Linear(6, 4), (3, 6)),
        ("BatchNorm2d train", bn(True), (3, 4, 5, 5)),
        ("BatchNorm2d eval", bn(False), (3, 4, 5, 5)),
        ("ReLU", tn.ReLU, (2, 3, 4, 4)),
        ("ReLU6", tn.ReLU6, (2, 3, 4, 4)),
        ("Sigmoid", tn.Sigmoid, (2, 3, 4, 4)),
        ("HardSigmoid", tn.HardSigmoid, (2, 3, 4, 4)),
        ("SiLU", tn.SiLU, (2, 3, 4, 4)),
        ("HardSwish", tn.HardSwish, (2, 3, 4, 4)),
        ("GlobalAvgPool2d", tn.GlobalAvgPool2d, (2, 3, 4, 4)),
        ("Dropout(0.3) train", lambda: tn.Dropout(0.3), (4, 6)),
    ]


def cmd_gradcheck(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    tn.manual_seed(args.seed)
    print(f"Gradient check, float64, fourth-order central differences, CS231n relative error "
          f"(pass < {TOLERANCE:.0e})\n")
    print(f"{'layer':<30} {'input shape':<16} {'worst error':>12}  result")
    worst, failed = 0.0, 0
    start = time.perf_counter()
    for label, make, shape in _layer_catalog():
        layer = make().astype(np.float64)
        x = rng.uniform(-7, 7, shape)          # spans every kink: 0, +-3, 6 ...
        for kink in (-3.0, 0.0, 3.0, 6.0):     # ... but stays > 2h from them
            x[np.abs(x - kink) < 0.01] += 0.02
        errors = gradcheck(layer, x, seed=args.seed)
        err = max(errors.values())
        worst = max(worst, err)
        ok = err < TOLERANCE
        failed += not ok
        print(f"{label:<30} {str(shape):<16} {err:>12.2e}  {'pass' if ok else 'FAIL'}")
    print(f"\nworst relative error {worst:.2e} over {len(_layer_catalog())} layers "
          f"in {time.perf_counter() - start:.1f} s; {failed} failed")
    return 1 if failed else 0


def cmd_summary(args: argparse.Namespace) -> int:
    from .. import models

    kwargs = {}
    if args.width_mult is not None:
        kwargs["width_mult"] = args.width_mult
    try:
        model = models.get_model(args.model, **kwargs)
    except (KeyError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    resolution = args.resolution or getattr(model, "default_resolution", 224)
    print(model.summary((3, resolution, resolution)))
    return 0


# Each subcommand's module is imported only when that subcommand runs (or shows its help):
# the bench harness, the trainer and Pillow stay out of the other commands.
COMMANDS = {
    "bench": ("tinynets.bench.command", "time layers, networks, memory and JIT cost (vs PyTorch)"),
    "train": ("tinynets.training.command", "train a model on digits (embedded) or CIFAR-10, resumable"),
    "classify": ("tinynets.tools.classify", "top-k ImageNet classes of a photo (pretrained weights)"),
    "assign": ("tinynets.teach.assign", "student version and grader bundle of the assignments"),
    "grade": ("tinynets.teach.grade", "grade a submission (or a folder of them) with a grader bundle"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m tinynets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("gradcheck", help="check every layer's backward against finite differences")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gradcheck)
    p = sub.add_parser("summary", help="per-layer params / MACs / FLOPs table of a model")
    p.add_argument("model", help="e.g. mobilenet_v2, mobilenet_v3_large, efficientnet_b0")
    p.add_argument("--width-mult", type=float, default=None)
    p.add_argument("--resolution", type=int, default=None)
    p.set_defaults(func=cmd_summary)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        if name != chosen:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
