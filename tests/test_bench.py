"""The benchmark command, in quick mode and without torch, and its small pieces.

Nothing here asserts a time: the machine running the tests may be slow or busy.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

import tinynets as tn
from tinynets.bench import command as bench, layer_profile
from tinynets.bench import proc as _bench_proc, report as _bench_report, tn_jobs as _bench_tn

pytestmark = pytest.mark.task_bench

LAYER_LABELS = ("depthwise 3x3 s1", "depthwise 3x3 s2", "depthwise 5x5 s1", "depthwise 5x5 s2",
                "pointwise expand 24→144", "pointwise project 144→24", "stem conv 3→32 3x3 s2",
                "BN + ReLU6", "BN + HardSwish", "BN + SiLU", "SE 144→6→144")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``python -m tinynets bench --quick --no-torch`` into a temporary folder, run once."""
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run([sys.executable, "-m", "tinynets", "bench", "--quick", "--no-torch",
                             "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out, result.stdout


def test_quick_bench_writes_the_table_with_every_row(quick_run):
    out, stdout = quick_run
    text = (out / "bench.md").read_text(encoding="utf-8")
    assert text.strip() == stdout.strip()                       # the same table is printed
    for label in LAYER_LABELS + bench.MODELS:
        assert label in text, label
    for heading in ("## Layers", "## Networks", "## Peak memory", "## BatchNorm folding",
                    "## Together", "## Conventions"):
        assert heading in text
    assert "## JIT" not in text and "--only jit" in text        # --quick leaves it out, says so
    for info in ("**CPU**", "**numpy**", "**numba**", "**threads**", "**date**"):
        assert info in text
    assert "3× forward FLOPs" in text and "--no-torch" in text
    layer_rows = [line for line in text.splitlines() if line.startswith("| depthwise")]
    assert len(layer_rows) == 8 and all("< 1×" in r for r in layer_rows)
    lines = text.splitlines()
    for step in ("train step", "inference"):                    # the networks table
        assert sum(line.startswith(f"| {m} | {step} |") for m in bench.MODELS for line in lines) == len(bench.MODELS)
    fold_rows = [line for line in lines if "| inference b" in line
                 and line.startswith(("| mobilenet", "| efficientnet"))]
    assert len(fold_rows) == 2 * (len(bench.MODELS) + 1) and all(line.endswith("× |") for line in fold_rows)


def test_quick_profile_splits_each_train_step_by_layer_type(quick_run):
    """Every network gets a row per layer type and a whole-step row; the types' times and
    shares add up to the step (shares are of the whole step, 'outside' included)."""
    out, _ = quick_run
    text = (out / "bench.md").read_text(encoding="utf-8")
    assert "## Where a train step's time goes, per layer type" in text
    for m in bench.MODELS:
        rows = [line.split(" | ") for line in text.splitlines() if line.startswith(f"| {m} | ")
                and line.split(" | ")[1] in layer_profile.CATEGORIES + ("whole step",)]
        assert [r[1] for r in rows] == list(layer_profile.CATEGORIES) + ["whole step"], m
        parts, whole = [float(r[3]) for r in rows[:-1]], float(rows[-1][3])
        assert abs(sum(parts) - whole) <= 0.02 * whole + 0.05, (m, parts, whole)
        assert rows[-1][4] == "100 %" and all(r[5] == "—" for r in rows)   # no torch here


def test_profile_units_are_leaves_and_whole_se_blocks():
    """Each leaf layer is one unit, except inside SE, which is one unit with its convs."""
    model = tn.models.get_model("efficientnet_b0")
    found = list(layer_profile.units(model, lambda m: m._modules.items()))
    kinds = {layer_profile.category(m) for _, m, _ in found}
    assert {"full conv", "pointwise conv", "depthwise conv", "BatchNorm", "linear",
            "squeeze-and-excitation"} <= kinds
    se = [m for _, m, _ in found if type(m).__name__ == "SqueezeExcitation"]
    assert len(se) == 16 and all(list(m._modules) for m in se)      # B0 has 16 MBConv blocks
    names = [n for n, _, _ in found]
    assert not any(".fc1" in n or ".fc2" in n for n in names) and len(names) == len(set(names))


def test_quick_together_section_runs_tinynets_and_says_torch_is_absent(quick_run):
    out, _ = quick_run
    text = (out / "bench.md").read_text(encoding="utf-8")
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| tinynets alone |")]
    assert [r[1] for r in rows] == ["inference b1", "train step"]
    for r in rows:
        assert float(r[3].replace(",", "")) > 0 and r[4] == "1.00×"     # timed; its own yardstick
    assert not any(line.startswith("| torch alone |") for line in text.splitlines())
    assert "Together: torch is absent (--no-torch given)" in text


def test_together_child_imports_only_what_its_scenario_names():
    """A child process of the together section imports tinynets only when its scenario
    says so: here, alone, torch is never imported."""
    from tinynets.bench import together
    r = together.run_child(dict(scenario="tinynets alone", model="mobilenet_v3_small", batch=2,
                                res=32, threads=1, infer_repeats=1, train_repeats=1, warmup=0))
    assert r["modules"] == ["tinynets"] and r["tinynets inference"] > 0
    assert r["threading layer"] in ("tbb", "workqueue", "omp")
    times = {"tinynets alone": {"tinynets inference": 2.0}, "x": {"tinynets inference": 3.0}}
    assert together.ratio(times, "x", "tinynets inference") == 1.5
    assert together.ratio(times, "x", "torch inference") is None


def test_quick_bench_writes_a_png_plot(quick_run):
    out, _ = quick_run
    data = (out / "bench.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_time_it_returns_the_median_of_the_timed_runs():
    ticks = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0])            # runs of 3, 1 and 2 s
    calls = []
    timing = bench.time_it(lambda: calls.append("fn"), repeats=3, warmup=2,
                           setup=lambda: calls.append("setup"), clock=lambda: next(ticks))
    assert timing.runs == [3.0, 1.0, 2.0] and timing.median == 2.0
    assert calls == ["setup", "fn"] * 5                         # setup before every call, untimed


def test_ratio_and_targets():
    row = bench.Row("networks", "m", "train step", "", tn=3.0, torch=2.0, target=("≤", 1.5))
    assert row.ratio == 1.5 and row.met is True
    row.tn = 3.2
    assert row.met is False
    strict = bench.Row("layers", "d", "fwd", "", tn=1.0, torch=1.0, target=("<", 1.0))
    assert strict.met is False
    alone = bench.Row("layers", "d", "fwd", "", tn=1.0, target=("<", 1.0))
    assert alone.ratio is None and alone.met is None


def test_sections_from_only():
    assert bench.parse_sections(None, quick=False) == list(bench.SECTIONS)
    assert bench.parse_sections(None, quick=True) == ["layers", "networks", "memory", "fold",
                                                      "together", "profile"]
    assert bench.parse_sections(["layers,jit", "memory", "jit"], quick=True) == ["layers", "jit", "memory"]
    with pytest.raises(ValueError, match="nope"):
        bench.parse_sections(["layers,nope"], quick=False)


def test_bad_only_is_a_clear_error(capsys):
    assert bench.main(["--only", "nope", "--no-torch"]) == 2
    assert "nope" in capsys.readouterr().err


def test_layer_cases_are_the_issues_shapes_and_flops():
    cases = {label: (kind, spec, shape) for label, kind, spec, shape in bench.layer_cases(bench.FULL)}
    assert len(cases) == len(LAYER_LABELS)
    kind, spec, shape = cases["depthwise 5x5 s2"]
    assert shape == (16, 144, 56, 56) and spec["groups"] == 144 and spec["s"] == 2
    assert cases["stem conv 3→32 3x3 s2"][2] == (16, 3, 224, 224)
    assert cases["pointwise expand 24→144"][2] == (16, 24, 56, 56)
    layer = _bench_tn.layer(*cases["depthwise 3x3 s1"][:2])
    assert tn.count_flops(layer, (144, 56, 56)) == 2 * 144 * 9 * 56 * 56      # 2 per MAC
    se = _bench_tn.layer(*cases["SE 144→6→144 (SiLU, Sigmoid)"][:2])
    assert isinstance(se, tn.SqueezeExcitation) and se.squeeze_channels == 6


def test_bn_act_backward_matches_the_two_layers(rng):
    """The BN + activation case (fused when the library can) is BN then the activation."""
    import numpy as np
    x = rng.standard_normal((2, 4, 5, 5))
    g = rng.standard_normal(x.shape)
    case = _bench_tn.BNAct(4, tn.SiLU).astype(np.float64)
    plain = tn.Sequential(tn.BatchNorm2d(4), tn.SiLU()).astype(np.float64)
    np.testing.assert_allclose(case(x), plain(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(case.backward(g), plain.backward(g), rtol=1e-9, atol=1e-12)


def test_memory_child_returns_positive_numbers():
    result = _bench_proc.run_child("memory", "tinynets", "mobilenet_v2", batch=2, res=64, threads=1)
    assert result["rss_before"] > 0 and result["peak"] > 0
    assert result["step_peak"] == result["peak"] - result["rss_before"] > 0
    assert isinstance(result["held_after"], int)                # RSS after - before: may be ~0


def test_jit_child_times_from_process_start():
    result = _bench_proc.run_child("jit", "tinynets", "mobilenet_v3_small", batch=2, res=32, threads=1)
    assert result["wall"] > result["first_step"] > 0
    assert result["parallel_wall"] >= result["wall"] and result["steps"] >= 1   # builds in place


def test_report_marks_targets_and_plots_ratios(tmp_path):
    rows = [bench.Row("networks", "mobilenet_v2", "train step", "16x3x224x224", 3.0, torch=1.0,
                      flops=3e9, target=("≤", 1.5)),
            bench.Row("layers", "depthwise 3x3 s1", "fwd", "16x144x56x56", 0.5e-3, torch=1e-3,
                      flops=1e8, target=("<", 1.0)),
            bench.Row("memory", "mobilenet_v2", "train step", "16x3x224x224", 2 * 2**20,
                      torch=2**20, target=("≤", 1.5), extra={"tinynets_peak": 3 * 2**20}),
            bench.Row("jit", "mobilenet_v2 first train step", "cold cache", "", 20.0,
                      extra={"first_step": 15.0, "parallel": 31.0, "steps": 12})]
    text = _bench_report.write(rows, ["a note"], {"CPU": "test"}, bench.FULL, tmp_path)
    assert "| 3.00× | ≤ 1.5× | **not met** |" in text and "| 0.50× | < 1× | met |" in text
    assert "| 2 | 3 | — | 1 |" in text and "| 20.0 | 15.0 | 31.0 (12) |" in text and "a note" in text
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
