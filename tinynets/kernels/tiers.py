"""Which of a kernel's two builds runs: the parallel one, or its one-thread twin.

Every parallel kernel has a one-thread twin (``_1t``), the same inlined body compiled without
``prange``'s threads. The twin compiles in about half the time (MobileNetV2's ten kernels
for a train step: 11 s against 27 s on one core), and computes the same values bit for bit
(``tests/test_warm.py``).

* float64, the checking precision, always runs the twin.
* float32 runs the parallel kernel when it is compiled in this process or in Numba's disk
  cache. From a cold cache it runs the twin instead, and sends the parallel kernel to the
  compile helper (``warm``), which compiles it after the kernels that are needed now; once
  it is in the disk cache, the next call loads and runs it. So a first train step waits
  for the quick builds only, and the steps after it speed up as the parallel builds arrive.
* Without a helper (``TINYNETS_COMPILE_HELPER=0``, one core, or a helper that died) the
  parallel kernel compiles here on its first call, as it would without tiers.

``run(parallel, twin, *args)`` is the call; once a parallel kernel is in place it costs one
set lookup more than calling the kernel itself.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from . import warm

_ready: set = set()                              # parallel kernels this process runs now
_waiting: Dict[object, object] = {}              # parallel kernel -> _SEEN, or its helper job
_SEEN = "seen"                                   # called once: the twin ran


def run(parallel, twin, *args):
    """``parallel(*args)`` if it is in place (see the module docstring), else ``twin(*args)``.
    The first argument is an array whose dtype selects the precision."""
    if args[0].dtype == np.float64:
        return twin(*args)
    if parallel in _ready or _parallel_now(parallel, args):
        return parallel(*args)
    return twin(*args)


def pending() -> int:
    """How many kernels still run their twin: their parallel build is compiling in the
    helper, or goes to it on their next call."""
    return len(_waiting)


def _parallel_now(parallel, args) -> bool:
    """True when ``parallel`` runs from now on. From a cold cache: False, and on the second
    call the parallel build goes to the helper. (Not on the first: by the second, the layer's
    forward has sent the kernels its backward needs now, and the helper takes those first.)"""
    state = _waiting.get(parallel)
    if not warm.enabled():
        pass                                     # no helper: compile it here
    elif state is None:
        sig = tuple(parallel.typeof_pyval(a) for a in args)
        if warm.pattern(sig) is not None and not warm.in_cache(_name(parallel), sig):
            _waiting[parallel] = _SEEN
            return False
    elif state is _SEEN:                         # the second call: send it, if it can be spelled
        pattern = warm.pattern(tuple(parallel.typeof_pyval(a) for a in args))
        job = None if pattern is None else warm.later(_name(parallel), pattern, args[0].dtype)
        if job is not None:
            _waiting[parallel] = job
            return False
    elif not state.done() and warm.helper_alive():
        return False                             # still compiling in the helper
    _waiting.pop(parallel, None)
    _ready.add(parallel)                         # compiled, in the cache, or to compile here
    return True


def _name(parallel) -> warm.Kernel:
    return parallel.py_func.__module__.rsplit(".", 1)[-1], parallel.py_func.__name__
