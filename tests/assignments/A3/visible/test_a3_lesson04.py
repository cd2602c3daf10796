"""A3, visible: the exercises of lesson 04, each run alone from its answer cell.

Run them with ``python -m pytest -m A3 -k "block_cost or residuals or collapsed or v2 or
try_block"``. The blocks these tests build use Sigmoid and no BatchNorm (see the A3
conftest), so that gradients can be checked by finite differences.
"""
import copy
from types import SimpleNamespace

import numpy as np
import pytest

import tinynets as tn
from tinynets.models.mobilenet_v2 import INVERTED_RESIDUAL_SETTING

pytestmark = [pytest.mark.A3]


def v2_block_inputs(a3):
    """((k, t, k', s, h, w), block) for MobileNetV2's 17 blocks at 224 pixels."""
    out, size = [], 112
    for _, c_in, c, s, t in a3.v2_blocks():
        out.append((c_in, t, c, s, size, size))
        size = -(-size // s)
    return out


def check_block_cost(checks, cases):
    ns = checks.exercise("04", "A3.try_block_cost", forbid=("tinynets",))
    block_cost = checks.defined(ns, "block_cost", "A3.try_block_cost")
    for k, t, k_out, s, h, w in cases:
        blk = tn.InvertedResidual(k, k_out, s, t)
        want = (tn.count_params(blk), tn.count_macs(blk, (k, h, w)))
        got = tuple(block_cost(k, t, k_out, s, h, w))
        if got != want:
            raise AssertionError(f"A3.try_block_cost: block_cost{(k, t, k_out, s, h, w)} should be "
                                 f"(params, macs) = {want}, got {got}")
    return block_cost


def test_try_block_cost_mobilenet_v2_blocks(checks, a3):
    check_block_cost(checks, v2_block_inputs(a3) + [(5, 3, 7, 2, 9, 11), (6, 1, 6, 1, 5, 5),
                                                    (3, 4, 3, 2, 1, 1)])


def smooth_blocks(a3, configs, seed):
    """InvertedResidual blocks in float64 with Sigmoid, BatchNorm taken out, random weights."""
    rng = np.random.default_rng(seed)
    return [a3.randomize(a3.strip_bn(tn.InvertedResidual(*cfg, activation=tn.Sigmoid,
                                                         dtype=np.float64)), rng)
            for cfg in configs]


def check_two_residuals(checks, a3, configs, shape, seed):
    b1, b2 = smooth_blocks(a3, configs, seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal(shape)
    c1, c2 = copy.deepcopy(b1), copy.deepcopy(b2)
    with tn.no_grad():                                # forwards only: no caches kept
        dout = rng.standard_normal(c2(c1(x)).shape)
        want = a3.smooth_gradient(lambda: c2(c1(x)), x, dout)
    b2(b1(x))                                         # the forward fills the branches' caches
    ns = checks.exercise("04", "A3.try_two_residuals", forbid=("tinynets", "type", "__class__",
                                                               "getattr", "vars", "super"),
                         r1=SimpleNamespace(conv=b1.conv), r2=SimpleNamespace(conv=b2.conv),
                         x_two=x, dout_two=dout)
    checks.expect_close(f"A3.try_two_residuals dx_two for blocks {configs} on x {shape} vs "
                        "finite differences", checks.defined(ns, "dx_two", "A3.try_two_residuals"),
                        want, 1e-7)


def test_try_two_residuals_lesson_blocks(checks, a3):
    check_two_residuals(checks, a3, [(8, 8, 1, 6), (8, 8, 1, 6)], (2, 8, 4, 4), 0)


def check_collapsed_cell(checks, a3, cases):
    ns = checks.exercise("04", "A3.try_collapsed", forbid=("tinynets",))
    collapsed = checks.defined(ns, "collapsed", "A3.try_collapsed")
    for what, T, X in cases:
        a3.check_collapsed(collapsed(T, X), T, X, f"A3.try_collapsed, {what}")


def spiral(m=400):
    arc = np.linspace(0, 1, m)
    radius, angle = 0.5 + 3 * arc, 4 * np.pi * arc
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def test_try_collapsed_lesson_embeddings(checks, a3):
    X = spiral()
    cases = [(f"n = {n}", np.random.default_rng([n, seed]).standard_normal((n, 2)), X)
             for n, seed in [(2, 1), (3, 2), (5, 3), (15, 4)]]
    check_collapsed_cell(checks, a3, cases)


def check_v2_counts(checks, a3, rows):
    block_cost = checks.exercise("04", "A3.try_block_cost", forbid=("tinynets",))["block_cost"]
    ns = checks.exercise("04", "A3.try_v2_counts", forbid=("tinynets",), block_cost=block_cost,
                         make_divisible=a3.make_divisible,
                         INVERTED_RESIDUAL_SETTING=list(INVERTED_RESIDUAL_SETTING))
    counts = checks.defined(ns, "mobilenet_v2_counts", "A3.try_v2_counts")
    want = a3.targets("mobilenet_v2")
    for w, H in rows:
        got = tuple(counts(w, H))
        if got != want[w, H]:
            raise AssertionError(f"A3.try_v2_counts: mobilenet_v2_counts({w}, {H}) should be "
                                 f"torchvision's (params, MACs) = {want[w, H]}, got {got}")


def test_try_v2_counts_torchvision(checks, a3):
    check_v2_counts(checks, a3, [(1.0, 224), (0.5, 224), (1.0, 160)])


BLOCK_FORBID = ("InvertedResidual", "InvertedResidualV3", "MBConv", "_ResidualBlock", "models",
                "mobilenet_v2", "MobileNetV2", "get_model", "blocks", "import_module", "getattr",
                "vars", "__dict__", "globals")


def my_block_class(checks):
    ns = checks.exercise("04", "A3.try_block", forbid=BLOCK_FORBID)
    return checks.defined(ns, "MyInvertedResidual", "A3.try_block")


def test_try_block_torchvision_keys(checks, a3):
    """MobileNetV2's 17 blocks: torchvision's state_dict keys and shapes, and the residuals."""
    cls = my_block_class(checks)
    for i, c_in, c, s, t in a3.v2_blocks():
        blk = cls(c_in, c, s, t)
        got = [(k, tuple(np.shape(v))) for k, v in blk.state_dict().items()]
        want = a3.torchvision_block(i)
        if got != want:
            raise AssertionError(f"A3.try_block: MyInvertedResidual({c_in}, {c}, {s}, {t}) should "
                                 f"have the state_dict of torchvision's features.{i}: {want}, got {got}")
        if bool(getattr(blk, "use_res_connect", None)) != (s == 1 and c_in == c):
            raise AssertionError(f"A3.try_block: MyInvertedResidual({c_in}, {c}, {s}, {t}) should "
                                 f"have use_res_connect = {s == 1 and c_in == c}")


def check_block_numbers(checks, a3, cfg, shape, seed):
    """Forward against a direct computation, backward against finite differences."""
    cls = my_block_class(checks)
    k, k_out, s, t = cfg
    rng = np.random.default_rng(seed)
    blk = a3.randomize(a3.strip_bn(cls(*cfg, activation=tn.Sigmoid, dtype=np.float64)), rng)
    w = {key: v for key, v in blk.state_dict().items()}
    x = rng.standard_normal(shape)
    h = x if t == 1 else a3.sigmoid(a3.pointwise(x, w["conv.0.0.weight"]))
    first = 0 if t == 1 else 1
    h = a3.sigmoid(a3.depthwise3x3(h, w[f"conv.{first}.0.weight"], s))
    want = a3.pointwise(h, w[f"conv.{first + 1}.weight"]) + (x if s == 1 and k == k_out else 0)
    y = blk(x)
    checks.expect_close(f"A3.try_block: MyInvertedResidual{cfg} forward (BatchNorm taken out, "
                        "Sigmoid) vs a direct computation", y, want)
    dout = rng.standard_normal(y.shape)
    blk.zero_grad()
    dx = blk.backward(dout)
    with tn.no_grad():
        f = lambda: blk(x)  # noqa: E731
        checks.expect_close(f"A3.try_block: MyInvertedResidual{cfg} dx vs finite differences", dx,
                            a3.smooth_gradient(f, x, dout), 1e-7)
        for name, p in blk.named_parameters():
            checks.expect_close(f"A3.try_block: MyInvertedResidual{cfg} {name}.grad vs finite "
                                "differences", p.grad, a3.smooth_gradient(f, p.data, dout), 1e-7)


def test_try_block_forward_backward(checks, a3):
    check_block_numbers(checks, a3, (4, 4, 1, 3), (2, 4, 5, 5), 0)      # residual
    check_block_numbers(checks, a3, (4, 6, 2, 3), (2, 4, 6, 5), 1)      # stride 2: no residual
