"""Parameters, MACs and FLOPs, counted from the layers' own shape arithmetic.

Conventions
-----------
params
    trainable parameters (BatchNorm weight and bias included; running
    statistics and ``num_batches_tracked`` excluded), as ``torchvision``.
MACs
    multiply-accumulates of convolution and linear layers for ONE image:
    conv C_out * (C_in / groups) * KH * KW * H' * W', linear in * out. This is
    the papers' "Mult-Adds" and torchvision's "GFLOPS"; bias, BN, activations,
    pooling and adds are not counted.
FLOPs
    every floating-point operation, for the summary's extra column:
    conv and linear 2 per MAC (+1 per output for a bias); BatchNorm 2 per value
    (scale and shift, i.e. folded); ReLU 1, ReLU6 2, Sigmoid 4, HardSigmoid 4,
    SiLU 5, HardSwish 5 per value; global average pooling 1 per input value;
    a residual add or an SE channel scaling 1 per value. Dropout, Flatten: 0.
"""
from __future__ import annotations

from typing import Iterator, List, NamedTuple, Protocol, Sequence, Tuple


class LayerCount(NamedTuple):
    """One row of a model's profile, for one image: see ``Module.profile``."""
    name: str
    type: str
    out_shape: Tuple[int, ...]
    params: int
    macs: int      # multiply-accumulates of conv and linear layers (the papers' Mult-Adds)
    flops: int     # every arithmetic op, by the convention above


class Countable(Protocol):
    """What counting needs of a module: ``profile`` and ``parameters``. Counting imports no
    module class, so that ``Module.summary`` can use it without an import cycle."""

    def profile(self, input_shape: Sequence[int]) -> Tuple[Tuple[int, ...], List[LayerCount]]: ...

    def parameters(self) -> Iterator: ...


def _one_image(input_shape: Sequence[int]) -> Tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 3:
        return (1,) + shape
    if len(shape) == 4 and shape[0] == 1:
        return shape
    raise ValueError(f"input_shape must be (C, H, W) or (1, C, H, W), got {tuple(input_shape)}")


def count_params(model: Countable) -> int:
    """Number of trainable parameters."""
    return sum(p.data.size for p in model.parameters())


def count_macs(model: Countable, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of conv and linear layers for one image of ``input_shape``."""
    return sum(row.macs for row in model.profile(_one_image(input_shape))[1])


def count_flops(model: Countable, input_shape: Sequence[int]) -> int:
    """All floating-point operations for one image, by the convention above."""
    return sum(row.flops for row in model.profile(_one_image(input_shape))[1])


class Summary:
    """A per-layer table: name, type, output shape, params, MACs, FLOPs, with totals."""

    def __init__(self, model: Countable, input_shape: Sequence[int]):
        self.input_shape = _one_image(input_shape)
        self.output_shape, self.rows = model.profile(self.input_shape)
        self.rows: List[LayerCount] = [r for r in self.rows if r.params or r.macs or r.flops]
        self.params = count_params(model)
        self.macs = sum(r.macs for r in self.rows)
        self.flops = sum(r.flops for r in self.rows)
        self.title = type(model).__name__

    def table(self) -> str:
        head = ("layer", "type", "output", "params", "MACs", "FLOPs")
        body = [(r.name, r.type, "x".join(map(str, r.out_shape[1:])), f"{r.params:,}",
                 f"{r.macs:,}", f"{r.flops:,}") for r in self.rows]
        foot = ("total", "", "x".join(map(str, self.output_shape[1:])), f"{self.params:,}",
                f"{self.macs:,}", f"{self.flops:,}")
        widths = [max(len(row[i]) for row in [head, foot] + body) for i in range(6)]

        def fmt(row):
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        rule = "-" * len(fmt(head))
        lines = [f"{self.title}, input {'x'.join(map(str, self.input_shape[1:]))}", rule, fmt(head), rule]
        lines += [fmt(row) for row in body] + [rule, fmt(foot), rule]
        lines.append(f"params {self.params:,} | MACs {self.macs:,} ({self.macs / 1e6:.1f} M Mult-Adds) "
                     f"| FLOPs {self.flops:,} (all ops, see tinynets.nn.counting)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return self.table()


def summary(model: Countable, input_shape: Sequence[int]) -> Summary:
    """``print(summary(model, (3, 224, 224)))`` shows the table; the object keeps
    ``.rows``, ``.params``, ``.macs`` and ``.flops``."""
    return Summary(model, input_shape)


class ShapeCounting:
    """The counting methods of ``Module`` (a mixin): shape arithmetic and per-layer rows.

    Layers that change the shape or do arithmetic override ``output_shape``, ``macs`` and
    ``flops``; containers inherit ``profile``, which runs the children in order.
    """

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
