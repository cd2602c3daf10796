"""A1, visible: convolution by loops, forward and backward, against PyTorch's numbers.

Run them with ``python -m pytest -m A1``. The fixture file holds PyTorch's outputs and
gradients for the same inputs; every array must match to a relative error below 1e-8
(float64: a correct implementation is at 1e-15 or so).
"""
import pytest

from tinynets.kernels import conv_naive

pytestmark = [pytest.mark.A1, pytest.mark.numpy_only]

STANDARD = ("conv/00", "conv/01", "conv/02", "conv/03", "conv/19", "conv/20")
GROUPED = ("conv/05", "conv/06", "conv/07", "conv/10")


def _forward(checks, names):
    for c in checks.conv_cases(*names):
        out = conv_naive.conv2d_loops(c.x, c.weight, c.bias, c.stride, c.pads, c.groups)
        checks.expect_close(f"conv2d_loops output, case {c.name}", out, c.out)


def _backward(checks, names):
    for c in checks.conv_cases(*names):
        dx, dw, db = conv_naive.conv2d_loops_backward(c.dout, c.x, c.weight, c.stride, c.pads,
                                                      c.groups)
        checks.expect_close(f"conv2d_loops_backward dx, case {c.name}", dx, c.dx)
        checks.expect_close(f"conv2d_loops_backward dw, case {c.name}", dw, c.dweight)
        if c.dbias is not None:
            checks.expect_close(f"conv2d_loops_backward db, case {c.name}", db, c.dbias)


def test_conv_forward_loops_pytorch_standard(checks):
    """groups=1: 1x1 to 7x7 kernels, strides 1 and 2, symmetric and asymmetric padding."""
    _forward(checks, STANDARD)


def test_conv_forward_loops_pytorch_grouped(checks):
    """Grouped and depthwise convolutions (each group sees only its own input channels)."""
    _forward(checks, GROUPED)


def test_conv_backward_loops_pytorch_standard(checks):
    _backward(checks, STANDARD)


def test_conv_backward_loops_pytorch_grouped(checks):
    _backward(checks, GROUPED)
