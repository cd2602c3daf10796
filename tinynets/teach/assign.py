"""``python -m tinynets assign OUT [--assignments A1] [--source REPO]``.

Writes the student version and the grader bundle of the chosen assignments (default: all
in ``tinynets/teach/assignments/A<n>.json``), from the files git tracks at the source
repository's HEAD (never the working tree, so an uncommitted edit or a stray ``.pyc``
cannot slip in):

* ``OUT/student/``: a repository a student can clone: the library with each task's
  solution region replaced by ``raise NotImplementedError("A1.<task>: see lesson 01")``,
  the lessons without outputs, the visible tests and a README for students;
* ``OUT/grader/``: ``student/`` (the same pristine tree), ``hidden/`` (the hidden tests),
  ``manifest.json`` (assignment -> task -> files and functions -> test ids -> points,
  the source commit and SHA-256 hashes), ``tool/teach`` (the grader, standard library
  only) and Gradescope's ``setup.sh`` and ``run_autograder``.

Before it finishes it checks ``OUT/student`` for leaks: a solution marker, a hidden test
(by path, content or test name), a notebook output, a ``.pyc``/``.nbi``/``.nbc`` file or a
line of a solution region. On any finding it deletes OUT and exits 1.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional

from . import markers
from .spec import check_tests_exist, load_specs, select, stub_message

BYTECODE = (".pyc", ".pyo", ".nbi", ".nbc")
MIN_LEAK_LINE = 40          # solution lines this long must not appear anywhere in the student tree


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output folder (must not exist or be empty)")
    p.add_argument("--assignments", default=None,
                   help="comma-separated, e.g. A1,A3 (default: every assignment)")
    p.add_argument("--source", default=None,
                   help="the solution repository (default: the one this tinynets is in)")


def git_head(repo: Path) -> (str, Dict[str, bytes]):
    """(commit, {path: content}) of every file tracked at HEAD."""
    def git(*args) -> bytes:
        return subprocess.run(["git", "-C", str(repo), *args], check=True,
                              capture_output=True).stdout
    commit = git("rev-parse", "HEAD").decode().strip()
    files = {}
    with tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar", commit))) as tar:
        for member in tar.getmembers():
            if member.issym() or member.islnk():
                raise ValueError(f"{member.name}: a link; the student version copies files only")
            if member.isfile():
                files[member.name] = tar.extractfile(member).read()
    return commit, files


def _ships(path: str, chosen: List[str]) -> bool:
    """Whether a tracked file goes into the student tree (before stubbing)."""
    p = PurePosixPath(path)
    if p.parts[0] in (".ci",) or path.startswith("tinynets/teach/") or path == "README.md":
        return False
    if p.parts[0] != "tests":
        return True
    if path in ("tests/conftest.py", "tests/helpers.py", "tests/assignments/conftest.py"):
        return True
    if path.startswith("tests/fixtures/"):
        return True
    # an assignment's own conftest holds checks its visible and hidden tests share
    return any(path.startswith(f"tests/assignments/{a}/visible/")
               or path == f"tests/assignments/{a}/conftest.py" for a in chosen)


def _without_section(readme: str, title: str) -> str:
    """The README without its ``## title`` section (the teachers' guide)."""
    return re.sub(rf"(?ms)^## {re.escape(title)}\n.*?(?=^## |\Z)", "", readme)


def student_readme(spec: dict, chosen: List[str], original: str) -> str:
    lines = ["# Assignments: " + ", ".join(chosen), "",
             "## Set-up", "", "```", "python3 -m venv .venv && . .venv/bin/activate",
             "pip install -r requirements.txt -e .", "```", ""]
    for a in chosen:
        s = spec[a]
        edit = ", ".join(f"`{f}`" for f in s["edit"])
        lines += [f"## {a}: {s['title']} (lesson {s['lesson']})", "",
                  f"Edit only {edit}: the grader takes these files from your submission and "
                  "nothing else (your own tests and conftest are not used).", "",
                  "| task | function(s) | do first | points |", "|---|---|---|---|"]
        for tag, t in s["tasks"].items():
            first = ", ".join(t["prerequisites"]) or "-"
            fns = ", ".join(f"`{f}`" for f in t["functions"])
            lines.append(f"| {tag}: {t['title']} | {fns} | {first} | {sum(t['tests'].values())} |")
        total = sum(sum(t["tests"].values()) for t in s["tasks"].values())
        lines += ["", f"{total} points in all. Each function above raises "
                  f'`NotImplementedError("{a}.<task>: see lesson {s["lesson"]}")`: replace that '
                  "line with your code and keep the docstring, which says what to compute. ",
                  "Run the visible tests with", "", "```", f"python -m pytest -m {a}",
                  f"python -m pytest -m {a} -k conv_forward_loops      # one task" if a == "A1"
                  else f"python -m pytest -m {a} -k <task>", "```", "",
                  "Your grade also counts hidden tests (other shapes, dtypes, finite "
                  "differences); passing the visible ones is necessary, not sufficient. A test "
                  "of a task whose prerequisite is not done yet reports it as blocked.", ""]
    lines += ["## Handing in", "", "Commit and push (GitHub Classroom), or hand in the "
              "files named above as they are in this tree.", "", "---", ""]
    return "\n".join(lines) + _without_section(original, "For teachers")


def build(files: Dict[str, bytes], spec: dict, chosen: List[str]):
    """(student tree, hidden tests, manifest tasks) as {path: bytes} dicts."""
    stubs = {tag: stub_message(spec, tag) for a in chosen for tag in spec[a]["tasks"]}
    found: Dict[str, List[str]] = {}
    student: Dict[str, bytes] = {}
    for path, data in sorted(files.items()):
        if not _ships(path, chosen):            # the grader's own code, other tests
            continue
        if path.endswith(".py") or path.endswith(".ipynb"):
            text = data.decode("utf-8")
            regions = (markers.find_regions(text, path) if path.endswith(".py")
                       else [r for _, r in markers.notebook_regions(text, path)])
            for r in regions:
                found.setdefault(r.tag, []).append(path)
        if path.endswith(".py"):
            data = markers.student_python(data.decode("utf-8"), stubs, path).encode("utf-8")
        elif path.endswith(".ipynb"):
            data = markers.student_notebook(data.decode("utf-8"), stubs, path).encode("utf-8")
        student[path] = data
    known = {tag for a in spec for tag in spec[a]["tasks"]}
    unknown = sorted(set(found) - known)
    if unknown:
        raise ValueError(f"solution regions with tags that no assignment defines: {unknown} "
                         f"(in {[found[t] for t in unknown]})")
    for tag in stubs:
        task = spec[tag.split(".")[0]]["tasks"][tag]
        if found.get(tag, []) and set(found[tag]) != {task["file"]}:
            raise ValueError(f"{tag}: regions in {found[tag]}, but the spec names {task['file']}")
        if not found.get(tag):
            raise ValueError(f"{tag}: no solution region in {task['file']}")
    check_tests_exist(spec, chosen, files)
    student["README.md"] = student_readme(spec, chosen, files["README.md"].decode()).encode()
    hidden = {p: d for p, d in files.items()
              if any(p.startswith(f"tests/assignments/{a}/hidden/") for a in chosen)}
    return student, hidden


def _code_text(path: str, data: bytes) -> str:
    """The text of a file as a reader sees it: a notebook's code cells, one after another
    (regions never span cells), so that its lines are compared unescaped."""
    text = data.decode("utf-8", "replace")
    if not path.endswith(".ipynb"):
        return text
    cells = json.loads(text).get("cells", [])
    return "".join(markers.cell_source(c).rstrip("\n") + "\n" for c in cells
                   if c.get("cell_type") == "code")


def solution_lines(files: Dict[str, bytes], spec: dict, chosen: List[str]) -> List[str]:
    """Long code lines inside the chosen regions, except those the task's file also has
    outside its regions (shared set-up such as ``OH = out_size(...)``): none of them may
    appear in the student tree."""
    out, given = set(), set()
    tasks = {tag: t for a in chosen for tag, t in spec[a]["tasks"].items()}
    for path in sorted({t["file"] for t in tasks.values()}):
        text = _code_text(path, files[path])
        lines = [ln.split("#")[0].strip() for ln in text.splitlines()]
        inside = set()
        for r in markers.find_regions(text, path):
            inside |= set(range(r.begin, r.end + 1))
            if r.tag in tasks:
                out |= set(lines[r.begin + 1:r.end])
        given |= {ln for i, ln in enumerate(lines) if i not in inside}
    return sorted(ln for ln in out - given if len(ln) >= MIN_LEAK_LINE)


def leaks(student_dir: Path, hidden: Dict[str, bytes], solution: List[str],
          public: Optional[Dict[str, str]] = None) -> (List[str], List[str]):
    """(problems, notes): every reason ``student_dir`` may not be handed out (none: it may),
    and the solution lines found in the files that the spec's ``public`` names, with why."""
    notes, problems, public = [], [], public or {}
    hidden_hashes = {hashlib.sha256(d).hexdigest(): p for p, d in hidden.items()}
    hidden_names = set()
    for data in hidden.values():
        hidden_names |= set(re.findall(rb"^def (test_\w+)", data, re.M))
    for f in sorted(student_dir.rglob("*")):
        rel = f.relative_to(student_dir).as_posix()
        if f.is_symlink():
            problems.append(f"{rel}: a symbolic link")
            continue
        if f.is_dir():
            if f.name == "__pycache__":
                problems.append(f"{rel}: a __pycache__ folder")
            continue
        data = f.read_bytes()
        if f.suffix in BYTECODE:
            problems.append(f"{rel}: compiled code ({f.suffix}) can hold a solution")
        if re.search(markers.ANY_MARKER.pattern.encode(), data, re.I):
            problems.append(f"{rel}: holds a solution marker")
        if "/hidden/" in f"/{rel}" or hashlib.sha256(data).hexdigest() in hidden_hashes:
            problems.append(f"{rel}: is a hidden test")
        for name in sorted(n for n in hidden_names if b"def " + n + b"(" in data):
            problems.append(f"{rel}: defines the hidden test {name.decode()}")
        if f.suffix == ".ipynb":
            for k, cell in enumerate(json.loads(data).get("cells", [])):
                if cell.get("outputs") or cell.get("execution_count") is not None:
                    problems.append(f"{rel}: cell {k} has outputs or an execution count")
        text = data.decode("utf-8", "replace")
        if f.suffix == ".ipynb":
            text += _code_text(rel, data)
        for line in (ln for ln in solution if ln in text):
            if rel in public:
                notes.append(f"{rel} shows the solution line {line!r} ({public[rel]})")
            else:
                problems.append(f"{rel}: holds a line of a solution: {line!r}")
    return problems, notes


def _write(root: Path, tree: Dict[str, bytes]) -> None:
    for path, data in tree.items():
        dest = root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def _hashes(root: Path) -> Dict[str, str]:
    return {f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


GRADESCOPE_SETUP = """#!/usr/bin/env bash
# Gradescope runs this once to build the autograder image; this folder is /autograder/source.
set -euo pipefail
apt-get install -y python3 python3-pip python3-venv >/dev/null 2>&1 || true
python3 -m pip install -r /autograder/source/student/requirements.txt
"""
GRADESCOPE_RUN = """#!/usr/bin/env bash
# Gradescope runs this per submission: the student's files are in /autograder/submission.
cd /autograder/source/tool
python3 -m teach grade /autograder/submission --grader /autograder/source \\
    --format gradescope --out /autograder/results/results.json
"""


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} exists and is not empty; give a new folder", file=sys.stderr)
        return 2
    source = Path(args.source) if args.source else Path(__file__).resolve().parents[2]
    try:
        commit, files = git_head(source)
    except (subprocess.CalledProcessError, OSError) as err:
        print(f"error: {source} is not a git repository with a commit ({err})", file=sys.stderr)
        return 2
    try:
        spec = load_specs(files)
        chosen = select(spec, args.assignments)
        student, hidden = build(files, spec, chosen)
    except (KeyError, ValueError, SyntaxError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _write(out / "student", student)
    _write(out / "grader" / "student", student)
    _write(out / "grader" / "hidden", hidden)
    tags = [tag for a in chosen for tag in spec[a]["tasks"]]
    public = {p: why for a in chosen for p, why in spec[a].get("public", {}).items()}
    problems, notes = leaks(out / "student", hidden, solution_lines(files, spec, chosen), public)
    if problems:
        shutil.rmtree(out / "student")
        shutil.rmtree(out / "grader")
        print("error: the student version would leak; nothing written:\n  "
              + "\n  ".join(problems), file=sys.stderr)
        return 1
    tool = {p[len("tinynets/"):]: d for p, d in files.items()
            if p.startswith("tinynets/teach/")}
    _write(out / "grader" / "tool", tool)
    for name, text in (("setup.sh", GRADESCOPE_SETUP), ("run_autograder", GRADESCOPE_RUN)):
        (out / "grader" / name).write_text(text)
        (out / "grader" / name).chmod(0o755)
    manifest = {
        "format": 1, "source_commit": commit, "assignments": {a: spec[a] for a in chosen},
        "hashes": {"student": _hashes(out / "grader" / "student"),
                   "hidden": _hashes(out / "grader" / "hidden")}}
    (out / "grader" / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    n_tests = sum(len(t["tests"]) for a in chosen for t in spec[a]["tasks"].values())
    for note in notes:
        print(f"note: {note}")
    print(f"{out}/student: {len(student)} files, stubs for {len(tags)} tasks of "
          f"{', '.join(chosen)}; no leak found")
    print(f"{out}/grader: manifest ({n_tests} tests, {len(hidden)} hidden test files), "
          f"source commit {commit[:12]}")
    return 0
