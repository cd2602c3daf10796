"""The module protocol: names, state, modes, dtypes, caches and gradient accumulation."""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn

pytestmark = pytest.mark.task_layers


def _net():
    return tn.Sequential(tn.Conv2d(3, 4, 3, padding=1, bias=False), tn.BatchNorm2d(4), tn.ReLU6(),
                         tn.GlobalAvgPool2d(), tn.Flatten(), tn.Linear(4, 2))


def test_names_follow_pytorch():
    net = _net()
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "1.weight", "1.bias", "5.weight", "5.bias"]
    assert list(net.state_dict()) == ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                      "1.num_batches_tracked", "5.weight", "5.bias"]
    assert [n for n, _ in net.named_modules()][:3] == ["", "0", "1"]
    assert net[5] is net._modules["5"] and len(net) == 6


def test_state_dict_round_trip(rng):
    a, b = _net(), _net()
    a.train()(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))          # moves the running stats
    missing, unexpected = b.load_state_dict(a.state_dict())
    assert missing == [] and unexpected == []
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    assert int(b.state_dict()["1.num_batches_tracked"]) == 1
    b.load_state_dict({"0.weight": a.state_dict()["0.weight"]}, strict=False)


def test_float32_by_default_and_no_upcasts(rng):
    net = _net()
    assert all(p.data.dtype == np.float32 for p in net.parameters())
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    for layer in net:                                    # every intermediate stays float32
        x = layer(x)
        assert x.dtype == np.float32, type(layer).__name__
    dx = net.backward(np.ones_like(x))
    assert dx.dtype == np.float32
    for act in [tn.Sigmoid(), tn.SiLU(), tn.HardSwish(), tn.HardSigmoid(), tn.Dropout(0.5)]:
        assert act(np.ones((2, 3), np.float32)).dtype == np.float32
        assert act.backward(np.ones((2, 3), np.float32)).dtype == np.float32
    loss = tn.CrossEntropyLoss()
    assert loss(np.zeros((2, 3), np.float32), np.array([0, 1])).dtype == np.float32
    assert loss.backward().dtype == np.float32


def test_astype_casts_parameters_and_float_buffers():
    net = _net().astype(np.float64)
    sd = net.state_dict()
    assert sd["1.running_var"].dtype == np.float64 and sd["0.weight"].dtype == np.float64
    assert sd["1.num_batches_tracked"].dtype == np.int64
    assert all(p.grad.dtype == np.float64 for p in net.parameters())


def test_train_eval_reach_every_module():
    net = _net().eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_backward_accumulates_and_zero_grad_clears(rng):
    fc = tn.Linear(3, 2).astype(np.float64)
    x, d = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    fc(x)
    fc.backward(d)
    once = fc.weight.grad.copy()
    fc(x)
    fc.backward(d)
    np.testing.assert_allclose(fc.weight.grad, 2 * once)           # +=, as loss.backward() in PyTorch
    fc.zero_grad()
    assert not fc.weight.grad.any() and not fc.bias.grad.any()


def test_no_grad_keeps_no_caches(rng):
    net = _net()
    with tn.no_grad():
        assert not tn.is_grad_enabled()
        net(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))
    assert tn.is_grad_enabled()
    assert all(m.cache is None for m in net.modules())
    net(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))
    assert net[0].cache is not None


def test_backward_frees_the_caches(rng):
    """As PyTorch frees its graph: no activations are held between training steps."""
    net = _net()
    out = net(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))
    assert any(m.cache is not None for m in net.modules())
    net.backward(np.ones_like(out))
    assert all(m.cache is None for m in net.modules())
    with pytest.raises(RuntimeError, match="twice for one forward"):
        net.backward(np.ones_like(out))


def test_backward_works_in_eval_mode(rng):
    """Saliency maps and gradient checks need eval-mode gradients."""
    net = _net().eval()
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    out = net(x)
    assert net.backward(np.ones_like(out)).shape == x.shape


def test_batchnorm_running_statistics(rng):
    bn = tn.BatchNorm2d(2, momentum=0.1).astype(np.float64)
    x = rng.standard_normal((3, 2, 4, 5)) * 2 + 1
    bn(x)
    m = 3 * 4 * 5
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1))  # unbiased
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    out = bn(x)
    expected = (x - bn.running_mean[:, None, None]) / np.sqrt(bn.running_var[:, None, None] + bn.eps)
    np.testing.assert_allclose(out, expected)


def test_dropout_is_identity_in_eval_and_scaled_in_train(rng):
    x = np.ones((1000, 10))
    drop = tn.Dropout(0.25)
    assert drop.eval()(x) is x
    y = drop.train()(x)
    assert set(np.unique(y)) <= {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02


def test_sigmoid_is_stable_in_float32():
    x = np.array([-1000.0, -80.0, 0.0, 80.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # underflow to 0 is fine
        y = tn.Sigmoid()(x)
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    np.testing.assert_allclose(y[[0, 2, 4]], [0.0, 0.5, 1.0])


def test_log_softmax_is_stable():
    logits = np.array([[1000.0, 0.0, -1000.0]])
    loss = tn.CrossEntropyLoss()(logits, np.array([0]))
    assert np.isfinite(loss) and loss < 1e-12


def test_counting_of_small_net():
    net = _net()
    s = net.summary((3, 16, 16))
    assert s.params == tn.count_params(net) == 3 * 4 * 9 + 8 + 4 * 2 + 2
    assert s.macs == tn.count_macs(net, (3, 16, 16)) == 4 * 3 * 9 * 16 * 16 + 4 * 2
    assert "Conv2d" in str(s) and "total" in str(s)


def test_replacing_a_child_keeps_its_place():
    seq = tn.Sequential(tn.ReLU(), tn.Sigmoid(), tn.HardSwish())
    setattr(seq, "1", tn.SiLU())
    assert [type(m).__name__ for m in seq] == ["ReLU", "SiLU", "HardSwish"]
    x = np.linspace(-4, 4, 9)
    assert np.array_equal(seq(x), tn.HardSwish()(tn.SiLU()(tn.ReLU()(x))))


def test_load_state_dict_copies(rng):
    """Training after loading must not change the dict that was loaded."""
    net = _net()
    state = {k: v.copy() for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    before = {k: v.copy() for k, v in state.items()}
    for p in net.parameters():
        p.data += 1                                     # an in-place optimizer step
    assert all(np.array_equal(state[k], before[k]) for k in state)
