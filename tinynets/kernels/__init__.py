"""The fast paths: Numba kernels, beside the plain-NumPy versions that the lessons teach.

* ``conv_naive``: the teaching versions (loops, im2col/col2im in NumPy, depthwise by
  shifted slices), the reference every kernel is tested against;
* ``im2col``: im2col and col2im for the general convolution (then a BLAS GEMM);
* ``depthwise``: the direct depthwise convolution, forward and both gradients;
* ``norm``: BatchNorm fused with its activation, forward and backward;
* ``channels``: the per-channel passes of squeeze-and-excitation and global pooling (the
  mean of each plane, each plane times its gate, the sum of a product, dout * s + g);
* ``warm``: a helper process that compiles kernels ahead: the backward's during the first
  forward, the parallel builds while their one-thread twins run;
* ``tiers``: which build of a kernel runs, the parallel one or its one-thread twin.

Each kernel module is self-contained: Numba's disk cache would not notice an edit to a
function that a kernel inlines from another file.

A kernel compiles the first time it runs with a new case or dtype (2-8 s each), then Numba
keeps it in its disk cache: next to the sources, or in the user's cache folder where the
package folder is read-only (``NUMBA_CACHE_DIR`` chooses another). So that a first run is
not minutes of silence, each compilation prints one line to stderr as it starts.

While Numba compiles one of these kernels, Python's cyclic garbage collector is paused and
then switched back on (unless it was off already). The compiler makes millions of
short-lived objects, and each of the collections they set off walks the whole heap: with a
model in memory, about a tenth of a cold start went to them. The garbage they leave is
collected by the next collection after the compile.
"""
from __future__ import annotations

import gc
import os
import sys

from numba.core import event


class _CompileNotice(event.Listener):
    """Prints "tinynets: compiling ..." when Numba starts compiling one of tinynets' kernels
    (not when it loads one from its cache: Numba sends no compile event then), once per
    kernel and signature; the functions a kernel calls compile inside it, unannounced.
    Pauses the cyclic garbage collector until that compile ends (Numba ends the event on an
    error too)."""

    def __init__(self):
        self.depth = 0
        self.paused_gc = False

    def on_start(self, ev):
        self.depth += 1
        func = ev.data["dispatcher"].py_func
        if self.depth == 1 and func.__module__.startswith(__name__ + "."):
            dtypes = sorted({str(a.dtype) for a in ev.data["args"] if hasattr(a, "dtype")})
            name = func.__name__.lstrip("_").removesuffix("_1t")     # the public kernel's name
            if func.__name__.endswith("_1t") and "float64" not in dtypes:
                dtypes.append("one thread")                           # a twin (``tiers``)
            when = {"now": "in a helper process, ahead of the backward",
                    "later": "with threads, in a helper process, while the one-thread build runs",
                    }.get(os.environ.get("TINYNETS_COMPILE_AHEAD", ""), "for its first use")
            print(f"tinynets: compiling {func.__module__.rsplit('.', 1)[-1]}.{name} "
                  f"({', '.join(dtypes)}) {when}; later runs load it from the cache",
                  file=sys.stderr, flush=True)
            self.paused_gc = gc.isenabled()
            gc.disable()

    def on_end(self, ev):
        self.depth -= 1
        if self.depth == 0 and self.paused_gc:
            self.paused_gc = False
            gc.enable()


event.register("numba:compile", _CompileNotice())
