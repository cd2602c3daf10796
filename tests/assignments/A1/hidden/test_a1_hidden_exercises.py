"""A1, hidden: lesson 01's exercises on inputs of other shapes, and its question."""
import pytest

pytestmark = [pytest.mark.A1, pytest.mark.hidden]


def test_try_matmul_other_shapes(checks, a1):
    for seed, shape in enumerate([(1, 3, 2, 5, 5), (4, 1, 7, 2, 6), (3, 8, 8, 1, 1)], 1):
        a1.check_matmul(checks, shape, seed)


def test_try_upsample_other_values(checks, a1):
    for seed in (1, 2, 3):
        a1.check_upsample(checks, seed)


def test_q_nine_choice(checks):
    ns = checks.exercise("01", "A1.q_nine", forbid=("tinynets",))
    answer = str(checks.defined(ns, "answer", "A1.q_nine")).strip().lower()
    if answer != "b":
        raise AssertionError(f"A1.q_nine: {answer!r} is not the reason (expected one letter)")
