"""The backward caches behind ``Module.keep`` and ``Module.take``, kept honest.

A layer's ``forward`` keeps what its ``backward`` needs (``self.keep(x)``) and its
``backward`` takes it back (``self.take()``). Three rules turn every way of getting a
wrong gradient from a stale cache into the right gradient or an error that says why:

* **A stack, popped in reverse.** Each ``keep`` pushes onto the module's own stack and
  each ``take`` pops the latest, so a module called twice in one forward (one
  ``self.act`` used twice, ``Sequential(c, c)``) gets its two caches back in the reverse
  order, which is the order backward runs in.
* **A forward token.** Calling a module from outside any other module's forward (the
  top-level call, ``model(x)``) is one *forward*, a ``Forward`` object here, and every
  cache kept during it carries it. A ``take`` refuses a cache whose forward cannot be
  the one ``dout`` belongs to: after ``model(x1); model(x2)`` (an extra forward for
  metrics, or two micro-batches before one backward) two forwards are candidates; after
  a sub-module was run again by itself, the outer forward lost that sub-module's cache.
  A forward repeated on the same input array (a notebook cell run again, gradcheck's
  perturbed forwards) replaces the one it repeats.
* **What a cache refers to, the caller cannot change.** When a cache holds the caller's
  input or output array (or a view of it), that array and the arrays it is a view of are
  marked read-only until backward has taken every cache of that forward, or the caches
  are dropped. ``x *= 0`` in between raises numpy's "output array is read-only" instead
  of silently changing dW. Nothing is copied, and arrays made inside the network, which
  no caller holds, are left alone. (Views the caller made *before* the forward keep their
  own flag: numpy cannot take it back.)

A forward inside ``no_grad()`` keeps nothing and drops the caches a module still held.
"""
from __future__ import annotations

import weakref
from typing import Dict, List, Optional

import numpy as np


class Forward:
    """One top-level forward under grad mode: the token its caches carry.

    ``held`` counts its caches not yet taken or dropped; ``problem`` is set when it lost a
    cache, ``(reason, module)``; ``ambiguous`` when it started while an earlier forward of
    the same module, on another input, still waited for its backward.
    """

    __slots__ = ("root", "held", "input", "problem", "ambiguous", "closed", "kept", "frozen")

    def __init__(self, root=None, x=None, collect: bool = False):
        self.root = weakref.ref(root) if root is not None else None   # the module called
        self.held = 0
        self.input = weakref.ref(x) if isinstance(x, np.ndarray) else None
        self.problem = None
        self.ambiguous = self.closed = False
        self.kept: Optional[list] = [] if collect else None   # what its caches hold, until it ends
        self.frozen: List[np.ndarray] = []                    # the caller's arrays made read-only

    def waiting(self) -> bool:
        """True while its caches wait for a backward that can still use them."""
        return self.held > 0 and not self.closed and self.problem is None

    def release(self) -> None:
        """Its caches are gone: give the caller's arrays back."""
        _thaw(self.frozen)
        self.frozen = []

    def close(self) -> None:
        self.closed = True
        self.release()

    def __del__(self):
        _thaw(self.frozen)


class _Context:
    """The top-level call running now: its module (weakly) and, under grad mode, its Forward."""
    root: Optional[weakref.ref] = None
    forward: Optional[Forward] = None


CONTEXT = _Context()


def start(module, args) -> Forward:
    """A new top-level forward of ``module`` on ``args``; remembers if it makes backward ambiguous."""
    x = args[0] if args else None
    fwd = Forward(module, x, collect=True)
    prev = module.__dict__.get("_top_forward")
    if prev is not None and prev.waiting():
        same = prev.input is not None and prev.input() is x
        fwd.ambiguous = prev.ambiguous if same else True     # a repeat replaces, another input competes
    object.__setattr__(module, "_top_forward", fwd)
    return fwd


def finish(fwd: Forward, args, out) -> None:
    """End of a top-level forward: make read-only the caller's arrays its caches refer to."""
    kept = [a for a in fwd.kept if isinstance(a, np.ndarray)]
    fwd.kept = None
    for a in list(args) + [out]:
        if isinstance(a, np.ndarray) and any(np.may_share_memory(k, a) for k in kept):
            fwd.frozen += _freeze(a)


def drop(stack: list, reason: str, module) -> None:
    """Empty a module's cache stack ("rerun", "no_grad" or "dropped"); each forward that
    loses a cache records why, and so does the module."""
    for fwd, _ in stack:
        fwd.held -= 1
        if fwd.problem is None:
            fwd.problem = (reason, module)
        if fwd.held == 0:
            fwd.release()
    stack.clear()
    object.__setattr__(module, "_gone", reason)


# ------------------------------------------------------------- what take() says
_LOST = {"rerun": "was run again before this backward, which replaced the cache it kept",
         "no_grad": "was run inside tinynets.no_grad() before this backward, which dropped the "
                    "cache it kept",
         "dropped": "had its cache dropped (module.cache = None)"}


def no_cache_reason(module) -> str:
    """Why ``module`` has no cache to take."""
    if module.__dict__.get("_gone") == "no_grad":
        return ("backward() called after a forward inside tinynets.no_grad(), which keeps no "
                "cache (and drops the one an earlier forward kept)")
    if module.__dict__.get("_gone") == "dropped":
        return "backward() called after its cache was dropped (module.cache = None)"
    return ("backward() called before forward(), twice for one forward (backward frees the "
            "cache), or after a forward inside tinynets.no_grad(), which keeps no cache")


def stale_reason(fwd: Forward) -> str:
    """Why the cache of ``fwd`` cannot be the one this backward needs."""
    if fwd.problem is None:
        return ("forward() ran again on another input while an earlier forward still waited for "
                "its backward(), so backward() cannot tell which of them dout belongs to (it "
                "would silently use the latest). Call backward() after each forward (gradient "
                "accumulation works that way), and run forwards that need no gradient (metrics) "
                "inside tinynets.no_grad()")
    reason, other = fwd.problem
    root = fwd.root() if fwd.root is not None else None
    name = next((n for n, m in root.named_modules() if m is other), "") if root is not None else ""
    who = f"'{name}' ({other!r})" if name else repr(other)
    return (f"this backward cannot be completed: {who} {_LOST[reason]} for this forward. The "
            "gradients accumulated by this backward so far are incomplete: zero them, run the "
            "forward again, then backward")


# ------------------------------------------------------------- read-only while cached
_FROZEN: Dict[int, list] = {}      # id(array) -> [array, number of forwards holding it read-only]
_STUCK: List[np.ndarray] = []      # released, but a base it views is still read-only


def _chain(a: np.ndarray):
    """``a`` and the arrays it is a view of, innermost first."""
    while isinstance(a, np.ndarray):
        yield a
        a = a.base


def _freeze(a: np.ndarray) -> List[np.ndarray]:
    """Mark ``a`` and its bases read-only; returns those this call holds (not the ones the
    caller had made read-only himself)."""
    held = []
    for b in _chain(a):
        entry = _FROZEN.get(id(b))
        if entry is not None:
            entry[1] += 1
        elif b.flags.writeable:
            b.flags.writeable = False
            _FROZEN[id(b)] = [b, 1]
        else:
            continue
        held.append(b)
    return held


def _thaw(arrays: List[np.ndarray]) -> None:
    """Undo ``_freeze``, bases first (numpy makes a view writeable only if its base is)."""
    for b in reversed(arrays):
        entry = _FROZEN.get(id(b))
        if entry is None or entry[0] is not b:
            continue
        entry[1] -= 1
        if entry[1] == 0:
            del _FROZEN[id(b)]
            _STUCK.append(b)
    progress = True
    while progress and _STUCK:
        progress, still = False, []
        for b in _STUCK:
            try:
                b.flags.writeable = True
                progress = True
            except ValueError:       # its base is still held read-only by another forward
                still.append(b)
        _STUCK[:] = still
