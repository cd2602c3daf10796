"""The process-wide settings of ``import tinynets`` (``tinynets/runtime.py``): what it sets,
what turns each off, and that ``restore`` undoes them. Each case runs in a fresh process,
since the settings are made once per process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.task_bench

PROBE = """
import json, os, numba, numpy
before = list(numba.config.THREADING_LAYER_PRIORITY)
import tinynets
from tinynets import runtime
def spins():      # what each loaded OpenBLAS read for its idle threads' spin (log2 cycles)
    return [lib.openblas_thread_timeout() for lib in runtime._openblas_libs()]
state, blas_after = dict(runtime.STATE), spins()
after = list(numba.config.THREADING_LAYER_PRIORITY)
a = numpy.ones((300, 300), numpy.float32)
gemm_ok = bool(((a @ a) == 300).all())           # BLAS still runs on restarted threads
restored = runtime.restore()
print(json.dumps(dict(before=before, after=after, state=state, restored=restored,
                      restored_priority=list(numba.config.THREADING_LAYER_PRIORITY),
                      blas_after=blas_after, blas_restored=spins(), gemm_ok=gemm_ok,
                      gemm_ok_after=bool(((a @ a) == 300).all()),
                      openblas_env="OPENBLAS_THREAD_TIMEOUT" in os.environ,
                      omp=sorted(k for k in os.environ if k.startswith(("OMP_", "GOMP_", "KMP_"))))))
"""


def _probe(**env):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TINYNETS_", "NUMBA_THREADING_LAYER", "OMP_", "GOMP_", "KMP_",
                                  "OPENBLAS_THREAD_TIMEOUT"))}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=dict(clean, **env), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_prefers_tbb_then_workqueue_and_sets_no_openmp_variable():
    r = _probe()
    assert r["after"] == ["tbb", "workqueue", "omp"] and r["after"] != r["before"]
    assert r["state"]["threading layer"].startswith("preference tbb > workqueue > omp")
    assert r["omp"] == []                                   # no OMP_* / GOMP_* / KMP_* variable
    if sys.platform.startswith("linux"):
        assert r["state"]["malloc"] == "keeps freed blocks under 32 MB"


linux_openblas = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                    reason="numpy's OpenBLAS is found through /proc/self/maps")


@linux_openblas
def test_import_shortens_openblas_idle_spin_and_leaves_no_variable():
    r = _probe()
    assert r["blas_after"] and set(r["blas_after"]) == {14}     # every loaded OpenBLAS re-read it
    assert r["state"]["blas wait"] == "idle threads spin 2^14 cycles, then sleep"
    assert not r["openblas_env"] and r["gemm_ok"] and r["gemm_ok_after"]


def test_restore_undoes_every_setting():
    r = _probe()
    assert r["restored_priority"] == r["before"]
    assert r["restored"]["threading layer"] == "left to Numba (restored)"
    if sys.platform.startswith("linux"):
        assert r["restored"]["malloc"] == "glibc's default thresholds (restored)"
        assert set(r["blas_restored"]) == {28}
        assert r["restored"]["blas wait"] == "OpenBLAS's default spin, 2^28 cycles (restored)"


def test_environment_variables_turn_each_setting_off():
    r = _probe(TINYNETS_THREADING="numba", TINYNETS_MALLOC="default", TINYNETS_BLAS_WAIT="default")
    assert r["after"] == r["before"]
    assert r["state"] == {"threading layer": "left to Numba (TINYNETS_THREADING=numba)",
                          "malloc": "glibc's defaults (TINYNETS_MALLOC=default)",
                          "blas wait": "OpenBLAS's default (TINYNETS_BLAS_WAIT=default)"}
    assert 14 not in r["blas_after"]


@linux_openblas
def test_a_users_openblas_timeout_is_kept():
    r = _probe(OPENBLAS_THREAD_TIMEOUT="20")
    assert r["state"]["blas wait"] == "left to OPENBLAS_THREAD_TIMEOUT=20"
    assert set(r["blas_after"]) == {20} and r["openblas_env"]


def test_a_layer_the_user_chose_is_kept():
    r = _probe(NUMBA_THREADING_LAYER="workqueue")
    assert r["after"] == r["before"] and "NUMBA_THREADING_LAYER" in r["state"]["threading layer"]


def test_kernels_run_on_a_layer_that_is_not_openmp():
    code = ("import numpy as np, tinynets as tn\n"
            "tn.Conv2d(4, 4, 3, padding=1, groups=4)(np.ones((1, 4, 6, 6), np.float32))\n"
            "print(tn.runtime.threading_layer())")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TINYNETS_", "NUMBA_THREADING"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] in ("tbb", "workqueue")
