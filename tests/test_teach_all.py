"""Every assignment at once, as a class gets them: ``assign OUT`` with no selection, then
``grade`` of the solution (full points on every assignment), of the untouched student
version (nothing: every test 'not implemented' or 'blocked', none crashed) and of a
submission that solves exactly A1 (exactly A1's points).

This is the slow part of the teaching tests: the solution's grading runs every task's
tests, a training run included, in fresh processes with an empty Numba cache.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

from tinynets.teach import assign, grade, markers, spec

pytestmark = pytest.mark.task_teach

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300.0


@pytest.fixture(scope="module")
def every(tmp_path_factory):
    """(clone, OUT, manifest) after ``assign OUT`` of every assignment, from a clone."""
    root = tmp_path_factory.mktemp("teach_all")
    clone = root / "src"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    assert assign.run(Namespace(out=str(root / "out"), assignments=None, source=str(clone))) == 0
    return clone, root / "out", grade.load_bundle(root / "out" / "grader")


def _grade_cli(sub: Path, out: Path, tmp_path: Path) -> dict:
    result = tmp_path / f"{sub.name}.json"
    proc = subprocess.run([sys.executable, "-m", "tinynets", "grade", str(sub), "--grader",
                           str(out / "grader"), "--format", "json", "--out", str(result),
                           "--timeout", str(TIMEOUT), "--jobs", "2"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(result.read_text())


def _totals(result: dict) -> dict:
    return {a["name"]: (a["score"], a["max_score"]) for a in result["assignments"]}


def test_every_assignment_is_handed_out(every):
    """The spec files define at least the six assignments, each worth 100 integer points."""
    clone, out, manifest = every
    files = {str(p.relative_to(clone)): p.read_bytes()
             for p in (clone / spec.SPEC_DIR).glob("A*.json")}
    assert list(manifest["assignments"]) == list(spec.load_specs(files))
    assert len(manifest["assignments"]) >= 6
    for a, s in manifest["assignments"].items():
        points = [p for t in s["tasks"].values() for p in t["tests"].values()]
        assert all(type(p) is int and p > 0 for p in points) and sum(points) == 100, a
        assert any(spec.is_hidden(t) for task in s["tasks"].values() for t in task["tests"]), a


def test_solution_scores_full_points_on_every_assignment(every, tmp_path):
    clone, out, manifest = every
    started = time.monotonic()
    result = _grade_cli(clone, out, tmp_path)
    took = time.monotonic() - started
    print(f"\ngrading the full solution ({len(manifest['assignments'])} assignments) took "
          f"{took:.0f} s with --jobs 2")
    failed = [(t["tag"], x["name"], x["status"], x["message"]) for a in result["assignments"]
              for t in a["tasks"] for x in t["tests"] if x["status"] != "passed"]
    assert failed == []
    assert _totals(result) == {a: (100, 100) for a in manifest["assignments"]}


def test_untouched_student_version_scores_zero_and_nothing_crashes(every, tmp_path):
    clone, out, manifest = every
    result = _grade_cli(out / "student", out, tmp_path)
    assert result["score"] == 0
    for a in result["assignments"]:
        for t in a["tasks"]:
            statuses = {x["status"] for x in t["tests"]}
            assert statuses <= {"not implemented", "blocked"}, (t["tag"], statuses)
            assert t["status"] == "not implemented", t["tag"]


def _solved_only(clone: Path, manifest: dict, keep: str, path: str) -> str:
    """``path`` of the solution with every region stubbed except those of assignment ``keep``."""
    stubs = {tag: spec.stub_message(manifest["assignments"], tag)
             for a, s in manifest["assignments"].items() if a != keep for tag in s["tasks"]}
    text = (clone / path).read_text()
    if path.endswith(".ipynb"):
        return markers.student_notebook(text, stubs, path)
    return markers.student_python(text, stubs, path)


def test_a_submission_solving_exactly_a1_scores_exactly_its_points(every, tmp_path):
    """A1's regions copied back from the solution into the student version."""
    clone, out, manifest = every
    sub = tmp_path / "only_a1"
    shutil.copytree(out / "student", sub)
    for path in manifest["assignments"]["A1"]["edit"]:
        (sub / path).write_text(_solved_only(clone, manifest, "A1", path))
    result = _grade_cli(sub, out, tmp_path)
    assert _totals(result) == {a: (100 if a == "A1" else 0, 100) for a in manifest["assignments"]}
    assert result["score"] == 100


def _enclosing(tree, line: int) -> str:
    """"Class.method" or "function" of the innermost def around ``line`` (1-based)."""
    import ast
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.lineno <= line <= item.end_lineno:
                    best = f"{node.name}.{item.name}"
        elif isinstance(node, ast.FunctionDef) and node.col_offset == 0 and \
                node.lineno <= line <= node.end_lineno and best is None:
            best = node.name
    return best


def test_each_task_names_the_functions_that_hold_its_regions():
    """The spec's ``functions`` (what the student README lists and the grader checks the
    origin of) are exactly the functions and methods whose bodies hold the task's regions."""
    import ast
    files = {p.relative_to(REPO).as_posix(): p.read_bytes()
             for p in (REPO / spec.SPEC_DIR).glob("A*.json")}
    for a, s in spec.load_specs(files).items():
        for tag, task in s["tasks"].items():
            if not task["file"].endswith(".py"):
                continue
            text = (REPO / task["file"]).read_text()
            tree = ast.parse(text)
            holders = []
            for r in markers.find_regions(text, task["file"]):
                if r.tag == tag and _enclosing(tree, r.begin + 1) not in holders:
                    holders.append(_enclosing(tree, r.begin + 1))
            assert task["functions"] == holders, tag
