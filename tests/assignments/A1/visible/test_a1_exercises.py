"""A1, visible: the Try it exercises of lesson 01, each run alone from its answer cell.

Run them with ``python -m pytest -m A1 -k try``. Each test runs the answer cell of
``lessons/01_convolution.ipynb`` (the one whose first line names the task) with the inputs
a test chooses, and checks the result against a direct computation.
"""
import numpy as np
import pytest

from tinynets.kernels import conv_naive, im2col

pytestmark = [pytest.mark.A1]


def test_try_reads_counts_the_windows(checks, a1):
    ns = checks.exercise("01", "A1.try_reads", np=np, conv_naive=conv_naive, im2col=im2col)
    reads = np.asarray(checks.defined(ns, "reads", "A1.try_reads"))
    want = a1.windows_reading_each_pixel(8, 3, 2, 1)
    if reads.shape != want.shape or not np.array_equal(reads, want):
        raise AssertionError("A1.try_reads: reads should be the 8x8 count of windows that read "
                             f"each pixel (values 1 to 4), got shape {reads.shape}")


def test_try_matmul_forward_and_weight_gradient(checks, a1):
    """The lesson's shapes: x2 (2, 5, 4, 3), a 1x1 layer 5 -> 6."""
    a1.check_matmul(checks, (2, 5, 6, 4, 3), 0)


def test_try_upsample_by_col2im(checks, a1):
    a1.check_upsample(checks, 0)
