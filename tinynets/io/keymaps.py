"""Key-name adapters: state dicts of other PyTorch projects -> tinynets' (torchvision's) names.

>>> from tinynets.io import load_checkpoint
>>> from tinynets.io.keymaps import adapt_state_dict
>>> model = tinynets.models.efficientnet_lite0(padding="tf_same")
>>> model.load_state_dict(adapt_state_dict(load_checkpoint("efficientnet-lite0-57934424.pth"), model))

Styles:

* ``native``: torchvision's names, which tinynets uses (``features.s.j.block.k``, ...);
* ``lukemelas`` (EfficientNet-PyTorch and its Lite fork, EfficientNet only): ``_conv_stem``,
  ``_bn0``, ``_blocks.n`` numbered over the whole network, each with ``_expand_conv/_bn0``,
  ``_depthwise_conv/_bn1``, ``_se_reduce/_se_expand``, ``_project_conv/_bn2``, then
  ``_conv_head``, ``_bn1``, ``_fc``;
* ``timm`` (and gen-efficientnet): ``conv_stem``, ``bn1``, ``blocks.i.j`` by stage, each an
  inverted residual ``conv_pw/bn1, conv_dw/bn2, se.conv_reduce/se.conv_expand, conv_pwl/bn3``
  or, without expansion, a depthwise-separable ``conv_dw/bn1, se.*, conv_pw/bn2``; then
  ``conv_head``, ``bn2``, ``classifier``. EfficientNet B/Lite, MobileNetV2 and V3 (whose
  head Linear is timm's 1x1 ``conv_head`` with bias, reshaped here, and whose last 1x1 conv
  is the block ``blocks.<last>.0.conv/bn1``); MobileNetV1 already has timm's names.

The map is read off the model's own ``state_dict()``: inside each block the convs are told
apart by shape (a ``(C, 1, k, k)`` weight is the depthwise one, a 1x1 before it expands,
after it projects), the SE by its ``fc1``/``fc2`` names. So a block with or without
expansion or SE needs no rule of its own, and any width or depth works.
The padding and BN eps a checkpoint needs are not in its keys: lukemelas and ``tf_*`` timm
weights were trained with TensorFlow SAME padding and eps 1e-3 (``padding="tf_same"``).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..nn.module import Module

__all__ = ["adapt_state_dict", "from_lukemelas", "from_timm", "to_lukemelas", "to_timm",
           "detect_style", "key_map", "StateDictMismatchError"]

# timm's stage sizes for the flat torchvision blocks (timm mobilenetv2/mobilenetv3 arch_defs)
TIMM_STAGES = {"mobilenet_v2": (1, 2, 3, 4, 3, 3, 1), "large": (1, 2, 3, 4, 2, 3),
               "small": (1, 2, 3, 2, 3)}
# (role, is BN) -> name inside a block
TIMM_IR = {("expand", 0): "conv_pw", ("expand", 1): "bn1", ("dw", 0): "conv_dw", ("dw", 1): "bn2",
           ("se", 1): "se.conv_reduce", ("se", 2): "se.conv_expand",
           ("project", 0): "conv_pwl", ("project", 1): "bn3"}
TIMM_DS = {("dw", 0): "conv_dw", ("dw", 1): "bn1", ("se", 1): "se.conv_reduce",
           ("se", 2): "se.conv_expand", ("project", 0): "conv_pw", ("project", 1): "bn2"}
LUKEMELAS = {("expand", 0): "_expand_conv", ("expand", 1): "_bn0", ("dw", 0): "_depthwise_conv",
             ("dw", 1): "_bn1", ("se", 1): "_se_reduce", ("se", 2): "_se_expand",
             ("project", 0): "_project_conv", ("project", 1): "_bn2"}
_BLOCK = re.compile(r"^(features\.\d+(?:\.\d+)?)\.(?:block|conv)\.")


class StateDictMismatchError(ValueError):
    """A state dict whose keys or shapes do not fit the model."""


def _modules(model: Module) -> "OrderedDict[str, Dict[str, tuple]]":
    """Module prefix -> {leaf name: shape}, in state_dict order."""
    out: "OrderedDict[str, Dict[str, tuple]]" = OrderedDict()
    for key, value in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        out.setdefault(prefix, {})[leaf] = value.shape
    return out


def _block_roles(mods: List[Tuple[str, Dict[str, tuple]]]) -> List[Tuple[str, Tuple[str, int]]]:
    """(prefix, (role, part)) for the convs, BNs and SE convs of one block, in order."""
    out, role, seen_dw = [], None, False
    for prefix, leaves in mods:
        if prefix.endswith((".fc1", ".fc2")):
            out.append((prefix, ("se", 1 if prefix.endswith("1") else 2)))
        elif "running_mean" in leaves:
            out.append((prefix, (role, 1)))
        else:
            w = leaves["weight"]
            role = "dw" if w[1] == 1 and w[2] > 1 else ("project" if seen_dw else "expand")
            seen_dw |= role == "dw"
            out.append((prefix, (role, 0)))
    return out


def _family(model: Module) -> str:
    """The model's ``family`` attribute (set by each model class), so that this file needs
    no import of the models."""
    family = getattr(model, "family", None)
    if family not in ("efficientnet", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
                      "mobilenet_v3_small"):
        raise TypeError(f"keymaps: no key map for {type(model).__name__}; EfficientNet, "
                        "MobileNetV1/V2/V3 are known")
    return family


def key_map(model: Module, style: str) -> "OrderedDict[str, str]":
    """Native key -> ``style`` key (``"timm"`` or ``"lukemelas"``) for every entry of ``model``."""
    family = _family(model)
    if style not in ("timm", "lukemelas"):
        raise ValueError(f"key_map: style must be 'timm' or 'lukemelas', got {style!r}")
    if style == "lukemelas" and family != "efficientnet":
        raise ValueError(f"key_map: the lukemelas style exists only for EfficientNet, not {family}")
    mods = _modules(model)
    if family == "mobilenet_v1":                              # tinynets uses timm's names
        return OrderedDict((f"{p}.{leaf}", f"{p}.{leaf}") for p, leaves in mods.items() for leaf in leaves)
    blocks: "OrderedDict[str, list]" = OrderedDict()
    for prefix, leaves in mods.items():
        m = _BLOCK.match(prefix)
        if m:
            blocks.setdefault(m.group(1), []).append((prefix, leaves))
    top = [p for p in mods if not _BLOCK.match(p)]
    features = [p for p in top if p.startswith("features.")]
    linears = [p for p in top if p.startswith("classifier.")]
    stem, head = features[:2], features[2:]
    names: Dict[str, str] = {}
    lukemelas = style == "lukemelas"
    names.update(zip(stem, ["_conv_stem", "_bn0"] if lukemelas else ["conv_stem", "bn1"]))
    flat = family != "efficientnet"                           # features.i, not features.s.j
    sizes = TIMM_STAGES.get(family.replace("mobilenet_v3_", ""), ())
    stage_of = [(s, j) for s, n in enumerate(sizes) for j in range(n)]
    for n, (block, parts) in enumerate(blocks.items()):
        roles = _block_roles(parts)
        if lukemelas:
            table, where = LUKEMELAS, f"_blocks.{n}"
        else:
            table = TIMM_IR if any(r[0] == "expand" for _, r in roles) else TIMM_DS
            if flat:
                s, j = stage_of[n] if n < len(stage_of) else (None, None)
                if s is None:
                    raise ValueError(f"key_map: {family} has more blocks than timm's stages {sizes}")
            else:
                s, j = (int(i) for i in block.split(".")[1:3])
                s -= 1
            where = f"blocks.{s}.{j}"
        names.update((prefix, f"{where}.{table[role]}") for prefix, role in roles)
    if family.startswith("mobilenet_v3"):                     # last conv is a timm block
        names.update(zip(head, [f"blocks.{len(sizes)}.0.conv", f"blocks.{len(sizes)}.0.bn1"]))
        names.update(zip(linears, ["conv_head", "classifier"]))
    else:
        names.update(zip(head, ["_conv_head", "_bn1"] if lukemelas else ["conv_head", "bn2"]))
        names.update(zip(linears, ["_fc"] if lukemelas else ["classifier"]))
    unknown = [p for p in mods if p not in names]
    if unknown:
        raise ValueError(f"key_map: no {style} name for {type(model).__name__}'s {unknown[:5]}")
    return OrderedDict((f"{p}.{leaf}", f"{names[p]}.{leaf}") for p, leaves in mods.items()
                       for leaf in leaves)


def _rename(state: Mapping[str, np.ndarray], mapping: Mapping[str, str],
            shapes: Mapping[str, tuple]) -> "OrderedDict[str, np.ndarray]":
    """``state`` with ``mapping``'s keys renamed, in ``mapping``'s order, then unknown keys
    unchanged (for the check to report). A Linear stored as a 1x1 conv, or the other way
    round (timm's MobileNetV3 head), is reshaped to ``shapes``."""
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for old, new in mapping.items():
        if old in state:
            v = np.asarray(state[old])
            want = shapes.get(new)
            if want is not None and v.shape != want and v.size == int(np.prod(want)) \
                    and v.shape[:2] == want[:2]:
                v = v.reshape(want)
            out[new] = v
    out.update((k, v) for k, v in state.items() if k not in mapping)
    return out


def _convert(state, model: Module, style: str, to_native: bool):
    mapping = key_map(model, style)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    if to_native:
        return _rename(state, OrderedDict((v, k) for k, v in mapping.items()), shapes)
    linear_as_conv = {mapping[k]: s + (1, 1) for k, s in shapes.items()
                      if len(s) == 2 and mapping[k].endswith("conv_head.weight")}
    return _rename(state, mapping, linear_as_conv)


def from_lukemelas(state: Mapping[str, np.ndarray], model: Module) -> "OrderedDict[str, np.ndarray]":
    """Rename lukemelas EfficientNet(-Lite) keys to ``model``'s (a model or a name for
    :func:`tinynets.models.get_model`). Keys it does not know are passed through."""
    return _convert(state, model, "lukemelas", to_native=True)


def from_timm(state: Mapping[str, np.ndarray], model: Module) -> "OrderedDict[str, np.ndarray]":
    """Rename timm / gen-efficientnet keys to ``model``'s; unknown keys are passed through."""
    return _convert(state, model, "timm", to_native=True)


def to_lukemelas(state: Mapping[str, np.ndarray], model: Module) -> "OrderedDict[str, np.ndarray]":
    """The inverse of :func:`from_lukemelas`: tinynets names -> lukemelas names."""
    return _convert(state, model, "lukemelas", to_native=False)


def to_timm(state: Mapping[str, np.ndarray], model: Module) -> "OrderedDict[str, np.ndarray]":
    """The inverse of :func:`from_timm` (MobileNetV3's head Linear becomes a 1x1 conv)."""
    return _convert(state, model, "timm", to_native=False)


def detect_style(keys) -> str:
    """``"lukemelas"``, ``"timm"`` or ``"native"``, from the key names alone."""
    keys = list(keys)
    if any(k.startswith(("_conv_stem.", "_blocks.")) for k in keys):
        return "lukemelas"
    if any(k.startswith("features.") for k in keys):
        return "native"
    if any(k.startswith(("conv_stem.", "blocks.")) for k in keys):
        return "timm"
    raise ValueError(f"detect_style: cannot tell the naming style from keys like {keys[:5]}: "
                     "expected torchvision (features.*), timm (conv_stem, blocks.*) or "
                     "lukemelas (_conv_stem, _blocks.*)")


def _listed(items: List[str], what: str) -> str:
    more = f" ... ({len(items)} in all)" if len(items) > 10 else ""
    return f"{len(items)} {what}: {', '.join(items[:10])}{more}"


def adapt_state_dict(state: Mapping[str, np.ndarray], model: Module,
                     style: Optional[str] = None) -> "OrderedDict[str, np.ndarray]":
    """``state`` in any known style -> ``model``'s names, checked key by key and shape by shape.

    A ``module.`` prefix on every key (``nn.DataParallel``) is dropped; ``num_batches_tracked``
    entries become int64, and are filled with 0 where the source has none. Raises
    :class:`StateDictMismatchError` listing (up to 10 of each) the missing, unexpected and
    mis-shaped keys. Returns an ``OrderedDict`` in the model's order, ready for
    ``model.load_state_dict``.
    """
    if state and all(k.startswith("module.") for k in state):
        state = OrderedDict((k[7:], v) for k, v in state.items())
    style = style or detect_style(state)
    converters = {"native": lambda s, m: OrderedDict(s), "timm": from_timm, "lukemelas": from_lukemelas}
    if style not in converters:
        raise ValueError(f"adapt_state_dict: style must be one of {list(converters)}, got {style!r}")
    mapped = converters[style](state, model)
    own = model.state_dict()
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    missing, bad = [], []
    for key, ref in own.items():
        if key.endswith("num_batches_tracked"):
            out[key] = np.asarray(mapped.get(key, 0)).astype(np.int64)
        elif key not in mapped:
            missing.append(key)
            continue
        else:
            out[key] = np.asarray(mapped[key])
        if out[key].shape != ref.shape:
            bad.append(f"{key} {out[key].shape} (model {ref.shape})")
    unexpected = [k for k in mapped if k not in own]
    if missing or unexpected or bad:
        parts = [_listed(x, what) for x, what in ((missing, "missing"), (unexpected, "unexpected"),
                                                   (bad, "with another shape")) if x]
        raise StateDictMismatchError(
            f"adapt_state_dict: the {style}-style state dict ({len(state)} entries) does not fit "
            f"{type(model).__name__} ({len(own)} entries): " + "; ".join(parts))
    return out
