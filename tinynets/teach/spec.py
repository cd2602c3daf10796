"""The assignments' definitions, one file each (``assignments/A1.json``), checked when read.

Per assignment: ``title``, ``lesson``, ``edit`` (the files a student hands in) and
``tasks``; per task (``A1.<name>``): ``title``, ``file``, ``functions``,
``prerequisites`` (earlier tasks of the same assignment), optional ``lesson`` (when the
assignment spans lessons; a task in a notebook is in that lesson) and ``tests``, a test id
(``tests/assignments/A1/visible/test_x.py::test_y``) -> points, a positive integer.
A test under ``hidden/`` never ships to students. Optional ``public``: file -> why it may
show lines of a solution (the library's fast path computing the same thing).
"""
from __future__ import annotations

import json
import re
from typing import Dict, List, Optional

TEST_ID = re.compile(r"^tests/assignments/(A\d+)/(visible|hidden)/test_\w+\.py::test_\w+$")
SPEC_DIR = "tinynets/teach/assignments/"
SPEC_FILE = re.compile(r"^tinynets/teach/assignments/(A\d+)\.json$")


def load_specs(files: Dict[str, bytes]) -> dict:
    """Every ``assignments/A<n>.json`` among ``files`` ({path: bytes}), in the order of n."""
    found = {m.group(1): data for path, data in files.items() if (m := SPEC_FILE.match(path))}
    if not found:
        raise ValueError(f"no assignment is defined: {SPEC_DIR}A<n>.json")
    return load_spec({a: json.loads(found[a].decode("utf-8"))
                      for a in sorted(found, key=lambda a: int(a[1:]))})


def load_spec(spec: dict) -> dict:
    """Check the assignments {"A1": {...}, ...} and return them."""
    for a, s in spec.items():
        for key in ("title", "lesson", "edit", "tasks"):
            if key not in s:
                raise ValueError(f"assignment {a}: no {key!r}")
        seen: List[str] = []
        for tag, t in s["tasks"].items():
            if not tag.startswith(a + "."):
                raise ValueError(f"{a}: task {tag!r} must be named {a}.<name>")
            if t["file"] not in s["edit"]:
                raise ValueError(f"{tag}: file {t['file']} is not among {a}'s edited files")
            for p in t["prerequisites"]:
                if p not in seen:
                    raise ValueError(f"{tag}: prerequisite {p!r} is not an earlier task of {a}")
            for test, points in t["tests"].items():
                m = TEST_ID.match(test)
                if not m or m.group(1) != a:
                    raise ValueError(f"{tag}: test id {test!r} is not "
                                     f"tests/assignments/{a}/(visible|hidden)/test_*.py::test_*")
                if type(points) is not int or points <= 0:
                    raise ValueError(f"{tag}: {test} has points {points!r}; a positive integer")
            seen.append(tag)
    return spec


def select(spec: dict, names: Optional[str]) -> List[str]:
    """The assignments named in ``names`` ("A1,A3"; None: all), in the spec's order."""
    if not names:
        return list(spec)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in spec]
    if unknown:
        raise ValueError(f"unknown assignment(s) {unknown}; defined: {list(spec)}")
    return [a for a in spec if a in chosen]


LESSON_FILE = re.compile(r"^lessons/(\d+)_")


def stub_message(spec: dict, tag: str) -> str:
    """The stub's message: the task's lesson (its own ``lesson``, the lesson notebook it is
    in, or the assignment's)."""
    a = spec[tag.split(".")[0]]
    task = a["tasks"].get(tag, {})
    m = LESSON_FILE.match(task.get("file", ""))
    return f"{tag}: see lesson {task.get('lesson') or (m and m.group(1)) or a['lesson']}"


def is_hidden(test_id: str) -> bool:
    return "/hidden/" in test_id.split("::")[0]


def check_tests_exist(spec: dict, chosen: List[str], files: Dict[str, bytes]) -> None:
    """Every test id names a test function that exists, and every test function in an
    assignment's test files has points."""
    listed = {test for a in chosen for t in spec[a]["tasks"].values() for test in t["tests"]}
    present = set()
    for path, data in files.items():
        if any(path.startswith(f"tests/assignments/{a}/") for a in chosen) and \
                path.rsplit("/", 1)[-1].startswith("test_") and path.endswith(".py"):
            present |= {f"{path}::{name}" for name in
                        re.findall(r"^def (test_\w+)", data.decode("utf-8"), re.M)}
    if listed - present:
        raise ValueError(f"tests in the spec that do not exist: {sorted(listed - present)}")
    if present - listed:
        raise ValueError(f"tests without points in the spec: {sorted(present - listed)}")
