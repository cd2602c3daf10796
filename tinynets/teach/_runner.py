"""Runs one task's tests on a built tree, in its own ``python -I -B`` process.

``python -I -B _runner.py CONFIG.json``. Run by path, so that nothing but the tree puts a
``tinynets`` on ``sys.path``: ``-I`` drops the current directory, PYTHONPATH and the user's
site-packages. CONFIG names the tree, the results file (one JSON object a line, written as
each test finishes, so a hang or a crash loses only the test it happened in), the test ids,
the graded functions and the paths graded code may not open.

Records: ``{"event": "start"|"done", "id": ...}``, ``"collect_error"``, ``"foreign"``
(a graded function defined outside its file in the tree) and ``"fatal"``.
"""
import importlib
import inspect
import json
import os
import re
import sys

import pytest

TAG = re.compile(r"^(A\d+\.[A-Za-z_]\w*): ")
SPAWN = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
         "os.forkpty", "pty.spawn")


def _deny(roots, always=()):
    """Audit hook: graded code may not read the solution library, the grader bundle or the
    submission folder, nor start processes (not a sandbox: see the teachers' guide). The
    Python environment stays readable even inside a denied folder (a venv in the checkout
    being graded), except the ``always`` roots: a solution tinynets installed there."""
    roots = [os.path.realpath(r) for r in roots]
    always = [os.path.realpath(r) for r in always]
    env = sorted({os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix)})

    def under(p, dirs):
        return any(p == r or p.startswith(r + os.sep) for r in dirs)

    def denied(path):
        p = os.path.realpath(os.fsdecode(path))
        return under(p, always) or (under(p, roots) and not under(p, env))

    def hook(event, args):
        if event in ("open", "os.listdir", "os.scandir", "glob.glob") and args and \
                isinstance(args[0], (str, bytes, os.PathLike)) and denied(args[0]):
            raise PermissionError(f"the grader does not let graded code read {os.fsdecode(args[0])}")
        if event in SPAWN:
            raise PermissionError("the grader does not let graded code start processes")
    sys.addaudithook(hook)


def _message(excinfo, tree, edited):
    """(kind, text, where): the exception's message, and the deepest line of it in an
    edited file (for visible tests)."""
    e = excinfo.value
    text = str(e) if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}"
    text = text.replace(tree + os.sep, "").replace(tree, "<tree>")[:2000]
    kind = None
    if isinstance(e, NotImplementedError) and TAG.match(str(e)):
        kind = TAG.match(str(e)).group(1)
    where = None
    for entry in excinfo.traceback:
        path = os.path.realpath(str(entry.path))
        rel = os.path.relpath(path, tree)
        if rel in edited:
            where = f"{rel}:{entry.lineno + 1}"
    return kind, text, where


class Recorder:
    def __init__(self, cfg):
        self.cfg = cfg
        self.out = open(cfg["results"], "a", encoding="utf-8")
        self.failure = {}

    def write(self, **record):
        self.out.write(json.dumps(record, sort_keys=True) + "\n")
        self.out.flush()

    def pytest_collectreport(self, report):
        if report.failed:
            text = str(report.longrepr).replace(self.cfg["tree"] + os.sep, "")
            lines = [ln for ln in text.splitlines() if ln.startswith("E ")] or text.splitlines()
            self.write(event="collect_error", where=report.nodeid,
                       message="\n".join(ln[1:].strip() if ln.startswith("E ") else ln
                                         for ln in lines[-6:]))

    def pytest_collection_finish(self, session):
        tree = self.cfg["tree"]
        for f in self.cfg["functions"]:
            try:
                obj = importlib.import_module(f["module"])
                for part in f["name"].split("."):          # "SqueezeExcitation.forward"
                    obj = getattr(obj, part)
                src = os.path.realpath(inspect.getsourcefile(inspect.unwrap(obj)))
            except Exception as err:        # noqa: BLE001 (anything the student's module does)
                src = f"<not found: {type(err).__name__}: {err}>"
            if src != os.path.realpath(os.path.join(tree, f["file"])):
                shown = os.path.relpath(src, tree) if src.startswith(tree + os.sep) else src
                self.write(event="foreign", function=f["name"],
                           message=f"{f['name']} must be defined in {f['file']} of the "
                                   f"submission; it comes from {shown}")

    def pytest_runtest_logstart(self, nodeid, location):
        self.write(event="start", id=nodeid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.failed and item.nodeid not in self.failure and call.excinfo is not None:
            self.failure[item.nodeid] = _message(call.excinfo, self.cfg["tree"],
                                                 self.cfg["edited"])
        if report.skipped and item.nodeid not in self.failure:
            self.failure[item.nodeid] = (None, "skipped: a graded test may not be skipped", None)

    def pytest_runtest_logfinish(self, nodeid, location):
        if nodeid in self.failure:
            kind, text, where = self.failure[nodeid]
            self.write(event="done", id=nodeid, passed=False, tag=kind, message=text, where=where)
        else:
            self.write(event="done", id=nodeid, passed=True)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    tree = cfg["tree"] = os.path.realpath(cfg["tree"])
    sys.path.insert(0, tree)
    os.chdir(tree)
    _deny(cfg["deny"], cfg.get("deny_always", ()))
    recorder = Recorder(cfg)
    try:
        import tinynets
        where = os.path.realpath(tinynets.__file__)
        if not where.startswith(tree + os.sep):
            raise ImportError(f"tinynets was imported from {where}, not from the tree")
    except Exception as err:                 # noqa: BLE001
        recorder.write(event="fatal", message=f"importing tinynets failed: "
                                              f"{type(err).__name__}: {err}".replace(tree, "<tree>"))
        return 0
    return pytest.main(["-q", "-p", "no:cacheprovider", "--assert=plain", "--no-header",
                        "-o", "addopts=--strict-markers", "--rootdir", tree, *cfg["tests"]],
                       plugins=[recorder])


if __name__ == "__main__":
    sys.exit(main())
