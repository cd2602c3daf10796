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


# ------------------------------------------------------------------ closed forms, by hand
# The counts of one layer from its hyperparameters alone, with no layer built: the same
# numbers as the layers' ``macs`` and their parameters (tests/test_counting.py checks
# them against each other), written out so that a network's table can be derived on paper.
# The library's counting above does not use them.

def conv_output_size(size: int, kernel: int, stride: int = 1, padding=0) -> int:
    """Output length of a convolution along one axis, as ``Conv2d`` computes it.

    Parameters
    ----------
    size : int          input length (H or W)
    kernel : int        kernel length (KH or KW)
    stride : int
    padding : int or (before, after)
        an int pads both sides by that much.

    Returns
    -------
    int : ``(size + before + after - kernel) // stride + 1`` (floor division: a last
    window that does not fit is dropped).
    """
    ### BEGIN SOLUTION A5.conv_counts
    before, after = padding if isinstance(padding, (tuple, list)) else (padding, padding)
    return int((size + before + after - kernel) // stride + 1)
    ### END SOLUTION


def conv2d_params(in_channels: int, out_channels: int, kernel_size, groups: int = 1,
                  bias: bool = False) -> int:
    """Trainable parameters of a ``Conv2d``: its weight (and bias).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int (square) or (KH, KW)
    groups : int        1 standard, in_channels depthwise; must divide both channel counts
    bias : bool         MobileNets' and EfficientNets' convs before a BatchNorm have none

    Returns
    -------
    int : the weight is (C_out, C_in / groups, KH, KW), so ``C_out * (C_in / groups) * KH * KW``,
    plus ``C_out`` with a bias.

    Raises
    ------
    ValueError if ``groups`` does not divide ``in_channels`` and ``out_channels``.
    """
    ### BEGIN SOLUTION A5.conv_counts
    KH, KW = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,) * 2
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"conv2d_params: groups={groups} must divide in_channels={in_channels} "
                         f"and out_channels={out_channels}")
    return int(out_channels * (in_channels // groups) * KH * KW + (out_channels if bias else 0))
    ### END SOLUTION


def conv2d_macs(in_channels: int, out_channels: int, kernel_size, output_size,
                groups: int = 1) -> int:
    """Multiply-accumulates of a ``Conv2d`` for ONE image (the convention above).

    Every output value (C_out x H' x W' of them) is a dot product of its kernel,
    (C_in / groups) x KH x KW weights, with the input under it. The bias add is not a MAC.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int (square) or (KH, KW)
    output_size : int (square) or (H', W')     the OUTPUT's spatial size
    groups : int        must divide both channel counts

    Returns
    -------
    int : ``C_out * (C_in / groups) * KH * KW * H' * W'``.

    Raises
    ------
    ValueError if ``groups`` does not divide ``in_channels`` and ``out_channels``.
    """
    ### BEGIN SOLUTION A5.conv_counts
    KH, KW = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size,) * 2
    OH, OW = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"conv2d_macs: groups={groups} must divide in_channels={in_channels} "
                         f"and out_channels={out_channels}")
    return int(out_channels * (in_channels // groups) * KH * KW * OH * OW)
    ### END SOLUTION


def batchnorm2d_params(channels: int) -> int:
    """Trainable parameters of a ``BatchNorm2d``: gamma and beta, one each per channel.

    The running mean and variance are statistics, not trained, and not counted.
    Returns ``2 * channels``.
    """
    ### BEGIN SOLUTION A5.bn_linear_counts
    return int(2 * channels)
    ### END SOLUTION


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Trainable parameters of a ``Linear``: weight (out, in), plus bias (out,) if ``bias``.

    Returns ``in * out`` (+ ``out``).
    """
    ### BEGIN SOLUTION A5.bn_linear_counts
    return int(in_features * out_features + (out_features if bias else 0))
    ### END SOLUTION


def linear_macs(in_features: int, out_features: int) -> int:
    """Multiply-accumulates of a ``Linear`` for ONE input vector: ``in * out``
    (each output is a dot product of length ``in``; the bias add is not a MAC)."""
    ### BEGIN SOLUTION A5.bn_linear_counts
    return int(in_features * out_features)
    ### END SOLUTION
