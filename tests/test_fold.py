"""BN folding: ``fold_bn`` gives the same outputs with every conv -> BN pair folded."""
import numpy as np
import pytest

import tinynets as tn
from tinynets.tools.fold import fold_bn, fold_conv_bn
from tinynets.nn.norm import batch_norm_forward

pytestmark = pytest.mark.task_fold


def _randomise_bn(model: tn.Module, rng: np.random.Generator) -> None:
    """Non-trivial running statistics and BN affine parameters, so that folding matters."""
    for m in model.modules():
        if isinstance(m, tn.BatchNorm2d):
            m.running_mean[...] = rng.standard_normal(m.num_features) * 0.2
            m.running_var[...] = rng.uniform(0.3, 2.0, m.num_features)
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.bias.data[...] = rng.standard_normal(m.num_features) * 0.1


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("groups", [1, 4])
def test_fold_conv_bn_equals_conv_then_bn(bias, groups):
    rng = np.random.default_rng(1)
    conv = tn.Conv2d(4, 8, 3, stride=2, padding=1, groups=groups, bias=bias, dtype=np.float64)
    bn = tn.BatchNorm2d(8, eps=1e-3, dtype=np.float64)
    _randomise_bn(bn, rng)
    bn.eval()
    x = rng.standard_normal((2, 4, 9, 7))
    z = conv(x)
    expected = batch_norm_forward(z, bn.weight.data, bn.bias.data, bn.eps,
                                  mean=bn.running_mean, var=bn.running_var)[0]
    weight, b = fold_conv_bn(conv, bn)
    folded = tn.Conv2d(4, 8, 3, stride=2, padding=1, groups=groups, bias=True, dtype=np.float64)
    folded.weight.data[...], folded.bias.data[...] = weight, b
    np.testing.assert_allclose(folded(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
                                  "mobilenet_v3_small", "efficientnet_b0", "efficientnet_lite0"])
def test_fold_bn_keeps_outputs(name):
    rng = np.random.default_rng(0)
    model = tn.models.get_model(name, num_classes=10, width_mult=0.5) if "mobilenet" in name \
        else tn.models.get_model(name, num_classes=10, width_mult=0.5, depth_mult=0.5)
    model = model.astype(np.float64)
    _randomise_bn(model, rng)
    model.eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    folded = fold_bn(model)
    n_bn = sum(isinstance(m, tn.BatchNorm2d) for m in model.modules())
    assert len(folded.folded_pairs) == n_bn                 # every BN follows a conv
    assert not any(isinstance(m, tn.BatchNorm2d) for m in folded.modules())
    x = rng.standard_normal((2, 3, 40, 40))
    with tn.no_grad():
        expected = model(x)
        fast = folded(x)                                    # in-place bias + activation path
    slow = folded(x)                                        # generic path (grad enabled)
    scale = np.abs(expected).max()
    assert np.abs(fast - expected).max() <= 1e-12 * scale
    assert np.abs(slow - expected).max() <= 1e-12 * scale
    for k, v in model.state_dict().items():                 # the original is untouched
        np.testing.assert_array_equal(v, before[k])
    conv_name = folded.folded_pairs[0][0]
    assert f"{conv_name}.bias" in folded.state_dict()


def test_fold_bn_float32_close():
    rng = np.random.default_rng(2)
    model = tn.models.mobilenet_v2(num_classes=10, width_mult=0.35)
    _randomise_bn(model, rng)
    model.eval()
    folded = fold_bn(model)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    with tn.no_grad():
        a, b = model(x), folded(x)
    assert b.dtype == np.float32
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()


def test_fold_conv_bn_channel_mismatch_is_clear():
    with pytest.raises(ValueError, match="8 output channels.*normalises 6"):
        fold_conv_bn(tn.Conv2d(3, 8, 1), tn.BatchNorm2d(6))
