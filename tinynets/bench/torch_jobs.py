"""The PyTorch side of ``tinynets.bench``: the same layers and networks, run in torch.

torch is never a dependency of tinynets: :func:`load` imports it lazily and returns
None, with the reason, when it is missing. Networks come from ``torchvision.models``
when torchvision imports, else they are skipped.

The timings run in a fresh process (:func:`run_in_child` runs this file as a script)
that imports nothing from tinynets and gets the environment the user has: each library is
timed alone here (``together.py`` times them in one process).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple


@dataclass
class Timing:
    """The median and every timed run, in seconds."""
    median: float
    runs: List[float]


def time_it(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
            setup: Optional[Callable[[], object]] = None,
            clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times; the median wall time.

    Parameters
    ----------
    fn : callable without arguments
    repeats, warmup : int
    setup : callable or None
        run, untimed, before every call of ``fn`` (e.g. the forward before a backward)
    clock : callable returning seconds (a fake one in the tests)
    """
    setup = setup or (lambda: None)
    for _ in range(warmup):
        setup()
        fn()
    runs = []
    for _ in range(max(1, repeats)):
        setup()
        start = clock()
        fn()
        runs.append(clock() - start)
    return Timing(statistics.median(runs), runs)


def load(threads: int) -> Tuple[Optional["TorchBench"], str]:
    """(a ``TorchBench`` with ``threads`` threads, "") or (None, why torch is absent)."""
    try:
        import torch
    except Exception as err:      # ImportError, or a broken install
        return None, f"import torch failed ({type(err).__name__}: {err})"
    try:
        import torchvision
    except Exception:
        torchvision = None
    return TorchBench(torch, torchvision, threads), ""


class TorchBench:
    """Builds torch layers and networks and returns closures to time.

    Parameters
    ----------
    torch, torchvision : modules (torchvision may be None: no networks)
    threads : int        ``torch.set_num_threads(threads)``
    """

    def __init__(self, torch, torchvision, threads: int):
        self.torch, self.torchvision = torch, torchvision
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.versions = {"torch": torch.__version__,
                         "torchvision": getattr(torchvision, "__version__", "not installed")}

    # ------------------------------------------------------------ layers
    def layer(self, kind: str, spec: dict):
        """The torch module for a case of ``tinynets.bench.layer_cases``."""
        nn = self.torch.nn
        if kind == "conv":
            k = spec["k"]
            return nn.Conv2d(spec["cin"], spec["cout"], k, stride=spec["s"], padding=(k - 1) // 2,
                             groups=spec["groups"], bias=False)
        if kind == "bnact":
            act = {"ReLU6": nn.ReLU6, "HardSwish": nn.Hardswish, "SiLU": nn.SiLU}[spec["act"]]
            return nn.Sequential(nn.BatchNorm2d(spec["C"]), act())
        if kind == "se":
            return _squeeze_excitation(self.torch, spec["C"], spec["S"])
        raise ValueError(f"unknown layer kind {kind!r}")

    def layer_closures(self, kind: str, spec: dict, shape) -> Tuple[Callable, Callable]:
        """(forward, backward) closures in train mode: forward builds the autograd graph
        (as tinynets keeps its caches); backward computes dL/dx and every dL/dparam
        through the graph of the forward just before it, and frees it."""
        torch = self.torch
        m = self.layer(kind, spec).train()
        x = torch.randn(*shape, requires_grad=True)
        inputs = [x] + list(m.parameters())
        last = {"y": m(x)}
        g = torch.randn_like(last["y"])

        def forward():
            last["y"] = m(x)

        return forward, lambda: torch.autograd.grad(last["y"], inputs, g)

    # ------------------------------------------------------------ networks
    def network_closures(self, name: str, batch: int, res: int) -> Tuple[Callable, Callable]:
        """(train step, batch-1 inference) closures for ``torchvision.models.<name>``.

        The train step is forward, cross-entropy and backward (grads accumulate, no
        optimizer); the images do not require grad. Inference runs in eval mode under
        ``torch.no_grad()``.
        """
        torch = self.torch
        model = getattr(self.torchvision.models, name)(weights=None)
        x = torch.randn(batch, 3, res, res)
        y = torch.randint(0, 1000, (batch,))
        x1 = x[:1].clone()
        loss_fn = torch.nn.CrossEntropyLoss()

        def train_step():
            model.train()
            loss_fn(model(x), y).backward()

        def inference():
            model.eval()
            with torch.no_grad():
                model(x1)

        return train_step, inference


def _squeeze_excitation(torch, C: int, S: int):
    """torchvision.ops.SqueezeExcitation(C, S, SiLU, Sigmoid), written out so that the
    layer benchmarks need only torch."""
    nn = torch.nn

    class SqueezeExcitation(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(C, S, 1), nn.Conv2d(S, C, 1)
            self.activation, self.scale_activation = nn.SiLU(), nn.Sigmoid()

        def forward(self, x):
            s = nn.functional.adaptive_avg_pool2d(x, 1)
            return x * self.scale_activation(self.fc2(self.activation(self.fc1(s))))

    return SqueezeExcitation()


# ------------------------------------------------------------ the child process
def time_jobs(jobs: List[dict], threads: int) -> List[Tuple[float, float]]:
    """Median seconds of each job: a layer's (forward, backward), a network's (train step,
    inference), or a profile's {category: seconds} (``bench.profile``)."""
    tb, why = load(threads)
    if tb is None:
        raise RuntimeError(why)
    out = []
    for job in jobs:
        if job["type"] == "profile":
            try:                              # run as a script, beside it (never tinynets)
                from layer_profile import torch_profile
            except ImportError:
                from .layer_profile import torch_profile
            out.append(torch_profile(tb.torch, tb.torchvision, job["name"], job["batch"],
                                     job["res"], job["steps"]))
        elif job["type"] == "layer":
            fwd, bwd = tb.layer_closures(job["kind"], job["spec"], tuple(job["shape"]))
            out.append((time_it(fwd, job["repeats"], job["warmup"]).median,
                        time_it(bwd, job["repeats"], job["warmup"], setup=fwd).median))
        else:
            train, infer = tb.network_closures(job["name"], job["batch"], job["res"])
            out.append((time_it(train, job["train_repeats"], 1).median,
                        time_it(infer, job["infer_repeats"], job["warmup"]).median))
            del train, infer
    return out


def run_in_child(jobs: List[dict], threads: int) -> list:
    """:func:`time_jobs` in a fresh ``python`` running this file, with ``threads`` threads."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, __file__], input=json.dumps(dict(jobs=jobs, threads=threads)),
                          capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"the torch timing process failed:\n{proc.stderr[-2000:]}")
    return [r if isinstance(r, dict) else tuple(r) for r in json.loads(lines[-1][len("RESULT "):])]


if __name__ == "__main__":
    request = json.loads(sys.stdin.read())
    print("RESULT " + json.dumps(time_jobs(request["jobs"], request["threads"])), flush=True)
