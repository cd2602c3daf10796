"""The command line, run as a user would run it."""
from __future__ import annotations

import subprocess
import sys

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinynets", *args], capture_output=True, text=True,
                          timeout=600)


def test_gradcheck_command_passes_every_layer():
    result = _run("gradcheck")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout and "FAIL" not in result.stdout
    for layer in ("Conv2d", "BatchNorm2d train", "HardSwish", "Linear"):
        assert layer in result.stdout


@pytest.mark.task_models
def test_summary_command_mobilenet_v2():
    result = _run("summary", "mobilenet_v2")
    assert result.returncode == 0, result.stderr
    assert "3,504,872" in result.stdout and "300,774,272" in result.stdout


@pytest.mark.task_models
def test_summary_command_width_and_resolution():
    result = _run("summary", "mobilenet_v1", "--width-mult", "0.5", "--resolution", "160")
    assert result.returncode == 0, result.stderr
    assert "1,331,592" in result.stdout and "76,524,800" in result.stdout


def test_unknown_model_is_a_clear_error():
    result = _run("summary", "resnet50")
    assert result.returncode == 2 and "resnet50" in result.stderr
