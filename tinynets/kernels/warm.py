"""Compile the backward's kernels in a second process while the first runs the forward.

From an empty cache, compiling is most of a first train step (MobileNetV2 on 2 cores:
about 40 s of compiling, under 1 s of computing), and Numba compiles on one core. So when
a layer runs its first float32 forward in train mode, it names the kernels its backward
will need (:func:`expect`); those that are not in Numba's disk cache yet go to one helper
process (:func:`main`), which compiles them into that cache while this process compiles
and runs the forward. Before a backward first runs its kernels (:func:`ready`), this
process compiles those no one has started; while the helper is still busy with one it
needs, it compiles others the helper has not reached, then loads the helper's from the
disk cache.

Each kernel is compiled once: whichever process gets to it first claims it by creating a
file (``O_EXCL``) in a private temporary folder, and writes ``<claim>.done`` once it is in
the cache. If the helper cannot start or dies, this process compiles whatever is left,
as it would without a helper.

``TINYNETS_COMPILE_HELPER=0`` turns the helper off. It never starts on a machine with one
core, for float64 (the checking precision, whose one-thread kernels compile fast), or
when every kernel a layer names is in the cache already. It prints each kernel it
compiles, as this process does, and exits once this process has gone.

Each kernel module lists the kernels a helper may compile in ``SIGNATURES``: a pattern of
the argument types, one token per argument, "4" a C-contiguous 4-D array of the layer's
dtype (likewise "1" and "3") and "i" an int64. ``tests/test_warm.py`` checks that each
pattern is a signature a real train step compiles.
"""
from __future__ import annotations

import atexit
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

Kernel = Tuple[str, str]                         # (module, function), e.g. ("norm", "_bn_stats")
_ready: set = set()                              # keys whose kernels this process may run now
_expected: Dict[tuple, List["_Job"]] = {}
_helper: Optional["_Helper"] = None
POLL = 0.005                                     # seconds between looks at the helper's claims


def enabled() -> bool:
    return os.environ.get("TINYNETS_COMPILE_HELPER", "1") != "0" and (os.cpu_count() or 1) > 1


def signature(kernel: Kernel, dtype) -> tuple:
    """The Numba argument types of ``kernel`` for arrays of ``dtype`` (its SIGNATURES pattern)."""
    from numba import types
    from numba.np.numpy_support import from_dtype
    module = importlib.import_module(f"{__package__}.{kernel[0]}")
    item = from_dtype(np.dtype(dtype))
    return tuple(types.int64 if t == "i" else types.Array(item, int(t), "C")
                 for t in module.SIGNATURES[kernel[1]].split())


def _dispatcher(kernel: Kernel):
    return getattr(importlib.import_module(f"{__package__}.{kernel[0]}"), kernel[1])


def _in_cache(kernel: Kernel, sig: tuple) -> bool:
    """True if ``kernel`` is compiled for ``sig`` here already, or is in the disk cache (then
    it is loaded now, as its first call would load it)."""
    disp = _dispatcher(kernel)
    if sig in disp.overloads:
        return True
    try:
        hit = disp._cache.load_overload(sig, disp.targetctx) is not None
    except Exception:                            # a Numba without this cache API: ask the helper
        return False
    if hit:
        disp.compile(sig)                        # finds it in the cache: no compiling
    return hit


def expect(key: tuple, kernels: Callable[[], List[Kernel]], dtype) -> None:
    """A layer with configuration ``key`` ran a forward whose backward will run
    ``kernels()`` on ``dtype`` arrays: start compiling those that are not compiled yet."""
    if key in _expected or key in _ready:
        return
    if np.dtype(dtype) != np.float32 or not enabled():
        _ready.add(key)
        return
    todo = [(k, signature(k, dtype)) for k in kernels()]
    todo = [(k, s) for k, s in todo if not _in_cache(k, s)]
    global _helper
    if todo and _helper is None:
        _helper = _Helper.start()
    if not todo or _helper is None or not _helper.send(todo, dtype):
        _ready.add(key)                          # nothing to do, or no helper: as without one
        return
    _expected[key] = [_Job(k, s, _helper.claim_name(k, dtype)) for k, s in todo]
    _helper.pending += _expected[key]


def ready(key: tuple) -> None:
    """Before a backward runs its kernels: make sure each is compiled, by the helper or here.

    A kernel no one has started is compiled here now; while the helper is still compiling
    one, this process compiles another that no one has started (the earliest expected, which
    its backward needs last), so that neither core waits while there is work."""
    if key in _ready:
        return
    for job in _expected.pop(key, []):
        while not job.finished() and _helper.proc.poll() is None:
            if not _helper.steal():
                time.sleep(POLL)
    _ready.add(key)


class _Job:
    """One kernel for one signature, and its claim file in the folder both processes share."""

    def __init__(self, kernel: Kernel, sig: tuple, claim: str):
        self.kernel, self.sig, self.claim = kernel, sig, claim

    def finished(self) -> bool:
        """Done by either process, or done here now because no one had started it."""
        return os.path.exists(self.claim + ".done") or self.take()

    def take(self) -> bool:
        """Claim and compile it here, if no one has; True if so."""
        if not _claim(self.claim):
            return False
        try:
            _dispatcher(self.kernel).compile(self.sig)
        finally:
            _mark_done(self.claim)
        return True


class _Helper:
    """The helper process, the folder of claims both processes share, the jobs sent."""

    def __init__(self, proc: subprocess.Popen, folder: str):
        self.proc, self.folder, self.pending = proc, folder, []

    @staticmethod
    def start() -> Optional["_Helper"]:
        folder = tempfile.mkdtemp(prefix="tinynets-compile-")
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, TINYNETS_COMPILE_HELPER="0")          # no helper of its own
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen([sys.executable, "-c", _MAIN, folder], env=env,
                                    stdin=subprocess.PIPE, text=True)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        helper = _Helper(proc, folder)
        atexit.register(helper.stop)
        return helper

    def claim_name(self, kernel: Kernel, dtype) -> str:
        return os.path.join(self.folder, f"{kernel[0]}.{kernel[1]}.{np.dtype(dtype).name}")

    def send(self, todo, dtype) -> bool:
        try:
            for kernel, _ in todo:
                self.proc.stdin.write(f"{kernel[0]} {kernel[1]} {np.dtype(dtype).name}\n")
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):            # the helper has gone
            return False

    def steal(self) -> bool:
        """Compile here the earliest sent kernel no one has started; False if there is none."""
        while self.pending:
            if self.pending.pop(0).take():       # claimed by the helper: it leaves the list too
                return True
        return False

    def stop(self) -> None:
        try:
            self.proc.stdin.close()              # the helper exits after its current kernel
        except OSError:
            pass
        try:
            self.proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _claim(path: str) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False
    except OSError:                              # the folder is gone: the other side stopped
        return False


def _mark_done(path: str) -> None:
    try:
        with open(path + ".done", "w"):
            pass
    except OSError:
        pass


_MAIN = "import sys; from tinynets.kernels import warm; sys.exit(warm.main(sys.argv[1:]))"


def main(argv: List[str]) -> int:
    """The helper: compile the kernels named on stdin ("module function dtype"), each that
    no one has claimed, into Numba's disk cache, and mark each done. The latest named
    first: the layers nearest the output named theirs last, and their backward runs first."""
    folder = argv[0]
    os.environ["TINYNETS_COMPILE_AHEAD"] = "1"                         # the notice says so
    # Ctrl-C (or a notebook's interrupt) reaches the whole process group: the helper leaves
    # it to its parent, and exits when the parent has gone (its stdin closes)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lines: List[str] = []
    more = threading.Condition()
    closed = []

    def read() -> None:
        for line in sys.stdin:
            with more:
                lines.append(line)
                more.notify()
        with more:
            closed.append(True)
            more.notify()

    threading.Thread(target=read, daemon=True).start()
    while True:
        with more:
            while not lines and not closed:
                more.wait()
            if not lines:
                return 0
            module, name, dtype = lines.pop().split()
        path = os.path.join(folder, f"{module}.{name}.{dtype}")
        if _claim(path):
            try:
                _dispatcher((module, name)).compile(signature((module, name), dtype))
            finally:
                _mark_done(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
