"""EfficientNet B0-B7 (Tan & Le 2019, arXiv 1905.11946) and EfficientNet-Lite0-4.

B0 is a stack of MBConv blocks (paper Table 1); B1-B7 scale it in width, depth and
resolution. Shapes for B0 at 224::

    features.0   conv3x3 s2 3 -> 32 + BN + SiLU               (N, 32, 112, 112)
    features.1   MBConv1 k3     32 -> 16   x1                  (N, 16, 112, 112)
    features.2   MBConv6 k3 s2  16 -> 24   x2                  (N, 24, 56, 56)
    features.3   MBConv6 k5 s2  24 -> 40   x2                  (N, 40, 28, 28)
    features.4   MBConv6 k3 s2  40 -> 80   x3                  (N, 80, 14, 14)
    features.5   MBConv6 k5     80 -> 112  x3                  (N, 112, 14, 14)
    features.6   MBConv6 k5 s2  112 -> 192 x4                  (N, 192, 7, 7)
    features.7   MBConv6 k3     192 -> 320 x1                  (N, 320, 7, 7)
    features.8   conv1x1 320 -> 1280 + BN + SiLU               (N, 1280, 7, 7)
    pool, flatten, Dropout(p), Linear 1280 -> 1000             (N, 1000)

Scaling (torchvision = TF): width make_divisible(c * width_mult, 8) on every stage's
in/out (the stem is stage 1's input), depth ceil(repeats * depth_mult) per stage,
head 4 x the last width. Stochastic depth grows linearly over all N blocks,
p_b = stochastic_depth_prob * b / N, and acts only on residual blocks.

Lite (TF's edge variant): no SE, ReLU6, stem 32 and head 1280 never scaled, first and
last stages keep their repeats; BN eps 1e-3 and momentum 0.01 (TF decay .99). Its
keys are torchvision's layout minus the SE slot; ``padding="tf_same"`` gives every conv
TensorFlow SAME padding for TF-ported weights.

Counting convention (tinynets.nn.counting): params include BN weight and bias; MACs are
conv (SE 1x1 convs included) + Linear multiply-accumulates for one image, the paper's
"FLOPS". B0 at 224: 5,288,548 params, 385,814,752 MACs.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Type

import numpy as np

from ..nn.activations import ReLU6, SiLU
from ..nn.blocks import Conv2dNormActivation
from ..nn.residual import MBConv
from ..nn.layers import Dropout, Flatten, GlobalAvgPool2d, Linear
from ..nn.containers import Sequential
from ..nn.module import Module
from ._utils import ImageClassifier, init_weights, make_divisible
from .pretrained import load_pretrained, resolve_weights

# B0 stages: (expand_ratio, kernel, stride, in, out, repeats), paper Table 1
STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]

# name: (width_mult, depth_mult, paper resolution, dropout); torchvision's builders.
# torchvision evaluates B2 at 288 (its weights' crop), not 260.
EFFICIENTNET_PARAMS: Dict[str, tuple] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2), "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3), "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4), "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5), "efficientnet_b7": (2.0, 3.1, 600, 0.5),
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2), "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3), "efficientnet_lite3": (1.2, 1.4, 280, 0.3),
    "efficientnet_lite4": (1.4, 1.8, 300, 0.3),
}


class EfficientNet(ImageClassifier):
    """EfficientNet with torchvision's layout and init (Linear U(+-1/sqrt(out_features))).

    Parameters
    ----------
    width_mult, depth_mult : float   channel and repeat multipliers
    num_classes : int
    dropout : float                  before the classifier Linear
    stochastic_depth_prob : float    drop probability reached by the last block (0.2)
    lite : bool                      EfficientNet-Lite: no SE, ReLU6, fixed stem/head, ...
    norm_eps, norm_momentum : BatchNorm settings (B0-B4 1e-5/0.1, B5-B7 and Lite 1e-3/0.01)
    padding : None (symmetric, torchvision) or "tf_same" (TensorFlow SAME) for every conv
    default_resolution : int         input size the model was designed for
    dtype : float32 or float64

    Shapes: x (N, 3, H, W) -> logits (N, num_classes).
    """
    family = "efficientnet"          # for tinynets.io.keymaps

    def __init__(self, width_mult: float = 1.0, depth_mult: float = 1.0, num_classes: int = 1000,
                 dropout: float = 0.2, stochastic_depth_prob: float = 0.2, lite: bool = False,
                 norm_eps: float = 1e-5, norm_momentum: float = 0.1, padding: Optional[str] = None,
                 default_resolution: int = 224, dtype=np.float32):
        super().__init__()
        self.width_mult, self.depth_mult, self.lite = width_mult, depth_mult, lite
        self.num_classes, self.default_resolution = num_classes, default_resolution
        act: Type[Module] = ReLU6 if lite else SiLU
        cna = dict(norm_eps=norm_eps, norm_momentum=norm_momentum, padding=padding, dtype=dtype)

        def width(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        def depth(stage: int, repeats: int) -> int:
            if lite and stage in (0, len(STAGES) - 1):
                return repeats                       # Lite keeps the first and last stages
            return int(math.ceil(repeats * depth_mult))

        stages = [(t, k, s, width(c_in), width(c_out), depth(i, n))
                  for i, (t, k, s, c_in, c_out, n) in enumerate(STAGES)]
        if lite:
            stages[0] = stages[0][:3] + (32,) + stages[0][4:]   # fixed stem: stage 1 reads 32
        total_blocks = sum(st[5] for st in stages)

        layers = [Conv2dNormActivation(3, stages[0][3], 3, stride=2, activation=act, **cna)]
        b = 0                                                    # block index over the network
        for t, k, s, c_in, c_out, n in stages:
            blocks = []
            for j in range(n):
                blocks.append(MBConv(c_in if j == 0 else c_out, c_out, t, k, s if j == 0 else 1,
                                     stochastic_depth_prob * b / total_blocks, se=not lite,
                                     activation=act, **cna))
                b += 1
            layers.append(Sequential(*blocks))
        last_in = stages[-1][4]
        self.last_channel = 1280 if lite else 4 * last_in
        layers.append(Conv2dNormActivation(last_in, self.last_channel, 1, activation=act, **cna))
        self.features = Sequential(*layers)                     # (N, 1280, R/32, R/32) for B0
        self.avgpool = GlobalAvgPool2d()                         # (N, 1280, 1, 1)
        self.flatten = Flatten()                                 # (N, 1280)
        self.classifier = Sequential(Dropout(dropout),
                                     Linear(self.last_channel, num_classes, dtype=dtype))
        init_weights(self, linear="uniform")


def _build(name: str, **kwargs) -> EfficientNet:
    """A named configuration; keywords override its defaults (width_mult, depth_mult,
    norm_eps, norm_momentum, padding, default_resolution, dtype, ...)."""
    w, d, res, p = EFFICIENTNET_PARAMS[name]
    eps, momentum = _norm_settings(name)
    defaults = dict(width_mult=w, depth_mult=d, dropout=p, lite="lite" in name,
                    default_resolution=res, norm_eps=eps, norm_momentum=momentum)
    return EfficientNet(**{**defaults, **kwargs})


def _norm_settings(name: str):
    """BatchNorm (eps, momentum): TF's 1e-3 and 0.01 for Lite and B5-B7 (their weights
    come from TF), PyTorch's defaults for B0-B4, as torchvision."""
    big = name in ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7")
    return (1e-3, 0.01) if ("lite" in name or big) else (1e-5, 0.1)


def _constructor(name: str):
    """The public constructor of one row of ``EFFICIENTNET_PARAMS``, e.g. ``efficientnet_b0``."""
    w, d, res, p = EFFICIENTNET_PARAMS[name]

    def build(num_classes: int = 1000, dropout: float = p, stochastic_depth_prob: float = 0.2,
              weights: Optional[str] = None, pretrained: bool = False, **kwargs) -> EfficientNet:
        chosen = resolve_weights(name, weights, pretrained)
        if chosen is not None:
            if num_classes != 1000:
                raise ValueError(f"{name}(weights={weights!r}): the ImageNet weights have 1000 "
                                 f"classes, got num_classes={num_classes}")
            kwargs = {**chosen.model_kwargs, **kwargs}
        model = _build(name, num_classes=num_classes, dropout=dropout,
                       stochastic_depth_prob=stochastic_depth_prob, **kwargs)
        return load_pretrained(model, name) if chosen is not None else model

    title = name.replace("efficientnet_", "").capitalize()
    eps, momentum = _norm_settings(name)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = (
        f"EfficientNet-{title}: width {w}, depth {d}, resolution {res}, dropout {p}; "
        f"BN eps {eps:g}, momentum {momentum:g}.\n\n"
        f"    ``weights=\"DEFAULT\"`` (or ``pretrained=True``) loads ImageNet weights where\n"
        f"    ``tinynets.models.pretrained.WEIGHTS`` has them, into a model built with the\n"
        f"    settings they need, and returns it in eval mode.")
    return build


efficientnet_b0 = _constructor("efficientnet_b0")
efficientnet_b1 = _constructor("efficientnet_b1")
efficientnet_b2 = _constructor("efficientnet_b2")
efficientnet_b3 = _constructor("efficientnet_b3")
efficientnet_b4 = _constructor("efficientnet_b4")
efficientnet_b5 = _constructor("efficientnet_b5")
efficientnet_b6 = _constructor("efficientnet_b6")
efficientnet_b7 = _constructor("efficientnet_b7")
efficientnet_lite0 = _constructor("efficientnet_lite0")
efficientnet_lite1 = _constructor("efficientnet_lite1")
efficientnet_lite2 = _constructor("efficientnet_lite2")
efficientnet_lite3 = _constructor("efficientnet_lite3")
efficientnet_lite4 = _constructor("efficientnet_lite4")


# ------------------------------------------------------------------ compound scaling
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15       # depth, width, resolution at phi = 1; a*b^2*g^2 ~ 2


def compound_coefficients(phi: float, alpha: float = ALPHA, beta: float = BETA,
                          gamma: float = GAMMA) -> dict:
    """The paper's compound scaling for ``phi``, beside the released model of that step.

    Parameters
    ----------
    phi : float                   the compound coefficient (any real number)
    alpha, beta, gamma : float    depth, width and resolution factors of one step

    Returns
    -------
    dict with exactly these keys:

    * ``"phi"``: phi as given;
    * ``"depth_mult"`` = alpha^phi, ``"width_mult"`` = beta^phi (floats, not rounded);
    * ``"resolution"`` = 224 * gamma^phi (a float, not rounded: B0 is designed for 224);
    * ``"flops_factor"`` = (alpha * beta^2 * gamma^2)^phi, the predicted MACs over B0's;
    * ``"official"``: when phi is a whole number and ``EFFICIENTNET_PARAMS`` has
      ``f"efficientnet_b{int(phi)}"`` (phi = 0 ... 7), the dict ``{"model": that name,
      "width_mult": w, "depth_mult": d, "resolution": r}`` with that row's (w, d, r);
      otherwise None.

    The released models are not exact powers: B1 uses depth 1.1, not 1.2, and B7
    depth 3.1, not 1.2^7 = 3.58. The official table was tuned, then rounded.
    """
    ### BEGIN SOLUTION A5.compound_coefficients
    out = {"phi": phi, "depth_mult": alpha ** phi, "width_mult": beta ** phi,
           "resolution": 224 * gamma ** phi, "flops_factor": (alpha * beta ** 2 * gamma ** 2) ** phi,
           "official": None}
    name = f"efficientnet_b{int(phi)}"
    if float(phi).is_integer() and name in EFFICIENTNET_PARAMS:
        w, d, res, _ = EFFICIENTNET_PARAMS[name]
        out["official"] = {"model": name, "width_mult": w, "depth_mult": d, "resolution": res}
    return out
    ### END SOLUTION


def round_filters(channels: int, width_mult: float, divisor: int = 8) -> int:
    """A stage's channels at width ``width_mult``: TensorFlow's ``round_filters``.

    ``v = channels * width_mult`` goes to the nearest multiple of ``divisor`` (a half
    rounds up: ``int(v + divisor / 2) // divisor * divisor``), never below ``divisor``;
    if that lost more than 10% of ``v`` (result < 0.9 v), add one more ``divisor``.
    Examples at divisor 8: 32 x 1.1 = 35.2 -> 32; 40 x 1.2 = 48 -> 48; 16 x 0.7 = 11.2 -> 16;
    4 x 1.0 -> 8. Returns an int. (The models get the same numbers from ``make_divisible``.)
    """
    ### BEGIN SOLUTION A5.rounding
    v = channels * width_mult
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return int(new)
    ### END SOLUTION


def round_repeats(repeats: int, depth_mult: float) -> int:
    """A stage's number of blocks at depth ``depth_mult``: ``ceil(repeats * depth_mult)``,
    as an int (TensorFlow's ``round_repeats``): 3 x 1.1 = 3.3 -> 4, 2 x 1.2 = 2.4 -> 3."""
    ### BEGIN SOLUTION A5.rounding
    return int(math.ceil(repeats * depth_mult))
    ### END SOLUTION


def compound_scaling_table(phis=range(8)) -> str:
    """A text table: phi, raw (d, w, r) from the powers, and the official B<phi> values."""
    lines = [f"{'phi':>3}  {'d=1.2^phi':>9} {'w=1.1^phi':>9} {'r':>5}  |  {'model':<15} "
             f"{'d':>4} {'w':>4} {'r':>4}"]
    for phi in phis:
        c = compound_coefficients(phi)
        o = c["official"] or {"model": "-", "depth_mult": float("nan"), "width_mult": float("nan"),
                              "resolution": 0}
        lines.append(f"{phi:>3}  {c['depth_mult']:>9.3f} {c['width_mult']:>9.3f} "
                     f"{c['resolution']:>5.0f}  |  {o['model']:<15} {o['depth_mult']:>4.1f} "
                     f"{o['width_mult']:>4.1f} {o['resolution']:>4}")
    return "\n".join(lines)


def efficientnet(phi: float, num_classes: int = 1000, dropout: float = 0.2,
                 stochastic_depth_prob: float = 0.2, **kwargs) -> EfficientNet:
    """B0 scaled by the raw compound coefficients of ``phi`` (not the official table):
    depth_mult = 1.2^phi, width_mult = 1.1^phi, default_resolution = round(224 * 1.15^phi)."""
    c = compound_coefficients(phi)
    defaults = dict(width_mult=c["width_mult"], depth_mult=c["depth_mult"],
                    default_resolution=int(round(c["resolution"])))
    return EfficientNet(num_classes=num_classes, dropout=dropout,
                        stochastic_depth_prob=stochastic_depth_prob, **{**defaults, **kwargs})
