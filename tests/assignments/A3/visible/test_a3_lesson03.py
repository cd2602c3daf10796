"""A3, visible: the exercises of lesson 03, each run alone from its answer cell.

Run them with ``python -m pytest -m A3 -k "block_counts or predict or full_conv"``. Each
test runs the answer cell of ``lessons/03_depthwise_mobilenet_v1.ipynb`` whose first line
names the task, with the inputs it chooses, and compares with counts taken from layers
built here, or with the paper's counts in ``tests/fixtures/targets.json``.
"""
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A3]

LESSON_BLOCKS = [(32, 64, 112, 1), (64, 128, 112, 2), (512, 1024, 14, 2), (24, 40, 7, 2),
                 (16, 8, 9, 1)]


def check_block_counts(checks, cases):
    ns = checks.exercise("03", "A3.try_block_counts", forbid=("tinynets",))
    block_counts = checks.defined(ns, "block_counts", "A3.try_block_counts")
    for M, N, H, s in cases:
        layers = tn.Sequential(tn.Conv2d(M, M, 3, s, padding=1, groups=M, bias=False),
                               tn.BatchNorm2d(M), tn.Conv2d(M, N, 1, bias=False), tn.BatchNorm2d(N))
        want = (tn.count_macs(layers, (M, H, H)), tn.count_params(layers))
        got = tuple(block_counts(M, N, H, s))
        if got != want:
            raise AssertionError(f"A3.try_block_counts: block_counts({M}, {N}, {H}, {s}) should be "
                                 f"(macs, params) = {want}, got {got}")


def test_try_block_counts_lesson_blocks(checks):
    check_block_counts(checks, LESSON_BLOCKS)


def check_predict(checks, a3, want):
    """``want``: {(alpha, H): MACs}; the cell sees only the 224-pixel rows."""
    given = {(a, 224): {"model": "mobilenet_v1", "kwargs": {"width_mult": a}, "resolution": 224,
                        "params": p, "macs": m}
             for (a, H), (p, m) in a3.targets("mobilenet_v1").items() if H == 224}
    ns = checks.exercise("03", "A3.try_predict_macs", forbid=("tinynets",), V1_TARGETS=given)
    predict_macs = checks.defined(ns, "predict_macs", "A3.try_predict_macs")
    for (alpha, H), macs in want.items():
        got = predict_macs(alpha, H)
        if got != macs:
            raise AssertionError(f"A3.try_predict_macs: predict_macs({alpha}, {H}) should be "
                                 f"{macs:,} MACs, got {got}")


def test_try_predict_macs_paper_resolutions(checks, a3):
    """Width 1 at 192, 160 and 128 pixels: the paper's Table 7."""
    want = {k: m for k, (_, m) in a3.targets("mobilenet_v1").items() if k[0] == 1.0 and k[1] != 224}
    check_predict(checks, a3, want)


def layer_kinds(model, summ):
    """The lesson's kind_macs and kind_weights: MACs and weights per kind of layer."""
    kinds = [("conv_stem", "conv 3x3 (stem)"), ("conv_dw", "depthwise 3x3"),
             ("conv_pw", "conv 1x1"), ("classifier", "fully connected")]
    weights = {n: p.data.size for n, p in model.named_parameters() if n.endswith("weight")}
    kind_macs, kind_weights = {}, {}
    for r in summ.rows:
        kind = next((k for key, k in kinds if key in r.name), None)
        if kind is not None:
            kind_macs[kind] = kind_macs.get(kind, 0) + r.macs
            kind_weights[kind] = kind_weights.get(kind, 0) + weights[r.name + ".weight"]
    return kind_macs, kind_weights


FULL_FORBID = ("count_macs", "count_params", "Conv2d", "Conv2dNormActivation", "Sequential",
               "summary", "profile")


def built_full_conv(model, H):
    """(MACs, conv and FC weights) of the network the lesson's check builds: the stem, one
    standard 3x3 conv (+ BN) per block, the classifier."""
    layers = [model.conv_stem, model.bn1, model.act1]
    for stage in model.blocks:
        for m in stage:
            layers.append(tn.Conv2dNormActivation(m.conv_dw.in_channels, m.conv_pw.out_channels, 3,
                                                  m.conv_dw.stride))
    full = tn.Sequential(*layers, model.global_pool, model.flatten, model.classifier)
    weights = sum(p.data.size for n, p in full.named_parameters()
                  if n.endswith("weight") and p.data.ndim > 1)
    return tn.count_macs(full, (3, H, H)), weights


def check_full_conv(checks, alpha, H, want=None):
    model = tn.models.mobilenet_v1(width_mult=alpha)
    summ = model.summary((3, H, H))
    kind_macs, kind_weights = layer_kinds(model, summ)
    ns = checks.exercise("03", "A3.try_full_conv", forbid=FULL_FORBID, model=model, summ=summ,
                         kind_macs=kind_macs, kind_weights=kind_weights)
    got = (checks.defined(ns, "full_macs", "A3.try_full_conv"),
           checks.defined(ns, "full_weights", "A3.try_full_conv"))
    want = want or built_full_conv(model, H)
    if got != want:
        raise AssertionError(f"A3.try_full_conv: (full_macs, full_weights) of MobileNetV1 at width "
                             f"{alpha}, {H}x{H}, with standard 3x3 convolutions should be {want}, "
                             f"got {got}")


def test_try_full_conv_paper_table4(checks):
    """Width 1 at 224 (the paper's Table 4: 4866 M Mult-Adds, 29.3 M weights) and width 0.75
    at 192, against the network built with standard convolutions."""
    check_full_conv(checks, 1.0, 224)
    check_full_conv(checks, 0.75, 192)
