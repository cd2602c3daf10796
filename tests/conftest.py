"""Shared test helpers: float64 gradient checks that record the worst error seen."""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn

GRADCHECK_TOL = 1e-7
_WORST: dict = {}           # layer name -> worst relative error in this session


@pytest.fixture
def check_grads():
    """``check_grads(label, module, x, *extra, **kw)``: run tinynets.gradcheck in float64,
    assert every error < 1e-7, record the worst per label, return the errors."""

    def run(label: str, module, x, *extra, **kwargs):
        errors = tn.gradcheck(module, x, *extra, **kwargs)
        worst = max(errors.values())
        _WORST[label] = max(_WORST.get(label, 0.0), worst)
        bad = {k: v for k, v in errors.items() if not v < GRADCHECK_TOL}
        assert not bad, f"{label}: gradient check failed {bad} (tolerance {GRADCHECK_TOL})"
        return errors

    return run


def pytest_terminal_summary(terminalreporter):
    if not _WORST:
        return
    terminalreporter.section("gradient checks (float64, CS231n relative error)")
    for label, err in sorted(_WORST.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"  {label:<28} worst {err:.2e}")
    label, err = max(_WORST.items(), key=lambda kv: kv[1])
    terminalreporter.write_line(f"worst over all {len(_WORST)} layers: {err:.2e} ({label}), "
                                f"tolerance {GRADCHECK_TOL:.0e}")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_tinynets():
    """Every test starts from the same initial weights: results are reproducible."""
    tn.manual_seed(0)
