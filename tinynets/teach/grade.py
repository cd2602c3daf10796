"""``python -m tinynets grade SUBMISSION --grader OUT/grader [--format text|json|gradescope]
[--out FILE] [--timeout SECONDS] [--assignments A1]``.

SUBMISSION is a student's folder (or a clone of their repository); a folder whose
sub-folders are submissions gives a CSV gradebook, one row each (``--format json``: a list
of reports). ``--jobs N`` grades N tasks at once, each in its own process.

* Only the student's code runs, never the solution: a fresh tree is built from the bundle's
  pristine student tree, the hidden tests and only the files the manifest says a student
  edits (regular files; symbolic links are refused). The student's own tests and conftest
  are not used. Each task runs in its own ``python -I -B`` process with an empty
  ``NUMBA_CACHE_DIR`` and ``PYTHONDONTWRITEBYTECODE=1``; tinynets and every graded function
  must come from the tree, and graded code may not read the solution library, the bundle
  or the submission folder, nor start processes.
* A per-task time limit (``--timeout``, JIT compilation included): a hang or a crash fails
  that task's remaining tests as "timed out" or "crashed"; the other tasks are graded.
* Per test: passed, failed (with its message), not implemented (the task's own stub),
  blocked (a prerequisite's stub), timed out, crashed. Points are integers; every test
  in the manifest is in the result. Hidden tests show their name, result and message,
  never their source or a traceback.
* The exit code is 0 whenever grading finished (2: bad arguments or bundle). Grading the
  same submission twice gives the same result apart from ``execution_time``.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

from .report import gradebook, gradescope_report, text_report
from .spec import is_hidden, select

RUNNER = Path(__file__).with_name("_runner.py")
MAX_FILE = 1 << 20                 # an edited file larger than 1 MB is not a submission
DEFAULT_TIMEOUT = 180.0


class BundleError(ValueError):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("submission", help="a student's folder or clone, or a folder of them")
    p.add_argument("--grader", required=True, help="the grader bundle (OUT/grader of assign)")
    p.add_argument("--format", choices=("text", "json", "gradescope"), default="text")
    p.add_argument("--out", default=None, help="write the report here (default: stdout)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds per task, JIT compilation included ({DEFAULT_TIMEOUT:g})")
    p.add_argument("--assignments", default=None, help="grade only these, e.g. A1")
    p.add_argument("--jobs", type=int, default=1, help="tasks graded at once (1)")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_bundle(grader: Path) -> dict:
    """The manifest, after checking that student/ and hidden/ are exactly what it hashed."""
    try:
        manifest = json.loads((grader / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BundleError(f"{grader}: no readable manifest.json ({err})") from None
    for part in ("student", "hidden"):
        want = manifest["hashes"][part]
        have = {f.relative_to(grader / part).as_posix(): _sha(f)
                for f in sorted((grader / part).rglob("*")) if f.is_file()}
        if have != want:
            bad = sorted(set(have) ^ set(want)) + sorted(k for k in have if have[k] != want.get(k)
                                                         and k in want)
            raise BundleError(f"{grader}/{part} differs from its manifest ({bad[:5]}); "
                              "regenerate the bundle with assign")
    return manifest


def _edited(manifest: dict, chosen: List[str]) -> List[str]:
    return sorted({f for a in chosen for f in manifest["assignments"][a]["edit"]})


def is_submission(path: Path, edited: List[str]) -> bool:
    return any(os.path.lexists(path / f) for f in edited)


def read_submission(sub: Path, edited: List[str]):
    """({path: bytes} of the edited files found, notes). Refuses links and huge files, so
    a submission cannot make the grader copy a file from outside it."""
    files, notes = {}, []
    for rel in edited:
        cur, ok = sub, True
        for part in Path(rel).parts:
            cur = cur / part
            if os.path.islink(cur):
                notes.append(f"{rel}: {cur.relative_to(sub)} is a symbolic link; "
                             "ignored, the stub is graded")
                ok = False
                break
        if not ok:
            continue
        if not (sub / rel).exists():
            notes.append(f"{rel}: not in the submission; the stub is graded")
        elif not (sub / rel).is_file() or (sub / rel).stat().st_size > MAX_FILE:
            notes.append(f"{rel}: not a regular file under {MAX_FILE >> 20} MB; the stub is graded")
        else:
            files[rel] = (sub / rel).read_bytes()
    return files, notes


def submission_commit(sub: Path) -> Optional[str]:
    """The commit a clone has checked out, read from .git without running git (a
    submission's git config could run commands); None if not a clone."""
    git = sub / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="ascii").strip()
        if head.startswith("ref: "):
            ref = head[5:]
            if not re.fullmatch(r"refs/[\w./-]+", ref) or ".." in ref:
                return None
            if (git / ref).is_file():
                head = (git / ref).read_text(encoding="ascii").strip()
            else:
                lines = (git / "packed-refs").read_text(encoding="ascii").splitlines()
                head = next((ln.split()[0] for ln in lines if ln.endswith(" " + ref)), "")
    except (OSError, UnicodeDecodeError):
        return None
    return head if re.fullmatch(r"[0-9a-f]{40}", head) else None


def _solution_packages() -> List[str]:
    """Where a solution tinynets is: this package, and the one ``import tinynets`` finds."""
    roots = [Path(__file__).resolve().parents[1]]
    spec = importlib.util.find_spec("tinynets") if "tinynets" not in sys.modules else None
    module = sys.modules.get("tinynets")
    origin = getattr(module, "__file__", None) or (spec.origin if spec else None)
    if origin:
        roots.append(Path(origin).resolve().parent)
    return sorted({str(r) for r in roots})


def _deny_roots(grader: Path, sub: Path) -> List[str]:
    """What graded code may not read: the bundle, the submission folder and wherever a
    solution tinynets is (this package's library, its repository's lessons, tests, .git)."""
    packages = [Path(p) for p in _solution_packages()]
    roots = [grader, sub, *packages]
    for pkg in packages:
        repo = pkg.parent
        if (repo / ".git").exists():
            roots += [repo / ".git", repo / "lessons", repo / "tests"]
    return sorted({str(Path(r).resolve()) for r in roots})


def _module(path: str) -> str:
    return path[:-3].replace("/", ".")


def _run_tests(tree: Path, work: Path, tests: List[str], functions, cfg_base: dict,
               timeout: float):
    """Run ``tests`` in one process: (records, returncode or None if timed out)."""
    results = work / f"results-{len(list(work.glob('results-*.jsonl')))}.jsonl"
    cfg = dict(cfg_base, tree=str(tree), results=str(results), tests=tests, functions=functions)
    cfg_path = results.with_suffix(".json")
    cfg_path.write_text(json.dumps(cfg))
    cache = Path(tempfile.mkdtemp(prefix="numba-", dir=work))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "TMPDIR": str(work), "NUMBA_CACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "TINYNETS_GRADING": "1"}
    with open(work / "pytest.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-I", "-B", str(RUNNER), str(cfg_path)],
                                cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    records = []
    if results.exists():
        for line in results.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass                        # a half-written last line
    return records, code


def grade_task(tree: Path, work: Path, tag: str, task: dict, cfg_base: dict, timeout: float,
               known_tags) -> Dict[str, dict]:
    """{test id: {status, score, message}} for one task, every test id present."""
    tests = list(task["tests"])
    # a notebook's exercise is run from its cell by the tests, so only modules are looked up
    functions = [{"module": _module(task["file"]), "name": n, "file": task["file"]}
                 for n in task["functions"] if task["file"].endswith(".py")]
    out: Dict[str, dict] = {}
    start = time.monotonic()
    pending = tests
    while pending:
        records, code = _run_tests(tree, work, pending, functions, cfg_base,
                                   timeout - (time.monotonic() - start))
        started = [r["id"] for r in records if r["event"] == "start"]
        for r in records:
            if r["event"] == "done" and r["id"] in pending:
                out[r["id"]] = _classify(r, tag, known_tags, is_hidden(r["id"]))
            elif r["event"] in ("foreign", "fatal"):
                for t in tests:
                    out[t] = {"status": "failed", "message": r["message"]}
                return out
            elif r["event"] == "collect_error":
                for t in pending:
                    out.setdefault(t, {"status": "failed",
                                       "message": f"could not be collected: {r['message']}"})
        running = next((t for t in started if t not in out), None)
        rest = [t for t in pending if t not in out]
        if code is None:                    # out of time: this test and the rest of the task
            for t in rest:
                out[t] = {"status": "timed out", "message": (
                    f"no result within {timeout:g} s, the task's time limit" if t == running
                    else f"not run: the task's time limit ({timeout:g} s) ran out"
                    + (f" in {running.split('::')[-1]}" if running else ""))}
            break
        if running is None:                 # died before any test started, or all finished
            for t in rest:
                out[t] = {"status": "crashed" if code not in (0, 1) else "failed",
                          "message": f"not run: the test process ended with code {code}"}
            break
        out[running] = {"status": "crashed",
                        "message": f"the test process died in this test (exit code {code})"}
        pending = [t for t in rest if t != running]
    return out


def _classify(record: dict, tag: str, known_tags, hidden: bool) -> dict:
    if record["passed"]:
        return {"status": "passed", "message": ""}
    if record.get("tag") == tag:
        return {"status": "not implemented", "message": f"{tag} is not implemented yet"}
    if record.get("tag") in known_tags:
        return {"status": "blocked",
                "message": f"needs {record['tag']}, which is not implemented yet"}
    message = record["message"]
    if record.get("where") and not hidden:
        message += f" (at {record['where']})"
    return {"status": "failed", "message": message}


def _stub_left(tree: Path, tag: str, path: str) -> bool:
    """Whether the task's stub is still in its file (as a notebook stores it, too)."""
    try:
        text = (tree / path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return f'NotImplementedError("{tag}: ' in text or f'NotImplementedError(\\"{tag}: ' in text


def _summary(statuses: List[str], score: int, stub_left: bool = False) -> str:
    """A task's status from its tests' statuses; a task whose own stub is still in place
    is 'not implemented' even when its tests stopped first at another task's stub."""
    if all(s == "passed" for s in statuses):
        return "passed"
    if all(s in ("not implemented", "blocked") for s in statuses):
        return "not implemented" if "not implemented" in statuses or stub_left else "blocked"
    for s in ("timed out", "crashed"):
        if s in statuses:
            return s
    return "partly passed" if score else "failed"


def build_tree(work: Path, grader: Path, files: Dict[str, bytes]) -> Path:
    """work/tree: the pristine student tree, the hidden tests, the submitted files."""
    tree = work / "tree"
    shutil.copytree(grader / "student", tree)
    shutil.copytree(grader / "hidden", tree, dirs_exist_ok=True)
    for rel, data in files.items():
        (tree / rel).write_bytes(data)
    return tree


def grade_one(sub: Path, grader: Path, manifest: dict, chosen: List[str],
              timeout: float, jobs: int = 1) -> dict:
    started = time.monotonic()
    edited = _edited(manifest, chosen)
    files, notes = read_submission(sub, edited)
    work = Path(tempfile.mkdtemp(prefix="tinynets-grade-"))
    try:
        tree = build_tree(work, grader, files)
        cfg = {"deny": _deny_roots(grader, sub), "deny_always": _solution_packages(),
               "edited": edited}
        known = {t for a in manifest["assignments"].values() for t in a["tasks"]}
        todo = [(tag, task) for a in chosen
                for tag, task in manifest["assignments"][a]["tasks"].items()]
        for tag, _ in todo:
            (work / tag).mkdir()
        with ThreadPoolExecutor(max(1, jobs)) as pool:      # each task is its own process
            results = dict(zip([tag for tag, _ in todo], pool.map(
                lambda tt: grade_task(tree, work / tt[0], tt[0], tt[1], cfg, timeout, known),
                todo)))
        report = []
        for a in chosen:
            spec = manifest["assignments"][a]
            tasks = []
            for tag, task in spec["tasks"].items():
                got = results[tag]
                tests = []
                for test, points in task["tests"].items():
                    r = got.get(test, {"status": "failed", "message": "no result"})
                    tests.append({"id": test, "name": test.split("::")[-1],
                                  "visibility": "hidden" if is_hidden(test) else "visible",
                                  "status": r["status"], "message": r["message"],
                                  "score": points if r["status"] == "passed" else 0,
                                  "max_score": points})
                score = sum(t["score"] for t in tests)
                tasks.append({"tag": tag, "title": task["title"],
                              "functions": task["functions"], "score": score,
                              "max_score": sum(task["tests"].values()),
                              "status": _summary([t["status"] for t in tests], score,
                                                 _stub_left(tree, tag, task["file"])),
                              "tests": tests})
            report.append({"name": a, "title": spec["title"], "tasks": tasks,
                           "score": sum(t["score"] for t in tasks),
                           "max_score": sum(t["max_score"] for t in tasks)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"submission": sub.name, "submission_commit": submission_commit(sub),
            "source_commit": manifest["source_commit"],
            "score": sum(a["score"] for a in report),
            "max_score": sum(a["max_score"] for a in report),
            "assignments": report, "notes": notes,
            "execution_time": round(time.monotonic() - started, 1)}


def run(args: argparse.Namespace) -> int:
    grader, sub = Path(args.grader).resolve(), Path(args.submission).resolve()
    try:
        manifest = load_bundle(grader)
        chosen = select(manifest["assignments"], args.assignments)
    except (BundleError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    edited = _edited(manifest, chosen)
    if not sub.is_dir():
        print(f"error: {sub} is not a folder", file=sys.stderr)
        return 2
    if is_submission(sub, edited):
        result = grade_one(sub, grader, manifest, chosen, args.timeout, args.jobs)
        if args.format == "text":
            text = text_report(result)
        else:
            data = gradescope_report(result) if args.format == "gradescope" else result
            text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    else:
        subs = sorted(p for p in sub.iterdir() if p.is_dir() and not p.is_symlink()
                      and is_submission(p, edited))
        if not subs:
            print(f"error: {sub} has none of {edited}, nor sub-folders that do", file=sys.stderr)
            return 2
        rows = []
        for s in subs:
            rows.append(grade_one(s, grader, manifest, chosen, args.timeout, args.jobs))
            print(f"{s.name}: {rows[-1]['score']}/{rows[-1]['max_score']}", file=sys.stderr)
        text = gradebook(rows) if args.format == "text" else json.dumps(
            rows if args.format == "json" else [gradescope_report(r) for r in rows],
            indent=1, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0

