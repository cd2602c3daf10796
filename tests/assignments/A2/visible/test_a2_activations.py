"""A2, visible: ReLU6, HardSigmoid, HardSwish and SiLU, forward and backward, against PyTorch.

Each activation has two cases in the fixture file: random inputs of shape (2, 3, 4, 5),
and a (2, k) array holding every kink exactly, points 1e-12, 1e-6 and 1e-3 beside each
kink and values far out (up to +-1000). At a kink the derivative takes PyTorch's value
(see the docstrings). For HardSigmoid PyTorch multiplies by float32's 1/6 even in float64;
the test compares with its gradient rescaled to the exact 1/6. Outputs and gradients must
match to a relative error below 1e-7.
"""
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A2, pytest.mark.numpy_only]


def _pytorch(checks, a2, cls, keys):
    for key in keys:
        c = a2.act_case(key)
        a2.expect_layer(checks, cls, f"case {c.name}", c.x, c.dout, c.out, c.dx)


def test_relu6_pytorch(checks, a2):
    _pytorch(checks, a2, tn.ReLU6, ("act/02", "act/03"))


def test_hardsigmoid_pytorch(checks, a2):
    _pytorch(checks, a2, tn.HardSigmoid, ("act/06", "act/07"))


def test_hardswish_pytorch(checks, a2):
    _pytorch(checks, a2, tn.HardSwish, ("act/08", "act/09"))


def test_silu_pytorch(checks, a2):
    _pytorch(checks, a2, tn.SiLU, ("act/10", "act/11"))
