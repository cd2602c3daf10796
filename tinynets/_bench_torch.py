"""The PyTorch side of ``tinynets.bench``: the same layers and networks, run in torch.

torch is never a dependency of tinynets: :func:`load` imports it lazily and returns
None, with the reason, when it is missing. Networks come from ``torchvision.models``
when torchvision imports, else they are skipped.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple


def load(threads: int) -> Tuple[Optional["TorchBench"], str]:
    """(a ``TorchBench`` with ``threads`` threads, "") or (None, why torch is absent).

    torch shares the process's OpenMP runtime with Numba, and with it the wait policy
    that ``import tinynets`` sets (OMP_WAIT_POLICY=PASSIVE unless the user set one).
    """
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
