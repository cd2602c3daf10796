"""Checks shared by the assignments' tests (visible and hidden).

A student's code is compared with the PyTorch references in ``tests/fixtures/layers.npz``
or with finite differences of the student's own forward: never with a library function
that the student version has stubbed. The messages say what magnitude to expect, as in
CS231n ("relative error should be below 1e-8").
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "layers.npz")


def rel_error(a, b) -> float:
    """CS231n's relative error: the worst element-wise |a - b| / max(1e-8, |a| + |b|)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def expect_close(what: str, got, want, tol: float = 1e-8) -> None:
    """Raise AssertionError naming ``what``, the expected magnitude and the error found."""
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: expected shape {want.shape}, got {got.shape}")
    err = rel_error(got, want)
    if not err < tol:                                  # also catches NaN
        raise AssertionError(f"{what}: relative error should be below {tol:.0e}, got {err:.2e}")


def numerical_gradient(f, array: np.ndarray, dout: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central differences of sum(f() * dout) with respect to ``array`` (perturbed in place,
    then restored). Convolution is linear in x and in w, so the only error is rounding."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(array.size):
        old = flat[i]
        flat[i] = old + h
        pos = np.sum(f() * dout)
        flat[i] = old - h
        neg = np.sum(f() * dout)
        flat[i] = old
        gflat[i] = (pos - neg) / (2 * h)
    return grad


def expect_gradients(what: str, f, x, w, dout, grads) -> None:
    """(dx, dw, db) = ``grads`` against central differences of ``f`` (which reads x and w)
    and db = dout summed over N, H, W; ``what`` names the function and the case."""
    dx, dw, db = grads
    expect_close(f"{what} dx vs finite differences", dx, numerical_gradient(f, x, dout), 1e-7)
    expect_close(f"{what} dw vs finite differences", dw, numerical_gradient(f, w, dout), 1e-7)
    expect_close(f"{what} db", db, dout.sum(axis=(0, 2, 3)))


def dx_by_col2im(case):
    """The input gradient as unpad(col2im_taps(W^T @ dout)), groups=1 (student's col2im)."""
    from tinynets.kernels import conv_naive
    N, C, H, W = case.x.shape
    C_out, _, KH, KW = case.weight.shape
    OH, OW = case.dout.shape[2:]
    dcols = case.weight.reshape(C_out, -1).T @ case.dout.reshape(N, C_out, OH * OW)
    t, b, l, r = case.pads
    dxp = conv_naive.col2im_taps(dcols, (N, C, H + t + b, W + l + r), KH, KW, case.stride, OH, OW)
    return conv_naive.unpad(dxp, case.pads)


def conv_cases(*names: str):
    """The fixture's convolution cases with these ids (e.g. "conv/05"), as namespaces with
    x, weight, bias (or None), dout, out, dx, dweight, dbias, stride, pads, groups, name."""
    cases = []
    with np.load(FIXTURE, allow_pickle=False) as npz:
        for key in names:
            cfg = json.loads(str(npz[key + "/config"]))
            get = lambda k: npz[f"{key}/{k}"] if f"{key}/{k}" in npz.files else None  # noqa: E731
            cases.append(SimpleNamespace(
                name=f"{key} ({cfg['name']})", x=get("x"), weight=get("weight"), bias=get("bias"),
                dout=get("dout"), out=get("out"), dx=get("dx"), dweight=get("dweight"),
                dbias=get("dbias"), stride=cfg["stride"], pads=tuple(cfg["pads_tblr"]),
                groups=cfg["groups"]))
    return cases


LESSONS = os.path.join(os.path.dirname(__file__), "..", "..", "lessons")


def _names(code) -> set:
    """Every name, attribute and string constant in a code object and the ones nested in it."""
    found = set(code.co_names) | set(code.co_varnames)
    for const in code.co_consts:
        if isinstance(const, str):
            found.add(const)
        elif hasattr(const, "co_names"):
            found |= _names(const)
    return found


def exercise(lesson: str, task: str, forbid: tuple = (), **given) -> dict:
    """Run the exercise cell of a lesson and return the names it defined.

    ``lesson`` is the lesson's number ("02"); the cell is the code cell of
    ``lessons/02_*.ipynb`` whose first line names the task in brackets, e.g.
    ``# Try it 3 [A2.try_dhswish]: your answer``. It runs alone, in a namespace that has
    ``np``, ``math``, ``tn`` (tinynets) and the keyword arguments ``given`` (what the cell
    reads from earlier cells of the lesson). In the student version the cell raises the
    task's NotImplementedError until it is filled in.

    ``forbid``: names the cell may not use (the library function the exercise asks the
    student to write, e.g. ``("make_divisible",)``; "tinynets" also forbids ``tn``). A cell
    that names one fails before it runs. This reads the code; it is not a sandbox.
    """
    import glob
    import math

    import tinynets
    found = sorted(glob.glob(os.path.join(LESSONS, f"{lesson}_*.ipynb")))
    if len(found) != 1:
        raise AssertionError(f"lesson {lesson}: expected one lessons/{lesson}_*.ipynb, "
                             f"found {len(found)}")
    with open(found[0], encoding="utf-8") as f:
        cells = json.load(f).get("cells", [])
    name = os.path.basename(found[0])
    sources = []
    for cell in cells:
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        if cell.get("cell_type") == "code" and f"[{task}]" in src.split("\n", 1)[0]:
            sources.append(src)
    if len(sources) != 1:
        raise AssertionError(f"lessons/{name}: expected one code cell whose first line names "
                             f"[{task}], found {len(sources)} (keep the first line of each "
                             "exercise cell as it was handed out)")
    code = compile(sources[0], f"lessons/{name} [{task}]", "exec")
    banned = set(forbid) | ({"tn", "__import__", "import_module"} if "tinynets" in forbid else set())
    used = sorted(n for n in _names(code) if n in banned or n.split(".")[0] in banned)
    if used:
        raise AssertionError(f"{task}: this exercise asks for your own code; the cell may not "
                             f"use {', '.join(used)}")
    namespace = {"np": np, "math": math, "tn": tinynets, "__name__": "__exercise__", **given}
    if "tinynets" in forbid:
        del namespace["tn"]
    exec(code, namespace)  # noqa: S102
    return namespace


def defined(namespace: dict, name: str, task: str):
    """``namespace[name]``, or an AssertionError saying the exercise must define it."""
    if name not in namespace:
        raise AssertionError(f"{task}: the exercise cell must define {name!r}")
    return namespace[name]


@pytest.fixture
def checks():
    return SimpleNamespace(rel_error=rel_error, expect_close=expect_close,
                           numerical_gradient=numerical_gradient, conv_cases=conv_cases,
                           expect_gradients=expect_gradients, dx_by_col2im=dx_by_col2im,
                           exercise=exercise, defined=defined)


def _compiled_kernels():
    """(kernel name, number of compiled signatures) of every Numba kernel in tinynets."""
    if "numba" not in sys.modules:
        return {}
    from numba.core.dispatcher import Dispatcher
    found = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("tinynets.") and module is not None:
            for attr, value in list(vars(module).items()):
                if isinstance(value, Dispatcher):
                    found[f"{name}.{attr}"] = len(value.signatures)
    return found


KERNELS = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "tinynets",
                                        "kernels"))
TEACHING = {"conv_naive.py", "__init__.py"}      # the NumPy versions a student writes


@functools.lru_cache(maxsize=None)
def _kernel_file(filename: str) -> bool:
    path = os.path.realpath(filename)
    return os.path.dirname(path) == KERNELS and os.path.basename(path) not in TEACHING


@contextlib.contextmanager
def no_kernels(fresh: bool = False):
    """Fail (AssertionError on exit) if a function of a kernel module ran inside: compiled
    (a Numba kernel compiled; ``fresh``: any kernel has compiled at all) or as Python (a
    kernel's ``py_func``, seen by a profile hook). Importing a kernel module is not a call."""
    before = {} if fresh else _compiled_kernels()
    ran = set()

    def profile(frame, event, arg):
        # called on every call and return, so it stays cheap: one cached look-up per call
        if event == "call":
            code = frame.f_code
            if _kernel_file(code.co_filename) and code.co_name != "<module>":
                ran.add(f"{os.path.basename(code.co_filename)[:-3]}.{code.co_name}")

    old = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(old)
    called = sorted(k for k, n in _compiled_kernels().items() if n > before.get(k, 0))
    called += sorted(f"tinynets.kernels.{k} (as Python)" for k in ran)
    if called:
        raise AssertionError(f"this code called the Numba kernel(s) {', '.join(called)}; "
                             "this task asks for the NumPy version, written by you")


@pytest.fixture(autouse=True)
def _numpy_only(request):
    """A test marked ``numpy_only`` asks for NumPy code written by the student, so it runs
    inside ``no_kernels``: calling the fast kernel does not solve it, and grading it needs
    no JIT. When graded (TINYNETS_GRADING=1, a fresh process that runs only one task's
    tests) any compiled kernel counts."""
    if request.node.get_closest_marker("numpy_only") is None:
        yield
        return
    with no_kernels(fresh=os.environ.get("TINYNETS_GRADING") == "1"):
        yield
