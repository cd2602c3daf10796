"""The module protocol: ``Parameter`` and ``Module``.

There is no autograd. Every layer writes its own ``forward(x)`` and
``backward(dout)``:

* ``forward`` returns the output and keeps what backward needs with ``self.keep(...)``
  (nothing inside ``no_grad()``);
* ``backward`` takes it back with ``self.take()``, returns dL/dx and *accumulates*
  (``+=``) dL/dparam into ``param.grad``, exactly like ``loss.backward()`` does in
  PyTorch; taking frees the cache, as PyTorch frees its graph: one backward per forward.

``keep`` pushes onto a small stack per module and ``take`` pops the latest, each cache
stamped with the forward it belongs to (``tinynets.nn.caches`` says how that turns a
stale or shared cache into the right gradient or a clear error). Errors raised inside a
network name the layer by its qualified name too (``features.3.conv.0.0``).

Names follow PyTorch so that ``state_dict()`` keys match torchvision's.

``Module`` gets its counting methods (``output_shape``, ``macs``, ``flops``, ``profile``,
``summary``) from ``counting.ShapeCounting`` and ``state_dict``/``load_state_dict`` from
``state.StateDict``; ``Parameter`` lives in ``parameter``.
"""
from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from . import caches, grad_mode
from .counting import ShapeCounting
from .errors import DTYPES, annotate, check_array  # noqa: F401  (check_array: the layers' import)
from .parameter import Parameter
from .state import IncompatibleKeys, StateDict  # noqa: F401  (IncompatibleKeys: the return type)

# ----------------------------------------------------------------- modules
class Module(ShapeCounting, StateDict):
    """Base class: registers parameters, buffers and sub-modules by attribute name."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_caches", [])           # (Forward, arrays) per keep, latest last
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_buffers" not in self.__dict__:              # as PyTorch: plain attributes are fine
            if isinstance(value, (Parameter, Module)):
                kind = "parameter" if isinstance(value, Parameter) else "module"
                raise AttributeError(f"cannot assign {kind} before Module.__init__() call: call "
                                     f"super().__init__() first in {type(self).__name__}.__init__")
            object.__setattr__(self, name, value)
            return
        if name in self._buffers and isinstance(value, np.ndarray):
            self._buffers[name] = value      # e.g. ``self.running_mean *= ...`` stays a buffer
            object.__setattr__(self, name, value)
            return
        for store, kind in ((self._parameters, Parameter), (self._modules, Module)):
            if name in store and isinstance(value, kind):
                store[name] = value          # replacing keeps the position, as in PyTorch
                object.__setattr__(self, name, value)
                return
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """A state array that is saved in ``state_dict`` but not trained."""
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __getstate__(self) -> Dict[str, Any]:
        """Copies (``copy.deepcopy``, pickling) leave the caches behind: they belong to a
        forward of this very module."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_root", "_top_forward")}
        state["_caches"] = []
        return state

    # -- the protocol -------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """``forward``, plus bookkeeping: a call from outside any other module's forward
        starts a forward token (``tinynets.nn.caches``), and an error raised inside gets
        the qualified name of the layer that raised it."""
        if self._forward_pre_hooks:
            self.run_forward_pre_hooks(*args)
        ctx = caches.CONTEXT
        if ctx.root is not None:                       # inside another module's forward
            object.__setattr__(self, "_root", ctx.root)
            try:
                return self.forward(*args, **kwargs)
            except Exception as err:
                annotate(err)
                raise
        ctx.root = weakref.ref(self)
        object.__setattr__(self, "_root", ctx.root)
        fwd = ctx.forward = caches.start(self, args) if grad_mode.is_grad_enabled() else None
        try:
            out = self.forward(*args, **kwargs)
        except Exception as err:
            annotate(err)
            if fwd is not None:
                fwd.kept = None
            raise
        finally:
            ctx.root = ctx.forward = None
        if fwd is not None:
            caches.finish(fwd, args, out)
        return out

    def keep(self, *arrays):
        """Store what backward needs, unless inside ``no_grad()`` (which drops what was kept)."""
        stack = self._caches
        if not grad_mode.is_grad_enabled():
            if stack:
                caches.drop(stack, "no_grad", self)
            return
        fwd = caches.CONTEXT.forward or caches.Forward()    # forward() called directly: its own
        if stack and stack[-1][0] is not fwd:
            caches.drop(stack, "rerun", self)               # an older forward's: run again now
        stack.append((fwd, arrays))
        fwd.held += 1
        if fwd.kept is not None:
            fwd.kept += arrays

    def take(self):
        """Return the latest cache that forward kept and let it go: like PyTorch's graph, it
        is freed by backward, so activations are not held between steps. Explain if there
        is none, or if it cannot belong to the forward this backward answers."""
        stack = self._caches
        if not stack:
            raise annotate(RuntimeError(f"{self!r}: {caches.no_cache_reason(self)}"), self)
        fwd, arrays = stack.pop()
        fwd.held -= 1
        if fwd.held == 0:
            fwd.release()
        if fwd.ambiguous or fwd.problem is not None:
            fwd.close()
            raise annotate(RuntimeError(f"{self!r}: {caches.stale_reason(fwd)}"), self)
        self.__dict__.pop("_gone", None)
        return arrays

    @property
    def cache(self):
        """The latest cache kept (a tuple), or None. ``module.cache = None`` drops them all."""
        stack = self.__dict__.get("_caches")
        return stack[-1][1] if stack else None

    @cache.setter
    def cache(self, value) -> None:
        if value is not None:
            raise AttributeError(f"{type(self).__name__}.cache is kept by forward (self.keep); "
                                 "only None can be assigned, to drop it")
        if self.__dict__.get("_caches"):
            caches.drop(self._caches, "dropped", self)

    def qualified_name(self) -> Optional[str]:
        """This module's name in the network it last ran in (``features.3.conv.0.0``), looked
        up when asked; None at the top level or before any forward."""
        ref = self.__dict__.get("_root")
        root = ref() if ref is not None else None
        if root is None or root is self:
            return None
        return next((name for name, m in root.named_modules() if m is self), None)

    # -- hooks --------------------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable) -> "HookHandle":
        """``hook(module, args)`` runs before every forward, as in PyTorch, but only watches:
        it must return None. A BatchNorm2d that applies this activation itself (the fused
        path) calls it with the pre-activation. Returns a handle with ``remove()``."""
        handle = HookHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def run_forward_pre_hooks(self, *args) -> None:
        for hook in list(self._forward_pre_hooks.values()):
            if hook(self, args) is not None:
                raise TypeError(f"{self!r}: a forward pre-hook returned a value; tinynets' hooks "
                                "watch the input and cannot replace it")

    # -- traversal ----------------------------------------------------------
    def named_modules(self, prefix: str = "", remove_duplicate: bool = True
                      ) -> Iterator[Tuple[str, "Module"]]:
        """(dotted name, module) for this module and every sub-module, depth first. A module
        registered twice (``Sequential(c, c)``) comes once, under its first name, as in
        PyTorch; ``remove_duplicate=False`` gives every name (``state_dict`` does)."""
        seen = set()

        def walk(module: "Module", name: str):
            if remove_duplicate:
                if id(module) in seen:
                    return
                seen.add(id(module))
            yield name, module
            for child_name, child in module._modules.items():
                yield from walk(child, f"{name}.{child_name}" if name else child_name)

        yield from walk(self, prefix)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_parameters(self) -> Iterator[Tuple[str, Parameter]]:
        """Every Parameter once, under its first name, even if modules share it (as PyTorch):
        counting and optimizers see each one once."""
        seen = set()
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[Tuple[str, np.ndarray]]:
        for prefix, m in self.named_modules():
            for name, b in m._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), b

    @property
    def dtype(self):
        """The dtype of the first parameter, or None for a parameter-free module."""
        for p in self.parameters():
            return p.data.dtype
        return None

    # -- modes --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0)

    def astype(self, dtype) -> "Module":
        """Cast parameters (their grads follow) and floating buffers to ``dtype`` in place."""
        if np.dtype(dtype) not in DTYPES:
            raise TypeError(f"{type(self).__name__}.astype({np.dtype(dtype)}): the layers compute "
                            "in float32 or float64")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
        for m in self.modules():
            for name, b in list(m._buffers.items()):
                if np.issubdtype(b.dtype, np.floating):
                    m.register_buffer(name, b.astype(dtype))
            m.cache = None
        return self

    # -- printing -----------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


class HookHandle:
    """What ``register_forward_pre_hook`` returns: ``remove()`` unregisters the hook."""

    _next = 0

    def __init__(self, hooks: "OrderedDict[int, Callable]"):
        self.hooks, self.id = hooks, HookHandle._next
        HookHandle._next += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)
