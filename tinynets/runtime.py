"""The settings of tinynets that touch the whole process, all of them, in one place.

``import tinynets`` calls :func:`apply`, which makes three settings; README's "Process-wide
settings" says the same for users. Each has an environment variable that turns it off
before the import, and :func:`restore` undoes them afterwards.

Numba's threading layer (``TINYNETS_THREADING=numba`` leaves Numba's choice alone)
    Numba's order of preference becomes TBB, then its own workqueue, then OpenMP, unless
    ``NUMBA_THREADING_LAYER`` or ``NUMBA_THREADING_LAYER_PRIORITY`` says otherwise. With
    OpenMP, tinynets needed ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads otherwise spin
    after each kernel and keep OpenBLAS's threads off the cores (a stem conv took 59 ms
    instead of 2.7 ms on 2 cores). But a wait policy belongs to the whole process: with
    torch imported first, Numba ran on torch's OpenMP runtime, already started with
    spinning threads (MobileNetV2 batch-1 inference 400 ms instead of 16 ms); with
    tinynets imported first, torch shared the passive runtime and its own batch-1
    inference took 45 ms instead of 19 ms. TBB and the workqueue are not OpenMP, so
    neither library's setting reaches the other. (The workqueue is slower to start a
    kernel, about 40 us against OpenMP's 3-10 us and TBB's 2, and must not be entered from
    two Python threads at once.)
glibc's malloc (``TINYNETS_MALLOC=default`` leaves it alone)
    Freed blocks under 32 MB are kept for reuse instead of going back to the OS: every
    training step allocates the same activations again, and fresh pages must be faulted in
    and zeroed. MobileNetV2's train step (batch 16, 224): 1.65-2.0 s before, 1.1-1.45 s
    after. Memory that a step freed stays mapped until the process ends or
    :func:`restore` (which also trims the heap).
OpenBLAS's idle threads (``TINYNETS_BLAS_WAIT=default`` leaves them alone)
    After a GEMM, numpy's OpenBLAS keeps its worker threads spinning (``sched_yield`` in a
    loop) for 2^28 CPU cycles, about 0.1 s, before they sleep. Every pointwise conv is a
    GEMM followed by a BatchNorm kernel, and on 2 cores a spinning BLAS thread takes a core
    from the kernel's threads: MobileNetV2's train step (batch 16, 224) took 1.3-1.5x as long as
    with a spin of 2^14 cycles (a few microseconds), which tinynets sets. OpenBLAS reads
    ``OPENBLAS_THREAD_TIMEOUT`` once, when numpy loads it; tinynets sets the variable, has
    OpenBLAS read its environment again (``openblas_read_env``), restarts its idle threads
    (``blas_thread_shutdown_``, as after a fork) and removes the variable again, so child
    processes do not inherit it. A user's own ``OPENBLAS_THREAD_TIMEOUT`` is kept. torch
    has its own BLAS and threads; this reaches numpy's OpenBLAS (and any other loaded
    OpenBLAS) only. Back-to-back GEMMs with nothing between them pay a few percent more
    to wake the threads.
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Dict

# mallopt's parameters and glibc's defaults for them
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_DEFAULT = 128 * 1024
PRIORITY = ["tbb", "workqueue", "omp"]

_applied: Dict[str, object] = {}


def _numba_started() -> bool:
    """True once Numba has loaded its threading layer (it cannot change after that)."""
    from numba.np.ufunc import parallel
    return bool(getattr(parallel, "_is_initialized", False))


def _set_priority() -> str:
    if os.environ.get("TINYNETS_THREADING", "") == "numba":
        return "left to Numba (TINYNETS_THREADING=numba)"
    if "NUMBA_THREADING_LAYER" in os.environ or "NUMBA_THREADING_LAYER_PRIORITY" in os.environ:
        return "left to Numba (NUMBA_THREADING_LAYER or _PRIORITY is set)"
    import numba
    if _numba_started():
        return "left to Numba (its threading layer had already started)"
    _applied["priority"] = list(numba.config.THREADING_LAYER_PRIORITY)
    numba.config.THREADING_LAYER_PRIORITY = list(PRIORITY)
    tbb = _load_pip_tbb()
    return "preference " + " > ".join(PRIORITY) + (" (TBB loaded from the tbb package)" if tbb else "")


def _load_pip_tbb() -> str:
    """Load the TBB library of the ``tbb`` wheel, if installed, so that Numba finds it: pip
    puts it in the environment's lib/ folder, which the dynamic loader does not search, and
    Numba looks it up by name (with conda it is on the loader's path already)."""
    if not sys.platform.startswith("linux"):
        return ""
    try:
        from importlib import metadata
        files = metadata.files("tbb") or []
    except Exception:                             # no tbb distribution, or no metadata
        return ""
    for f in files:
        if f.name == "libtbb.so.12":
            path = os.path.realpath(f.locate())
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                return ""
            return path
    return ""


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:                               # not glibc (e.g. musl): nothing to tune
        return None


def _set_malloc() -> str:
    if os.environ.get("TINYNETS_MALLOC", "") == "default":
        return "glibc's defaults (TINYNETS_MALLOC=default)"
    libc = _libc()
    if libc is None:
        return "not glibc: untouched"
    libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)    # heap, not mmap, below 32 MB
    libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)  # never give the heap top back
    _applied["malloc"] = True
    return "keeps freed blocks under 32 MB"


BLAS_SPIN = 14                                 # log2 of the spin in cycles; OpenBLAS allows 4-30
_BLAS_DEFAULT = 28                             # OpenBLAS's build default (THREAD_TIMEOUT)
_BLAS_SYMBOLS = ("openblas_read_env", "openblas_thread_timeout", "blas_thread_shutdown_")


def openblas_paths() -> list:
    """The files of the OpenBLAS libraries loaded in this process (numpy's, and any other),
    sorted; empty where there is none or no /proc."""
    import numpy  # noqa: F401  (loads numpy's BLAS)
    try:
        with open("/proc/self/maps") as f:
            return sorted({line.split()[-1] for line in f
                           if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    except OSError:
        return []


def _openblas_libs() -> list:
    """The loaded OpenBLAS libraries that can re-read their environment."""
    libs = []
    for path in openblas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if all(hasattr(lib, name) for name in _BLAS_SYMBOLS):
            libs.append(lib)
    return libs


def _set_blas_timeout(libs: list, n: int) -> None:
    """OpenBLAS's idle threads spin for 2^n cycles from their next start on."""
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(n)
    try:
        for lib in libs:
            lib.openblas_read_env()
            lib.blas_thread_shutdown_()          # the threads restart with the new timeout
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]


def _set_blas_wait() -> str:
    if os.environ.get("TINYNETS_BLAS_WAIT", "") == "default":
        return "OpenBLAS's default (TINYNETS_BLAS_WAIT=default)"
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return f"left to OPENBLAS_THREAD_TIMEOUT={os.environ['OPENBLAS_THREAD_TIMEOUT']}"
    libs = _openblas_libs()
    if not libs:
        return "no OpenBLAS found: untouched"
    _set_blas_timeout(libs, BLAS_SPIN)
    _applied["blas"] = libs
    return f"idle threads spin 2^{BLAS_SPIN} cycles, then sleep"


def apply() -> Dict[str, str]:
    """Make the three settings (``import tinynets`` does); returns what each one is now."""
    global STATE
    STATE = {"threading layer": _set_priority(), "malloc": _set_malloc(),
             "blas wait": _set_blas_wait()}
    return STATE


def restore() -> Dict[str, str]:
    """Undo :func:`apply`: Numba's own layer preference (if no parallel kernel has run yet)
    and glibc's default thresholds (its sliding mmap threshold stays off), then hand the
    free heap back to the OS; OpenBLAS's idle threads spin for its default time again.
    Returns what each setting is now."""
    global STATE
    if "priority" in _applied:
        import numba
        if _numba_started():
            STATE["threading layer"] = f"{numba.threading_layer()} (already started, kept)"
        else:
            numba.config.THREADING_LAYER_PRIORITY = _applied.pop("priority")
            STATE["threading layer"] = "left to Numba (restored)"
    if _applied.pop("malloc", False):
        libc = _libc()
        libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
        libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
        libc.malloc_trim(0)
        STATE["malloc"] = "glibc's default thresholds (restored)"
    if "blas" in _applied:
        _set_blas_timeout(_applied.pop("blas"), _BLAS_DEFAULT)
        STATE["blas wait"] = f"OpenBLAS's default spin, 2^{_BLAS_DEFAULT} cycles (restored)"
    return dict(STATE)


def threading_layer() -> str:
    """The threading layer Numba runs tinynets' kernels on ('not started' before the first)."""
    import numba
    try:
        return numba.threading_layer()
    except ValueError:
        return "not started"


STATE: Dict[str, str] = {}
