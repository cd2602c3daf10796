"""The bench's "together" section: tinynets and PyTorch in one process, in each import order.

A learner compares the two in one notebook, so both must keep their speed there. Each
scenario runs in a fresh ``python .../together.py`` (started by :func:`run`), which
imports the two libraries in the scenario's order, no sooner: run as a script, this file
imports nothing from tinynets until the scenario says so.

=====================  ==========================================================
scenario               the child process
=====================  ==========================================================
tinynets alone         imports tinynets only and times it
torch alone            imports torch only and times it
torch imported first   imports torch, then tinynets; times tinynets, then torch
after torch ran        imports torch and times it, then imports and times tinynets
tinynets first         imports and times tinynets, then imports and times torch
=====================  ==========================================================

Each child times batch-1 inference and a train step of the same network in each library
(medians). The parent runs the scenarios in turn, round after round, so that a change in
the machine's load reaches all of them alike, and takes the median over the rounds.
Without torch only "tinynets alone" runs, and the section says that torch is absent.
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

SCENARIOS = ("tinynets alone", "torch alone", "torch imported first", "after torch ran",
             "tinynets first")
GOALS = {"tinynets": 1.15, "torch": 1.1}        # time in a scenario / time alone, at most


def _time(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def _torch_jobs():
    """``torch_jobs.py`` loaded by its path: importing it as ``tinynets.bench.torch_jobs``
    would import tinynets first."""
    spec = importlib.util.spec_from_file_location("_tinynets_torch_jobs",
                                                  Path(__file__).with_name("torch_jobs.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                 # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def _tinynets(job: dict) -> Dict[str, float]:
    import tinynets
    from tinynets.bench import proc, tn_jobs
    proc.set_threads(job["threads"])
    work = tn_jobs.network_closures(job["model"], job["batch"], job["res"])
    out = {"tinynets inference": _time(work.inference, job["infer_repeats"], job["warmup"]),
           "tinynets train step": _time(work.train_step, job["train_repeats"], 1)}
    out["threading layer"] = tinynets.runtime.threading_layer()
    return out


def _torch(job: dict) -> Dict[str, float]:
    tb, why = _torch_jobs().load(job["threads"])
    if tb is None or tb.torchvision is None:
        raise RuntimeError(why or "torchvision is not installed")
    train, infer = tb.network_closures(job["model"], job["batch"], job["res"])
    return {"torch inference": _time(infer, job["infer_repeats"], job["warmup"]),
            "torch train step": _time(train, job["train_repeats"], 1)}


def child(job: dict) -> Dict[str, float]:
    """The scenario ``job["scenario"]``: the times of whichever library it runs."""
    scenario, out = job["scenario"], {}
    if scenario == "tinynets alone":
        out.update(_tinynets(job))
    elif scenario == "torch alone":
        out.update(_torch(job))
    elif scenario == "torch imported first":
        import torch  # noqa: F401  (imported, not yet run)
        out.update(_tinynets(job))
        out.update(_torch(job))
    elif scenario == "after torch ran":
        out.update(_torch(job))
        out.update(_tinynets(job))
    elif scenario == "tinynets first":
        out.update(_tinynets(job))
        out.update(_torch(job))
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    out["modules"] = sorted(m for m in ("torch", "tinynets") if m in sys.modules)
    return out


def torch_available() -> str:
    """'' when torch and torchvision can be imported (checked in a fresh process, so that
    this one does not import torch), else why not."""
    probe = "import torch, torchvision"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return f"import torch, torchvision failed ({last})"
    return ""


def run_child(job: dict, timeout: float = 1200) -> Dict[str, float]:
    """:func:`child` in a fresh process with this one's environment (tinynets on its path)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, __file__], input=json.dumps(job), capture_output=True,
                          text=True, env=env, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"scenario {job['scenario']!r} failed with exit code "
                           f"{proc.returncode}: {proc.stderr.strip()[-400:]}")
    return json.loads(lines[-1][len("RESULT "):])


def run(model: str, batch: int, res: int, threads: int, rounds: int, infer_repeats: int,
        train_repeats: int, warmup: int, with_torch: bool,
        log: Callable[[str], None] = lambda s: None) -> Dict[str, Dict[str, float]]:
    """Every scenario (only "tinynets alone" without torch), ``rounds`` times in turn.
    Returns per scenario the median of each time over the rounds (seconds), and the
    threading layer that tinynets ran on."""
    scenarios = SCENARIOS if with_torch else SCENARIOS[:1]
    runs: Dict[str, List[dict]] = {s: [] for s in scenarios}
    for r in range(rounds):
        for s in scenarios:
            runs[s].append(run_child(dict(scenario=s, model=model, batch=batch, res=res,
                                          threads=threads, infer_repeats=infer_repeats,
                                          train_repeats=train_repeats, warmup=warmup)))
        log(f"together, round {r + 1} of {rounds}")
    out: Dict[str, Dict[str, float]] = {}
    for s, results in runs.items():
        keys = [k for k, v in results[0].items() if isinstance(v, float)]
        out[s] = {k: statistics.median(res_[k] for res_ in results) for k in keys}
        if "threading layer" in results[0]:
            out[s]["threading layer"] = results[0]["threading layer"]
    return out


def ratio(times: Dict[str, Dict[str, float]], scenario: str, key: str) -> Optional[float]:
    """A scenario's time over the same library's time alone (None if either is missing)."""
    alone = times.get("tinynets alone" if key.startswith("tinynets") else "torch alone", {})
    t, a = times.get(scenario, {}).get(key), alone.get(key)
    return t / a if t and a else None


if __name__ == "__main__":
    sys.path.pop(0)                 # this file's folder: its modules are not top-level ones
    result = child(json.loads(sys.stdin.read()))
    print("RESULT " + json.dumps(result), flush=True)
