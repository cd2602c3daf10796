"""Assignments from the marked source: markers, ``assign`` (from git HEAD, leak checks) and
``grade`` (fresh tree, per-task processes, statuses, exact points, time limits, cheating).

The bundle is built from a ``git clone`` of this repository, so only committed files count,
as in CI. Grading runs real pytest processes on A1 (NumPy only, no JIT): about a minute.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from tinynets.teach import assign, grade, markers, report

pytestmark = pytest.mark.task_teach

REPO = Path(__file__).resolve().parents[1]
NAIVE = "tinynets/kernels/conv_naive.py"
TIMEOUT = 60.0
HANG_TIMEOUT = 10.0


# ------------------------------------------------------------------ markers
PY = '''def f(x):
    """Doubles x."""
    y = 1
    ### BEGIN SOLUTION A1.double
    if x:
        return 2 * x
    ### END SOLUTION
    return y


def g():
    """Kept."""
    ### BEGIN SOLUTION A2.other
    return 3
    ### END SOLUTION
'''


def test_markers_python_stub_keeps_docstring_and_other_assignments():
    regions = markers.find_regions(PY, "m.py")
    assert [(r.tag, r.begin, r.end, r.indent) for r in regions] == [
        ("A1.double", 3, 6, "    "), ("A2.other", 12, 14, "    ")]
    out = markers.student_python(PY, {"A1.double": "A1.double: see lesson 01"}, "m.py")
    assert out == PY.replace('''    ### BEGIN SOLUTION A1.double
    if x:
        return 2 * x
    ### END SOLUTION
''', '''    raise NotImplementedError("A1.double: see lesson 01")
''').replace("    ### BEGIN SOLUTION A2.other\n", "").replace("    ### END SOLUTION\n", "")
    ns = {}
    exec(out, ns)
    assert ns["f"].__doc__ == "Doubles x." and ns["g"]() == 3
    with pytest.raises(NotImplementedError, match=r"^A1\.double: see lesson 01$"):
        ns["f"](1)


@pytest.mark.parametrize("text, error", [
    ("def f():\n    ### BEGIN SOLUTION A1.a\n    ### BEGIN SOLUTION A1.b\n    pass\n"
     "    ### END SOLUTION\n", "do not nest"),
    ("def f():\n    ### BEGIN SOLUTION A1.a\n    pass\n", "never closed"),
    ("def f():\n    pass\n    ### END SOLUTION\n", "without a BEGIN"),
    ("def f():\n    ### BEGIN SOLUTION\n    pass\n", "malformed"),
    ("def f():\n    #### begin solution A1.a\n    pass\n", "malformed"),
    ("def f():\n    ### BEGIN SOLUTION A1.a\n    ### END SOLUTION\n", "empty"),
    ("def f():\n    ### BEGIN SOLUTION A1.a\n  x = 1\n    ### END SOLUTION\n", "indented less"),
    ("### BEGIN SOLUTION A1.a\nx = 1\n### END SOLUTION\n", "module level"),
])
def test_markers_malformed_regions_name_the_line(text, error):
    with pytest.raises(markers.MarkerError, match=error) as err:
        markers.student_python(text, {"A1.a": "A1.a: see lesson 01"}, "bad.py")
    assert str(err.value).startswith("bad.py:")


def test_markers_notebook_cell_keeps_outside_code_and_drops_outputs():
    cell = "import numpy as np\ndef h(x):\n    ### BEGIN SOLUTION A1.h\n    return x + 1\n" \
           "    ### END SOLUTION\nprint(h(1))"
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Try it"]},
                    {"cell_type": "code", "execution_count": 3, "metadata": {},
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": ["2\n"]}],
                     "source": cell.splitlines(keepends=True)}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    text = json.dumps(nb)
    assert [(k, r.tag) for k, r in markers.notebook_regions(text, "nb")] == [(1, "A1.h")]
    out = json.loads(markers.student_notebook(text, {"A1.h": "A1.h: see lesson 05"}, "nb"))
    code = out["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert code["source"] == ("import numpy as np\ndef h(x):\n    # YOUR CODE HERE\n"
                              '    raise NotImplementedError("A1.h: see lesson 05")\nprint(h(1))')
    assert out["cells"][0] == nb["cells"][0]
    nb["cells"][0]["source"] = ["### BEGIN SOLUTION A1.h\n", "x\n", "### END SOLUTION\n"]
    with pytest.raises(markers.MarkerError, match="nb cell 0: .*markdown"):
        markers.student_notebook(json.dumps(nb), {"A1.h": "m"}, "nb")


# ------------------------------------------------------------------ assign
def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    _git(dest, "config", "user.email", "teacher@example.org")
    _git(dest, "config", "user.name", "teacher")
    return dest


def _assign(out: Path, source: Path) -> int:
    return assign.run(Namespace(out=str(out), assignments="A1", source=str(source)))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """(clone, OUT) after ``assign OUT --assignments A1`` on a clone whose working tree has
    an uncommitted edit and a stray .pyc: neither may reach the output."""
    root = tmp_path_factory.mktemp("teach")
    clone = _clone(root / "src")
    (clone / "tinynets/kernels/__pycache__").mkdir(exist_ok=True)
    (clone / "tinynets/kernels/__pycache__/conv_naive.cpython-311.pyc").write_bytes(b"\0solved")
    (clone / "lessons/uncommitted.py").write_text("### BEGIN SOLUTION A1.im2col\n")
    assert _assign(root / "out", clone) == 0
    return clone, root / "out"


def test_assign_student_tree_has_stubs_and_no_leak(bundle):
    clone, out = bundle
    student = out / "student"
    naive = (student / NAIVE).read_text()
    for tag in ("conv_forward_loops", "conv_backward_loops", "im2col", "col2im"):
        assert naive.count(f'raise NotImplementedError("A1.{tag}: see lesson 01")') == 1
    assert naive.count('raise NotImplementedError("A1.conv_im2col: see lesson 01")') == 2
    assert '"""Adjoint of im2col: add each column entry back where it was read from.' in naive
    assert "tensordot" not in naive and "sliding_window_view(xp" not in naive
    assert not (student / "lessons/uncommitted.py").exists()
    assert not list(student.rglob("__pycache__")) and not list(student.rglob("*.pyc"))
    assert not (student / "tinynets/teach").exists() and not (student / "tests/assignments/A1/hidden").exists()
    assert sorted(p.name for p in (student / "tests/assignments/A1/visible").iterdir()) == [
        "test_a1_exercises.py", "test_a1_im2col.py", "test_a1_loops.py"]
    readme = (student / "README.md").read_text()
    assert "python -m pytest -m A1" in readme and "`tinynets/kernels/conv_naive.py`" in readme
    assert "## For teachers" not in readme
    lesson = json.loads((student / "lessons/01_convolution.ipynb").read_text())
    assert all(c.get("outputs", []) == [] for c in lesson["cells"])
    code = "".join(markers.cell_source(c) for c in lesson["cells"])
    for tag in ("try_reads", "q_nine", "try_matmul", "try_upsample"):
        assert code.count(f'raise NotImplementedError("A1.{tag}: see lesson 01")') == 1
    assert "answer = 'b'" not in code and "np.repeat(small" not in code
    hidden = {p.relative_to(out / "grader/hidden").as_posix(): p.read_bytes()
              for p in (out / "grader/hidden").rglob("*.py")}
    assert sorted(hidden) == ["tests/assignments/A1/hidden/test_a1_hidden_exercises.py",
                              "tests/assignments/A1/hidden/test_a1_hidden_im2col.py",
                              "tests/assignments/A1/hidden/test_a1_hidden_loops.py"]
    problems, _ = assign.leaks(student, hidden, [])
    assert problems == []
    assert grade.load_bundle(out / "grader")["source_commit"] == _git(clone, "rev-parse", "HEAD")
    for name in ("setup.sh", "run_autograder"):
        assert (out / "grader" / name).stat().st_mode & 0o100


def test_assign_points_table(bundle):
    manifest = json.loads((bundle[1] / "grader/manifest.json").read_text())
    tasks = manifest["assignments"]["A1"]["tasks"]
    table = {tag: sum(t["tests"].values()) for tag, t in tasks.items()}
    assert table == {"A1.conv_forward_loops": 15, "A1.conv_backward_loops": 19, "A1.im2col": 15,
                     "A1.col2im": 15, "A1.conv_im2col": 20, "A1.try_reads": 4, "A1.q_nine": 2,
                     "A1.try_matmul": 6, "A1.try_upsample": 4}
    assert all(type(p) is int for t in tasks.values() for p in t["tests"].values())


def test_assign_refuses_planted_leaks(tmp_path, bundle, capsys):
    clone = _clone(tmp_path / "src")
    line = "out[:, g * Og:(g + 1) * Og, i, j] = np.tensordot(patch, wg, axes=([1, 2, 3], [1, 2, 3]))"
    (clone / "assets/notes.md").write_text(f"The loop body:\n\n    {line}\n")
    (clone / "tinynets/kernels/__pycache__").mkdir(exist_ok=True)
    (clone / "tinynets/kernels/__pycache__/conv_naive.cpython-311.pyc").write_bytes(b"\0solved")
    shutil.copy(clone / "tests/assignments/A1/hidden/test_a1_hidden_loops.py",
                clone / "tests/fixtures/copied.py")
    _git(clone, "add", "-f", ".")
    _git(clone, "commit", "-qm", "leaks")
    assert _assign(tmp_path / "out", clone) == 1
    text = capsys.readouterr().err
    for expect in ("assets/notes.md: holds a line of a solution",
                   "conv_naive.cpython-311.pyc: compiled code",
                   "tests/fixtures/copied.py: is a hidden test",
                   "tests/fixtures/copied.py: defines the hidden test test_conv_forward_loops"):
        assert expect in text
    assert not (tmp_path / "out/student").exists() and not (tmp_path / "out/grader").exists()


def test_grade_refuses_a_bundle_that_differs_from_its_manifest(tmp_path, bundle):
    grader = tmp_path / "grader"
    shutil.copytree(bundle[1] / "grader", grader)
    stub = grader / "student" / NAIVE
    original = stub.read_text()
    stub.write_text(original + "\n# changed\n")
    with pytest.raises(grade.BundleError, match=f"student differs from its manifest.*{NAIVE}"):
        grade.load_bundle(grader)
    stub.write_text(original)
    (grader / "hidden/extra.py").write_text("")
    with pytest.raises(grade.BundleError, match=r"hidden differs from its manifest \(\['extra.py'\]"):
        grade.load_bundle(grader)


def test_leaks_finds_markers_outputs_and_bytecode(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n    ### END SOLUTION\n")
    (tmp_path / "n.ipynb").write_text(json.dumps({"cells": [
        {"cell_type": "code", "source": "1", "outputs": [], "execution_count": 4}]}))
    (tmp_path / "k.nbi").write_bytes(b"")
    problems, _ = assign.leaks(tmp_path, {}, [])
    assert problems == ["a.py: holds a solution marker", "k.nbi: compiled code (.nbi) can hold a solution",
                        "n.ipynb: cell 0 has outputs or an execution count"]


# ------------------------------------------------------------------ grade
def _solution_regions(clone: Path):
    text = (clone / NAIVE).read_text()
    lines = text.splitlines(keepends=True)
    return [(r.tag, "".join(lines[r.begin + 1:r.end])) for r in markers.find_regions(text, NAIVE)]


def _submission(dest: Path, bundle, solved=(), code=None) -> Path:
    """A student's folder: the student tree with the regions of ``solved`` copied back from
    the solution, and ``code`` (tag -> source) in place of other stubs."""
    clone, out = bundle
    shutil.copytree(out / "student", dest)
    text = (dest / NAIVE).read_text()
    for tag, body in _solution_regions(clone):
        stub = f'    raise NotImplementedError("{tag}: see lesson 01")\n'
        if tag in solved:
            text = text.replace(stub, body, 1)
        elif code and tag in code:
            text = text.replace(stub, code[tag], 1)
    (dest / NAIVE).write_text(text)
    return dest


def _grade(sub: Path, bundle, timeout=TIMEOUT) -> dict:
    grader = bundle[1] / "grader"
    return grade.grade_one(sub, grader, grade.load_bundle(grader), ["A1"], timeout, jobs=2)


def _statuses(result):
    return {t["tag"]: [x["status"] for x in t["tests"]] for t in result["assignments"][0]["tasks"]}


def _scores(result):
    return {t["tag"]: t["score"] for t in result["assignments"][0]["tasks"]}


def test_grade_solution_scores_full_points_gradescope(tmp_path, bundle):
    """The solution library (the clone) through the command line, as Gradescope would."""
    clone, out = bundle
    out_file = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "tinynets", "grade", str(clone), "--grader",
                           str(out / "grader"), "--format", "gradescope", "--out", str(out_file),
                           "--timeout", str(TIMEOUT), "--jobs", "2"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out_file.read_text())
    assert set(data) == {"score", "execution_time", "output", "tests"}
    assert data["score"] == 100 and data["output"].startswith("A1 100/100")
    assert len(data["tests"]) == 25
    for t in data["tests"]:
        assert set(t) == {"name", "score", "max_score", "status", "output", "tags", "visibility"}
        assert t["status"] == "passed" and t["score"] == t["max_score"] and type(t["score"]) is int
        hidden = t["name"].split(": ")[1] in HIDDEN_NAMES
        assert t["visibility"] == ("after_due_date" if hidden else "visible")
    assert sum(t["visibility"] == "after_due_date" for t in data["tests"]) == 13


HIDDEN_NAMES = {"test_conv_forward_loops_definition_random", "test_conv_forward_loops_hidden_cases",
                "test_conv_backward_loops_numerical_gradient", "test_conv_backward_loops_hidden_cases",
                "test_im2col_definition_random", "test_im2col_keeps_dtype",
                "test_col2im_adjoint_of_im2col", "test_col2im_hidden_cases",
                "test_conv_im2col_numerical_gradient", "test_conv_im2col_hidden_cases",
                "test_try_matmul_other_shapes", "test_try_upsample_other_values",
                "test_q_nine_choice"}


def test_grade_one_task_scores_exactly_its_points_and_twice_the_same(tmp_path, bundle):
    sub = _submission(tmp_path / "only_im2col", bundle, solved={"A1.im2col"})
    subprocess.run(["git", "init", "-q", str(sub)], check=True)
    _git(sub, "add", ".")
    _git(sub, "-c", "user.email=s@example.org", "-c", "user.name=s", "commit", "-qm", "A1")
    first, second = _grade(sub, bundle), _grade(sub, bundle)
    assert first["submission_commit"] == _git(sub, "rev-parse", "HEAD")
    assert first["score"] == 15
    assert _scores(first) == {"A1.conv_forward_loops": 0, "A1.conv_backward_loops": 0,
                              "A1.im2col": 15, "A1.col2im": 0, "A1.conv_im2col": 0,
                              "A1.try_reads": 0, "A1.q_nine": 0, "A1.try_matmul": 0,
                              "A1.try_upsample": 0}
    for tag, statuses in _statuses(first).items():
        assert set(statuses) == ({"passed"} if tag == "A1.im2col" else {"not implemented"})
    first.pop("execution_time"), second.pop("execution_time")
    assert first == second


HANG = "    while True:\n        pass\n"
CRASH = "    import os\n    os._exit(3)\n"


def test_grade_hang_and_crash_fail_their_task_alone(tmp_path, bundle):
    """conv_backward_loops never returns, conv2d_im2col kills its process; col2im is solved
    but its adjoint test needs im2col: the rest is graded as usual."""
    sub = _submission(tmp_path / "hang", bundle, solved={"A1.conv_forward_loops", "A1.col2im"},
                      code={"A1.conv_backward_loops": HANG, "A1.conv_im2col": CRASH})
    result = _grade(sub, bundle, timeout=HANG_TIMEOUT)
    statuses = _statuses(result)
    assert statuses["A1.conv_backward_loops"] == ["timed out"] * 4
    assert statuses["A1.conv_im2col"] == ["crashed"] * 4
    assert statuses["A1.conv_forward_loops"] == ["passed"] * 4
    assert statuses["A1.col2im"] == ["passed", "blocked", "passed"]
    assert statuses["A1.im2col"] == ["not implemented"] * 4
    assert result["score"] == 15 + 5 + 3
    tests = {x["name"]: x for t in result["assignments"][0]["tasks"] for x in t["tests"]}
    assert tests["test_col2im_adjoint_of_im2col"]["message"] == \
        "needs A1.im2col, which is not implemented yet"
    assert tests["test_conv_backward_loops_pytorch_standard"]["message"] == \
        f"no result within {HANG_TIMEOUT:g} s, the task's time limit"
    assert tests["test_conv_backward_loops_hidden_cases"]["message"] == \
        f"not run: the task's time limit ({HANG_TIMEOUT:g} s) ran out in " \
        "test_conv_backward_loops_pytorch_standard"
    assert tests["test_conv_im2col_hidden_cases"]["message"] == \
        "the test process died in this test (exit code 3)"
    assert re.search(r"\n  A1\.conv_backward_loops +0/19 +timed out\n", report.text_report(result))
    rows = report.gradebook([result, result]).splitlines()
    assert rows[0].startswith("submission,A1.conv_forward_loops,")
    assert rows[1].startswith("hang,15,0,0,8,0,0,0,0,0,23,23,100")


CHEAT = '''    import glob, subprocess
    tried, paths = [], [{solution!r}, {hidden!r}]
    try:
        paths += glob.glob({bundle!r} + "/**/*.py", recursive=True)
    except OSError as err:
        tried.append(f"{{type(err).__name__}}: {{err}}")
    for path in paths:
        try:
            source = open(path).read()
            tried.append("read " + path)
        except OSError as err:
            tried.append(f"{{type(err).__name__}}: {{err}}")
            continue
        namespace = {{}}
        exec(compile(source, path, "exec"), namespace)
        if "conv2d_im2col" in namespace:
            try:
                return namespace["conv2d_im2col"](x, w, b, stride, padding, groups)
            except Exception as err:
                tried.append(f"{{type(err).__name__}}: {{err}}")
    try:
        subprocess.run(["cat", {solution!r}])
    except OSError as err:
        tried.append(f"{{type(err).__name__}}: {{err}}")
    raise RuntimeError("nothing to copy: " + " | ".join(tried))
'''


def test_grade_reading_outside_the_tree_gives_nothing(tmp_path, bundle):
    """A submission that tries to run the solution library this grader runs from, to read
    the bundle's hidden tests and to start a process gets no points for that task."""
    clone, out = bundle
    grader = out / "grader"
    code = CHEAT.format(solution=str(REPO / NAIVE), bundle=str(grader),
                        hidden=str(grader / "hidden/tests/assignments/A1/hidden/test_a1_hidden_loops.py"))
    sub = _submission(tmp_path / "cheat", bundle, code={"A1.conv_im2col": code})
    work = tmp_path / "work"
    work.mkdir()
    files, notes = grade.read_submission(sub, [NAIVE])
    tree = grade.build_tree(work, grader, files)
    manifest = grade.load_bundle(grader)
    task = manifest["assignments"]["A1"]["tasks"]["A1.conv_im2col"]
    cfg = {"deny": grade._deny_roots(grader, sub), "deny_always": grade._solution_packages(),
           "edited": [NAIVE]}
    got = grade.grade_task(tree, work, "A1.conv_im2col", task, cfg, TIMEOUT, set())
    assert [r["status"] for r in got.values()] == ["failed"] * 4
    message = next(iter(got.values()))["message"]
    assert message.count("the grader does not let graded code") == 4, message
    for test_id, r in got.items():               # hidden: the message, no place, no source
        assert ("(at tinynets/kernels/conv_naive.py:" in r["message"]) == ("/visible/" in test_id)
        assert "Traceback" not in r["message"] and "def " not in r["message"]
    assert "read " not in message.replace("does not let graded code read", "")


def test_grade_foreign_function_and_symlink_get_nothing(tmp_path, bundle):
    """A graded function bound to code outside its file fails its whole task; an edited file
    that is a symbolic link (say, to the solution) is not read: the stub is graded."""
    clone, out = bundle
    grader = out / "grader"
    sub = _submission(tmp_path / "foreign", bundle, solved={"A1.im2col"})
    with open(sub / NAIVE, "a") as f:
        f.write("\nim2col_strided = np.lib.stride_tricks.sliding_window_view  # not its own\n")
    work = tmp_path / "work"
    work.mkdir()
    files, _ = grade.read_submission(sub, [NAIVE])
    tree = grade.build_tree(work, grader, files)
    task = grade.load_bundle(grader)["assignments"]["A1"]["tasks"]["A1.im2col"]
    cfg = {"deny": grade._deny_roots(grader, sub), "deny_always": grade._solution_packages(),
           "edited": [NAIVE]}
    got = grade.grade_task(tree, work, "A1.im2col", task, cfg, TIMEOUT, set())
    assert {r["status"] for r in got.values()} == {"failed"}
    assert "im2col_strided must be defined in tinynets/kernels/conv_naive.py" in \
        next(iter(got.values()))["message"]
    link = tmp_path / "link"
    (link / "tinynets/kernels").mkdir(parents=True)
    (link / NAIVE).symlink_to(clone / NAIVE)
    files, notes = grade.read_submission(link, [NAIVE])
    assert files == {} and "symbolic link" in notes[0]


def test_grade_folder_with_the_untouched_student_version_scores_zero(tmp_path, bundle):
    """A folder of submissions through the command line (exit code 0; a sub-folder without
    the edited file is not a submission): the untouched stubs score 0, every test and task
    'not implemented', nothing crashed."""
    shutil.copytree(bundle[1] / "student", tmp_path / "class/alice")
    (tmp_path / "class/notes").mkdir()
    out_file = tmp_path / "grades.json"
    proc = subprocess.run([sys.executable, "-m", "tinynets", "grade", str(tmp_path / "class"),
                           "--grader", str(bundle[1] / "grader"), "--format", "json",
                           "--out", str(out_file), "--jobs", "2"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(out_file.read_text())
    assert result["submission"] == "alice" and result["score"] == 0
    assert result["max_score"] == 100
    for tag, statuses in _statuses(result).items():
        assert statuses == ["not implemented"] * len(statuses), tag
    assert [t["status"] for t in result["assignments"][0]["tasks"]] == ["not implemented"] * 9
    assert report.gradebook([result]).splitlines() == [
        "submission,A1.conv_forward_loops,A1.conv_backward_loops,A1.im2col,A1.col2im,"
        "A1.conv_im2col,A1.try_reads,A1.q_nine,A1.try_matmul,A1.try_upsample,A1,total,max,notes",
        "alice,0,0,0,0,0,0,0,0,0,0,0,100,"]


# ------------------------------------------------------------ lesson exercises
def _exercise_notebook(folder: Path) -> None:
    def cell(src):
        return {"cell_type": "code", "source": src, "metadata": {}, "outputs": [],
                "execution_count": None}
    nb = {"cells": [cell("# Try it 1 [A9.x]: your answer\nimport tinynets\n"
                         "def f(n):\n    return tinynets.make_divisible(n)\n"),
                    cell("# Try it 2 [A9.y]: your answer\ndef g(n):\n    return n + 1\n"),
                    cell("# Try it 3 [A9.z]: your answer\n"
                         "raise NotImplementedError('A9.z: see lesson 99')\n")],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "99_x.ipynb").write_text(json.dumps(nb))


def _shared_checks():
    """tests/assignments/conftest.py as a module of its own (``conftest`` is taken)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("assignments_conftest",
                                                  REPO / "tests/assignments/conftest.py")
    shared = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared)
    return shared


def test_numpy_only_catches_a_kernel_run_as_python():
    """A numpy_only test fails when the code calls a kernel, even through its ``py_func``
    (no compilation), and passes on NumPy code; importing a kernel module is not a call."""
    shared = _shared_checks()
    from tinynets.kernels import im2col
    x = np.arange(16.0).reshape(1, 1, 4, 4)

    def run(body):
        with shared.no_kernels():
            body()

    run(lambda: (x * 2).sum())
    run(lambda: __import__("importlib").reload(im2col))
    kernels = [v for v in vars(im2col).values() if hasattr(v, "py_func")]

    def call_as_python():
        try:
            kernels[0].py_func(*[None] * kernels[0].py_func.__code__.co_argcount)
        except Exception:           # noqa: BLE001 (nonsense arguments; the call is what counts)
            pass
    with pytest.raises(AssertionError, match=r"im2col\..* \(as Python\)"):
        run(call_as_python)


def test_exercise_cells_run_alone_and_refuse_the_library(tmp_path, monkeypatch):
    """An exercise cell is found by the task in its first line and runs alone; a cell that
    uses what it was asked to write fails before it runs; a stub raises its own message."""
    shared = _shared_checks()
    _exercise_notebook(tmp_path)
    monkeypatch.setattr(shared, "LESSONS", str(tmp_path))
    with pytest.raises(AssertionError, match="may not use .*tinynets"):
        shared.exercise("99", "A9.x", forbid=("tinynets",))
    with pytest.raises(AssertionError, match="may not use make_divisible"):
        shared.exercise("99", "A9.x", forbid=("make_divisible",))
    assert shared.exercise("99", "A9.y", forbid=("tinynets",))["g"](1) == 2
    assert "tn" not in shared.exercise("99", "A9.y", forbid=("tinynets",))
    with pytest.raises(NotImplementedError, match="^A9.z: see lesson 99$"):
        shared.exercise("99", "A9.z")
    with pytest.raises(AssertionError, match="found 0"):
        shared.exercise("99", "A9.w")
    with pytest.raises(AssertionError, match="must define 'h'"):
        shared.defined(shared.exercise("99", "A9.y"), "h", "A9.y")
