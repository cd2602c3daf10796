"""The helper process that compiles kernels ahead (``tinynets/kernels/warm.py``) and the
tiers that run one-thread twins until the parallel builds are in place (``tiers.py``): the
signatures are the ones a train step really compiles, twins give the parallel kernels'
values bit for bit, a cold train step gives the same gradients, the parallel build takes
over once compiled, and a helper that dies changes nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinynets as tn
from tinynets.kernels import depthwise, im2col, norm, tiers, warm

pytestmark = pytest.mark.task_conv


def _net():
    """Every backward kernel a helper can compile: an im2col stem with its input gradient,
    BatchNorm, and depthwise 3x3, 5x5 and 7x7 at strides 1 and 2."""
    layers = [tn.Conv2d(3, 8, 3, stride=2, padding=1), tn.BatchNorm2d(8)]
    for k, s in ((3, 1), (3, 2), (5, 1), (5, 2), (7, 1)):
        layers.append(tn.Conv2d(8, 8, k, stride=s, padding=k // 2, groups=8))
    return tn.Sequential(*layers)


def test_signatures_are_what_a_float32_train_step_compiles(monkeypatch):
    monkeypatch.setenv("TINYNETS_COMPILE_HELPER", "0")    # the parallel builds compile here
    tn.manual_seed(0)
    net = _net().train()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    net.backward(np.ones_like(net(x)))
    for module in (depthwise, norm, im2col):
        for name in module.SIGNATURES:
            disp = getattr(module, name)
            sig = warm.signature((module.__name__.rsplit(".", 1)[-1], name), np.float32)
            assert sig in disp.signatures, (name, sig, disp.signatures)


def _twin_cases():
    """(name, parallel kernel, twin, args) for every kernel that ``tiers`` runs, on random
    float32 inputs: BatchNorm with each float32 activation code, im2col and col2im, and the
    depthwise kernels of 3x3, 5x5 and 7x7 at strides 1 and 2."""
    rng = np.random.default_rng(3)
    f = lambda *shape: rng.standard_normal(shape).astype(np.float32)       # noqa: E731
    x, d, v = f(3, 20, 9, 9), f(3, 20, 9, 9), [f(20) for _ in range(5)]
    k = norm.act_constants(np.float32)
    cases = []                                         # (bn_stats has no tiers: its docstring)
    for code in (0, 1, 2, 3, 5):                       # float32's codes (SiLU is 5, not 4)
        cases += [(f"bn_act_forward {code}", norm._bn_act_forward, norm._bn_act_forward_1t, (x, v[0], v[1], code, k)),
                  (f"bn_sums {code}", norm._bn_act_backward_sums, norm._bn_act_backward_sums_1t, (d, x, *v[:4], code, k)),
                  (f"bn_input {code}", norm._bn_act_backward_input, norm._bn_act_backward_input_1t, (d, x, *v, code, k)),
                  (f"bias_act {code}", norm._bias_act_, norm._bias_act_1t, (x.copy(), v[0], code, k))]
    img = f(2, 3, 17, 17)
    cols = im2col._im2col_1t(img, 3, 3, 2, 1, 1, 9, 9)
    cases += [("im2col", im2col._im2col, im2col._im2col_1t, (img, 3, 3, 2, 1, 1, 9, 9)),
              ("col2im", im2col._col2im, im2col._col2im_1t, (cols, 3, 17, 17, 3, 3, 2, 1, 1, 9, 9))]
    for K, s in ((3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (7, 2)):
        p, H = K // 2, 15
        OH = (H + 2 * p - K) // s + 1
        xx, w, dd = f(2, 8, H, H), f(8, 1, K, K), f(2, 8, OH, OH)
        fwd = {(3, 1): "forward_3x3s1", (3, 2): "forward_3x3s2", (5, 1): "forward_5x5s1",
               (5, 2): "forward_5x5s2"}.get((K, s))
        args = (xx, w, p, p, OH, OH) if fwd else (xx, w, s, p, p, OH, OH)
        bi, bw = depthwise.backward_kernel_names(K, K, s)
        for name, a in ((fwd or "forward_any", args), (bi, (dd, w, 8, s, p, p, H, H)),
                        (bw, (dd, xx, K, K, s, p, p))):
            cases.append((f"{name} {K}x{K} s{s}", getattr(depthwise, name),
                          getattr(depthwise, name + "_1t"), a))
    return cases


def test_twins_give_the_parallel_kernels_values_bit_for_bit():
    """``tiers`` swaps a twin for its parallel build in the middle of a run: nothing but the
    speed may change then (a run resumed from a checkpoint repeats the original exactly)."""
    for name, parallel, twin, args in _twin_cases():
        a = parallel(*[x.copy() if isinstance(x, np.ndarray) else x for x in args])
        b = twin(*[x.copy() if isinstance(x, np.ndarray) else x for x in args])
        a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
        if a[0] is None:                                   # in place (bias_act_)
            continue
        for u, t in zip(a, b):
            assert u.dtype == t.dtype and np.array_equal(u, t), name


def test_a_call_the_helper_cannot_spell_compiles_the_parallel_build_here(monkeypatch):
    """The second call sends the parallel build to the helper; when that call has an
    argument no pattern spells (a read-only array, as a layer's cache holds it, or a layer
    timed on the same input again), the parallel build compiles here instead."""
    monkeypatch.setattr(tiers, "_ready", set())
    monkeypatch.setattr(tiers, "_waiting", {})
    monkeypatch.setattr(warm, "enabled", lambda: True)
    monkeypatch.setattr(warm, "in_cache", lambda kernel, sig: False)        # as if cold
    sent = []
    monkeypatch.setattr(warm, "later", lambda *job: sent.append(job))
    rng = np.random.default_rng(0)
    x, scale, shift = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 4, 4), 3, 3))
    k = norm.act_constants(np.float32)
    first = norm.bn_act_forward(x, scale, shift, 2, k)            # the twin runs
    assert norm._bn_act_forward not in tiers._ready and tiers.pending() == 1
    x.flags.writeable = False
    second = norm.bn_act_forward(x, scale, shift, 2, k)
    assert sent == [] and norm._bn_act_forward in tiers._ready and tiers.pending() == 0
    assert np.array_equal(first, second)


def test_off_switch_and_float64_start_no_helper(monkeypatch):
    monkeypatch.setenv("TINYNETS_COMPILE_HELPER", "0")
    assert not warm.enabled()
    monkeypatch.setattr(warm, "_helper", None)
    warm.expect(("test", "off"), lambda: [("norm", "_bn_act_backward_sums")], np.float32)
    monkeypatch.delenv("TINYNETS_COMPILE_HELPER")
    warm.expect(("test", "f64"), lambda: [("norm", "_bn_act_backward_sums")], np.float64)
    assert warm._helper is None and {("test", "off"), ("test", "f64")} <= warm._ready
    warm.ready(("test", "off"))                        # nothing expected: returns at once


CHILD = textwrap.dedent("""
    import json, os, sys, numpy as np, tinynets as tn
    from tinynets.kernels import conv_naive, warm
    from tinynets.nn import norm as teach
    tn.manual_seed(0)
    rng = np.random.default_rng(0)
    # 1. BatchNorm + ReLU6 with the helper: the backward's kernels come from it
    bn, act = tn.BatchNorm2d(3), tn.ReLU6()
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    bn(x, act)
    helper = warm._helper
    dx = bn.backward(dout)
    # 3. tiers: the first forward ran the twin; the helper compiles the parallel build, and
    # once it is in the cache it runs, with the same output bit for bit
    from tinynets.kernels import norm as kn, tiers
    import time
    with tn.no_grad():                                 # train mode, no caches held
        first, deadline = bn(x, act), time.monotonic() + 300
        while kn._bn_act_forward not in tiers._ready and time.monotonic() < deadline:
            y = bn(x, act)
            tiers_same = bool(np.array_equal(y, first))
        parallel_ran = kn._bn_act_forward in tiers._ready and len(kn._bn_act_forward.signatures) == 1
        y = bn(x, act)
    parallel_ran &= not kn._bn_stats_1t.signatures        # float32 statistics: no twin, ever
    tiers_same = tiers_same and bool(np.array_equal(y, first))
    x64, g = x.astype(np.float64), bn.weight.data.astype(np.float64)
    z, cache, _, _ = teach.batch_norm_forward(x64, g, bn.bias.data.astype(np.float64), bn.eps)
    dx64, dg, db = teach.batch_norm_backward(dout * ((z > 0) & (z < 6)), cache, g, True)
    bn_err = max(float(np.abs(dx - dx64).max()), float(np.abs(bn.weight.grad - dg).max()),
                 float(np.abs(bn.bias.grad - db).max()))
    # 2. an im2col conv whose helper dies before the backward: its gradient is still right
    conv = tn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    y = conv(x)
    helper.proc.kill()
    helper.proc.wait()
    d = rng.standard_normal(y.shape).astype(np.float32)
    dx = conv.backward(d)
    ref = conv_naive.conv2d_loops_backward(d.astype(np.float64), x64, conv.weight.data.astype(np.float64), 2, (1, 1, 1, 1))
    conv_err = float(np.abs(dx - ref[0]).max())
    print(json.dumps(dict(pid=helper.proc.pid, folder=helper.folder, bn=bn_err, conv=conv_err,
                          tiers=tiers_same, parallel_ran=parallel_ran)))
""")


def test_cold_train_steps_with_a_helper_and_after_it_died(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TINYNETS_COMPILE_HELPER"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")                # empty: everything compiles
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["bn"] < 1e-4 and r["conv"] < 1e-4, r
    assert r["tiers"] and r["parallel_ran"], r
    assert not os.path.exists(r["folder"])                          # the claims are cleaned up
    lines = out.stderr.splitlines()
    assert any("bn_act_backward_input (float32, one thread) in a helper process, ahead of "
               "the backward" in line for line in lines), out.stderr
    assert any("bn_act_forward (float32) with threads, in a helper process" in line
               for line in lines), out.stderr
    # col2im's twin came from the helper, or from this process if the helper died first
    assert any("compiling im2col.col2im (float32, one thread)" in line for line in lines), out.stderr


def _ignores_sigint(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        mask = next(line.split()[1] for line in f if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (2 - 1)))           # SIGINT is signal 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")
def test_helper_leaves_ctrl_c_to_its_parent_and_stops_with_it():
    import signal
    import time
    helper = warm._Helper.start()
    assert helper is not None
    try:
        deadline = time.monotonic() + 60
        while not _ignores_sigint(helper.proc.pid):   # wait until past its imports
            assert helper.proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(helper.proc.pid, signal.SIGINT)        # what Ctrl-C sends the process group
        time.sleep(0.5)
        assert helper.proc.poll() is None              # no traceback, still serving
    finally:
        helper.stop()
    assert helper.proc.poll() == 0 and not os.path.exists(helper.folder)
