"""Tables and plot of ``tinynets.bench``: ``bench.md`` (machine info, one markdown table
per section, the conventions) and ``bench.png`` (ratio to PyTorch per row)."""
from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

MiB = 2 ** 20


def machine_info(cfg, threads: int, threads_set: Dict[str, int], tb, load_start: float,
                 seconds: float) -> Dict[str, str]:
    """CPU, cores, versions, threads, date and load: the header of ``bench.md``."""
    import numba
    from .. import runtime
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        layer = numba.threading_layer()
    except ValueError:                    # no parallel kernel has run yet
        layer = "not started"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    blas = threads_set["blas"] or "default (OpenBLAS not found)"
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "CPU": cpu,
        "logical cores": str(os.cpu_count()),
        "threads": f"{threads}: Numba {threads_set['numba']} ({layer} layer), BLAS {blas}"
                   + (f", torch {threads}" if tb is not None else ""),
        "process-wide settings": "; ".join(f"{k}: {v}" for k, v in runtime.STATE.items()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": tb.versions["torch"] if tb is not None else "not compared",
        "torchvision": tb.versions["torchvision"] if tb is not None else "not compared",
        "mode": f"{cfg.name} (batch {cfg.batch}, networks at {cfg.res}x{cfg.res})",
        "load average (1 min), start / end": f"{load_start:.2f} / {load:.2f}",
        "bench wall time": f"{seconds:.0f} s",
    }
    return info


# ------------------------------------------------------------------ formatting
def _ms(s: Optional[float]) -> str:
    if s is None:
        return "—"
    ms = s * 1e3
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def _mib(b: Optional[float]) -> str:
    return "—" if b is None else f"{b / MiB:,.0f}"


def _sec(s: Optional[float]) -> str:
    return "—" if s is None else f"{s:.1f}"


def _in_place(row) -> str:
    """When a cold start's last parallel build took over, and after how many train steps."""
    t, steps = row.extra.get("parallel"), row.extra.get("steps")
    return "—" if t is None else f"{t:.1f} ({steps})"


def _gflops(row) -> str:
    return "—" if row.tn is None or not row.flops else f"{row.flops / row.tn / 1e9:.2f}"


def _ratio(row) -> str:
    return "—" if row.ratio is None else f"{row.ratio:.2f}×"


def _pct(x: Optional[float]) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def _times(x: Optional[float]) -> str:
    return "—" if x is None else f"{x:.2f}×"


def _target(row) -> str:
    return "" if row.target is None else f"{row.target[0]} {row.target[1]:g}×"


def _met(row) -> str:
    if row.target is None:
        return ""
    return {True: "met", False: "**not met**", None: "n/a"}[row.met]


def _table(head: Sequence[str], body: List[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


SECTION_TABLES: Dict[str, tuple] = {
    "layers": ("Layers: forward and backward, train mode, float32",
               ("layer", "input", "pass", "tinynets ms", "GFLOP/s", "torch ms", "ratio", "target", "met"),
               lambda r: (r.name, r.shape, r.step, _ms(r.tn), _gflops(r), _ms(r.torch), _ratio(r),
                          _target(r), _met(r))),
    "networks": ("Networks: train step (forward, loss, backward) and batch-1 inference",
                 ("model", "step", "input", "tinynets ms", "GFLOP/s", "torch ms", "ratio", "target", "met"),
                 lambda r: (r.name, r.step, r.shape, _ms(r.tn), _gflops(r), _ms(r.torch), _ratio(r),
                            _target(r), _met(r))),
    "memory": ("Peak memory of one train step (fresh process each)",
               ("model", "input", "tinynets step peak MiB", "abs. peak", "held after",
                "torch step peak MiB", "abs. peak", "held after", "ratio (step peak)", "target",
                "met"),
               lambda r: (r.name, r.shape, _mib(r.tn), _mib(r.extra.get("tinynets_peak")),
                          _mib(r.extra.get("tinynets_held")), _mib(r.torch),
                          _mib(r.extra.get("torch_peak")), _mib(r.extra.get("torch_held")),
                          _ratio(r), _target(r), _met(r))),
    "jit": ("JIT cost: process start to the end of the first train step",
            ("run", "Numba cache", "input", "tinynets s", "of which the step s",
             "parallel builds in place s (steps)", "torch s", "of which the step s", "ratio"),
            lambda r: (r.name, r.step, r.shape, _sec(r.tn), _sec(r.extra.get("first_step")),
                       _in_place(r), _sec(r.torch), _sec(r.extra.get("torch_first_step")),
                       _ratio(r))),
    "together": ("Together: tinynets and PyTorch in one process, against each alone",
                 ("scenario", "work", "input", "tinynets ms", "tinynets ×", "goal", "torch ms",
                  "torch ×", "goal"),
                 lambda r: (r.name, r.step, r.shape, _ms(r.tn), _times(r.extra.get("tn_ratio")),
                            "≤ 1.15×", _ms(r.torch), _times(r.extra.get("torch_ratio")),
                            "≤ 1.1×")),
    "profile": ("Where a train step's time goes, per layer type",
                ("model", "layer type", "input", "tinynets ms", "share", "torch ms", "share",
                 "ratio"),
                lambda r: (r.name, r.step, r.shape, _ms(r.tn), _pct(r.extra.get("tn_share")),
                           _ms(r.torch), _pct(r.extra.get("torch_share")), _ratio(r))),
    "fold": ("BatchNorm folding: inference with every BN folded into its conv (`fold_bn`)",
             ("model", "step", "input", "unfolded ms", "folded ms", "speed-up"),
             lambda r: (r.name, r.step, r.shape, _ms(r.extra.get("unfolded")), _ms(r.tn),
                        f"{r.extra['unfolded'] / r.tn:.2f}×" if r.tn else "—")),
}


def conventions(cfg) -> List[str]:
    """The footer: how every number was obtained."""
    return [
        f"Times: wall clock, median of {cfg.layer_repeats} runs after {cfg.warmup} warm-up runs "
        f"(layers), {cfg.train_repeats} after 1 (train steps), {cfg.infer_repeats} after "
        f"{cfg.warmup} (inference). ratio = tinynets / torch: below 1× tinynets is faster (smaller).",
        "GFLOP/s = FLOPs / tinynets time, FLOPs from the layers' own counts (`count_flops` per "
        "image × batch; conventions in `tinynets/nn/counting.py`: conv and linear 2 per MAC, BN 2 per "
        "value, activations 1–5 per value). Forward counts forward FLOPs; backward 2× and a train "
        "step 3× forward FLOPs, the usual convention for conv/linear, applied to whole rows "
        "(nominal for the BN, activation and SE rows).",
        "Train steps: `model.train()`, forward, `CrossEntropyLoss` forward and backward, "
        "`model.backward` (no optimizer; gradients accumulate). Neither computes dL/dimages: "
        "torch's images do not require grad, and tinynets' models have `image_grad = False`. "
        "Inference: `model.eval()` under `no_grad()`, batch 1. torch networks: "
        "`torchvision.models.<name>(weights=None)`.",
        "Layer rows run in train mode in both; torch's forward builds the autograd graph, its "
        "backward is `torch.autograd.grad` w.r.t. the input and every parameter; each timed "
        "backward follows an untimed forward. '(fused)': "
        "tinynets runs BN and the activation as one kernel, as its networks do; torch runs two.",
        "Memory (MiB): each train step in a fresh process: build model and data, one warm-up "
        "step; drop any layer cache it left, `gc.collect()` and glibc's `malloc_trim(0)`, so "
        "both start from parameters, gradients and data; reset the peak RSS "
        "(write 5 to /proc/self/clear_refs); one step. step peak = VmHWM − VmRSS before the step "
        "(activations, gradients, temporaries); abs. peak = VmHWM (libraries included); held "
        "after = VmRSS after the step (free memory released again) − VmRSS before it: what "
        "stays in use until the next step. The ratio "
        "and the target use the step peak.",
        "JIT: wall time from just before spawning a fresh process to the end of its first "
        "train step (interpreter start, imports, model build, step): cold = empty NUMBA_CACHE_DIR "
        "(a fresh temporary folder), warm = the same folder again; torch (no JIT) for reference. "
        "From a cold cache tinynets' first steps run one-thread twins while a helper process "
        "compiles the parallel builds (`tinynets/kernels/tiers.py`); 'parallel builds in "
        "place' is the time from the spawn to the end of the train step after which all of "
        "them run, and how many steps had run by then.",
        "Threads: Numba, numpy's OpenBLAS and torch get the same count. torch's layer and "
        "network timings run in a fresh process that never imports tinynets, so that each "
        "library is timed alone; the memory and JIT children of both import tinynets.",
        "Together: each scenario in a fresh process that imports the two libraries in its "
        "order and no sooner; mobilenet_v2, batch-1 inference and a train step, medians as "
        "above, then the median over rounds of all scenarios in turn. 'tinynets ×' = its "
        "time there / its time alone (goal ≤ 1.15×), 'torch ×' likewise (goal ≤ 1.1×). The "
        "settings that tinynets makes for the whole process are in README's "
        "\"Process-wide settings\" and `tinynets/runtime.py`.",
        "Profile: one train step per network (median of the steps as above, after one "
        "warm-up), its time split over the layers by type: each leaf layer timed on the "
        "instance in both libraries (tinynets wraps forward and backward; torch uses forward "
        "hooks and hooks on the autograd nodes each layer added, with its in-place "
        "activations made out-of-place), an SE "
        "block as one unit; 'outside the layers' is the rest of the step (loss, residual "
        "adds, containers). tinynets' BatchNorm row includes the activation it fuses; "
        "torch's activations are a row of their own. The timing itself adds a little to "
        "each unit in both.",
        "BN folding: tinynets against itself, `model.eval()` under `no_grad()`, the unfolded "
        "and the folded model timed in alternation (medians); speed-up = unfolded / folded.",
        "Goals: train step and inference ≤ 0.85×, depthwise < 1×, the stem conv and the SE "
        "block ≤ 1×, memory ≤ 0.8×, "
        "judged on this run's measurements.",
    ]


def markdown(rows, notes: List[str], info: Dict[str, str], cfg) -> str:
    """All of ``bench.md``."""
    parts = ["# tinynets benchmark", "",
             "\n".join(f"- **{k}**: {v}" for k, v in info.items()), ""]
    for section, (title, head, cells) in SECTION_TABLES.items():
        body = [cells(r) for r in rows if r.section == section]
        if body:
            parts += [f"## {title}", "", _table(head, body), ""]
    parts += ["## Conventions", ""] + [f"- {c}" for c in conventions(cfg)] + [""]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)


def _label(row) -> str:
    if row.section == "memory":
        return f"{row.name} memory"
    if row.section == "jit":
        return f"JIT, {row.step}"
    return f"{row.name} {row.step}"


def plot(rows, path: Path, title: str = "tinynets benchmark") -> Optional[str]:
    """Horizontal bars of the ratio to torch per row (log scale, a line at 1×), or of
    GFLOP/s when no row has a torch time. Returns a note if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot."
    rows = [r for r in rows if r.section not in ("together", "profile")]   # to itself; per type
    ratio_rows = [r for r in rows if r.ratio is not None]
    if ratio_rows:
        shown, values = ratio_rows, [r.ratio for r in ratio_rows]
        colors = [{True: "#2a9d8f", False: "#e76f51", None: "#8d99ae"}[r.met] for r in shown]
        xlabel = ("tinynets / PyTorch (log scale; < 1 is faster or smaller); "
                  "|: the goal, green met, red not met, grey no goal")
    else:
        shown = [r for r in rows if r.flops and r.tn]
        values, colors = [r.flops / r.tn / 1e9 for r in shown], ["#457b9d"] * len(shown)
        xlabel = "tinynets GFLOP/s (log scale; no PyTorch to compare with)"
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.26 * max(1, len(shown))))
    y = np.arange(len(shown))[::-1]
    if shown:
        ax.barh(y, values, color=colors)
        ax.set_xscale("log")
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:.2f}", va="center", fontsize=7)
    if ratio_rows:
        ax.axvline(1.0, color="black", lw=1)
        for yi, r in zip(y, shown):
            if r.target is not None:
                ax.plot(r.target[1], yi, marker="|", color="black", markersize=9)
    ax.set_yticks(y, [_label(r) for r in shown], fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def write(rows, notes: List[str], info: Dict[str, str], cfg, out: Path) -> str:
    """Write ``out/bench.png`` and ``out/bench.md``; returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    note = plot(rows, out / "bench.png", f"tinynets benchmark, {info.get('mode', '')}, "
                f"{info.get('threads', '?').split(':')[0]} threads")
    if note:
        notes = notes + [note]
    text = markdown(rows, notes, info, cfg)
    (out / "bench.md").write_text(text, encoding="utf-8")
    return text
