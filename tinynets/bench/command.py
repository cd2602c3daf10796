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

This file runs the sections; the work itself is in ``tn_jobs.py`` (tinynets) and
``torch_jobs.py`` (PyTorch, imported only if present), the fresh processes and thread
settings in ``bench.proc.py``, the tables and plot in ``report.py``.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import tinynets as tn

from . import layer_profile, together, tn_jobs, torch_jobs
from .proc import run_child, set_threads
from .torch_jobs import time_it

SECTIONS = ("layers", "networks", "memory", "jit", "fold", "together", "profile")
MODELS = ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0")
# the goals for tinynets / torch: (comparison, limit)
TARGETS = {"depthwise": ("<", 1.0), "stem and SE": ("≤", 1.0), "train step": ("≤", 0.85),
           "inference": ("≤", 0.85), "memory": ("≤", 0.8)}


@dataclass(frozen=True)
class Config:
    """Sizes and repeat counts. ``FULL`` is the issue's; ``QUICK`` is a smoke test."""
    name: str
    batch: int          # layers, train steps, memory, jit
    hw: int             # H = W of the 144- and 24-channel layer inputs
    stem_hw: int        # H = W of the stem conv's input
    res: int            # network input resolution
    warmup: int         # warm-up runs of layers and inference (train steps: 1)
    layer_repeats: int
    train_repeats: int
    infer_repeats: int


FULL = Config("full", 16, 56, 224, 224, warmup=2, layer_repeats=5, train_repeats=3, infer_repeats=10)
QUICK = Config("quick", 2, 16, 32, 64, warmup=1, layer_repeats=2, train_repeats=1, infer_repeats=2)


@dataclass
class Row:
    """One measurement: tinynets' value (seconds, or bytes for memory) and torch's."""
    section: str
    name: str
    step: str
    shape: str
    tn: Optional[float]
    torch: Optional[float] = None
    flops: Optional[float] = None                   # FLOPs of the measured work
    target: Optional[Tuple[str, float]] = None      # e.g. ("≤", 1.5)
    extra: Dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> Optional[float]:
        return self.tn / self.torch if self.tn and self.torch else None

    @property
    def met(self) -> Optional[bool]:
        if self.target is None or self.ratio is None:
            return None
        op, limit = self.target
        return self.ratio < limit if op == "<" else self.ratio <= limit


# ------------------------------------------------------------------ timing


def layer_cases(cfg: Config) -> List[Tuple[str, str, dict, Tuple[int, ...]]]:
    """(label, kind, spec, input shape) of every layer benchmark."""
    B, H = cfg.batch, cfg.hw
    x144, x24 = (B, 144, H, H), (B, 24, H, H)

    def conv(cin, cout, k, s, groups):
        return dict(cin=cin, cout=cout, k=k, s=s, groups=groups)

    cases = [(f"depthwise {k}x{k} s{s}", "conv", conv(144, 144, k, s, 144), x144)
             for k in (3, 5) for s in (1, 2)]
    cases += [("pointwise expand 24→144", "conv", conv(24, 144, 1, 1, 1), x24),
              ("pointwise project 144→24", "conv", conv(144, 24, 1, 1, 1), x144),
              ("stem conv 3→32 3x3 s2", "conv", conv(3, 32, 3, 2, 1), (B, 3, cfg.stem_hw, cfg.stem_hw))]
    cases += [(f"BN + {act}", "bnact", dict(C=144, act=act), x144) for act in ("ReLU6", "HardSwish", "SiLU")]
    cases.append(("SE 144→6→144 (SiLU, Sigmoid)", "se", dict(C=144, S=6), x144))
    return cases


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def bench_layers(cfg: Config, tb, threads: int, log: Callable[[str], None]) -> List[Row]:
    """Forward and backward of every layer case; backward counts 2x forward FLOPs.
    torch's side runs afterwards in a fresh process (``torch_jobs.run_in_child``)."""
    rows: List[Row] = []
    jobs: List[dict] = []
    for label, kind, spec, shape in layer_cases(cfg):
        layer = tn_jobs.layer(kind, spec)
        flops = tn.count_flops(layer, shape[1:]) * shape[0]
        target = (TARGETS["depthwise"] if label.startswith("depthwise") else
                  TARGETS["stem and SE"] if label.startswith(("stem", "SE")) else None)
        if getattr(layer, "fused", False):
            label += " (fused)"
        pair = [Row("layers", label, step, _shape(shape), None, flops=m * flops, target=target)
                for step, m in (("fwd", 1), ("bwd", 2))]
        fwd, bwd = tn_jobs.layer_closures(layer, shape)
        pair[0].tn = time_it(fwd, cfg.layer_repeats, cfg.warmup).median
        pair[1].tn = time_it(bwd, cfg.layer_repeats, cfg.warmup, setup=fwd).median
        rows += pair
        jobs.append(dict(type="layer", kind=kind, spec=spec, shape=list(shape),
                         repeats=cfg.layer_repeats, warmup=cfg.warmup))
        log(f"{label}: " + ", ".join(f"{r.step} {r.tn * 1e3:.2f} ms" for r in pair))
    if tb is not None:
        times = torch_jobs.run_in_child(jobs, threads)
        for k, (fwd, bwd) in enumerate(times):
            rows[2 * k].torch, rows[2 * k + 1].torch = fwd, bwd
        log("torch layers: " + ", ".join(f"{r.torch * 1e3:.2f}" for r in rows) + " ms")
    return rows


def bench_networks(cfg: Config, tb, threads: int, log: Callable[[str], None]) -> List[Row]:
    """Train step (3x forward FLOPs) and batch-1 inference of each model."""
    rows = []
    B, R = cfg.batch, cfg.res
    for name in MODELS:
        train, infer, flops, _ = tn_jobs.network_closures(name, B, R)
        pair = [Row("networks", name, "train step", _shape((B, 3, R, R)),
                    time_it(train, cfg.train_repeats, 1).median, flops=3 * flops * B,
                    target=TARGETS["train step"]),
                Row("networks", name, "inference", _shape((1, 3, R, R)),
                    time_it(infer, cfg.infer_repeats, cfg.warmup).median, flops=flops,
                    target=TARGETS["inference"])]
        del train, infer
        rows += pair
        log(f"{name}: train step {pair[0].tn:.3f} s, inference {pair[1].tn * 1e3:.1f} ms")
    if tb is not None and tb.torchvision is not None:
        jobs = [dict(type="network", name=name, batch=B, res=R, train_repeats=cfg.train_repeats,
                     infer_repeats=cfg.infer_repeats, warmup=cfg.warmup) for name in MODELS]
        for k, (train, infer) in enumerate(torch_jobs.run_in_child(jobs, threads)):
            rows[2 * k].torch, rows[2 * k + 1].torch = train, infer
    return rows


def bench_fold(cfg: Config, log: Callable[[str], None]) -> List[Row]:
    """Inference with and without BatchNorm folded (``tn.fold_bn``), batch 1 and ``cfg.batch``:
    tinynets against itself, timed in alternation so that both see the same load."""
    rows = []
    for name in MODELS + ("efficientnet_lite0",):
        for B in (1, cfg.batch):
            plain, folded = tn_jobs.fold_closures(name, B, cfg.res)
            repeats = cfg.infer_repeats if B == 1 else cfg.train_repeats
            time_it(plain, 0, cfg.warmup), time_it(folded, 0, cfg.warmup)
            pairs = [(time_it(plain, 1, 0).median, time_it(folded, 1, 0).median)
                     for _ in range(repeats)]
            t_plain, t_folded = (statistics.median(t) for t in zip(*pairs))
            rows.append(Row("fold", name, f"inference b{B}", _shape((B, 3, cfg.res, cfg.res)),
                            t_folded, extra={"unfolded": t_plain}))
            log(f"{name} b{B}: {t_plain * 1e3:.1f} ms unfolded, {t_folded * 1e3:.1f} ms folded")
    return rows


def bench_memory(cfg: Config, tb, threads: int, log, notes: List[str]) -> List[Row]:
    """Peak memory of one train step per model, tinynets and torch each in own process."""
    rows = []
    for name in MODELS:
        row = Row("memory", name, "train step", _shape((cfg.batch, 3, cfg.res, cfg.res)), None,
                  target=TARGETS["memory"])
        for fw in ("tinynets", "torch") if tb is not None and tb.torchvision is not None else ("tinynets",):
            try:
                r = run_child("memory", fw, name, cfg.batch, cfg.res, threads)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
                notes.append(f"memory, {name}, {fw}: {err}")
                continue
            setattr(row, "tn" if fw == "tinynets" else "torch", r["step_peak"])
            row.extra[f"{fw}_peak"], row.extra[f"{fw}_held"] = r["peak"], r["held_after"]
        rows.append(row)
        log(f"{name}: peak memory of a train step {(row.tn or 0) / 2**20:.0f} MiB")
    return rows


def bench_jit(cfg: Config, tb, threads: int, log, notes: List[str]) -> List[Row]:
    """Process start to the end of the first mobilenet_v2 train step, cold and warm cache;
    torch's (no JIT) once, as the reference of both rows."""
    shape = _shape((cfg.batch, 3, cfg.res, cfg.res))
    args = ("mobilenet_v2", cfg.batch, cfg.res, threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinynets-numba-cache-") as cache:
        for step in ("cold cache", "warm cache"):
            row = Row("jit", "mobilenet_v2 first train step", step, shape, None)
            try:
                r = run_child("jit", "tinynets", *args, env={"NUMBA_CACHE_DIR": cache})
                row.tn, row.extra["first_step"] = r["wall"], r["first_step"]
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
                notes.append(f"jit, {step}: {err}")
            rows.append(row)
            log(f"JIT, {step}: {row.tn or float('nan'):.1f} s from process start")
    if tb is not None and tb.torchvision is not None:
        try:
            r = run_child("jit", "torch", *args)
            for row in rows:
                row.torch, row.extra["torch_first_step"] = r["wall"], r["first_step"]
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
            notes.append(f"jit, torch: {err}")
    return rows


def bench_together(cfg: Config, tb, threads: int, log, notes: List[str]) -> List[Row]:
    """tinynets and torch in one process, in each import order (``together.py``): a row per
    scenario and workload, with each library's time there and alone."""
    why = "--no-torch given" if tb is None else together.torch_available()
    if why:
        notes.append(f"Together: torch is absent ({why}); only tinynets alone was timed.")
    rounds = 1 if cfg.name == "quick" else 3
    times = together.run("mobilenet_v2", cfg.batch, cfg.res, threads, rounds, cfg.infer_repeats,
                         cfg.train_repeats, cfg.warmup, with_torch=not why, log=log)
    rows = []
    for scenario, t in times.items():
        for work, step, shape in (("inference", "inference b1", (1, 3, cfg.res, cfg.res)),
                                  ("train step", "train step", (cfg.batch, 3, cfg.res, cfg.res))):
            rows.append(Row("together", scenario, step, _shape(shape),
                            t.get(f"tinynets {work}"), torch=t.get(f"torch {work}"),
                            extra={"tn_ratio": together.ratio(times, scenario, f"tinynets {work}"),
                                   "torch_ratio": together.ratio(times, scenario, f"torch {work}"),
                                   "layer": t.get("threading layer")}))
    return rows


def bench_profile(cfg: Config, tb, threads: int, log, notes: List[str]) -> List[Row]:
    """Per layer type, the time of one train step of each model (``layer_profile.py``): tinynets
    here, torch in its own process."""
    B, R, steps = cfg.batch, cfg.res, cfg.train_repeats
    shape = _shape((B, 3, R, R))
    mine = {name: layer_profile.tinynets_profile(name, B, R, steps) for name in MODELS}
    theirs = {}
    if tb is not None and tb.torchvision is not None:
        jobs = [dict(type="profile", name=name, batch=B, res=R, steps=steps) for name in MODELS]
        try:
            theirs = dict(zip(MODELS, torch_jobs.run_in_child(jobs, threads)))
        except RuntimeError as err:
            notes.append(f"profile, torch: {err}")
    rows = []
    for name in MODELS:
        t_tn, t_torch = mine[name], theirs.get(name)
        for kind, a, b in layer_profile.rows_for(name, t_tn, t_torch):
            rows.append(Row("profile", name, kind, shape, a, torch=b,
                            extra={"tn_share": a / t_tn["step"],
                                   "torch_share": b / t_torch["step"] if b is not None else None}))
        log(f"profile {name}: step {t_tn['step']:.3f} s")
    return rows


# ------------------------------------------------------------------ command line
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
