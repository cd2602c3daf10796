"""Benchmarks: tinynets against PyTorch, layer by layer and network by network.

``python -m tinynets bench`` measures, in float32 and with the same number of threads
for Numba, BLAS and torch (``--threads``, default 2):

layers
    forward and backward (train mode) at batch 16 of depthwise 3x3 and 5x5 at stride 1
    and 2 on 144x56x56, pointwise 24->144 and 144->24 at 56x56, the stem conv 3->32 3x3
    s2 on 3x224x224, BatchNorm + ReLU6 / HardSwish / SiLU and EfficientNet's
    ``SqueezeExcitation(144, 6, SiLU, Sigmoid)`` on 144x56x56;
networks
    mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small and efficientnet_b0: a train
    step at batch 16, 224x224 (forward, cross-entropy, backward; no optimizer) and
    batch-1 inference;
memory
    the peak RSS of one train step, each in a fresh process (``bench.proc.memory_child``);
jit
    the wall time from process start to the end of the first mobilenet_v2 train step,
    with an empty and then the same, filled, Numba cache (``bench.proc.jit_child``);
fold
    inference (batch 1 and 16) of the four networks and efficientnet_lite0 with and
    without BatchNorm folded into the convolutions (``tn.fold_bn``): tinynets only;
together
    mobilenet_v2's batch-1 inference and train step with tinynets and torch in one
    process, in each import order, against each library alone (``together.py``);
profile
    where one train step of each network spends its time, per layer type, beside
    torch's (``layer_profile.py``).

Times are medians after warm-up runs. When ``import torch`` works, the same work runs in
PyTorch and each row gets the ratio tinynets / torch and, where the project sets one, its
goal. Tables go to ``OUT/bench.md`` and the plot to ``OUT/bench.png``. ``--quick``
shrinks every size and leaves out ``jit`` unless asked for (for tests and CI, ~20 s).

This file parses the options and runs the sections; what they measure is in ``cases.py``,
the sections in ``sections.py``, the work itself in ``tn_jobs.py`` (tinynets) and
``torch_jobs.py`` (PyTorch, imported only if present), the fresh processes and thread
settings in ``proc.py``, the tables and plot in ``report.py``.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import tinynets as tn

from . import torch_jobs
from .cases import FULL, MODELS, QUICK, SECTIONS, TARGETS, Config, Row, layer_cases  # noqa: F401
from .proc import set_threads
from .sections import (bench_fold, bench_jit, bench_layers, bench_memory, bench_networks,
                       bench_profile, bench_together)
from .torch_jobs import time_it  # noqa: F401  (the lessons time with it)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=2, help="threads for Numba, BLAS and torch (2)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (~20 s)")
    p.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    p.add_argument("--out", default="assets", help="folder for bench.md and bench.png (assets)")
    p.add_argument("--only", action="append", metavar="SECTION",
                   help=f"run only these: {', '.join(SECTIONS)} (repeatable or comma list)")


def parse_sections(only: Optional[List[str]], quick: bool) -> List[str]:
    """The sections ``--only`` asks for (each value may be a comma list); by default all,
    but ``--quick`` leaves out jit: its cold start compiles every kernel, never quick."""
    if not only:
        return [s for s in SECTIONS if not (quick and s == "jit")]
    chosen = [s.strip() for item in only for s in item.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SECTIONS]
    if bad:
        raise ValueError(f"--only takes {', '.join(SECTIONS)}; got {', '.join(bad)}")
    return list(dict.fromkeys(chosen))


def _kernel_stamps() -> Dict[str, int]:
    """Modification times of tinynets' files with Numba kernels: its cache is keyed on them."""
    jitted = re.compile(r"^\s*@(numba\.)?n?jit\b", re.MULTILINE)
    return {p.name: p.stat().st_mtime_ns for p in Path(tn.__file__).parent.rglob("*.py")
            if jitted.search(p.read_text(encoding="utf-8", errors="ignore"))}


def run(args: argparse.Namespace) -> int:
    """Run the chosen sections, print the tables and write ``bench.md`` and ``bench.png``."""
    from . import report
    try:
        only = parse_sections(args.only, args.quick)
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cfg = QUICK if args.quick else FULL
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    threads = set_threads(args.threads)
    tb, why = (None, "--no-torch given") if args.no_torch else torch_jobs.load(args.threads)
    notes = [f"PyTorch not compared: {why}."] if tb is None else []
    if args.quick and not args.only:
        notes.append("--quick leaves out the JIT section (its cold start compiles every kernel); "
                     "add --only jit to run it.")
    cores = os.cpu_count() or 1
    if load_start > 0.25 * cores:
        notes.append(f"The machine was busy (load average {load_start:.2f} on {cores} cores at the "
                     "start): these times are indicative only.")
    if tb is not None and tb.torchvision is None:
        notes.append("torchvision is not installed: networks, memory and JIT are not run in torch.")

    def log(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    rows: List[Row] = []
    start, stamps = time.perf_counter(), _kernel_stamps()
    sections = {"layers": lambda: bench_layers(cfg, tb, args.threads, log),
                "networks": lambda: bench_networks(cfg, tb, args.threads, log),
                "memory": lambda: bench_memory(cfg, tb, args.threads, log, notes),
                "jit": lambda: bench_jit(cfg, tb, args.threads, log, notes),
                "fold": lambda: bench_fold(cfg, log),
                "together": lambda: bench_together(cfg, tb, args.threads, log, notes),
                "profile": lambda: bench_profile(cfg, tb, args.threads, log, notes)}
    for section in only:
        t0 = time.perf_counter()
        rows += sections[section]()
        log(f"{section}: {time.perf_counter() - t0:.0f} s")
    changed = sorted(k for k, v in _kernel_stamps().items() if stamps.get(k) != v)
    if changed:
        notes.append(f"{', '.join(changed)} (Numba kernels) changed during the run: the processes "
                     "started after the change compiled them afresh, so some of their times (e.g. "
                     "the warm-cache JIT run) include compiling.")
    info = report.machine_info(cfg, args.threads, threads, tb, load_start,
                                      time.perf_counter() - start)
    text = report.write(rows, notes, info, cfg, Path(args.out))
    print(text)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m tinynets.bench [options]``, the same as ``python -m tinynets bench``."""
    p = argparse.ArgumentParser(prog="python -m tinynets bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
