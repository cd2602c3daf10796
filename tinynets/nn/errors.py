"""Errors that say what was expected, what was given, and which layer (and where in its
network) raised them."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))     # what the layers compute in


# ----------------------------------------------------------------- checks
def check_array(layer, x: Any, ndim: Optional[int], channels: Optional[int] = None,
                what: str = "input") -> None:
    """Raise a clear error naming ``layer`` (and where it sits in its network) if ``x`` is
    not what it expects.

    Checks: ndarray, float32 or float64, number of dimensions (unless None), size of axis 1,
    and that the dtype equals the layer's parameter dtype (no silent casts).
    """
    try:
        _check_array(layer, x, ndim, channels, what)
    except (TypeError, ValueError) as err:
        raise annotate(err, layer)


def _check_array(layer, x, ndim, channels, what) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer!r}: expected {what} as a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in DTYPES:
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{layer!r}: expected a floating-point {what} (float32 or float64), "
                            f"got dtype {x.dtype}; convert with x.astype(np.float32)")
        raise TypeError(f"{layer!r}: {what} dtype {x.dtype} is not supported, the layers compute "
                        f"in float32 or float64; convert with x.astype(np.float32)")
    if ndim is not None and x.ndim != ndim:
        layout = {2: "(N, features)", 4: "(N, C, H, W)"}.get(ndim, f"{ndim} dims")
        raise ValueError(f"{layer!r}: expected a {ndim}-D {what} {layout}, got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer!r}: expected {what} with {channels} channels on axis 1, "
                         f"got {x.shape[1]} (shape {x.shape})")
    # a layer's own first parameter, else the first of its children's: a leaf's check is then
    # a dict lookup, not a walk of the module tree (batch-1 inference runs about 130 of them)
    own = next(iter(layer._parameters.values()), None)
    dtype = own.data.dtype if own is not None else layer.dtype
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{layer!r}: {what} dtype {x.dtype} does not match parameter dtype "
                        f"{dtype}; cast the input or call model.astype(np.{x.dtype})")


def annotate(err: BaseException, layer=None) -> BaseException:
    """Add to ``err`` the qualified name of the layer that raised it (``features.3.conv.0.0``),
    once: in a network of many identical convs, the repr alone does not say which one.

    ``layer`` is by default the innermost module in the traceback (a method's ``self``, or
    the ``layer`` that ``check_array`` checks); it knows the network it last ran in.
    Returns ``err``.
    """
    if getattr(err, "_tinynets_named", False):
        return err
    try:
        err._tinynets_named = True
    except AttributeError:
        return err
    tb = err.__traceback__ if layer is None else None
    while tb is not None:                       # frames go inwards: the last module found wins
        local = tb.tb_frame.f_locals
        layer = next((m for m in (local.get("layer"), local.get("self")) if _is_module(m)), layer)
        tb = tb.tb_next
    name = layer.qualified_name() if layer is not None else None
    if name:
        text = repr(layer)
        if len(err.args) == 1 and isinstance(err.args[0], str):
            msg = err.args[0]
            err.args = (f"{text} at '{name}'{msg[len(text):]}" if msg.startswith(text)
                        else f"{msg} (in '{name}', a {type(layer).__name__})",)
        else:
            err.add_note(f"raised in '{name}', a {type(layer).__name__}")
    return err


def _is_module(obj: Any) -> bool:
    return callable(getattr(type(obj), "qualified_name", None))
