"""The sections of ``python -m tinynets bench``, one function each: every one returns its
rows (``cases.Row``); ``command.run`` runs those chosen and writes the report."""
from __future__ import annotations

import statistics
import subprocess
import tempfile
from typing import Callable, List

import tinynets as tn

from . import layer_profile, together, tn_jobs, torch_jobs
from .cases import MODELS, TARGETS, Config, Row, _shape, layer_cases
from .proc import run_child
from .torch_jobs import time_it


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
                row.extra["parallel"], row.extra["steps"] = r.get("parallel_wall"), r.get("steps")
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
