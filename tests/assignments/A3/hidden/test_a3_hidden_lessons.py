"""A3, hidden: the exercises of lessons 03 and 04 on other inputs, and the two questions.

Other shapes and widths than the lessons check (so that stored answers do not pass), the
counts compared with arithmetic over the stage tables or the reference counts.
"""
import importlib.util
import os

import numpy as np
import pytest

from tinynets.models.mobilenet_v1 import STAGES

pytestmark = [pytest.mark.A3, pytest.mark.hidden]


def _load(name):
    spec = importlib.util.spec_from_file_location(
        f"a3_{name}", os.path.join(os.path.dirname(__file__), "..", "visible", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


l03, l04 = _load("test_a3_lesson03"), _load("test_a3_lesson04")


def v1_arithmetic(a3, alpha, H, full=False):
    """MobileNetV1's conv and FC MACs and weights at (alpha, H) by arithmetic; ``full``: every
    block a standard 3x3 convolution (weights only, no BN, no bias)."""
    c, D = a3.make_divisible(32 * alpha), -(-H // 2)
    macs, weights = 27 * c * D * D, 27 * c
    for out, stride, repeats in STAGES:
        o = a3.make_divisible(out * alpha)
        for j in range(repeats):
            D = -(-D // (stride if j == 0 else 1))
            per = 9 * c * o if full else 9 * c + c * o
            macs, weights, c = macs + per * D * D, weights + per, o
    return macs + c * 1000, weights + c * 1000


def test_try_block_counts_other_blocks(checks):
    l03.check_block_counts(checks, [(3, 5, 1, 2), (7, 9, 13, 2), (100, 3, 4, 1), (40, 80, 15, 2),
                                    (8, 16, 2, 2)])


def test_try_predict_macs_other_widths(checks, a3):
    want = {k: m for k, (_, m) in a3.targets("mobilenet_v1").items() if k[1] != 224}
    for alpha in (1.0, 0.5, 0.25):
        for H in (64, 96, 256, 320):
            want[alpha, H] = v1_arithmetic(a3, alpha, H)[0]
    l03.check_predict(checks, a3, want)


def test_q_resolution_choice(checks):
    ns = checks.exercise("03", "A3.q_resolution", forbid=("tinynets",))
    answer = str(checks.defined(ns, "answer", "A3.q_resolution")).strip().lower()
    if answer != "b":
        raise AssertionError(f"A3.q_resolution: {answer!r} is not the reason (expected one letter)")


def test_try_full_conv_other_width(checks, a3):
    macs, weights = v1_arithmetic(a3, 0.5, 160, full=True)
    l03.check_full_conv(checks, 0.5, 160, (macs, weights))


def test_try_block_cost_other_shapes(checks):
    l04.check_block_cost(checks, [(6, 1.5, 7, 2, 9, 6), (6, 2.5, 6, 1, 5, 5), (4, 1, 9, 2, 7, 7),
                                  (16, 6, 16, 1, 3, 8), (2, 6, 3, 2, 2, 1)])


def test_try_two_residuals_other_blocks(checks, a3):
    l04.check_two_residuals(checks, a3, [(6, 6, 1, 1), (6, 6, 1, 2)], (1, 6, 5, 4), 7)


def test_q_paths_number(checks):
    ns = checks.exercise("04", "A3.q_paths", forbid=("tinynets",))
    answer = checks.defined(ns, "answer", "A3.q_paths")
    if not isinstance(answer, (int, np.integer, float)) or answer != 8:
        raise AssertionError(f"A3.q_paths: {answer!r} is not the number of paths through three "
                             "residual blocks")


def test_try_collapsed_hard_cases(checks, a3):
    """Parallel rows (two active coordinates that determine nothing), no active coordinate at
    all, every coordinate active, and other random embeddings."""
    rng = np.random.default_rng(8)
    X = np.concatenate([l04.spiral(200), rng.standard_normal((100, 2)) * 2])
    parallel = np.array([[1.0, 0.5], [2.0, 1.0], [-1.0, 0.3], [0.2, -1.0]])
    cases = [("T with two parallel rows", parallel, X),
             ("T = [[1, 0], [0, 1]]", np.eye(2), X),
             ("T with 4 rows", rng.standard_normal((4, 2)), X),
             ("T with 7 rows", rng.standard_normal((7, 2)), X),
             ("points where no coordinate is positive", np.array([[1.0, 1.0], [1.0, 2.0]]),
              -np.abs(rng.standard_normal((20, 2))) - 0.1)]
    l04.check_collapsed_cell(checks, a3, cases)


def test_try_v2_counts_all_rows(checks, a3):
    rows = [k for k in a3.targets("mobilenet_v2") if k not in ((1.0, 224), (0.5, 224), (1.0, 160))]
    l04.check_v2_counts(checks, a3, rows)


def test_try_block_other_configs(checks, a3):
    """t = 1 with and without the residual, stride 2 at t = 6, float64 parameters, and the
    residual rule on blocks that are not MobileNetV2's."""
    l04.check_block_numbers(checks, a3, (5, 5, 1, 1), (2, 5, 4, 4), 2)
    l04.check_block_numbers(checks, a3, (4, 3, 1, 1), (1, 4, 5, 6), 3)
    l04.check_block_numbers(checks, a3, (2, 3, 2, 6), (1, 2, 7, 7), 4)
    cls = l04.my_block_class(checks)
    for cfg in [(8, 8, 2, 6), (8, 8, 1, 6), (8, 16, 1, 6), (12, 12, 1, 1)]:
        blk = cls(*cfg, dtype=np.float64)
        if bool(getattr(blk, "use_res_connect", None)) != (cfg[2] == 1 and cfg[0] == cfg[1]):
            raise AssertionError(f"A3.try_block: MyInvertedResidual{cfg} should have "
                                 f"use_res_connect = {cfg[2] == 1 and cfg[0] == cfg[1]}")
        dtypes = {p.data.dtype for p in blk.parameters()}
        if dtypes != {np.dtype(np.float64)}:
            raise AssertionError(f"A3.try_block: MyInvertedResidual{cfg} with dtype=np.float64 "
                                 f"should have float64 parameters, got {dtypes}")
