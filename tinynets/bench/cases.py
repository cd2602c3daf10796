"""What ``python -m tinynets bench`` measures: its sections, networks, goals, sizes, the
layer cases, and ``Row``, one measurement of tinynets beside torch's."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

SECTIONS = ("layers", "networks", "memory", "jit", "fold", "together", "profile")
MODELS = ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0")
# the goals for tinynets / torch: (comparison, limit)
TARGETS = {"depthwise": ("<", 1.0), "stem and SE": ("≤", 1.0), "train step": ("≤", 0.85),
           "inference": ("≤", 0.85), "memory": ("≤", 0.8)}


@dataclass(frozen=True)
class Config:
    """Sizes and repeat counts. ``FULL`` is the issue's; ``QUICK`` is a smoke test."""
    name: str
    batch: int          # layers, train steps, memory, jit
    hw: int             # H = W of the 144- and 24-channel layer inputs
    stem_hw: int        # H = W of the stem conv's input
    res: int            # network input resolution
    warmup: int         # warm-up runs of layers and inference (train steps: 1)
    layer_repeats: int
    train_repeats: int
    infer_repeats: int


FULL = Config("full", 16, 56, 224, 224, warmup=2, layer_repeats=5, train_repeats=3, infer_repeats=10)
QUICK = Config("quick", 2, 16, 32, 64, warmup=1, layer_repeats=2, train_repeats=1, infer_repeats=2)


@dataclass
class Row:
    """One measurement: tinynets' value (seconds, or bytes for memory) and torch's."""
    section: str
    name: str
    step: str
    shape: str
    tn: Optional[float]
    torch: Optional[float] = None
    flops: Optional[float] = None                   # FLOPs of the measured work
    target: Optional[Tuple[str, float]] = None      # e.g. ("≤", 1.5)
    extra: Dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> Optional[float]:
        return self.tn / self.torch if self.tn and self.torch else None

    @property
    def met(self) -> Optional[bool]:
        if self.target is None or self.ratio is None:
            return None
        op, limit = self.target
        return self.ratio < limit if op == "<" else self.ratio <= limit


# ------------------------------------------------------------------ timing


def layer_cases(cfg: Config) -> List[Tuple[str, str, dict, Tuple[int, ...]]]:
    """(label, kind, spec, input shape) of every layer benchmark."""
    B, H = cfg.batch, cfg.hw
    x144, x24 = (B, 144, H, H), (B, 24, H, H)

    def conv(cin, cout, k, s, groups):
        return dict(cin=cin, cout=cout, k=k, s=s, groups=groups)

    cases = [(f"depthwise {k}x{k} s{s}", "conv", conv(144, 144, k, s, 144), x144)
             for k in (3, 5) for s in (1, 2)]
    cases += [("pointwise expand 24→144", "conv", conv(24, 144, 1, 1, 1), x24),
              ("pointwise project 144→24", "conv", conv(144, 24, 1, 1, 1), x144),
              ("stem conv 3→32 3x3 s2", "conv", conv(3, 32, 3, 2, 1), (B, 3, cfg.stem_hw, cfg.stem_hw))]
    cases += [(f"BN + {act}", "bnact", dict(C=144, act=act), x144) for act in ("ReLU6", "HardSwish", "SiLU")]
    cases.append(("SE 144→6→144 (SiLU, Sigmoid)", "se", dict(C=144, S=6), x144))
    return cases


def _shape(shape) -> str:
    return "x".join(map(str, shape))
