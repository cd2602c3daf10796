"""Threads and fresh processes for ``tinynets.bench``.

:func:`set_threads` gives Numba and numpy's OpenBLAS the same thread count (torch gets it
from ``torch.set_num_threads``). :func:`run_child` runs :func:`memory_child` or
:func:`jit_child` in a fresh ``python -m tinynets.bench.proc KIND ...``, which prints its
result as one ``RESULT {json}`` line.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from .. import runtime
from . import tn_jobs, torch_jobs


# ------------------------------------------------------------------ threads
def _set_blas_threads(n: int) -> int:
    """Set OpenBLAS's thread count through its C API (numpy's BLAS); 0 if not found."""
    for path in runtime.openblas_paths():
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                       "openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(lib, symbol):
                getattr(lib, symbol)(ctypes.c_int(n))
                return n
    return 0


def set_threads(threads: int) -> Dict[str, int]:
    """Numba and BLAS use ``threads`` threads (Numba at most its pool size).

    Returns ``{"numba": n, "blas": n or 0 if numpy's OpenBLAS was not found}``.
    """
    import numba
    n = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return {"numba": n, "blas": _set_blas_threads(threads)}


# ------------------------------------------------------------------ in the child
def _proc_status() -> Dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process in bytes, from /proc/self/status."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _release_free_memory() -> None:
    """Collect garbage and hand the C heap's free pages back to the OS (glibc's
    ``malloc_trim``), so that what the warm-up step freed does not count as in use."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):                 # not glibc
        pass


def _train_step(framework: str, name: str, batch: int, res: int,
                threads: int) -> Tuple[Callable, Callable]:
    """(train step, release): ``release`` drops what a step may leave behind (tinynets'
    layer caches; nothing in torch, which frees its graph in backward)."""
    if framework == "torch":
        tb, why = torch_jobs.load(threads)
        if tb is None or tb.torchvision is None:
            raise RuntimeError(why or "torchvision is not installed")
        return tb.network_closures(name, batch, res)[0], lambda: None
    work = tn_jobs.network_closures(name, batch, res)
    return work.train_step, work.release


def memory_child(framework: str, name: str, batch: int, res: int, threads: int) -> Dict[str, int]:
    """Build the model and data, run a warm-up train step, drop what it may have left
    behind (layer caches) and release free memory, reset the peak RSS (write "5" to
    /proc/self/clear_refs) and run one step.

    Returns, in bytes, the RSS before the step (``rss_before``), the peak RSS (``peak``,
    VmHWM), ``step_peak = peak - rss_before`` and ``held_after``: the RSS after the step
    (free memory released again) minus ``rss_before``: what stays in use until the next step.
    """
    set_threads(threads)
    step, release = _train_step(framework, name, batch, res, threads)
    step()
    release()
    _release_free_memory()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                  # VmHWM := VmRSS
    before = _proc_status()["VmRSS"]
    step()
    _release_free_memory()                            # what remains is in use
    status = _proc_status()
    return {"rss_before": before, "peak": status["VmHWM"], "step_peak": status["VmHWM"] - before,
            "held_after": status["VmRSS"] - before}


def jit_child(framework: str, name: str, batch: int, res: int, threads: int) -> Dict[str, float]:
    """Build the model and run its first train step: the wall-clock time at its end
    (``end``, ``time.time()``) and the step's own duration (``first_step``, seconds).

    tinynets, from a cold cache, runs one-thread twins while its helper compiles the parallel
    builds (``kernels/tiers.py``): then steps go on until all of them are in place (at most
    3 minutes), and ``parallel_end`` is the time at the end of that step, ``steps`` their count."""
    set_threads(threads)
    step, _ = _train_step(framework, name, batch, res, threads)
    start = time.perf_counter()
    step()
    out = {"end": time.time(), "first_step": time.perf_counter() - start}
    if framework == "tinynets":
        from ..kernels import tiers
        steps, deadline = 1, time.monotonic() + 180
        while tiers.pending() and time.monotonic() < deadline:
            step()
            steps += 1
        if not tiers.pending():
            out.update(parallel_end=time.time(), steps=steps)
    return out


# ------------------------------------------------------------------ in the parent
def run_child(kind: str, framework: str, name: str, batch: int, res: int, threads: int,
              env: Optional[Dict[str, str]] = None, timeout: float = 1200) -> Dict[str, float]:
    """Run :func:`memory_child` (``kind="memory"``) or :func:`jit_child` (``"jit"``) in a
    fresh process with ``env`` added to this one's environment.

    Returns the child's result plus, for jit, ``wall``: seconds from just before the spawn
    to the end of the child's first step (and ``parallel_wall`` to ``parallel_end``). Raises
    ``RuntimeError`` if the child fails.
    """
    env = dict(os.environ, **(env or {}))
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "tinynets.bench.proc", kind, "--framework", framework,
           "--model", name, "--batch", str(batch), "--res", str(res), "--threads", str(threads)]
    spawned = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            if "end" in result:
                result["wall"] = result["end"] - spawned
            if "parallel_end" in result:
                result["parallel_wall"] = result["parallel_end"] - spawned
            return result
    raise RuntimeError(f"{kind} child ({framework}, {name}) failed with exit code "
                       f"{proc.returncode}: {proc.stderr.strip()[-400:]}")


def main(argv=None) -> int:
    """``python -m tinynets.bench.proc {memory,jit} [--framework ...]``: one child."""
    p = argparse.ArgumentParser(prog="python -m tinynets.bench.proc")
    p.add_argument("kind", choices=("memory", "jit"))
    p.add_argument("--framework", choices=("tinynets", "torch"), default="tinynets")
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--res", type=int, default=224)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    fn = memory_child if a.kind == "memory" else jit_child
    print("RESULT " + json.dumps(fn(a.framework, a.model, a.batch, a.res, a.threads)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
