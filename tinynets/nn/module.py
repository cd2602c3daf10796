"""The module protocol: ``Parameter`` and ``Module``.

There is no autograd. Every layer writes its own ``forward(x)`` and
``backward(dout)``:

* ``forward`` returns the output and keeps in ``self.cache`` what backward needs
  (nothing inside ``no_grad()``);
* ``backward`` returns dL/dx and *accumulates* (``+=``) dL/dparam into
  ``param.grad``, exactly like ``loss.backward()`` does in PyTorch, and frees the
  cache, as PyTorch frees its graph: one backward per forward.

Names follow PyTorch so that ``state_dict()`` keys match torchvision's.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import grad_mode
from .counting import LayerCount, Summary


# ----------------------------------------------------------------- checks
def check_array(layer: "Module", x: Any, ndim: Optional[int], channels: Optional[int] = None,
                what: str = "input") -> None:
    """Raise a clear error naming ``layer`` if ``x`` is not what it expects.

    Checks: ndarray, floating dtype, number of dimensions (unless None), size of axis 1,
    and that the dtype equals the layer's parameter dtype (no silent casts).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer!r}: expected {what} as a numpy.ndarray, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{layer!r}: expected a floating-point {what} (float32 or float64), "
                        f"got dtype {x.dtype}; convert with x.astype(np.float32)")
    if ndim is not None and x.ndim != ndim:
        layout = {2: "(N, features)", 4: "(N, C, H, W)"}.get(ndim, f"{ndim} dims")
        raise ValueError(f"{layer!r}: expected a {ndim}-D {what} {layout}, got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer!r}: expected {what} with {channels} channels on axis 1, "
                         f"got {x.shape[1]} (shape {x.shape})")
    dtype = layer.dtype
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{layer!r}: {what} dtype {x.dtype} does not match parameter dtype "
                        f"{dtype}; cast the input or call model.astype(np.{x.dtype})")

# ----------------------------------------------------------------- parameters
class Parameter:
    """A trainable array ``data`` and its accumulated gradient ``grad`` (same shape)."""

    def __init__(self, data: np.ndarray):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


# ----------------------------------------------------------------- modules
class Module:
    """Base class: registers parameters, buffers and sub-modules by attribute name."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "cache", None)

    def __setattr__(self, name: str, value: Any) -> None:
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

    # -- the protocol -------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def keep(self, *arrays):
        """Store what backward needs, unless inside ``no_grad()``."""
        self.cache = arrays if grad_mode.is_grad_enabled() else None

    def take(self):
        """Return the cache that forward kept and let it go: like PyTorch's graph, it is
        freed by backward, so activations are not held between steps. Explain if none."""
        cache, self.cache = self.cache, None
        if cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward(), twice for one "
                               "forward (backward frees the cache), or after a forward inside "
                               "tinynets.no_grad(), which keeps no cache")
        return cache

    # -- traversal ----------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_parameters(self) -> Iterator[Tuple[str, Parameter]]:
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
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

    # -- counting -----------------------------------------------------------
    def output_shape(self, input_shape) -> Tuple[int, ...]:
        """Shape arithmetic only, no data. Element-wise leaves keep the shape;
        containers chain their children. Layers that change shape override it."""
        if self._modules:
            return self.profile(input_shape)[0]
        return tuple(input_shape)

    def macs(self, input_shape) -> int:
        """This layer's own multiply-accumulates for ``input_shape`` (0 unless conv/linear)."""
        return 0

    def flops(self, input_shape) -> int:
        """This layer's own floating-point operations for ``input_shape``."""
        return 0

    def profile(self, input_shape, prefix: str = "") -> Tuple[Tuple[int, ...], List[LayerCount]]:
        """(output shape, one ``LayerCount`` per leaf layer), from shape arithmetic.

        The default runs the children in order, like ``Sequential``. A block whose
        forward is not a plain chain (a residual, an SE gate) overrides this.
        """
        shape = tuple(int(d) for d in input_shape)
        if self._modules:
            rows: List[LayerCount] = []
            for name, child in self._modules.items():
                shape, child_rows = child.profile(shape, f"{prefix}.{name}" if prefix else name)
                rows.extend(child_rows)
            return shape, rows
        out = self.output_shape(shape)
        n_params = sum(p.data.size for p in self._parameters.values())
        return out, [LayerCount(prefix, type(self).__name__, out, n_params,
                                self.macs(shape), self.flops(shape))]

    def summary(self, input_shape):
        """Per-layer table of output shapes, params, MACs and FLOPs (``tinynets.nn.counting``)."""
        return Summary(self, input_shape)

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
        """Cast parameters, their grads and floating buffers to ``dtype`` in place."""
        for m in self.modules():
            for p in m._parameters.values():
                p.data = p.data.astype(dtype)
                p.grad = p.grad.astype(dtype)
            for name, b in list(m._buffers.items()):
                if np.issubdtype(b.dtype, np.floating):
                    m.register_buffer(name, b.astype(dtype))
            object.__setattr__(m, "cache", None)
        return self

    # -- state --------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers by dotted name, in registration order (as PyTorch)."""
        out: "OrderedDict[str, np.ndarray]" = OrderedDict()
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                out[f"{prefix}.{name}" if prefix else name] = p.data.copy()
            for name, b in m._buffers.items():
                out[f"{prefix}.{name}" if prefix else name] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state: Dict[str, np.ndarray], strict: bool = True):
        """Copy arrays into parameters and buffers, keeping each one's dtype.

        Returns ``(missing_keys, unexpected_keys)``; with ``strict`` either one,
        or any shape mismatch, raises a ``KeyError``/``ValueError``.
        """
        own = {}
        for prefix, m in self.named_modules():
            for name in list(m._parameters) + list(m._buffers):
                own[f"{prefix}.{name}" if prefix else name] = (m, name)
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing keys {missing[:10]}"
                           f"{' ...' if len(missing) > 10 else ''}, unexpected keys "
                           f"{unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
        for key, (m, name) in own.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            if name in m._parameters:
                p = m._parameters[name]
                if value.shape != p.data.shape:
                    raise ValueError(f"load_state_dict: '{key}' expects shape {p.data.shape}, "
                                     f"got {value.shape}")
                p.data = np.array(value, dtype=p.data.dtype, order="C")  # a copy: steps leave the dict alone
            else:
                b = m._buffers[name]
                if value.shape != b.shape:
                    raise ValueError(f"load_state_dict: '{key}' expects shape {b.shape}, "
                                     f"got {value.shape}")
                m.register_buffer(name, np.array(value, dtype=b.dtype))
        return missing, unexpected

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
