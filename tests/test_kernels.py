"""Every Numba kernel equals the plain-NumPy version the lessons teach."""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn
from tinynets.kernels import conv_naive as naive
from tinynets.kernels import depthwise, im2col

pytestmark = pytest.mark.task_conv


def _cases(n=16, seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.choice([1, 3, 5, 7]))
        s = int(rng.integers(1, 3))
        pads = tuple(int(p) for p in rng.integers(0, k, 4))    # any (t, b, l, r), asymmetric too
        H, W = int(rng.integers(max(1, k - 2), k + 6)), int(rng.integers(max(1, k - 2), k + 6))
        if H + pads[0] + pads[1] < k or W + pads[2] + pads[3] < k:
            pads = (k, k, k, k)
        out.append((int(rng.integers(1, 3)), int(rng.integers(1, 5)), k, s, pads, H, W))
    return out


CASES = _cases()
DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_im2col_and_col2im(case, dtype, rng):
    N, C, k, s, (t, b, l, r), H, W = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    OH, OW = naive.out_size(H, k, s, t, b), naive.out_size(W, k, s, l, r)
    cols = im2col.im2col(x, k, k, s, t, l, OH, OW)
    ref = naive.im2col_strided(naive.pad_input(x, (t, b, l, r)), k, k, s)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, ref)                    # a copy: exactly equal
    c = rng.standard_normal(cols.shape).astype(dtype)
    dx = im2col.col2im(c, C, H, W, k, k, s, t, l, OH, OW)
    padded = (N, C, H + t + b, W + l + r)
    ref = naive.unpad(naive.col2im_taps(c, padded, k, k, s, OH, OW), (t, b, l, r))
    np.testing.assert_allclose(dx, ref, **_tol(dtype))
    # col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>
    assert np.isclose(np.sum(cols.astype(np.float64) * c), np.sum(x.astype(np.float64) * dx), rtol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [                 # (N, C, H, W, k, stride, (t, b, l, r))
    (1, 3, 32, 32, 3, 2, (1, 1, 1, 1)),              # a stem, batch 1
    (2, 3, 15, 17, 3, 2, (1, 1, 1, 1)),              # odd sizes
    (1, 2, 14, 14, 3, 2, (0, 1, 0, 1)),              # TF 'same' on an even input
    (1, 2, 9, 8, 5, 1, (2, 2, 1, 3)),                # stride 1, asymmetric
    (2, 1, 7, 7, 3, 3, (1, 1, 1, 1)),                # a stride without its own loop
    (1, 1, 2, 2, 3, 2, (3, 3, 3, 3)),                # taps that read only padding
])
def test_im2col_and_col2im_edges(case, dtype, rng):
    N, C, H, W, k, s, (t, b, l, r) = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    OH, OW = naive.out_size(H, k, s, t, b), naive.out_size(W, k, s, l, r)
    ref = naive.im2col_strided(naive.pad_input(x, (t, b, l, r)), k, k, s)
    np.testing.assert_array_equal(im2col.im2col(x, k, k, s, t, l, OH, OW), ref)
    c = rng.standard_normal(ref.shape).astype(dtype)
    ref = naive.unpad(naive.col2im_taps(c, (N, C, H + t + b, W + l + r), k, k, s, OH, OW), (t, b, l, r))
    np.testing.assert_allclose(im2col.col2im(c, C, H, W, k, k, s, t, l, OH, OW), ref, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mult", [1, 2])
@pytest.mark.parametrize("case", CASES)
def test_depthwise_kernels(case, mult, dtype, rng):
    N, C, k, s, (t, b, l, r), H, W = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C * mult, 1, k, k)).astype(dtype)
    OH, OW = naive.out_size(H, k, s, t, b), naive.out_size(W, k, s, l, r)
    out = depthwise.depthwise_forward(x, w, s, t, l, OH, OW)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, naive.depthwise_taps(x, w, s, (t, b, l, r)), **_tol(dtype))
    d = rng.standard_normal(out.shape).astype(dtype)
    dx_ref, dw_ref = naive.depthwise_taps_backward(d, x, w, s, (t, b, l, r))
    np.testing.assert_allclose(depthwise.depthwise_backward_input(d, w, C, s, t, l, H, W), dx_ref, **_tol(dtype))
    dw = depthwise.depthwise_backward_weight(d, x, k, k, s, t, l)
    assert dw.dtype == dtype
    np.testing.assert_allclose(dw, dw_ref, **_tol(dtype))


# Stride 2 forward: 5x5 runs on its own kernel (kernels_s2), 3x3 on the even/odd columns
# of a padded plane made even-wide: (N, C, H, W, (t, b, l, r))
S2_CASES = [
    (1, 3, 56, 56, (2, 2, 2, 2)),       # batch 1, a network's shape
    (2, 2, 15, 17, (2, 2, 2, 2)),       # odd sizes
    (1, 2, 14, 14, (1, 2, 1, 2)),       # TF 'same' on an even input: one more pixel after
    (2, 1, 9, 8, (0, 0, 3, 1)),         # nothing on top, odd padding on the left
    (1, 2, 5, 6, (4, 4, 4, 3)),         # padding nearly the kernel: most taps read zeros
    (1, 1, 1, 1, (2, 2, 2, 2)),         # one pixel
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mult", [1, 2])
@pytest.mark.parametrize("case", S2_CASES)
@pytest.mark.parametrize("k", [3, 5])
def test_depthwise_stride2_forward(k, case, mult, dtype, rng):
    N, C, H, W, (t, b, l, r) = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C * mult, 1, k, k)).astype(dtype)
    OH, OW = naive.out_size(H, k, 2, t, b), naive.out_size(W, k, 2, l, r)
    out = depthwise.depthwise_forward(x, w, 2, t, l, OH, OW)
    assert out.dtype == dtype and out.shape == (N, C * mult, OH, OW)
    np.testing.assert_allclose(out, naive.depthwise_taps(x, w, 2, (t, b, l, r)), **_tol(dtype))


@pytest.mark.parametrize("groups", [1, 2, "depthwise"])
@pytest.mark.parametrize("case", CASES[:8])
def test_naive_versions_agree(case, groups, rng):
    """loops == im2col (NumPy strides) == depthwise taps, the three teaching versions."""
    N, C, k, s, pads, H, W = case
    C = 2 * C
    g = C if groups == "depthwise" else groups
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((2 * C, C // g, k, k))
    b = rng.standard_normal(2 * C)
    ref = naive.conv2d_loops(x, w, b, s, pads, g)
    out, cols = naive.conv2d_im2col(x, w, b, s, pads, g)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    d = rng.standard_normal(ref.shape)
    for got, want in zip(naive.conv2d_im2col_backward(d, cols, x.shape, w, s, pads, g),
                         naive.conv2d_loops_backward(d, x, w, s, pads, g)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if groups == "depthwise":
        np.testing.assert_allclose(naive.depthwise_taps(x, w, s, pads) + b[None, :, None, None], ref,
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", [
    dict(in_channels=3, out_channels=8, kernel_size=3, stride=2, padding=1, bias=False),  # im2col
    dict(in_channels=6, out_channels=9, kernel_size=3, padding=1, groups=3),     # grouped
    dict(in_channels=8, out_channels=8, kernel_size=5, stride=2, padding=2, groups=8,
         bias=False),                                                             # depthwise
    dict(in_channels=8, out_channels=12, kernel_size=1, bias=False),             # pointwise
    dict(in_channels=8, out_channels=12, kernel_size=1, stride=2),               # strided 1x1
    dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, groups=4, padding="tf_same"),
    dict(in_channels=4, out_channels=8, kernel_size=5, stride=2, groups=4, padding="tf_same"),
    dict(in_channels=3, out_channels=5, kernel_size=4, padding="same"),           # PyTorch's 'same'
    dict(in_channels=3, out_channels=5, kernel_size=(3, 2), padding=(0, 1)),      # 'valid' rows
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_layer_matches_loops(config, dtype, rng):
    conv = tn.Conv2d(**config).astype(dtype)
    x = rng.standard_normal((2, config["in_channels"], 10, 9)).astype(dtype)
    out = conv(x)
    assert out.dtype == dtype
    pads = conv.pads(10, 9)
    b = None if conv.bias is None else conv.bias.data
    np.testing.assert_allclose(out, naive.conv2d_loops(x, conv.weight.data, b, conv.stride, pads, conv.groups),
                               **_tol(dtype))
    d = rng.standard_normal(out.shape).astype(dtype)
    dx = conv.backward(d)
    assert dx.dtype == dtype and conv.weight.grad.dtype == dtype
    dx_ref, dw_ref, db_ref = naive.conv2d_loops_backward(d, x, conv.weight.data, conv.stride, pads, conv.groups)
    np.testing.assert_allclose(dx, dx_ref, **_tol(dtype))
    np.testing.assert_allclose(conv.weight.grad, dw_ref, **_tol(dtype))
    if conv.bias is not None:
        np.testing.assert_allclose(conv.bias.grad, db_ref, **_tol(dtype))


def test_tf_same_padding():
    assert tn.tf_same_padding(224, 3, 2) == (0, 1)     # even input, stride 2: asymmetric
    assert tn.tf_same_padding(224, 5, 2) == (1, 2)
    assert tn.tf_same_padding(15, 3, 2) == (1, 1)      # odd input: symmetric
    assert tn.tf_same_padding(7, 3, 1) == (1, 1)
    conv = tn.Conv2d(4, 4, 3, stride=2, groups=4, padding="tf_same")
    assert conv.output_shape((1, 4, 224, 224)) == (1, 4, 112, 112)
    assert conv.pads(224, 224) == (0, 1, 0, 1)
    assert tn.Conv2d(4, 4, 4, padding="same").pads(9, 9) == (1, 2, 1, 2)   # PyTorch: the odd one after


# ------------------------------------------------------------- BatchNorm + activation
FUSABLE = [None, tn.ReLU, tn.ReLU6, tn.HardSwish, tn.SiLU]


def _bn_with_state(C, dtype, rng):
    bn = tn.BatchNorm2d(C, eps=1e-3, momentum=0.1, dtype=dtype)
    bn.weight.data[:] = rng.uniform(0.5, 1.5, C)
    bn.bias.data[:] = rng.uniform(-1, 1, C)
    bn.running_mean[:] = rng.uniform(-0.5, 0.5, C)
    bn.running_var[:] = rng.uniform(0.5, 2.0, C)
    return bn


@pytest.mark.parametrize("shape", [(3, 5, 7, 6), (2, 45, 5, 5), (1, 3, 40, 40)],
                         ids=["one-run", "runs-of-40-and-5-channels", "planes-above-RUN"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("act", FUSABLE, ids=lambda a: "none" if a is None else a.__name__)
def test_batchnorm_kernels_match_numpy(act, training, dtype, shape, rng):
    """BatchNorm2d (Numba, fused with the activation) == the NumPy equations + the activation.
    The kernels take small planes in runs of whole channels (``kernels.norm.RUN`` values):
    one run, two runs with a short last one, and one channel per run."""
    from tinynets.nn.norm import batch_norm_backward, batch_norm_forward
    from tinynets.kernels import norm as kernels_norm
    N, C, H, W = shape
    g = min(C, max(1, kernels_norm.RUN // (H * W)))
    assert {(3, 5, 7, 6): g == C, (2, 45, 5, 5): (g, C % g) == (40, 5), (1, 3, 40, 40): g == 1}[shape]
    x = (rng.standard_normal((N, C, H, W)) * 3 + 1).astype(dtype)   # spans the kinks of all four
    dout = rng.standard_normal((N, C, H, W)).astype(dtype)
    bn = _bn_with_state(C, dtype, rng).train(training)
    ref_bn = _bn_with_state(C, dtype, np.random.default_rng(0))
    ref_bn.load_state_dict(bn.state_dict())
    stats = (None, None) if training else (bn.running_mean, bn.running_var)
    y_ref, cache, mean, var = batch_norm_forward(x.astype(np.float64), bn.weight.data.astype(np.float64),
                                                 bn.bias.data.astype(np.float64), bn.eps, *stats)
    a = act() if act is not None else None
    out = bn(x, activation=a)
    assert out.dtype == dtype
    d_y = dout.astype(np.float64)
    if act is not None:
        ref_act = act()
        y_ref = ref_act(y_ref)
        d_y = ref_act.backward(d_y)
    dx_ref, dgamma_ref, dbeta_ref = batch_norm_backward(d_y, cache, bn.weight.data.astype(np.float64),
                                                        training)
    dx = bn.backward(dout)
    assert dx.dtype == dtype
    tol = _tol(dtype)
    np.testing.assert_allclose(out, y_ref, **tol)
    np.testing.assert_allclose(dx, dx_ref, **tol)
    np.testing.assert_allclose(bn.weight.grad, dgamma_ref, rtol=tol["rtol"], atol=tol["atol"] * N * H * W)
    np.testing.assert_allclose(bn.bias.grad, dbeta_ref, rtol=tol["rtol"], atol=tol["atol"] * N * H * W)
    if training:
        m = N * H * W
        np.testing.assert_allclose(bn.running_mean, 0.9 * ref_bn.running_mean + 0.1 * mean, **tol)
        np.testing.assert_allclose(bn.running_var, 0.9 * ref_bn.running_var + 0.1 * var * m / (m - 1),
                                   **tol)


def test_batchnorm_refuses_an_activation_it_cannot_fuse(rng):
    with pytest.raises(ValueError, match="BatchNorm2d.*can fuse.*not Sigmoid"):
        tn.BatchNorm2d(2)(rng.standard_normal((2, 2, 3, 3)).astype(np.float32), activation=tn.Sigmoid())


@pytest.mark.parametrize("act", FUSABLE[1:], ids=lambda a: a.__name__)
def test_fused_conv_bn_act_equals_the_unfused_chain(act, rng):
    """Conv2dNormActivation's fused BN + activation == running its three children in turn."""
    block = tn.Conv2dNormActivation(3, 6, 3, stride=2, activation=act, dtype=np.float64)
    x = rng.standard_normal((2, 3, 9, 9)) * 2
    dout = rng.standard_normal((2, 6, 5, 5))
    y = block(x)
    dx = block.backward(dout)
    grads = [p.grad.copy() for p in block.parameters()]
    block.zero_grad()
    y_ref = x
    for layer in block:
        y_ref = layer(y_ref)                          # the children one by one: unfused
    d = dout
    for layer in reversed(list(block)):
        d = layer.backward(d)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, d, rtol=1e-12, atol=1e-12)
    for g, p in zip(grads, block.parameters()):
        np.testing.assert_allclose(g, p.grad, rtol=1e-12, atol=1e-12)


def test_vectorised_float32_exp_is_accurate():
    """The exp behind float32 SiLU (code 5) against float64 NumPy, over float32's range."""
    from numba import njit
    from tinynets.kernels import norm as kernels_norm

    @njit
    def exp_neg(z, k):
        E = np.empty_like(z)
        kernels_norm._exp_neg_run(z, E, k)
        return E

    z = np.linspace(-87, 87, 200_001).astype(np.float32)
    got = exp_neg(z, kernels_norm.act_constants(np.float32))
    rel = np.abs(got / np.exp(-z.astype(np.float64)) - 1)
    assert got.dtype == np.float32 and rel.max() < 2e-7, rel.max()


@pytest.mark.parametrize("helper", ["1", "0"])
def test_only_the_case_that_runs_compiles_and_says_so(tmp_path, helper):
    """From an empty Numba cache, a 3x3 stride-1 depthwise forward in float32 compiles its
    own kernel only (not the other cases, not the float64 twin) and prints one line: with
    the compile helper, its one-thread twin (the helper compiles the parallel build once a
    second call asks for it); without, the parallel kernel."""
    import os
    import subprocess
    import sys
    code = ("import numpy as np\n"
            "from tinynets.kernels import depthwise as d\n"
            "x = np.ones((1, 2, 6, 6), np.float32); w = np.ones((2, 1, 3, 3), np.float32)\n"
            "assert d.depthwise_forward(x, w, 1, 1, 1, 6, 6).shape == (1, 2, 6, 6)\n"
            "print(sorted(k for k, v in vars(d).items() if hasattr(v, 'signatures') and v.signatures))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path),
                                  TINYNETS_COMPILE_HELPER=helper))
    assert out.returncode == 0, out.stderr[-2000:]
    built, how = ("forward_3x3s1_1t", "float32, one thread") if helper == "1" else ("forward_3x3s1", "float32")
    assert out.stdout.split("\n")[-2] == f"['{built}']"
    notices = [ln for ln in out.stderr.splitlines() if ln.startswith("tinynets: compiling")]
    assert notices == [f"tinynets: compiling depthwise.forward_3x3s1 ({how}) for its first use; "
                       "later runs load it from the cache"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_float64_runs_on_the_one_thread_twin(dtype, rng, monkeypatch):
    """float64 runs the twin and never compiles the parallel kernel; float32 runs the parallel
    kernel (here without a compile helper, so at once: ``tests/test_warm.py`` tests the twins
    that run while a helper compiles it)."""
    from tinynets.kernels import norm as kernels_norm
    monkeypatch.setenv("TINYNETS_COMPILE_HELPER", "0")
    x = rng.standard_normal((2, 3, 5, 5)).astype(dtype)
    mean, var = kernels_norm.bn_stats(x)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-5)
    twin, parallel = kernels_norm._bn_stats_1t, kernels_norm._bn_stats
    name = np.dtype(dtype).name
    if dtype == np.float64:
        assert any(str(s[0].dtype) == name for s in twin.signatures)
        assert not any(str(s[0].dtype) == name for s in parallel.signatures)
    else:
        assert any(str(s[0].dtype) == name for s in parallel.signatures)
