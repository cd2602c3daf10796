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
``eval_numerical_gradient_array`` does) keeps rounding noise small. Inputs must
stay more than 2h from a kink. The two gradients are compared with CS231n's
relative error

    rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|)

which is ~1e-7 or less for a correct gradient and ~1e-2 or more for a wrong one.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np

from .module import Module, manual_seed


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """CS231n's relative error: the worst element-wise |a - b| / max(1e-8, |a| + |b|)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


# (k, weight): dL/dx ~ sum_k weight * (f(x + k h) - f(x - k h)) / h. Each pair is
# differenced first, so outputs that x_i does not touch cancel exactly to 0.
STENCILS = {2: ((1, 1 / 2),), 4: ((1, 8 / 12), (2, -1 / 12))}


def numerical_gradient(f: Callable[[], np.ndarray], array: np.ndarray, dout: np.ndarray,
                       h: float = 1e-3, indices=None, order: int = 4) -> np.ndarray:
    """Central differences of sum(f() * dout) w.r.t. ``array``, which f reads and
    which is perturbed in place (and restored). ``order`` 2 is CS231n's two-point
    formula, 4 the five-point one. Only ``indices`` (flat) are computed when
    given; the other entries stay 0."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)          # views
    for i in (range(array.size) if indices is None else indices):
        old = flat[i]
        diff = 0
        for k, weight in STENCILS[order]:
            flat[i] = old + k * h
            pos = np.array(f(), copy=True)
            flat[i] = old - k * h
            diff = diff + weight * (pos - f())
        flat[i] = old
        gflat[i] = np.sum(diff * dout) / h
    return grad


def gradcheck(module: Module, x: np.ndarray, *extra, h: float = 1e-3, order: int = 4,
              num_checks: Optional[int] = None, seed: int = 0,
              check_params: bool = True) -> Dict[str, float]:
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
    {"input": err, "<param name>": err, ...}. The module's state (running
    statistics) is restored afterwards and its gradients are left as backward
    computed them.
    """
    if x.dtype != np.float64 or any(p.data.dtype != np.float64 for p in module.parameters()):
        raise TypeError(f"gradcheck({type(module).__name__}): needs float64 input and parameters; "
                        "call module.astype(np.float64) and pass a float64 input")
    state = module.state_dict()
    x = x.copy()

    def f():
        manual_seed(seed)
        return module(x, *extra)

    dout = np.random.default_rng(seed + 1).standard_normal(np.shape(f()))
    module.zero_grad()
    f()
    dx = module.backward(dout)
    analytic = {"input": dx}
    params = dict(module.named_parameters()) if check_params else {}
    analytic.update({name: p.grad.copy() for name, p in params.items()})

    pick = np.random.default_rng(seed + 2)
    errors = {}
    for name, array in [("input", x)] + [(n, p.data) for n, p in params.items()]:
        idx = None
        if num_checks is not None and array.size > num_checks:
            idx = pick.choice(array.size, num_checks, replace=False)
        num = numerical_gradient(f, array, dout, h, idx, order)
        ana = analytic[name]
        if idx is not None:
            num, ana = num.reshape(-1)[idx], ana.reshape(-1)[idx]
        errors[name] = rel_error(ana, num)
    module.load_state_dict(state)
    return errors
