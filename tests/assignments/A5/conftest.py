"""Checks shared by A5's tests: the fixtures' layer shapes, the reference counts, and a guard
that the code under test counts by closed forms, not by asking the library.

The guard (``by_hand``) watches every Python call while the student's code runs. A call
into a layer, a block, a model, a kernel or the library's counters (``count_macs``,
``count_params``, ``summary``, a layer's ``macs``/``output_shape``/``profile``, building any
``Module``, ``kernels.conv_naive.out_size``) fails the test: these tasks ask for the
arithmetic, written out.
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

HERE = os.path.dirname(__file__)
FIXTURES = os.path.join(HERE, "..", "..", "fixtures")
LIBRARY = os.path.realpath(os.path.join(HERE, "..", "..", "..", "tinynets"))
WATCHED = ("nn", "models", "kernels")   # the layers, blocks, models, counting, out_size
# what a student's own file also holds of the library: its counters and constructors
LIBRARY_PARTS = {
    "counting.py": {"count_params", "count_macs", "count_flops", "summary", "_one_image",
                    "__init__", "table", "profile", "output_shape", "macs", "flops"},
    "efficientnet.py": {"__init__", "_build", "_norm_settings", "_constructor", "build",
                        "efficientnet"},
}


@functools.lru_cache(maxsize=None)
def _watched(filename: str, name: str, own: str, allow: frozenset) -> bool:
    path = os.path.realpath(filename)
    folder, base = os.path.split(path)
    if os.path.dirname(folder) != LIBRARY or os.path.basename(folder) not in WATCHED:
        return False
    if name in allow or name == "<module>":
        return False
    if base == own:                      # the student's file: only its library parts
        return name in LIBRARY_PARTS.get(base, set())
    return True


@contextlib.contextmanager
def by_hand(what: str, own: str = None, allow: tuple = ()):
    """Fail (AssertionError on exit) if the code inside called into the library's layers,
    blocks, models or counters. ``own``: the file the task is in ("counting.py"), whose other
    functions (the student's) may run; ``allow``: names that may be called elsewhere (e.g.
    ``make_divisible``). A NotImplementedError (a stub) passes through unchanged; any other
    exception too, unless the library was called."""
    allowed = frozenset(allow)
    called = set()
    old = sys.getprofile()

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            if _watched(code.co_filename, code.co_name, own, allowed):
                called.add(f"{os.path.basename(code.co_filename)[:-3]}."
                           f"{getattr(code, 'co_qualname', code.co_name)}")
        if old is not None:
            old(frame, event, arg)

    def found():
        return AssertionError(f"{what} called the library ({', '.join(sorted(called)[:4])}); "
                              "this task asks for the closed form, computed by your own code")

    sys.setprofile(profile)
    try:
        yield
    except NotImplementedError:
        raise                            # a stub: reported as not implemented
    except Exception as err:             # e.g. a ValueError the library raised for the student
        if called:
            raise found() from err
        raise
    finally:
        sys.setprofile(old)
    if called:
        raise found()


def layer_cases(prefix: str, names=None):
    """The fixture's cases whose key starts with ``prefix`` ("conv/", "conv_same/", "linear/",
    "bn_train/"), as namespaces: ``config`` (dict) and the arrays' shapes (``x``, ``weight``,
    ``bias`` (None when absent), ``out``)."""
    cases = []
    with np.load(os.path.join(FIXTURES, "layers.npz"), allow_pickle=False) as npz:
        keys = sorted({k.rsplit("/", 1)[0] for k in npz.files
                       if k.startswith(prefix) and k.endswith("/config")})
        for key in keys:
            if names is not None and key not in names:
                continue
            shape = lambda k: tuple(npz[f"{key}/{k}"].shape) if f"{key}/{k}" in npz.files else None  # noqa: E731
            cases.append(SimpleNamespace(name=key, config=json.loads(str(npz[key + "/config"])),
                                         x=shape("x"), weight=shape("weight"), bias=shape("bias"),
                                         out=shape("out")))
    return cases


def targets(model: str):
    """The rows of ``tests/fixtures/targets.json`` (the papers' and reference implementations'
    exact counts) for ``model``."""
    with open(os.path.join(FIXTURES, "targets.json"), encoding="utf-8") as f:
        return [r for r in json.load(f)["rows"] if r["model"] == model]


def expect_equal(what: str, got, want) -> None:
    """Counts are integers: they must be equal, and Python ints (not floats)."""
    if type(got) is not int:
        raise AssertionError(f"{what}: should return a Python int, got {type(got).__name__} {got!r}")
    if got != want:
        raise AssertionError(f"{what}: expected {want:,}, got {got:,} "
                             f"({'too many' if got > want else 'too few'} by {abs(got - want):,})")


@pytest.fixture
def a5():
    return SimpleNamespace(by_hand=by_hand, layer_cases=layer_cases, targets=targets,
                           expect_equal=expect_equal)
