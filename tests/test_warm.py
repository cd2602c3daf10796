"""The helper process that compiles the backward's kernels during the first forward
(``tinynets/kernels/warm.py``): its signatures are the ones a train step really compiles,
a cold train step with it gives the same gradients, and a helper that dies changes nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinynets as tn
from tinynets.kernels import depthwise, im2col, norm, warm

pytestmark = pytest.mark.task_conv


def _net():
    """Every backward kernel a helper can compile: an im2col stem with its input gradient,
    BatchNorm, and depthwise 3x3, 5x5 and 7x7 at strides 1 and 2."""
    layers = [tn.Conv2d(3, 8, 3, stride=2, padding=1), tn.BatchNorm2d(8)]
    for k, s in ((3, 1), (3, 2), (5, 1), (5, 2), (7, 1)):
        layers.append(tn.Conv2d(8, 8, k, stride=s, padding=k // 2, groups=8))
    return tn.Sequential(*layers)


def test_signatures_are_what_a_float32_train_step_compiles():
    tn.manual_seed(0)
    net = _net().train()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    net.backward(np.ones_like(net(x)))
    for module in (depthwise, norm, im2col):
        for name in module.SIGNATURES:
            disp = getattr(module, name)
            sig = warm.signature((module.__name__.rsplit(".", 1)[-1], name), np.float32)
            assert sig in disp.signatures, (name, sig, disp.signatures)


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
    x64, g = x.astype(np.float64), bn.weight.data.astype(np.float64)
    z, cache, _, _ = teach.batch_norm_forward(x64, g, bn.bias.data.astype(np.float64), bn.eps)
    dx64, dg, db = teach.batch_norm_backward(dout * ((z > 0) & (z < 6)), cache, g, True)
    bn_err = max(float(np.abs(dx - dx64).max()), float(np.abs(bn.weight.grad - dg).max()),
                 float(np.abs(bn.bias.grad - db).max()))
    # 2. an im2col conv whose helper dies before the backward: this process compiles col2im
    conv = tn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    y = conv(x)
    helper.proc.kill()
    helper.proc.wait()
    d = rng.standard_normal(y.shape).astype(np.float32)
    dx = conv.backward(d)
    ref = conv_naive.conv2d_loops_backward(d.astype(np.float64), x64, conv.weight.data.astype(np.float64), 2, (1, 1, 1, 1))
    conv_err = float(np.abs(dx - ref[0]).max())
    print(json.dumps(dict(pid=helper.proc.pid, folder=helper.folder, bn=bn_err, conv=conv_err)))
""")


def test_cold_train_steps_with_a_helper_and_after_it_died(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TINYNETS_COMPILE_HELPER"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")                # empty: everything compiles
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["bn"] < 1e-4 and r["conv"] < 1e-4, r
    assert not os.path.exists(r["folder"])                          # the claims are cleaned up
    ahead = [line for line in out.stderr.splitlines() if "in a helper process" in line]
    assert any("bn_act_backward" in line for line in ahead), out.stderr
    assert any("compiling im2col.col2im (float32) for its first use" in line
               for line in out.stderr.splitlines()), out.stderr


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
