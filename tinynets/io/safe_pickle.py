"""A restricted unpickler that interprets the opcodes itself: data in, data out, nothing run.

Python's ``pickle.Unpickler`` calls whatever a pickle names and grows its memo to any index
the pickle asks for. :class:`SafeUnpickler` is a small interpreter of the pickle opcodes
instead, in two passes over the same bytes:

1. **pre-scan** (``pickletools.genops``), before anything is built: every opcode must be a
   data opcode (no ``INST``/``OBJ``/``NEWOBJ``/``EXT``/buffers), every ``GLOBAL`` must be in
   :attr:`SafeUnpickler.ALLOWED`, at most :attr:`SafeUnpickler.MAX_OPCODES` opcodes, and every
   memo index at most the number of opcodes read so far (the memo is a dict: an index of
   2**25 costs nothing more than an index of 3, but it is refused all the same);
2. **run**: containers, numbers and strings are built directly; ``REDUCE`` calls only the
   functions in :attr:`SafeUnpickler.REDUCERS`; ``BUILD`` goes to :meth:`SafeUnpickler.build`,
   which refuses it unless a subclass allows it for a given object; ``APPEND``/``SETITEM``
   accept only lists/dicts.

The base class reads CIFAR-10's python batches (dicts of numpy arrays, bytes, lists).
``tinynets.io.torch_pickle.TorchUnpickler`` reads PyTorch checkpoints with it.
"""
from __future__ import annotations

import math
import pickle
import pickletools
from typing import Any, Callable, Dict, Tuple

import numpy as np

from .limits import short

__all__ = ["SafeUnpickler", "safe_load"]

# Opcodes that call arbitrary classes or need out-of-band buffers: never needed by data.
REFUSED_OPCODES = {"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "PERSID",
                   "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}
_PUSH = {"NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1",
         "LONG4", "FLOAT", "BINFLOAT", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
         "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"}
_CONST = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


def _reconstruct(cls, shape, dtype) -> np.ndarray:
    """numpy's pickles start every array as ``_reconstruct(ndarray, (0,), dtype)``, then BUILD."""
    if cls is not np.ndarray or tuple(shape) != (0,):
        raise pickle.UnpicklingError(f"SafeUnpickler: _reconstruct builds an empty ndarray, "
                                     f"not {short(cls)} of shape {short(shape)}")
    return np.ndarray((0,), dtype=np.dtype(dtype))


def _dtype(obj, align=False, copy=True) -> np.dtype:
    # always a copy, so that the BUILD that follows sets up this dtype, never a shared one
    return np.dtype(obj, align=bool(align), copy=True)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"SafeUnpickler: refuses codec {encoding!r}")
    return text.encode("latin-1")


class SafeUnpickler:
    """Unpickle one pickle from the binary file ``file`` (which must be seekable), building
    only what :attr:`ALLOWED` names. The base class allows what CIFAR's batch dicts hold:
    numpy arrays (``_reconstruct`` + BUILD, ``dtype``), bytes written by protocol 2
    (``_codecs.encode`` with latin-1), lists, dicts, strings and numbers.

    ``encoding`` decodes Python 2 ``str`` (``"bytes"`` keeps them as bytes), as in
    :class:`pickle.Unpickler`. Any refusal raises :attr:`Refused` (``pickle.UnpicklingError``
    here), any inconsistency :attr:`Corrupt`.
    """
    ALLOWED: Dict[Tuple[str, str], Any] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1_encode}
    REDUCERS: Tuple[Callable, ...] = (_reconstruct, _dtype, _latin1_encode)
    MAX_OPCODES = 1 << 17                 # ~3,600 tensors of a torch file (36 opcodes each)
    Refused = pickle.UnpicklingError
    Corrupt = pickle.UnpicklingError

    def __init__(self, file, *, encoding: str = "ASCII"):
        self.file, self.encoding = file, encoding
        self._built: set = set()          # ids of the objects a BUILD has already set up

    # ------------------------------------------------------------------ hooks
    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise self.Refused(f"SafeUnpickler: refuses global {module}.{name}: "
                               "not a plain CIFAR batch") from None

    def persistent_load(self, pid: Any) -> Any:
        raise self.Refused("SafeUnpickler: persistent ids are not allowed")

    def build(self, obj: Any, state: Any) -> None:
        """BUILD: numpy arrays from ``_reconstruct`` and dtypes from ``dtype``, once each."""
        if id(obj) in self._built or not isinstance(obj, (np.ndarray, np.dtype)):
            raise self.Refused(f"SafeUnpickler: refuses BUILD on a {type(obj).__name__}")
        if isinstance(obj, np.ndarray):
            if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], np.dtype)
                    and isinstance(state[4], bytes) and not state[2].hasobject):
                raise self.Refused("SafeUnpickler: an array's state must be (version, shape, "
                                   "dtype, fortran, bytes) of a plain dtype")
            shape = state[1]
            if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
                    and math.prod(shape) * state[2].itemsize == len(state[4])):
                raise self.Corrupt(f"SafeUnpickler: array of shape {short(shape)} does not match "
                                   f"its {len(state[4])} bytes")
        self._built.add(id(obj))
        obj.__setstate__(state)

    # ------------------------------------------------------------------ the two passes
    def load(self) -> Any:
        start = self.file.tell()
        self._scan()
        self.file.seek(start)
        return self._run()

    def _scan(self) -> None:
        count = 0
        for op, arg, pos in pickletools.genops(self.file):
            count += 1
            name = op.name
            if count > self.MAX_OPCODES:
                raise self.Corrupt(f"more than {self.MAX_OPCODES} pickle opcodes, refused (for a "
                                   "state dict of over ~3,600 tensors, use .safetensors)")
            if name in ("GLOBAL", "INST"):
                self.find_class(*arg.split(" ", 1))
            if name in REFUSED_OPCODES:
                raise self.Refused(f"opcode {name} at byte {pos} is not allowed in a data file")
            if name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") \
                    and not 0 <= arg <= count:
                raise self.Corrupt(f"memo index {arg} at byte {pos} exceeds the {count} "
                                   "opcodes before it")
            if name == "PROTO" and arg > pickle.HIGHEST_PROTOCOL:
                raise self.Corrupt(f"pickle protocol {arg} is not supported")

    def _pop_mark(self) -> list:
        if not self._marks:
            raise self.Corrupt("a pickle opcode needs a MARK that is not there")
        items, self._stack = self._stack, self._marks.pop()
        return items

    def _top(self, kind: type, what: str) -> Any:
        top = self._stack[-1] if self._stack else None
        if not (isinstance(top, dict) if kind is dict else type(top) is kind):
            raise self.Corrupt(f"{what} needs a {kind.__name__} below it")
        return self._stack[-1]

    def _string(self, text: str) -> Any:     # Python 2 str: genops gives it as latin-1 text
        raw = text.encode("latin-1")
        return raw if self.encoding == "bytes" else raw.decode(self.encoding)

    def _run(self) -> Any:
        self._stack, self._marks, memo = [], [], {}
        for op, arg, pos in pickletools.genops(self.file):
            name, stack = op.name, self._stack
            if name in _PUSH:
                stack.append(_CONST[name] if name in _CONST else arg)
            elif name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                stack.append(self._string(arg))
            elif name == "MARK":
                self._marks.append(stack)
                self._stack = []
            elif name in ("EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
                stack.append({"EMPTY_TUPLE": tuple, "EMPTY_LIST": list, "EMPTY_DICT": dict,
                              "EMPTY_SET": set}[name]())
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                if len(stack) < n:
                    raise self.Corrupt(f"{name} at byte {pos} on a stack of {len(stack)}")
                stack[-n:] = [tuple(stack[-n:])]
            elif name in ("TUPLE", "LIST", "FROZENSET"):
                items = self._pop_mark()
                kind = {"TUPLE": tuple, "LIST": list, "FROZENSET": frozenset}[name]
                self._stack.append(kind(items))
            elif name == "DICT":
                items = self._pop_mark()
                self._stack.append(dict(zip(items[::2], items[1::2])))
            elif name == "APPEND":
                value = stack.pop()
                self._top(list, name).append(value)
            elif name == "APPENDS":
                items = self._pop_mark()
                self._top(list, name).extend(items)
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                self._top(dict, name)[key] = value
            elif name == "SETITEMS":
                items = self._pop_mark()
                self._top(dict, name).update(zip(items[::2], items[1::2]))
            elif name == "ADDITEMS":
                items = self._pop_mark()
                self._top(set, name).update(items)
            elif name == "POP":
                stack.pop() if stack else self._pop_mark()
            elif name == "POP_MARK":
                self._pop_mark()
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise self.Corrupt(f"memo index {arg} at byte {pos} was never stored")
                stack.append(memo[arg])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name == "GLOBAL":
                stack.append(self.find_class(*arg.split(" ", 1)))
            elif name == "STACK_GLOBAL":
                attr, module = stack.pop(), stack.pop()
                if not (isinstance(module, str) and isinstance(attr, str)):
                    raise self.Corrupt("STACK_GLOBAL needs two strings")
                stack.append(self.find_class(module, attr))
            elif name == "REDUCE":
                args, func = stack.pop(), stack.pop()
                if not any(func is f for f in self.REDUCERS) or type(args) is not tuple:
                    raise self.Refused(f"refuses to call {short(func)} (REDUCE at byte {pos})")
                stack.append(func(*args))
            elif name == "BUILD":
                state = stack.pop()
                self.build(stack[-1], state)
            elif name == "BINPERSID":
                stack.append(self.persistent_load(stack.pop()))
            elif name in ("PROTO", "FRAME"):
                pass
            elif name == "STOP":
                if len(stack) != 1 or self._marks:
                    raise self.Corrupt(f"STOP at byte {pos} leaves {len(stack)} objects on the "
                                       "stack")
                return stack[0]
            else:                                 # the pre-scan lets nothing else through
                raise self.Refused(f"opcode {name} is not allowed")
        raise self.Corrupt("the pickle ends before its STOP opcode")


def safe_load(f) -> dict:
    """Unpickle one CIFAR batch with :class:`SafeUnpickler` (``encoding='bytes'``, as the
    archive's Python 2 pickles need); the result must be a dict with no object arrays."""
    try:
        d = SafeUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, EOFError, MemoryError,
            RecursionError, OverflowError) as err:
        raise pickle.UnpicklingError(f"SafeUnpickler: corrupt pickle ({type(err).__name__}: "
                                     f"{str(err)[:200]})") from None
    if not isinstance(d, dict) or any(isinstance(v, np.ndarray) and v.dtype.hasobject
                                      for v in d.values()):
        raise pickle.UnpicklingError("SafeUnpickler: a CIFAR batch is a dict of plain arrays")
    return d
