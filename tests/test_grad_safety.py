"""Gradients that cannot go silently wrong: each case gives the right answer or an error
that says what happened.

* caches: two forwards before one backward, an input written in place before backward,
  a module used twice in one forward, a module (and so its parameters) shared twice;
* the folded and fused paths of ``Conv2dNormActivation``; gradcheck runs the fused path;
* every activation exactly at its kinks against PyTorch (``fixtures/kinks.npz``), the
  NumPy layers and the fused BatchNorm + activation kernels;
* ``load_state_dict`` all-or-nothing; ``Parameter.data`` and its gradient; float16;
  accumulation into non-contiguous gradients; qualified names in errors; assigning
  before ``Module.__init__()``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tinynets as tn
from tinynets.nn.blocks import Conv2dNormActivation
from tinynets.nn.norm import BatchNorm2d
from tinynets.optim import SGD, param_groups_no_decay
from tinynets.tools.gradcheck import KinkWatch

pytestmark = pytest.mark.task_layers

F64 = np.float64
KINKS = np.load(Path(__file__).resolve().parent / "fixtures" / "kinks.npz", allow_pickle=False)


# ------------------------------------------------------------------ caches: two forwards
def test_backward_after_two_forwards_on_different_inputs_is_refused(rng):
    lin = tn.Linear(3, 2, dtype=F64)
    x1, x2, d1 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    lin(x1)
    lin(x2)                                        # e.g. an extra forward for metrics
    with pytest.raises(RuntimeError, match=r"Linear.*forward\(\) ran again on another input.*"
                                           r"cannot tell which.*no_grad"):
        lin.backward(d1)
    assert not lin.weight.grad.any()               # nothing was accumulated
    lin(x1)                                        # the next step starts clean
    lin.backward(d1)
    np.testing.assert_allclose(lin.weight.grad, d1.T @ x1)


def test_gradient_accumulation_one_backward_per_forward(rng):
    lin = tn.Linear(3, 2, dtype=F64)
    xs, ds = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 4, 2))
    for x, d in zip(xs, ds):
        lin(x)
        lin.backward(d)
    np.testing.assert_allclose(lin.weight.grad, sum(d.T @ x for x, d in zip(xs, ds)))


def test_repeating_a_forward_on_the_same_input_replaces_it(rng):
    """Running the cell again, or gradcheck's forwards: the latest forward is the one."""
    net = tn.Sequential(tn.Linear(3, 4, dtype=F64), tn.ReLU6(), tn.Linear(4, 2, dtype=F64))
    x, d = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    net(x)
    net[0].weight.data *= 2                        # e.g. the user changed a weight and reran
    out = net(x)
    net.backward(d)
    dw_last = net[2].weight.grad.copy()
    h = net[1](net[0](x))
    np.testing.assert_allclose(dw_last, d.T @ h)
    assert out.shape == (4, 2)


def test_metrics_forward_inside_no_grad_is_told(rng):
    lin = tn.Linear(3, 2)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    lin(x)
    with tn.no_grad():
        lin(x)                                     # inference keeps no cache, and drops the old one
    with pytest.raises(RuntimeError, match="no_grad"):
        lin.backward(np.ones((4, 2), np.float32))


def test_a_submodule_run_again_breaks_the_outer_backward(rng):
    net = tn.Sequential(tn.Linear(3, 4, dtype=F64), tn.SiLU(), tn.Linear(4, 2, dtype=F64))
    x = rng.standard_normal((4, 3))
    net(x)
    net[0](rng.standard_normal((5, 3)))            # inspecting one layer by itself
    with pytest.raises(RuntimeError, match=r"'0'.*Linear.*was run again"):
        net.backward(np.ones((4, 2)))


# ------------------------------------------------------------------ caches: in-place writes
def test_writing_a_cached_input_in_place_raises(rng):
    lin = tn.Linear(3, 2, dtype=F64)
    x = rng.standard_normal((4, 3))
    lin(x)
    with pytest.raises(ValueError, match="read-only"):
        x *= 0                                     # used to give dW = 0 silently
    lin.backward(np.ones((4, 2)))
    np.testing.assert_allclose(lin.weight.grad, np.ones((4, 2)).T @ x)
    x *= 0                                         # writeable again once backward is done
    assert not x.any()


def test_writing_a_cached_output_or_a_view_base_raises(rng):
    relu = tn.ReLU()                               # keeps its own output, which it returns
    y = relu(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match="read-only"):
        y[...] = 1.0
    data = rng.standard_normal((8, 3))
    act = tn.ReLU6()
    act(data[:4])                                  # a view: its base is protected too
    with pytest.raises(ValueError, match="read-only"):
        data[0, 0] = 5.0
    act.backward(np.ones((4, 3)))
    data[0, 0] = 5.0
    relu.backward(np.ones((4, 3)))
    y[...] = 1.0


def test_arrays_no_cache_refers_to_stay_writeable(rng):
    """The conv stem keeps its im2col columns, not the images: the batch stays the user's."""
    conv = tn.Conv2d(3, 4, 3, padding=1)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    out = conv(x)
    x *= 0
    out *= 2
    ro = rng.standard_normal((4, 3))
    ro.flags.writeable = False                     # read-only before: stays read-only
    lin = tn.Linear(3, 2, dtype=F64)
    lin(ro)
    lin.backward(np.ones((4, 2)))
    assert not ro.flags.writeable


def test_an_abandoned_forward_gives_its_arrays_back(rng):
    x = rng.standard_normal((4, 3))
    tn.HardSwish()(x)                              # the layer is gone: so is its cache
    x[0, 0] = 1.0
    act = tn.HardSwish()
    act(x)
    act.cache = None                               # dropping the cache by hand
    x[0, 0] = 2.0


# ------------------------------------------------------------------ caches: re-entry
class _TwiceActivated(tn.Module):
    """One activation module called twice in one forward, as PyTorch code often does."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = tn.Linear(3, 4, dtype=F64), tn.Linear(4, 2, dtype=F64)
        self.act = tn.SiLU()

    def forward(self, x):
        return self.act(self.fc2(self.act(self.fc1(x))))

    def backward(self, dout):
        d = self.fc2.backward(self.act.backward(dout))
        return self.fc1.backward(self.act.backward(d))


def test_a_module_used_twice_in_one_forward(check_grads, rng):
    check_grads("re-entered module", _TwiceActivated(), rng.standard_normal((5, 3)))


def test_sequential_with_one_module_twice(check_grads, rng):
    c = tn.Linear(3, 3, dtype=F64)
    seq = tn.Sequential(c, tn.Sigmoid(), c)
    errors = check_grads("Sequential(c, act, c)", seq, rng.standard_normal((4, 3)))
    assert set(errors) == {"input", "0.weight", "0.bias"}        # the shared ones, once


# ------------------------------------------------------------------ shared parameters
def test_shared_parameters_are_counted_and_stepped_once(rng):
    c = tn.Linear(3, 3, dtype=F64)
    seq = tn.Sequential(c, c)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert tn.count_params(seq) == 12
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]  # as PyTorch
    groups = param_groups_no_decay(seq, 1e-4)
    assert [len(g["params"]) for g in groups] == [1, 1]
    x = rng.standard_normal((4, 3))
    seq(x)
    seq.backward(np.ones((4, 3)))
    before, grad = c.weight.data.copy(), c.weight.grad.copy()
    SGD(seq.parameters(), lr=0.1).step()
    np.testing.assert_allclose(c.weight.data, before - 0.1 * grad)   # one step, not two


def test_an_optimizer_refuses_a_parameter_twice_in_a_group():
    c = tn.Linear(3, 3)
    with pytest.raises(ValueError, match="more than once in a parameter group"):
        SGD([c.weight, c.weight], lr=0.1)


# ------------------------------------------------------------------ fused and folded paths
class _Scale(tn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, x):
        return x * self.s

    def backward(self, dout):
        return dout * self.s


def test_folded_path_needs_an_identity_in_the_middle(rng):
    block = tn.fold_bn(Conv2dNormActivation(3, 4, 3, dtype=F64).eval())
    assert isinstance(block[1], tn.Identity) and block[0].bias is not None
    setattr(block, "1", _Scale(100.0))                # a user module in the middle
    x = rng.standard_normal((2, 3, 6, 6))
    slow = block(x)                                   # grad enabled: every child runs
    with tn.no_grad():
        fast = block(x)
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    four = Conv2dNormActivation(3, 4, 3, dtype=F64).eval()
    setattr(four, "3", _Scale(-1.0))                  # a fourth child must run too
    with tn.no_grad():
        np.testing.assert_allclose(four(x), -tn.ReLU6()(four[1](four[0](x))), rtol=1e-12)


class _WrongFusedBN(BatchNorm2d):
    """Off by 0.1% only when BatchNorm applies the activation itself (the fused path)."""

    def backward(self, dout):
        fused = self.cache[5] != 0                    # the activation code forward kept
        dx = super().backward(dout)
        return dx * 1.001 if fused else dx


def test_gradcheck_runs_the_fused_path_training_runs(rng):
    block = Conv2dNormActivation(3, 4, 3, activation=tn.ReLU6, dtype=F64)
    with KinkWatch(block):
        block(rng.standard_normal((2, 3, 5, 5)))
        assert block.cache == (True,)                 # fused: the watch no longer turns it off
    setattr(block, "1", _WrongFusedBN(4, dtype=F64))
    errors = tn.gradcheck(block, rng.standard_normal((4, 3, 6, 6)), num_checks=12)
    assert errors["input"] > 1e-4                     # the fused backward is what is checked


def test_kink_watch_sees_the_fused_pre_activations(rng):
    block = Conv2dNormActivation(3, 4, 1, activation=tn.ReLU, dtype=F64).eval()
    x = rng.standard_normal((1, 3, 4, 4))
    watch = KinkWatch(block)
    with watch:
        watch.begin_forward()
        out = block(x)
        watch.end_forward()
    z = block[1](block[0](x))                         # BN alone: the pre-activations
    (pieces,) = watch.reference
    np.testing.assert_array_equal(pieces, (z > 0).astype(np.int8))
    assert block.cache == (True,) and np.array_equal(out, np.maximum(z, 0))


# ------------------------------------------------------------------ every kink, exactly
NUMPY_ACTS = {"relu": tn.ReLU, "relu6": tn.ReLU6, "hardsigmoid": tn.HardSigmoid,
              "hardswish": tn.HardSwish, "silu": tn.SiLU, "sigmoid": tn.Sigmoid}
FUSED_ACTS = {"relu": tn.ReLU, "relu6": tn.ReLU6, "hardswish": tn.HardSwish, "silu": tn.SiLU}
KINK_POINTS = {"relu": [0.0], "relu6": [0.0, 6.0], "hardsigmoid": [-3.0, 3.0],
               "hardswish": [-3.0, 3.0]}
PIECEWISE = set(KINK_POINTS)


def _compare_with_torch(name, dtype, out, grad):
    x = KINKS[f"x/{dtype}"]
    ref_out, ref_grad = KINKS[f"{name}/{dtype}/out"], KINKS[f"{name}/{dtype}/grad"]
    assert out.dtype == ref_out.dtype and grad.dtype == ref_grad.dtype
    at = np.isin(x, KINK_POINTS.get(name, []))
    if name in PIECEWISE:                             # exactly at the kinks: bit for bit
        np.testing.assert_array_equal(out[at], ref_out[at])
        np.testing.assert_array_equal(grad[at], ref_grad[at])
    eps = np.finfo(dtype).eps
    tol = 4 * eps if name in PIECEWISE else (1e-6 if dtype == "float32" else 1e-14)
    np.testing.assert_allclose(out, ref_out, rtol=tol, atol=tol)
    if name == "hardsigmoid" and dtype == "float64":
        tol = 5e-8                                    # torch's slope is float32's 1/6 in float64
    np.testing.assert_allclose(grad, ref_grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(NUMPY_ACTS))
def test_numpy_activation_at_its_kinks_matches_pytorch(name, dtype):
    x = KINKS[f"x/{dtype}"].copy()
    layer = NUMPY_ACTS[name]()
    out = layer(x)
    grad = layer.backward(np.ones_like(x))
    _compare_with_torch(name, dtype, out, grad)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(FUSED_ACTS))
def test_fused_batchnorm_activation_at_its_kinks_matches_pytorch(name, dtype):
    """Eval-mode BN with mean 0, var 1, eps 0, weight 1, bias 0: scale 1 and shift 0 exactly,
    so the kernel's pre-activation is the input itself, kinks included."""
    x = KINKS[f"x/{dtype}"].copy()
    bn = BatchNorm2d(1, eps=0.0, dtype=np.dtype(dtype).type).eval()
    act = FUSED_ACTS[name]()
    x4 = x.reshape(1, 1, 1, -1)
    out = bn(x4, activation=act)
    grad = bn.backward(np.ones_like(x4))
    _compare_with_torch(name, dtype, out.reshape(-1), grad.reshape(-1))


# ------------------------------------------------------------------ load_state_dict
def test_load_state_dict_is_all_or_nothing():
    net = tn.Sequential(tn.Conv2d(3, 4, 3, bias=False), tn.BatchNorm2d(4), tn.Linear(4, 2))
    before = {k: v.copy() for k, v in net.state_dict().items()}
    state = {k: v + 1 for k, v in net.state_dict().items()}
    del state["1.running_var"]
    state["2.weight"] = np.zeros((3, 4), np.float32)                 # wrong shape
    state["1.num_batches_tracked"] = np.array(2.5)                    # float into int64
    state["extra.weight"] = np.zeros(1)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    msg = str(info.value)
    assert msg.startswith("Error(s) in loading state_dict for Sequential:")
    assert 'Missing key(s) in state_dict: "1.running_var".' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight".' in msg
    assert "size mismatch for 2.weight: copying a param with shape (3, 4) from checkpoint, " \
           "the shape in current model is (2, 4)." in msg
    assert "dtype mismatch for 1.num_batches_tracked" in msg
    for k, v in net.state_dict().items():                             # nothing was copied
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(RuntimeError, match="size mismatch for 2.weight"):
        net.load_state_dict({"2.weight": np.zeros((3, 4))}, strict=False)   # shapes even then
    missing, unexpected = net.load_state_dict({"0.weight": before["0.weight"], "x": 1.0},
                                              strict=False)
    assert "1.weight" in missing and unexpected == ["x"]


# ------------------------------------------------------------------ Parameter.data
def test_gradient_follows_a_new_data_array():
    p = tn.Parameter(np.ones(3, np.float32))
    p.grad += 1
    p.data = np.ones(3, np.float64)                   # another dtype: the grad follows
    assert p.grad.dtype == np.float64 and np.array_equal(p.grad, np.ones(3))
    p.data = np.ones((2, 2))                          # another shape: a fresh zero grad
    assert p.grad.shape == (2, 2) and not p.grad.any()
    fc = tn.Linear(2, 2)
    fc.weight.data = fc.weight.data.astype(np.float64)
    fc.bias.data = fc.bias.data.astype(np.float64)
    fc(np.ones((1, 2)))
    fc.backward(np.ones((1, 2)))
    assert fc.weight.grad.dtype == np.float64


# ------------------------------------------------------------------ float16
@pytest.mark.parametrize("layer", [tn.Conv2d(3, 4, 3), tn.BatchNorm2d(3), tn.ReLU6(), tn.Linear(8, 2)],
                         ids=lambda m: type(m).__name__)
def test_float16_is_refused_with_the_layer_named(layer):
    with pytest.raises(TypeError, match=rf"{type(layer).__name__}.*float16.*float32 or float64"):
        layer(np.zeros((2, 3, 8, 8), np.float16))


def test_astype_float16_is_refused():
    with pytest.raises(TypeError, match="float16.*float32 or float64"):
        tn.Conv2d(3, 4, 3).astype(np.float16)


# ------------------------------------------------------------------ non-contiguous grads
@pytest.mark.parametrize("make", [
    lambda: tn.Conv2d(4, 6, 1, bias=True, dtype=F64),                  # pointwise
    lambda: tn.Conv2d(4, 6, 3, padding=1, groups=2, dtype=F64),        # im2col
    lambda: tn.Conv2d(4, 8, 3, padding=1, groups=4, dtype=F64),        # depthwise
    lambda: tn.Linear(4, 3, dtype=F64),
], ids=["pointwise", "im2col", "depthwise", "linear"])
def test_accumulation_into_a_non_contiguous_gradient(make, rng):
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    for p in b.parameters():                                          # same values, other layout
        p.grad = np.asfortranarray(np.zeros(p.shape)) if p.grad.ndim > 1 else p.grad[::-1][::-1]
        assert p.grad.ndim == 1 or not p.grad.flags.c_contiguous
    x = rng.standard_normal((2, 4, 5, 5)) if isinstance(a, tn.Conv2d) else rng.standard_normal((2, 4))
    for m in (a, b):
        for _ in range(2):
            d = np.ones(m(x).shape)
            m.backward(d)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_allclose(pb.grad, pa.grad, rtol=1e-12, err_msg=name)
        assert pa.grad.any()


# ------------------------------------------------------------------ qualified names
def test_errors_name_the_layer_inside_a_network(rng):
    model = tn.models.mobilenet_v2(num_classes=10, width_mult=0.35)
    block = model.features[3]
    forward = block.forward
    block.forward = lambda x: forward(x[:, :-1])      # a wrong-channel input for one block
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match=r"Conv2d\(8, 48.* at 'features\.3\.conv\.0\.0': "
                                         r"expected input with 8 channels.*got 7"):
        model(x)
    del block.forward
    model(x)
    with pytest.raises(ValueError, match=r"Linear.* at 'classifier\.1': expected dout of shape \(N, \*, 10\)"):
        model.backward(np.ones((2, 11), np.float32))
    model(x)
    model.backward(np.ones((2, 10), np.float32))
    with pytest.raises(RuntimeError, match=r"Linear.* at 'classifier\.1': backward\(\) called"):
        model.backward(np.ones((2, 10), np.float32))


# ------------------------------------------------------------------ Module.__init__ first
def test_assigning_before_module_init_says_call_it_first():
    class Net(tn.Module):
        def __init__(self):
            self.fc = tn.Linear(2, 2)
            super().__init__()

    with pytest.raises(AttributeError, match=r"cannot assign module before Module.__init__\(\) call"):
        Net()
