"""Checks shared by A7's visible and hidden tests (lesson 08's exercises)."""
import io
import os
import pickle
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest

import tinynets as tn


def check_same_pads(same_pads, cases) -> None:
    """TensorFlow's SAME padding, by what it must achieve: the output has ceil(size / s)
    positions, no smaller total padding gives that, and the odd pixel goes after."""
    for n, k, s in cases:
        got = same_pads(n, k, s)
        if not (isinstance(got, tuple) and len(got) == 2 and all(type(v) is int for v in got)):
            raise AssertionError(f"A7.try_same_pads: same_pads({n}, {k}, {s}) should return a tuple "
                                 f"of two ints (before, after), got {got!r}")
        before, after = got
        out = -(-n // s)
        total = before + after
        problem = None
        if before < 0 or after - before not in (0, 1):
            problem = "before and after must be >= 0, and after is before or before + 1"
        elif 1 + (n + total - k) // s != out:
            problem = f"the output must have ceil(size / s) = {out} positions"
        elif total > 0 and 1 + (n + total - 1 - k) // s >= out:
            problem = "a smaller total padding gives the same output size"
        if problem:
            raise AssertionError(f"A7.try_same_pads: same_pads({n}, {k}, {s}) = {got}: {problem}")


def check_fold(checks, fold, C_in, C_out, k, groups, bias, eps, seed) -> None:
    """fold's (W', b') against the layer pair they replace: conv (float64), then eval BN."""
    rng = np.random.default_rng(seed)
    conv = tn.Conv2d(C_in, C_out, k, padding=k // 2, groups=groups, bias=bias, dtype=np.float64)
    bn = tn.BatchNorm2d(C_out, eps=eps, dtype=np.float64).eval()
    bn.weight.data[:] = rng.uniform(0.5, 2, C_out)
    bn.bias.data[:] = rng.standard_normal(C_out)
    bn.running_mean[:] = rng.standard_normal(C_out)
    bn.running_var[:] = rng.uniform(0.1, 3, C_out)
    b = conv.bias.data if bias else np.zeros(C_out)
    W2, b2 = fold(conv.weight.data.copy(), b.copy(), bn.weight.data.copy(), bn.bias.data.copy(),
                  bn.running_mean.copy(), bn.running_var.copy(), eps)
    what = f"A7.try_fold, conv {C_in}->{C_out} k={k} groups={groups} bias={bias} eps={eps}"
    W2, b2 = np.asarray(W2), np.asarray(b2)
    if W2.shape != conv.weight.data.shape or b2.shape != (C_out,):
        raise AssertionError(f"{what}: expected W' {conv.weight.data.shape} and b' ({C_out},), "
                             f"got {W2.shape} and {b2.shape}")
    x = rng.standard_normal((2, C_in, 7, 7))
    want = bn(conv(x))
    folded = tn.Conv2d(C_in, C_out, k, padding=k // 2, groups=groups, bias=True, dtype=np.float64)
    folded.weight.data, folded.bias.data = W2.astype(np.float64), b2.astype(np.float64)
    checks.expect_close(f"{what}: folded conv vs conv then BN", folded(x), want, 1e-10)


class Payload:
    """Pickles to a call of os.system(command): loading it runs the command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def load_with(unpickler, data: bytes):
    return unpickler(io.BytesIO(data)).load()


def expect_refused(unpickler, data: bytes, name: str, flag=None) -> None:
    """Loading ``data`` must raise pickle.UnpicklingError naming ``name``; ``flag``: a file the
    payload would create if it ran."""
    try:
        load_with(unpickler, data)
    except pickle.UnpicklingError as err:
        if name not in str(err):
            raise AssertionError(f"A7.try_only_ordered_dict: the error should name the refused "
                                 f"global ({name!r}), got {str(err)!r}") from None
    except Exception as err:
        raise AssertionError(f"A7.try_only_ordered_dict: expected pickle.UnpicklingError for "
                             f"{name}, got {type(err).__name__}: {err}") from None
    else:
        raise AssertionError(f"A7.try_only_ordered_dict: a pickle naming {name} was loaded")
    if flag is not None and os.path.exists(flag):
        raise AssertionError("A7.try_only_ordered_dict: the payload ran")


@pytest.fixture
def a7():
    return SimpleNamespace(check_same_pads=check_same_pads, check_fold=check_fold,
                           Payload=Payload, load_with=load_with, expect_refused=expect_refused,
                           OrderedDict=OrderedDict)
