"""The NumPy teaching functions of ``tinynets.nn.norm`` against BatchNorm2d and PyTorch.

``BatchNorm2d`` keeps its own running-statistics update (it must work wherever the
teaching functions are handed out as exercises), so these tests tie the two together:
``update_running_stats`` fed the batch statistics of ``batch_norm_forward`` must give
BatchNorm2d's running_mean, running_var and num_batches_tracked after every step, and
both must give PyTorch's numbers in ``tests/fixtures/layers.npz``.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import tinynets as tn
from tinynets.nn.norm import batch_norm_backward, batch_norm_forward, update_running_stats

pytestmark = pytest.mark.task_parity

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "layers.npz")


def _cases(kind):
    """pytest params (config, arrays) of every fixture case of ``kind``, named by the config."""
    with np.load(FIXTURE, allow_pickle=False) as npz:
        keys = sorted({k.rsplit("/config", 1)[0] for k in npz.files
                       if k.startswith(kind + "/") and k.endswith("/config")})
        cases = [(json.loads(str(npz[k + "/config"])),
                  {f[len(k) + 1:]: npz[f] for f in npz.files if f.startswith(k + "/")})
                 for k in keys]
    return [pytest.param(cfg, d, id=cfg["name"]) for cfg, d in cases]


@pytest.mark.parametrize("momentum", [0.1, 0.01, 0.5, None])
@pytest.mark.parametrize("start", [0, 5])
def test_batchnorm2d_running_stats_follow_update_running_stats(momentum, start):
    rng = np.random.default_rng(3)
    C = 4
    bn = tn.BatchNorm2d(C, eps=1e-3, momentum=momentum, dtype=np.float64)
    bn.running_mean[:] = rng.standard_normal(C)
    bn.running_var[:] = rng.uniform(0.5, 2.0, C)
    bn.num_batches_tracked[...] = start
    rm, rv, seen = bn.running_mean.copy(), bn.running_var.copy(), start
    for step, shape in enumerate([(3, C, 4, 5), (2, C, 1, 1), (1, C, 2, 3), (5, C, 3, 3)] * 2):
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0) + rng.uniform(-2, 2)
        bn(x)
        _, _, mean, var = batch_norm_forward(x, bn.weight.data, bn.bias.data, bn.eps)
        old, kept = (rm, rv), (rm.copy(), rv.copy())
        rm, rv, seen = update_running_stats(rm, rv, seen, mean, var, x.size // C, momentum)
        assert all(np.array_equal(a, b) for a, b in zip(old, kept))      # inputs untouched
        np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-12, atol=1e-14,
                                   err_msg=f"running_mean after step {step}")
        np.testing.assert_allclose(bn.running_var, rv, rtol=1e-12, atol=1e-14,
                                   err_msg=f"running_var after step {step}")
        assert seen == int(bn.num_batches_tracked) == start + step + 1


def test_update_running_stats_returns_new_arrays():
    rm, rv = np.zeros(3), np.ones(3)
    mean, var = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    new_m, new_v, t = update_running_stats(rm, rv, 0, mean, var, 5, 0.1)
    assert rm.tolist() == [0.0] * 3 and rv.tolist() == [1.0] * 3 and t == 1
    np.testing.assert_allclose(new_v, 0.9 + 0.1 * var * 5 / 4)
    np.testing.assert_allclose(new_m, 0.1 * mean)


@pytest.mark.parametrize("cfg,d", _cases("bn_train"))
def test_teaching_functions_match_pytorch_train(cfg, d):
    rm, rv, seen = d["running_mean"], d["running_var"], int(d["num_batches_tracked"])
    for step in range(cfg["steps"]):
        p = f"step{step}/"
        x = d[p + "x"]
        y, cache, mean, var = batch_norm_forward(x, d["weight"], d["bias"], cfg["eps"])
        dx, dgamma, dbeta = batch_norm_backward(d[p + "dout"], cache, d["weight"], True)
        rm, rv, seen = update_running_stats(rm, rv, seen, mean, var, x.size // x.shape[1],
                                            cfg["momentum"])
        for name, got in [("out", y), ("dx", dx), ("dweight", dgamma), ("dbias", dbeta),
                          ("running_mean", rm), ("running_var", rv)]:
            assert tn.rel_error(got, d[p + name]) < 1e-10, f"{cfg['name']} {p}{name}"
        assert seen == int(d[p + "num_batches_tracked"])


@pytest.mark.parametrize("cfg,d", _cases("bn_eval"))
def test_teaching_functions_match_pytorch_eval(cfg, d):
    y, cache, mean, var = batch_norm_forward(d["x"], d["weight"], d["bias"], cfg["eps"],
                                             d["running_mean"], d["running_var"])
    dx, dgamma, dbeta = batch_norm_backward(d["dout"], cache, d["weight"], False)
    for name, got in [("out", y), ("dx", dx), ("dweight", dgamma), ("dbias", dbeta)]:
        assert tn.rel_error(got, d[name]) < 1e-10, f"{cfg['name']} {name}"
    assert np.array_equal(mean, d["running_mean"]) and np.array_equal(var, d["running_var"])
