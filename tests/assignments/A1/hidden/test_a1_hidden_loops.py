"""A1, hidden: convolution by loops on inputs the student has not seen.

These tests never ship. Random inputs (not in any fixture file, so a table of stored
answers cannot pass), the fixture cases the visible tests leave out, float32 in and out,
and finite differences of the student's own forward.
"""
import numpy as np
import pytest

from tinynets.kernels import conv_naive

pytestmark = [pytest.mark.A1, pytest.mark.hidden, pytest.mark.numpy_only]

# (N, C_in, H, W, C_out, KH, KW, stride, (top, bottom, left, right), groups)
RANDOM = [(2, 3, 7, 6, 4, 3, 3, 2, (1, 0, 2, 1), 1),
          (1, 4, 5, 8, 6, 2, 3, 1, (0, 1, 1, 1), 2),
          (3, 2, 6, 5, 2, 5, 1, 3, (2, 2, 0, 0), 2),
          (2, 5, 4, 4, 3, 1, 1, 1, (0, 0, 0, 0), 1)]
HIDDEN = ("conv/04", "conv/08", "conv/09", "conv/11", "conv/12", "conv/13", "conv/14",
          "conv/15", "conv/16", "conv/17", "conv/18", "conv/21", "conv/22", "conv/23",
          "conv/27", "conv/30", "conv_same/02", "conv_same/03", "conv_same/05")


def _random_case(rng, cfg):
    N, C, H, W, C_out, KH, KW, s, pads, g = cfg
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((C_out, C // g, KH, KW))
    b = rng.standard_normal(C_out)
    return x, w, b, s, pads, g


def test_conv_forward_loops_definition_random():
    """Every output pixel of random convolutions, against the sum that defines it."""
    rng = np.random.default_rng(2024)
    for cfg in RANDOM:
        x, w, b, s, pads, g = _random_case(rng, cfg)
        out = conv_naive.conv2d_loops(x, w, b, s, pads, g)
        xp = conv_naive.pad_input(x, pads)
        C_out, Cg, KH, KW = w.shape
        OH = (xp.shape[2] - KH) // s + 1
        OW = (xp.shape[3] - KW) // s + 1
        if out.shape != (x.shape[0], C_out, OH, OW):
            raise AssertionError(f"conv2d_loops on {cfg}: expected shape "
                                 f"{(x.shape[0], C_out, OH, OW)}, got {out.shape}")
        Og = C_out // g
        for n, co, i, j in np.ndindex(*out.shape):
            gi = co // Og
            field = xp[n, gi * Cg:(gi + 1) * Cg, i * s:i * s + KH, j * s:j * s + KW]
            want = b[co] + np.sum(field * w[co])
            if not abs(out[n, co, i, j] - want) <= 1e-10 * (1 + abs(want)):
                raise AssertionError(f"conv2d_loops on a random input (shape {x.shape}, kernel "
                                     f"{KH}x{KW}, stride {s}, padding {pads}, groups {g}): "
                                     f"out[{n}, {co}, {i}, {j}] should be {want:.6f}, got "
                                     f"{out[n, co, i, j]:.6f}")


def test_conv_forward_loops_hidden_cases(checks):
    """The fixture's other cases, and float32 in gives float32 out."""
    for c in checks.conv_cases(*HIDDEN):
        out = conv_naive.conv2d_loops(c.x, c.weight, c.bias, c.stride, c.pads, c.groups)
        checks.expect_close(f"conv2d_loops output, case {c.name}", out, c.out)
    c = checks.conv_cases("conv/06")[0]
    out = conv_naive.conv2d_loops(c.x.astype(np.float32), c.weight.astype(np.float32), None,
                                  c.stride, c.pads, c.groups)
    if out.dtype != np.float32:
        raise AssertionError(f"conv2d_loops: float32 input should give float32 output, got {out.dtype}")
    checks.expect_close(f"conv2d_loops output in float32, case {c.name}", out, c.out, tol=1e-4)


def test_conv_backward_loops_numerical_gradient(checks):
    """dx and dw of random convolutions against central differences of conv2d_loops."""
    rng = np.random.default_rng(7)
    for cfg in RANDOM[:3]:
        x, w, b, s, pads, g = _random_case(rng, cfg)
        OH = conv_naive.out_size(x.shape[2], w.shape[2], s, pads[0], pads[1])
        OW = conv_naive.out_size(x.shape[3], w.shape[3], s, pads[2], pads[3])
        dout = rng.standard_normal((x.shape[0], w.shape[0], OH, OW))
        dx, dw, db = conv_naive.conv2d_loops_backward(dout, x, w, s, pads, g)
        f = lambda: conv_naive.conv2d_loops(x, w, b, s, pads, g)  # noqa: E731
        where = f"random input {x.shape}, weight {w.shape}, stride {s}, padding {pads}, groups {g}"
        checks.expect_gradients(f"conv2d_loops_backward ({where})", f, x, w, dout, (dx, dw, db))


def test_conv_backward_loops_hidden_cases(checks):
    for c in checks.conv_cases(*HIDDEN):
        dx, dw, db = conv_naive.conv2d_loops_backward(c.dout, c.x, c.weight, c.stride, c.pads,
                                                      c.groups)
        checks.expect_close(f"conv2d_loops_backward dx, case {c.name}", dx, c.dx)
        checks.expect_close(f"conv2d_loops_backward dw, case {c.name}", dw, c.dweight)
