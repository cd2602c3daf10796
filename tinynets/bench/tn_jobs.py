"""The tinynets side of ``tinynets.bench``: the layers and networks to time, as closures.

``tinynets.bench.torch_jobs`` builds the same work in PyTorch.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Tuple

import numpy as np

import tinynets as tn

from ..nn import norm


class BNAct(tn.Module):
    """BatchNorm2d then an activation, as the networks run it: one fused kernel when
    ``BatchNorm2d.forward`` can apply the activation itself, else the two layers."""

    def __init__(self, channels: int, activation: type):
        super().__init__()
        self.bn, self.act = tn.BatchNorm2d(channels), activation()
        self.fused = type(self.act) in getattr(norm, "FUSED_ACTIVATIONS", ())

    def forward(self, x):
        return self.bn(x, activation=self.act) if self.fused else self.act(self.bn(x))

    def backward(self, dout):
        return self.bn.backward(dout if self.fused else self.act.backward(dout))


def layer(kind: str, spec: dict) -> tn.Module:
    """The module of a case of ``tinynets.bench.layer_cases``."""
    if kind == "conv":
        k = spec["k"]
        return tn.Conv2d(spec["cin"], spec["cout"], k, stride=spec["s"], padding=(k - 1) // 2,
                         groups=spec["groups"], bias=False)
    if kind == "bnact":
        return BNAct(spec["C"], getattr(tn, spec["act"]))
    if kind == "se":
        return tn.SqueezeExcitation(spec["C"], spec["S"], tn.SiLU, tn.Sigmoid)
    raise ValueError(f"unknown layer kind {kind!r}")


def layer_closures(module: tn.Module, shape) -> Tuple[Callable, Callable]:
    """(forward, backward) closures in train mode on random float32 data. Backward
    returns dL/dx and accumulates every dL/dparam from the cache of the forward just
    before it (time it with ``setup=forward``)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(module.output_shape(shape), dtype=np.float32)
    module.train()
    return (lambda: module(x)), (lambda: module.backward(g))


class Network(NamedTuple):
    """What ``network_closures`` returns."""
    train_step: Callable[[], None]
    inference: Callable[[], None]
    flops: int                      # forward FLOPs per image (``tn.count_flops``)
    release: Callable[[], None]     # drop any cache a step left in the layers


def network_closures(name: str, batch: int, res: int) -> Network:
    """The work of ``get_model(name)`` at ``batch`` x 3 x ``res`` x ``res``, float32.

    The train step is ``model.train()``, forward, ``CrossEntropyLoss`` forward and
    backward and ``model.backward`` (no optimizer; ``model.image_grad`` is False, so no
    dL/dimages, as in torch's step); inference is ``model.eval()`` under
    ``tn.no_grad()`` on the first image. After backward every layer still holds its
    forward cache unless backward frees it; ``release`` drops any that are left.
    """
    model = tn.models.get_model(name)
    model.image_grad = False                       # as torch: the images do not require grad
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, res, res), dtype=np.float32)
    y = rng.integers(0, 1000, batch)
    x1 = x[:1].copy()
    loss = tn.CrossEntropyLoss()

    def train_step():
        model.train()
        loss(model(x), y)
        model.backward(loss.backward())

    def inference():
        model.eval()
        with tn.no_grad():
            model(x1)

    def release():
        for m in list(model.modules()) + [loss]:
            m.cache = None

    return Network(train_step, inference, tn.count_flops(model, (3, res, res)), release)


def fold_closures(name: str, batch: int, res: int) -> Tuple[Callable, Callable]:
    """Eval-mode inference of ``get_model(name)`` at ``batch`` x 3 x ``res`` x ``res`` under
    ``no_grad``: (unfolded, with every BatchNorm folded by ``tn.fold_bn``)."""
    model = tn.models.get_model(name).eval()
    folded = tn.fold_bn(model)
    x = np.random.default_rng(0).standard_normal((batch, 3, res, res), dtype=np.float32)

    def run(m):
        def infer():
            with tn.no_grad():
                m(x)
        return infer

    return run(model), run(folded)
