"""Compile kernels in a second process: the backward's during the forward, the parallel
builds while their one-thread twins run.

From an empty cache, compiling is most of a first train step (MobileNetV2 on 2 cores:
about 27 s of compiling its parallel kernels, under 1 s of computing), and Numba compiles
on one core. So when a layer runs its first float32 forward in train mode, it names the
kernels its backward will need (:func:`expect`); those that are not in Numba's disk cache
yet go to one helper process (:func:`main`), which compiles them into that cache while
this process compiles and runs the forward. They are the one-thread twins, which compile
in half the time; the parallel builds follow (``tiers``). Before a backward first runs
its kernels (:func:`ready`), this process compiles those no one has started; while the
helper is still busy with one it needs, it compiles others the helper has not reached,
then loads the helper's from the disk cache.

The helper takes the kernels needed now first, the latest named first (the layers nearest
the output named theirs last, and their backward runs first); then the parallel builds
that ``tiers`` sends (:func:`later`), in the order they were sent.

Each kernel is compiled once: whichever process gets to it first claims it by creating a
file (``O_EXCL``) in a private temporary folder, and writes ``<claim>.done`` once it is in
the cache. If the helper cannot start or dies, this process compiles whatever is left,
as it would without a helper.

``TINYNETS_COMPILE_HELPER=0`` turns the helper off, and with it the twins for float32. It
never starts on a machine with one core, for float64 (the checking precision, which runs
the twins), or when every kernel a layer names is in the cache already. It prints each kernel it
compiles, as this process does, and exits once this process has gone.

Each kernel module lists its backward's kernels in ``SIGNATURES``: a pattern of the
argument types, one token per argument, "4" a C-contiguous 4-D array of the layer's dtype
(likewise "1" and "3") and "i" an int64; the helper reads the same patterns on its input.
``tests/test_warm.py`` checks that each pattern is a signature a real train step compiles.
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
_expected: Dict[tuple, List["Job"]] = {}
_helper: Optional["_Helper"] = None
POLL = 0.005                                     # seconds between looks at the helper's claims


def enabled() -> bool:
    return os.environ.get("TINYNETS_COMPILE_HELPER", "1") != "0" and (os.cpu_count() or 1) > 1


def signature(kernel: Kernel, dtype, pattern: Optional[str] = None) -> tuple:
    """The Numba argument types of ``kernel`` for arrays of ``dtype``: ``pattern``, or the
    kernel's SIGNATURES pattern (a twin's is its parallel kernel's)."""
    from numba import types
    from numba.np.numpy_support import from_dtype
    if pattern is None:
        module = importlib.import_module(f"{__package__}.{kernel[0]}")
        pattern = module.SIGNATURES[kernel[1].removesuffix("_1t")]
    item = from_dtype(np.dtype(dtype))
    return tuple(types.int64 if t == "i" else types.Array(item, int(t), "C")
                 for t in pattern.split())


def pattern(sig: tuple) -> Optional[str]:
    """The pattern of Numba argument types ``sig`` ("4 1 i"), or None if it has a type that
    patterns do not spell (anything but writeable C-contiguous arrays and int64; an array
    that a layer's cache holds is read-only, and Numba compiles separately for that)."""
    from numba import types
    tokens = []
    for t in sig:
        if isinstance(t, types.Array) and t.layout == "C" and t.mutable and 1 <= t.ndim <= 9:
            tokens.append(str(t.ndim))
        elif t == types.int64:
            tokens.append("i")
        else:
            return None
    return " ".join(tokens)


def _dispatcher(kernel: Kernel):
    return getattr(importlib.import_module(f"{__package__}.{kernel[0]}"), kernel[1])


def in_cache(kernel: Kernel, sig: tuple) -> bool:
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
    ``kernels()`` on ``dtype`` arrays: start compiling those not in the cache yet (their
    one-thread twins, which the backward runs until ``tiers`` has the parallel builds)."""
    if key in _expected or key in _ready:
        return
    if np.dtype(dtype) != np.float32 or not enabled():
        _ready.add(key)
        return
    todo = []
    for k in kernels():
        sig, twin = signature(k, dtype), (k[0], k[1] + "_1t")
        if not in_cache(k, sig) and not in_cache(twin, sig):
            todo.append((twin, sig))
    if not todo or not _start() or not _helper.send("now", [(k, s) for k, s in todo], dtype):
        _ready.add(key)                          # nothing to do, or no helper: as without one
        return
    _expected[key] = [Job(k, s, _helper.claim_name(k, dtype)) for k, s in todo]
    _helper.pending += _expected[key]


def later(kernel: Kernel, pattern: str, dtype) -> Optional["Job"]:
    """Have the helper compile ``kernel`` for ``pattern`` after the kernels needed now: the
    job, or None if there is no helper."""
    sig = signature(kernel, dtype, pattern)
    if not _start() or not _helper.send("later", [(kernel, sig)], dtype):
        return None
    return Job(kernel, sig, _helper.claim_name(kernel, dtype))


def helper_alive() -> bool:
    return _helper is not None and _helper.proc.poll() is None


def _start() -> bool:
    """Start the helper if it has not been started; False if there is none."""
    global _helper
    if _helper is None:
        _helper = _Helper.start()
    return _helper is not None


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


class Job:
    """One kernel for one signature, and its claim file in the folder both processes share."""

    def __init__(self, kernel: Kernel, sig: tuple, claim: str):
        self.kernel, self.sig, self.claim = kernel, sig, claim

    def done(self) -> bool:
        """Compiled into the disk cache by either process."""
        return os.path.exists(self.claim + ".done")

    def finished(self) -> bool:
        """Done by either process, or done here now because no one had started it."""
        return self.done() or self.take()

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

    def send(self, when: str, todo, dtype) -> bool:
        """Send kernels to compile ``when`` ("now" or "later"), each with its signature."""
        try:
            for kernel, sig in todo:
                self.proc.stdin.write(f"{when} {kernel[0]} {kernel[1]} {np.dtype(dtype).name} "
                                      f"{pattern(sig).replace(' ', ',')}\n")
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
    """The helper: compile the kernels named on stdin ("now|later module function dtype
    pattern", the pattern's tokens joined by commas), each that no one has claimed, into
    Numba's disk cache, and mark each done. Those for now first, the latest named first;
    then those for later, in order."""
    folder = argv[0]
    # Ctrl-C (or a notebook's interrupt) reaches the whole process group: the helper leaves
    # it to its parent, and exits when the parent has gone (its stdin closes)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lines: Dict[str, List[List[str]]] = {"now": [], "later": []}
    more = threading.Condition()
    closed = []

    def read() -> None:
        for line in sys.stdin:
            when, *job = line.split()
            with more:
                lines[when].append(job)
                more.notify()
        with more:
            closed.append(True)
            more.notify()

    threading.Thread(target=read, daemon=True).start()
    while True:
        with more:
            while not lines["now"] and not lines["later"] and not closed:
                more.wait()
            if lines["now"]:
                when, (module, name, dtype, tokens) = "now", lines["now"].pop()
            elif lines["later"]:
                when, (module, name, dtype, tokens) = "later", lines["later"].pop(0)
            else:
                return 0
        path = os.path.join(folder, f"{module}.{name}.{dtype}")
        if _claim(path):
            os.environ["TINYNETS_COMPILE_AHEAD"] = when                 # the notice says why
            try:
                _dispatcher((module, name)).compile(
                    signature((module, name), dtype, tokens.replace(",", " ")))
            finally:
                _mark_done(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
