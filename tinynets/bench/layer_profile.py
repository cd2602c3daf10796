"""Where one train step's time goes, per layer type: tinynets beside PyTorch.

Both sides time the same units of the same network: every leaf layer, except that a
squeeze-and-excitation block counts as one unit (its small convs are part of it). A unit's
forward and backward are timed on the instance (tinynets: the methods are wrapped; torch:
forward hooks, and hooks on the autograd nodes each unit's forward added), and the time of the step outside every unit (the loss,
residual adds, containers) is its own row. The categories come from each unit's class and
shape, so the two columns add up the same layers:

=============================  ==============================================
category                       units
=============================  ==============================================
full conv                      Conv2d with k > 1 and groups < channels (the stem)
pointwise conv                 Conv2d 1x1 outside SE
depthwise conv                 Conv2d with groups == in_channels > 1
BatchNorm                      BatchNorm2d; in tinynets with the fused activation
activation                     a ReLU/ReLU6/h-swish/SiLU/... run as a layer of its own
squeeze-and-excitation         SqueezeExcitation, whole
linear, other layers           Linear; pooling, dropout, stochastic depth, flatten
outside the layers             step time minus the units' time
=============================  ==============================================

tinynets runs BN and the activation after it as one kernel (the activation layer is then
not run), so its BatchNorm row holds what torch splits over BatchNorm and activation.
torch's in-place activations are made out-of-place, so that each unit keeps its own node.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Dict, Iterator, List, Tuple

import numpy as np

CATEGORIES = ("full conv", "pointwise conv", "depthwise conv", "BatchNorm", "activation",
              "squeeze-and-excitation", "linear", "other layers", "outside the layers")
ACTIVATIONS = {"ReLU", "ReLU6", "Hardswish", "HardSwish", "SiLU", "Sigmoid", "Hardsigmoid",
               "HardSigmoid", "Swish"}


def category(module) -> str:
    """The row of ``module``, a unit of either library (by class name and attributes)."""
    kind = type(module).__name__
    if kind == "SqueezeExcitation":
        return "squeeze-and-excitation"
    if kind == "Conv2d":
        k = module.kernel_size
        k = k if isinstance(k, int) else max(k)
        if module.groups > 1 and module.groups == module.in_channels:
            return "depthwise conv"
        return "pointwise conv" if k == 1 else "full conv"
    if kind == "BatchNorm2d":
        return "BatchNorm"
    if kind in ACTIVATIONS:
        return "activation"
    return "linear" if kind == "Linear" else "other layers"


def units(model, children) -> Iterator[Tuple[str, object, object]]:
    """(name, unit, parent) of every timed unit: leaves, and SE blocks whole."""
    def walk(name, m, parent):
        kids = list(children(m))
        if not kids or type(m).__name__ == "SqueezeExcitation":
            yield name, m, parent
            return
        for child_name, child in kids:
            yield from walk(f"{name}.{child_name}" if name else child_name, child, m)
    yield from walk("", model, None)


def _table(per_unit: Dict[str, float], step: float, cat: Dict[str, str]) -> Dict[str, float]:
    out = dict.fromkeys(CATEGORIES, 0.0)
    for name, t in per_unit.items():
        out[cat[name]] += t
    out["outside the layers"] = max(0.0, step - sum(per_unit.values()))
    return out


def _median_steps(step, steps: int, spent: Dict[str, float], cat: Dict[str, str]):
    """One warm-up ``step()``, then the median over ``steps`` timed ones of each category's
    seconds (``spent``: per unit, filled by the timers during a step) and of the step."""
    step()                                                          # warm-up (compiles)
    rows = []
    for _ in range(steps):
        spent.clear()
        t0 = time.perf_counter()
        step()
        took = time.perf_counter() - t0
        rows.append(dict(_table(dict(spent), took, cat), step=took))
    return {k: float(np.median([r[k] for r in rows])) for k in rows[0]}


def tinynets_profile(name: str, batch: int, res: int, steps: int = 1) -> Dict[str, float]:
    """Seconds per category of one train step of ``tinynets.models.get_model(name)`` (median
    over ``steps`` timed steps after one warm-up), and "step", the whole step."""
    import tinynets as tn
    model = tn.models.get_model(name)
    model.image_grad = False                       # as in the networks section
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, res, res), dtype=np.float32)
    y = rng.integers(0, 1000, batch)
    loss = tn.CrossEntropyLoss()
    spent: Dict[str, float] = defaultdict(float)
    cat = {}

    def timed(label, fn):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t0
        return run

    for label, m, parent in units(model, lambda m: m._modules.items()):
        if category(m) == "activation" and type(parent).__name__ == "Conv2dNormActivation":
            continue              # fused into the BN before it; wrapping would unfuse it
        cat[label] = category(m)
        m.forward, m.backward = timed(label, m.forward), timed(label, m.backward)

    def step():
        model.train()
        loss(model(x), y)
        model.backward(loss.backward())

    return _median_steps(step, steps, spent, cat)


def _nodes(out_fn, stop) -> list:
    """The autograd nodes a unit's forward added: from its output's node back to (not
    including) its inputs' nodes."""
    found, seen, todo = [], set(), [out_fn]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen or any(node is s for s in stop):
            continue
        seen.add(id(node))
        found.append(node)
        todo += [nxt for nxt, _ in node.next_functions]
    return found


def torch_profile(torch, torchvision, name: str, batch: int, res: int,
                  steps: int = 1) -> Dict[str, float]:
    """The same for ``torchvision.models.<name>(weights=None)`` (forward, cross-entropy,
    backward). Forward: pre and post forward hooks on each unit. Backward: a pre-hook and
    a hook on every autograd node the unit's forward added (a module hook would wrap the
    output, which torchvision's blocks then change in place)."""
    model = getattr(torchvision.models, name)(weights=None)
    for m in model.modules():
        if getattr(m, "inplace", False):
            m.inplace = False      # an in-place op would merge the unit's node with the next
    x = torch.randn(batch, 3, res, res)
    y = torch.randint(0, 1000, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    spent: Dict[str, float] = defaultdict(float)
    started: Dict[object, float] = {}
    cat = {}

    def pre(label):
        def hook(module, inputs):
            started[label] = time.perf_counter()
            started[label, "inputs"] = [t.grad_fn for t in inputs if torch.is_tensor(t)]
        return hook

    def post(label):
        def hook(module, inputs, output):
            spent[label] += time.perf_counter() - started.pop(label)
            stop = started.pop((label, "inputs"))
            if torch.is_tensor(output) and output.grad_fn is not None:
                for node in _nodes(output.grad_fn, stop):
                    if "AccumulateGrad" in node.name():
                        continue           # no pre-hooks there; it only adds to .grad
                    node.register_prehook(lambda *_, n=node: started.__setitem__(n, time.perf_counter()))
                    node.register_hook(lambda *_, n=node: spent.__setitem__(
                        label, spent[label] + time.perf_counter() - started.pop(n)))
        return hook

    for label, m, _ in units(model, lambda m: m.named_children()):
        cat[label] = category(m)
        m.register_forward_pre_hook(pre(label))
        m.register_forward_hook(post(label))

    def step():
        model.train()
        loss_fn(model(x), y).backward()

    return _median_steps(step, steps, spent, cat)


def rows_for(name: str, tn_times: Dict[str, float], torch_times) -> List[tuple]:
    """(category, tinynets s, torch s or None) of one network, the step last."""
    out = [(c, tn_times[c], torch_times[c] if torch_times else None) for c in CATEGORIES]
    return out + [("whole step", tn_times["step"], torch_times["step"] if torch_times else None)]
