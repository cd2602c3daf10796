"""The per-channel kernels (``tinynets/kernels/channels.py``) equal the NumPy expressions
beside them, and the layers that use them give in float32 what they give in float64."""
from __future__ import annotations

import numpy as np
import pytest

import tinynets as tn
from tinynets.kernels import channels

pytestmark = pytest.mark.task_conv


def _shapes(n=12, seed=5):
    """Randomized (N, C, H, W), odd sizes, after the edges: one pixel, one channel, one image."""
    rng = np.random.default_rng(seed)
    out = [(1, 1, 1, 1), (3, 1, 5, 7), (1, 6, 1, 1), (2, 3, 1, 9), (1, 4, 56, 56)]
    out += [tuple(int(v) for v in (rng.integers(1, 4), rng.integers(1, 9), rng.integers(1, 20),
                                   rng.integers(1, 20))) for _ in range(n)]
    return out


SHAPES = _shapes()
DTYPES = [np.float32, np.float64]


def _data(shape, dtype, rng, offset=0.0):
    x = (rng.standard_normal(shape) + offset).astype(dtype)
    d = rng.standard_normal(shape).astype(dtype)
    s = rng.standard_normal(shape[:2] + (1, 1)).astype(dtype)
    g = rng.standard_normal(shape[:2] + (1, 1)).astype(dtype)
    return x, d, s, g


def _close(got, want, dtype, scale=None):
    """float32: within 1e-5 of the float64 value, relative to it or to ``scale`` (the sum of
    the absolute terms, for sums that cancel); float64: the NumPy expression itself."""
    assert got.dtype == dtype and got.shape == want.shape
    if dtype == np.float64:
        np.testing.assert_array_equal(got, want)
    else:
        atol = 1e-6 if scale is None else 1e-6 * scale
        err = np.abs(got - want) - 1e-5 * np.abs(want) - atol
        assert np.all(err <= 0), f"worst excess over the tolerance {err.max():.3g}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_kernels_equal_the_numpy_expressions(shape, dtype, rng):
    x, d, s, g = _data(shape, dtype, rng, offset=0.5)
    x64, d64, s64, g64 = (a.astype(np.float64) for a in (x, d, s, g))
    _close(channels.mean(x), x64.mean(axis=(2, 3), keepdims=True), dtype)
    _close(channels.scale(x, s), x64 * s64, dtype)
    _close(channels.sum_product(d, x), np.sum(d64 * x64, axis=(2, 3), keepdims=True), dtype,
           scale=np.sum(np.abs(d64 * x64), axis=(2, 3), keepdims=True))
    _close(channels.scale_add(d, s, g), d64 * s64 + g64, dtype)


def test_float32_sums_are_as_close_as_float32_allows(rng):
    """Long planes whose sums cancel: float64 accumulators keep the error at float32's
    rounding of the result, where a float32 sum (NumPy's) loses digits to the cancellation."""
    x, d, _, _ = _data((2, 16, 56, 56), np.float32, rng, offset=0.1)
    exact = np.sum(d.astype(np.float64) * x, axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(channels.sum_product(d, x), exact, rtol=3e-7, atol=0)
    exact = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(channels.mean(x), exact, rtol=3e-7, atol=0)


def test_non_contiguous_and_read_only_inputs(rng):
    """Views that are not C-contiguous take the NumPy expression; read-only arrays (the
    caches freeze the caller's input) run the kernels."""
    base, d, s, g = _data((3, 5, 7, 8), np.float32, rng)
    x = base.transpose(0, 1, 3, 2)                       # (3, 5, 8, 7), not C-contiguous
    dd = d.transpose(0, 1, 3, 2)
    x64, d64 = x.astype(np.float64), dd.astype(np.float64)
    _close(channels.mean(x), x64.mean(axis=(2, 3), keepdims=True), np.float32)
    _close(channels.scale(x, s), x64 * s, np.float32)
    _close(channels.sum_product(dd, x), np.sum(d64 * x64, axis=(2, 3), keepdims=True), np.float32,
           scale=np.sum(np.abs(d64 * x64), axis=(2, 3), keepdims=True))
    _close(channels.scale_add(dd, s, g), d64 * s + g, np.float32)
    s_view = np.repeat(s, 2, axis=1)[:, ::2]             # every other channel: a strided gate
    _close(channels.scale(base, s_view), base.astype(np.float64) * s, np.float32)
    frozen = base.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(channels.scale(frozen, s), base * s)
    np.testing.assert_allclose(channels.mean(frozen), base.mean(axis=(2, 3), keepdims=True),
                               rtol=1e-5, atol=1e-6)


def test_mixed_dtypes_follow_numpy(rng):
    x, _, s, _ = _data((2, 3, 4, 4), np.float32, rng)
    y = channels.scale(x, s.astype(np.float64))
    assert y.dtype == np.float64                          # as x * s: NumPy promotes
    np.testing.assert_array_equal(y, x * s.astype(np.float64))


def test_float64_compiles_nothing(rng):
    """float64, the checking precision, runs the NumPy expressions: no kernel for it."""
    x, d, s, g = _data((2, 3, 4, 5), np.float64, rng)
    channels.mean(x), channels.scale(x, s), channels.sum_product(d, x), channels.scale_add(d, s, g)
    for kernel in (channels._mean, channels._scale, channels._sum_product, channels._scale_add):
        assert not any(str(sig[0].dtype) == "float64" for sig in kernel.signatures), kernel


@pytest.mark.parametrize("call, message", [
    (lambda x, s: channels.mean(x[0]),
     r"channels\.mean: expected a 4-D array \(N, C, H, W\), got shape \(3, 4, 5\)"),
    (lambda x, s: channels.scale(x, s[:, :2]),
     r"channels\.scale: expected s of shape \(N, C, 1, 1\) = \(2, 3, 1, 1\) for an input of "
     r"shape \(2, 3, 4, 5\), got \(2, 2, 1, 1\)"),
    (lambda x, s: channels.scale(x, s[:, :, 0, 0]), r"expected s of shape .* got \(2, 3\)"),
    (lambda x, s: channels.sum_product(x[:, :, :2], x),
     r"channels\.sum_product: expected dout of the input's shape \(2, 3, 4, 5\), "
     r"got \(2, 3, 2, 5\)"),
    (lambda x, s: channels.scale_add(x, s, s[:1]), r"channels\.scale_add: expected g of shape"),
])
def test_shapes_that_do_not_match_raise_a_clear_error(call, message, rng):
    x, _, s, _ = _data((2, 3, 4, 5), np.float32, rng)
    with pytest.raises(ValueError, match=message):
        call(x, s)


# ------------------------------------------------------------------ the layers
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 5, 3, 7), (3, 8, 14, 14)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("kernel", [False, True], ids=["numpy", "kernel"])
def test_global_avg_pool_float32_equals_float64(shape, kernel, rng):
    x = rng.standard_normal(shape)
    d = rng.standard_normal(shape[:2] + (1, 1))
    pool = tn.GlobalAvgPool2d(kernel=kernel)
    with tn.no_grad():
        y32, y64 = pool(x.astype(np.float32)), pool(x)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)
    pool(x)
    np.testing.assert_array_equal(pool.backward(d), np.broadcast_to(d / (shape[2] * shape[3]), shape))
    pool(x)
    g = pool.backward(d, spread=False)                   # the value, not yet broadcast
    assert g.shape == shape[:2] + (1, 1)
    np.testing.assert_array_equal(g, d / (shape[2] * shape[3]))


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 6, 5, 3), (3, 12, 9, 9)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "transposed"])
def test_squeeze_excitation_float32_equals_float64(shape, contiguous, rng):
    """The layer on the kernels (float32) against the same layer on NumPy (float64): output,
    dx and the gate's parameter gradients."""
    N, C, H, W = shape
    tn.manual_seed(1)
    se64 = tn.SqueezeExcitation(C, max(1, C // 4), tn.SiLU, tn.Sigmoid, dtype=np.float64)
    for p in se64.parameters():
        p.data[...] = rng.standard_normal(p.data.shape)
    se32 = tn.SqueezeExcitation(C, max(1, C // 4), tn.SiLU, tn.Sigmoid, dtype=np.float32)
    se32.load_state_dict({k: v.astype(np.float32) for k, v in se64.state_dict().items()})
    x, d = rng.standard_normal((2,) + shape)
    if not contiguous:
        x, d = (np.ascontiguousarray(a.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2) for a in (x, d))
    y64, y32 = se64(x), se32(x.astype(np.float32))
    dx64, dx32 = se64.backward(d), se32.backward(d.astype(np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    for (name, p32), p64 in zip(se32.named_parameters(), se64.parameters()):
        assert p32.grad.dtype == np.float32
        np.testing.assert_allclose(p32.grad, p64.grad, rtol=1e-4, atol=1e-4, err_msg=name)
