"""``python -m tinynets train``: the command line of the trainer."""
from __future__ import annotations

import argparse
import sys
import time

from ..data import DATASETS
from .trainer import DATA_DEFAULTS, OPTIMIZERS, TrainConfig, fit


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``train`` subcommand's options; None means the data set's default (DATA_DEFAULTS)."""
    p.description = ("Train with per-epoch evaluation, atomic checkpoints (--resume continues exactly), "
                     "metrics.csv and curves.png in --out. Unset options take the data set's defaults: "
                     + "; ".join(f"{name}: " + ", ".join(f"{k}={v}" for k, v in d.items())
                                 for name, d in DATA_DEFAULTS.items())
                     + "; and momentum=0.9, label_smoothing=0.1, warmup_epochs=1, seed=0.")
    p.add_argument("--data", default="digits", choices=list(DATASETS))
    p.add_argument("--model", default=None, help="mobilenet_v2 (default), mobilenet_v3_small, ...")
    p.add_argument("--width-mult", type=float, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--optimizer", default=None, choices=OPTIMIZERS)
    p.add_argument("--momentum", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--warmup-epochs", type=float, default=None)
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-batches", type=int, default=None, help="cap on batches per epoch")
    p.add_argument("--out", default=None, help="output folder (default runs/DATA_MODEL)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in OUT/checkpoint.npz, with its saved settings")
    p.add_argument("--data-dir", default=None,
                   help="folder holding cifar-10-python.tar.gz (default ~/.cache/tinynets)")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def run(args: argparse.Namespace) -> int:
    keys = ("model", "width_mult", "epochs", "batch_size", "lr", "optimizer", "momentum",
            "weight_decay", "label_smoothing", "warmup_epochs", "resolution", "augment", "seed",
            "max_batches", "data_dir")
    try:
        config = TrainConfig.for_data(args.data, **{k: getattr(args, k) for k in keys})
        config.out = args.out or f"runs/{config.data}_{config.model}"
        start = time.perf_counter()
        trainer = fit(config, resume=args.resume, progress=args.progress)
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130
    except (RuntimeError, ValueError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    h = trainer.history[-1]
    print(f"final test accuracy {h['test_acc']:.2%} ({h['test_acc'] * len(trainer.test_loader.dataset):.0f}/"
          f"{len(trainer.test_loader.dataset)}), {time.perf_counter() - start:.0f} s; "
          f"{trainer.out}/checkpoint.npz, metrics.csv, curves.png")
    return 0
