"""``state_dict`` and ``load_state_dict``: a module's parameters and buffers by dotted name.

A mixin of ``Module``: it uses the module's ``named_modules``, ``_parameters`` and ``_buffers``.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Iterator, List, NamedTuple, Tuple

import numpy as np


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns, as PyTorch: the keys it did not find or did not know."""
    missing_keys: List[str]
    unexpected_keys: List[str]


class StateDict:
    """The state methods of ``Module``; names and semantics as PyTorch's."""

    def _state_entries(self) -> Iterator[Tuple[str, object, str]]:
        """(key, module, attribute) of every parameter and buffer, a shared one under each name."""
        for prefix, m in self.named_modules(remove_duplicate=False):
            for name in list(m._parameters) + list(m._buffers):
                yield (f"{prefix}.{name}" if prefix else name), m, name

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers by dotted name, in registration order (as PyTorch)."""
        return OrderedDict((key, np.array(m._parameters[name].data if name in m._parameters
                                          else m._buffers[name], copy=True))
                           for key, m, name in self._state_entries())

    def load_state_dict(self, state: Dict[str, np.ndarray], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into parameters and buffers, keeping each one's dtype: all or nothing.

        Every key, shape and dtype is checked before anything is copied. A wrong shape, or a
        dtype that cannot be cast within its kind (a float into the int64
        ``num_batches_tracked``, a complex into a float), always raises; with ``strict`` so
        do missing and unexpected keys. The ``RuntimeError`` lists every problem in
        PyTorch's words, and the module is left as it was. Returns
        ``(missing_keys, unexpected_keys)``.
        """
        own = {key: (m, name) for key, m, name in self._state_entries()}
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems, values = [], {}
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: "
                            + ", ".join(f'"{k}"' for k in unexpected) + ".")
        for key, (m, name) in own.items():
            if key not in state:
                continue
            target = m._parameters[name].data if name in m._parameters else m._buffers[name]
            value = np.asarray(state[key])
            if value.shape != target.shape:
                problems.append(f"size mismatch for {key}: copying a param with shape {value.shape} "
                                f"from checkpoint, the shape in current model is {target.shape}.")
            elif not np.can_cast(value.dtype, target.dtype, "same_kind"):
                problems.append(f"dtype mismatch for {key}: cannot copy a {value.dtype} array into "
                                f"the {target.dtype} one of the current model.")
            else:
                values[key] = value
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems))
        for key, value in values.items():
            m, name = own[key]
            if name in m._parameters:
                p = m._parameters[name]
                p.data = np.array(value, dtype=p.data.dtype, order="C")  # a copy: steps leave the dict alone
            else:
                m.register_buffer(name, np.array(value, dtype=m._buffers[name].dtype))
        return IncompatibleKeys(missing, unexpected)
