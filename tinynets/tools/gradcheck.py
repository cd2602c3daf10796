"""Check a module's backward against central finite differences, in float64.

For the scalar L = sum(f(x) * dout) with a random dout, the analytic gradient is
what ``backward(dout)`` returns (and accumulates into ``param.grad``); the
numerical one is, element by element, a central difference. The classic one is

    dL/dx_i ~ sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2h)              (error O(h^2))

and by default we use its fourth-order sibling, which is exact for polynomials
up to degree 4 (so for every piecewise-linear or -quadratic layer) and allows a
larger h, i.e. less rounding noise:

    dL/dx_i ~ sum((-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) * dout) / (12h)   (error O(h^4))

Differencing the *outputs* before summing (as CS231n's
``eval_numerical_gradient_array`` does) keeps rounding noise small.

A difference quotient is only valid where the function is smooth over the whole
stencil [x - 2h, x + 2h]. Inside a block, perturbing one weight moves hundreds of
pre-activations, and one of them crossing a ReLU, ReLU6, HardSigmoid or
HardSwish kink spoils the quotient although the backward is right. So
``gradcheck`` watches every activation that declares ``kinks``: an entry whose
stencil moves any activation input onto another piece is skipped (and counted
in ``result.skipped``), and another random entry is checked instead. The
two gradients are compared with CS231n's relative error

    rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|)

which is ~1e-7 or less for a correct gradient and ~1e-2 or more for a wrong one.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import numpy as np

from ..nn.grad_mode import manual_seed, no_grad
from ..nn.module import Module


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """CS231n's relative error: the worst element-wise |a - b| / max(1e-8, |a| + |b|)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


# (k, weight): dL/dx ~ sum_k weight * (f(x + k h) - f(x - k h)) / h. Each pair is
# differenced first, so outputs that x_i does not touch cancel exactly to 0.
STENCILS = {2: ((1, 1 / 2),), 4: ((1, 8 / 12), (2, -1 / 12))}


class KinkWatch:
    """Notices when a perturbation moves an activation's input across one of its kinks.

    While active (``with KinkWatch(module):``), every sub-module that declares ``kinks``
    records on which piece each of its inputs lies (``np.searchsorted``), from a forward
    pre-hook. The hook only watches, so the code that runs is the code training runs: a
    BatchNorm2d that applies the activation itself (the fused path of
    ``Conv2dNormActivation``) calls the hook with the pre-activation it computes.
    The first complete forward after ``reset`` is the reference; ``crossed`` turns True
    as soon as a later forward puts any input on another piece.
    """

    def __init__(self, module: Module):
        self.layers = [m for m in module.modules() if getattr(m, "kinks", ())]
        self.reference: Optional[List[np.ndarray]] = None
        self.calls: List[np.ndarray] = []
        self.crossed = False
        self.handles: list = []

    def __bool__(self) -> bool:
        return bool(self.layers)

    def __enter__(self) -> "KinkWatch":
        self.handles = [m.register_forward_pre_hook(self._record) for m in self.layers]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def _record(self, m: Module, args) -> None:
        self.calls.append(np.searchsorted(m.kinks, args[0], side="right").astype(np.int8))

    def reset(self) -> None:
        self.reference, self.calls, self.crossed = None, [], False

    def begin_forward(self) -> None:
        self.calls = []

    def end_forward(self) -> None:
        if self.reference is None:
            self.reference = self.calls
        elif not self.crossed:
            self.crossed = len(self.calls) != len(self.reference) or any(
                not np.array_equal(a, b) for a, b in zip(self.calls, self.reference))


def numerical_gradient(f: Callable[[], np.ndarray], array: np.ndarray, dout: np.ndarray,
                       h: float = 1e-3, indices=None, order: int = 4,
                       watch: Optional[KinkWatch] = None) -> np.ndarray:
    """Central differences of sum(f() * dout) w.r.t. ``array``, which f reads and
    which is perturbed in place (and restored). ``order`` 2 is CS231n's two-point
    formula, 4 the five-point one. Only ``indices`` (flat) are computed when
    given; the other entries stay 0. With a ``watch`` (whose forwards f brackets
    by ``begin_forward``/``end_forward``), an entry whose stencil crosses a kink
    is NaN."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)          # views
    for i in (range(array.size) if indices is None else indices):
        old = flat[i]
        diff = 0
        if watch:
            watch.crossed = False
        for k, weight in STENCILS[order]:
            flat[i] = old + k * h
            pos = np.array(f(), copy=True)
            flat[i] = old - k * h
            diff = diff + weight * (pos - f())
        flat[i] = old
        gflat[i] = np.nan if watch and watch.crossed else np.sum(diff * dout) / h
    return grad


class GradcheckResult(dict):
    """{array name: relative error}, plus ``skipped``: {array name: entries skipped
    because their stencil crossed a kink}."""

    def __init__(self):
        super().__init__()
        self.skipped: Dict[str, int] = {}


def gradcheck(module: Module, x: np.ndarray, *extra, h: float = 1e-3, order: int = 4,
              num_checks: Optional[int] = None, seed: int = 0,
              check_params: bool = True) -> GradcheckResult:
    """Relative error of ``module.backward`` for its input and each parameter.

    Parameters
    ----------
    module : a float64 Module (``module.astype(np.float64)``)
    x : float64 ndarray, the input that is differentiated; ``extra`` arguments
        (e.g. labels for a loss) are passed to forward unchanged.
    h, order : step and order (2 or 4) of the central difference.
    num_checks : check only this many random entries of each array (all if None).
    seed : re-seeds tinynets before every forward, so dropout and stochastic
        depth draw the same mask each time.

    Returns
    -------
    {"input": err, "<param name>": err, ...} with ``.skipped`` (entries replaced
    because their stencil crossed a kink, per array). The module's state (running
    statistics) is restored afterwards and its gradients are left as backward
    computed them.
    """
    if x.dtype != np.float64 or any(p.data.dtype != np.float64 for p in module.parameters()):
        raise TypeError(f"gradcheck({type(module).__name__}): needs float64 input and parameters; "
                        "call module.astype(np.float64) and pass a float64 input")
    state = module.state_dict()
    x = x.copy()
    watch = KinkWatch(module)

    def f(grad: bool = False):
        """One forward at the current x and parameters; only the analytic one keeps caches."""
        manual_seed(seed)
        watch.begin_forward()
        if grad:
            out = module(x, *extra)
        else:
            with no_grad():
                out = module(x, *extra)
        watch.end_forward()
        return out

    _drop_caches(module)                       # a forward of the caller's is not ours to answer
    try:
        with watch:
            return _compare(module, x, f, watch, h, order, num_checks, seed, check_params)
    finally:
        _drop_caches(module)
        module.load_state_dict(state)          # the forwards above updated running statistics


def _drop_caches(module: Module) -> None:
    for m in module.modules():
        m.cache = None


def _compare(module: Module, x: np.ndarray, f: Callable[[], np.ndarray], watch: KinkWatch,
             h: float, order: int, num_checks: Optional[int], seed: int,
             check_params: bool) -> GradcheckResult:
    """gradcheck's work: analytic gradients at x, then differences entry by entry."""
    dout = np.random.default_rng(seed + 1).standard_normal(np.shape(f()))
    module.zero_grad()
    f(grad=True)
    dx = module.backward(dout)
    analytic = {"input": dx}
    params = dict(module.named_parameters()) if check_params else {}
    analytic.update({name: p.grad.copy() for name, p in params.items()})

    pick = np.random.default_rng(seed + 2)
    errors = GradcheckResult()
    for name, array in [("input", x)] + [(n, p.data) for n, p in params.items()]:
        want = array.size if num_checks is None else min(num_checks, array.size)
        order_ = pick.permutation(array.size) if want < array.size or watch else np.arange(array.size)
        ana_all, num, ana, start = analytic[name].reshape(-1), [], [], 0
        while len(num) < want and start < array.size:   # more candidates replace skipped ones
            idx = order_[start:start + want - len(num)]
            start += len(idx)
            got = numerical_gradient(f, array, dout, h, idx, order, watch).reshape(-1)[idx]
            keep = ~np.isnan(got)
            num += list(got[keep])
            ana += list(ana_all[idx[keep]])
        errors.skipped[name] = start - len(num)
        if want and not num:
            raise RuntimeError(f"gradcheck({type(module).__name__}): every entry of {name} moves an "
                               f"activation input across a kink within +-{2 * h if order == 4 else h}; "
                               "use a smaller h")
        errors[name] = rel_error(np.array(ana), np.array(num))
    return errors
