"""A1, visible: the Try it exercises of lesson 01, each run alone from its answer cell.

Run them with ``python -m pytest -m A1 -k try``. Each test runs the answer cell of
``lessons/01_convolution.ipynb`` (the one whose first line names the task) with the inputs
a test chooses, and checks the result against a direct computation.
"""
import numpy as np
import pytest

from tinynets.kernels import conv_naive, im2col

pytestmark = [pytest.mark.A1]


def windows_reading_each_pixel(H, k, s, p):
    """(H, H): how many k x k windows at stride s and padding p read each pixel, by counting."""
    OH = 1 + (H + 2 * p - k) // s
    count = np.zeros((H, H), dtype=int)
    for i in range(OH):
        for j in range(OH):
            r0, c0 = s * i - p, s * j - p
            count[max(r0, 0):r0 + k, max(c0, 0):c0 + k] += 1
    return count


def test_try_reads_counts_the_windows(checks):
    ns = checks.exercise("01", "A1.try_reads", np=np, conv_naive=conv_naive, im2col=im2col)
    reads = np.asarray(checks.defined(ns, "reads", "A1.try_reads"))
    want = windows_reading_each_pixel(8, 3, 2, 1)
    if reads.shape != want.shape or not np.array_equal(reads, want):
        raise AssertionError("A1.try_reads: reads should be the 8x8 count of windows that read "
                             f"each pixel (values 1 to 4), got shape {reads.shape}")


def matmul_case(rng, N, C, C_out, H, W):
    x = rng.standard_normal((N, C, H, W))
    Wm = rng.standard_normal((C_out, C))
    delta = rng.standard_normal((N, C_out, H, W))
    y = (Wm @ x.reshape(N, C, H * W)).reshape(N, C_out, H, W)
    dW = sum(delta[n].reshape(C_out, -1) @ x[n].reshape(C, -1).T for n in range(N))
    return x, Wm, delta, y, dW[:, :, None, None]


def check_matmul(checks, shape, seed):
    x, Wm, delta, y, dW = matmul_case(np.random.default_rng(seed), *shape)
    ns = checks.exercise("01", "A1.try_matmul", forbid=("tinynets",), x2=x, Wm=Wm, delta2=delta)
    checks.expect_close(f"A1.try_matmul y2 for x2 {x.shape}",
                        checks.defined(ns, "y2", "A1.try_matmul"), y)
    checks.expect_close(f"A1.try_matmul dW2 for x2 {x.shape}",
                        checks.defined(ns, "dW2", "A1.try_matmul"), dW)


def test_try_matmul_forward_and_weight_gradient(checks):
    """The lesson's shapes: x2 (2, 5, 4, 3), a 1x1 layer 5 -> 6."""
    check_matmul(checks, (2, 5, 6, 4, 3), 0)


def check_upsample(checks, seed):
    ns = checks.exercise("01", "A1.try_upsample", im2col=im2col,
                         rng=np.random.default_rng(seed))
    small = checks.defined(ns, "small", "A1.try_upsample")
    cols = np.asarray(checks.defined(ns, "cols3", "A1.try_upsample"))
    if cols.shape != (1, 4, 16):
        raise AssertionError(f"A1.try_upsample: cols3 should have shape (1, 4, 16), got {cols.shape}")
    checks.expect_close("A1.try_upsample big", checks.defined(ns, "big", "A1.try_upsample"),
                        np.kron(small, np.ones((2, 2))))


def test_try_upsample_by_col2im(checks):
    check_upsample(checks, 0)
