"""A3, visible: ``separable_taps`` and its backward against PyTorch's depthwise numbers.

Run them with ``python -m pytest -m A3 -k separable``. Each case's depthwise half is a
fixture case with groups == channels (PyTorch's output and gradients); the pointwise half
is a random 1x1 weight P, and the expected numbers are P applied to PyTorch's. float64: a
correct implementation is at 1e-15 or so, the tests ask for 1e-8. The other convolutions
of ``conv_naive`` may not be called: the taps are the task.
"""
import numpy as np
import pytest

from tinynets.kernels import conv_naive

pytestmark = [pytest.mark.A3, pytest.mark.numpy_only]

DEPTHWISE = ("conv/07", "conv/08", "conv/09", "conv/12")


def check_forward(checks, a3, names, square, seed=0):
    rng = np.random.default_rng(seed)
    for c in checks.conv_cases(*names):
        M = c.x.shape[1]
        s = a3.separable_case(c, M if square else M + 3, rng)
        out, mid = conv_naive.separable_taps(s.x, s.w_dw, s.w_pw, s.stride, s.pads)
        checks.expect_close(f"separable_taps mid (the depthwise output), case {s.name}", mid, s.mid)
        checks.expect_close(f"separable_taps out, case {s.name}, C_out = {s.w_pw.shape[0]}",
                            out, s.out)


def check_backward(checks, a3, names, seed=0):
    rng = np.random.default_rng(seed)
    for c in checks.conv_cases(*names):
        s = a3.separable_case(c, c.x.shape[1], rng)
        dx, dw_dw, dw_pw = conv_naive.separable_taps_backward(s.dout, s.x, s.mid, s.w_dw, s.w_pw,
                                                              s.stride, s.pads)
        checks.expect_close(f"separable_taps_backward dx, case {s.name}", dx, s.dx)
        checks.expect_close(f"separable_taps_backward dw_dw, case {s.name}", dw_dw, s.dw_dw)
        checks.expect_close(f"separable_taps_backward dw_pw, case {s.name}", dw_pw, s.dw_pw)


def test_separable_forward_pytorch(checks, a3, own_taps):
    """3x3 and 5x5 and 7x7 depthwise, strides 1 and 2; a square pointwise layer."""
    check_forward(checks, a3, DEPTHWISE, square=True)


def test_separable_forward_more_outputs(checks, a3, own_taps):
    """The pointwise layer widens: C_out = M + 3."""
    check_forward(checks, a3, DEPTHWISE, square=False, seed=1)


def test_separable_backward_pytorch(checks, a3, own_taps):
    check_backward(checks, a3, DEPTHWISE)
