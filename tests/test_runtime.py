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
import json, os, numba
before = list(numba.config.THREADING_LAYER_PRIORITY)
import tinynets
state = dict(tinynets.runtime.STATE)
after = list(numba.config.THREADING_LAYER_PRIORITY)
restored = tinynets.runtime.restore()
print(json.dumps(dict(before=before, after=after, state=state, restored=restored,
                      restored_priority=list(numba.config.THREADING_LAYER_PRIORITY),
                      omp=sorted(k for k in os.environ if k.startswith(("OMP_", "GOMP_", "KMP_"))))))
"""


def _probe(**env):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TINYNETS_", "NUMBA_THREADING_LAYER", "OMP_", "GOMP_", "KMP_"))}
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


def test_restore_undoes_both_settings():
    r = _probe()
    assert r["restored_priority"] == r["before"]
    assert r["restored"]["threading layer"] == "left to Numba (restored)"
    if sys.platform.startswith("linux"):
        assert r["restored"]["malloc"] == "glibc's default thresholds (restored)"


def test_environment_variables_turn_each_setting_off():
    r = _probe(TINYNETS_THREADING="numba", TINYNETS_MALLOC="default")
    assert r["after"] == r["before"]
    assert r["state"] == {"threading layer": "left to Numba (TINYNETS_THREADING=numba)",
                          "malloc": "glibc's defaults (TINYNETS_MALLOC=default)"}


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
