"""Checks shared by A1's visible and hidden tests of lesson 01's exercises."""
from types import SimpleNamespace

import numpy as np
import pytest

from tinynets.kernels import im2col


def windows_reading_each_pixel(H, k, s, p):
    """(H, H): how many k x k windows at stride s and padding p read each pixel, by counting."""
    OH = 1 + (H + 2 * p - k) // s
    count = np.zeros((H, H), dtype=int)
    for i in range(OH):
        for j in range(OH):
            r0, c0 = s * i - p, s * j - p
            count[max(r0, 0):r0 + k, max(c0, 0):c0 + k] += 1
    return count


def matmul_case(rng, N, C, C_out, H, W):
    """x, Wm, delta and the 1x1 convolution's y and dW, computed image by image."""
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


def check_upsample(checks, seed):
    ns = checks.exercise("01", "A1.try_upsample", im2col=im2col,
                         rng=np.random.default_rng(seed))
    small = checks.defined(ns, "small", "A1.try_upsample")
    cols = np.asarray(checks.defined(ns, "cols3", "A1.try_upsample"))
    if cols.shape != (1, 4, 16):
        raise AssertionError(f"A1.try_upsample: cols3 should have shape (1, 4, 16), got {cols.shape}")
    checks.expect_close("A1.try_upsample big", checks.defined(ns, "big", "A1.try_upsample"),
                        np.kron(small, np.ones((2, 2))))


@pytest.fixture
def a1():
    return SimpleNamespace(windows_reading_each_pixel=windows_reading_each_pixel,
                           check_matmul=check_matmul, check_upsample=check_upsample)
