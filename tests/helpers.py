"""Helpers shared by several test files (imported as ``from helpers import ...``)."""
from __future__ import annotations

import numpy as np

import tinynets as tn

# kinked activation -> a smooth stand-in with the same role
SMOOTH = {tn.ReLU: tn.SiLU, tn.ReLU6: tn.SiLU, tn.HardSwish: tn.SiLU, tn.HardSigmoid: tn.Sigmoid}


def smooth_activations(module: tn.Module) -> tn.Module:
    """Swap kinked activations for smooth ones, in place, keeping each container's order."""
    for m in module.modules():
        for name, child in list(m._modules.items()):
            if type(child) in SMOOTH:
                new = SMOOTH[type(child)]()
                m._modules[name] = new
                object.__setattr__(m, name, new)
    return module


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| / max |ref|: the error relative to the reference's scale, for parity."""
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(a - ref)) / max(float(np.max(np.abs(ref))), 1e-300))
