"""Solution regions and the student version of a file.

A region sits inside a function body (after its docstring) or a notebook code cell::

    ### BEGIN SOLUTION A1.conv_forward_loops
    ...the reference code...
    ### END SOLUTION

The markers are comments, so the library with every region in place is the full library.
In the student version a region of a chosen assignment becomes, at the region's indentation,
``raise NotImplementedError("A1.conv_forward_loops: see lesson 01")`` (a notebook cell also
gets a ``# YOUR CODE HERE`` line above it); a region of an assignment not handed out keeps
its code and loses only its two marker lines.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Dict, List, Tuple

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION (?P<tag>A\d+\.[A-Za-z_]\w*)[ \t]*$")
END = re.compile(r"^(?P<indent>[ \t]*)### END SOLUTION[ \t]*$")
# Anything that looks like a marker, well-formed or not: a leak in a student file.
ANY_MARKER = re.compile(r"#+[ \t]*(BEGIN|END)[ \t]+SOLUTION", re.IGNORECASE)


class MarkerError(ValueError):
    """A malformed region: names the file (and cell) and the line."""


@dataclass(frozen=True)
class Region:
    tag: str        # "A1.conv_forward_loops"
    begin: int      # 0-based line index of the BEGIN marker
    end: int        # 0-based line index of the END marker
    indent: str     # the BEGIN marker's leading whitespace

    @property
    def assignment(self) -> str:
        return self.tag.split(".", 1)[0]


def find_regions(text: str, where: str = "<text>") -> List[Region]:
    """Every region in ``text``, in order. Raises MarkerError on a nested, unclosed or
    unopened region, a malformed marker line, or code indented less than its marker."""
    regions: List[Region] = []
    open_: Tuple[int, str, str] = None  # (line, indent, tag)
    for i, line in enumerate(text.splitlines()):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_:
                raise MarkerError(f"{where}:{i + 1}: BEGIN SOLUTION inside the region opened "
                                  f"at line {open_[0] + 1} ({open_[2]}); regions do not nest")
            open_ = (i, begin["indent"], begin["tag"])
        elif end:
            if not open_:
                raise MarkerError(f"{where}:{i + 1}: END SOLUTION without a BEGIN SOLUTION")
            if end["indent"] != open_[1]:
                raise MarkerError(f"{where}:{i + 1}: END SOLUTION is not indented like its "
                                  f"BEGIN SOLUTION at line {open_[0] + 1}")
            if i == open_[0] + 1:
                raise MarkerError(f"{where}:{i + 1}: region {open_[2]} is empty")
            regions.append(Region(open_[2], open_[0], i, open_[1]))
            open_ = None
        elif ANY_MARKER.search(line):
            raise MarkerError(f"{where}:{i + 1}: malformed solution marker {line.strip()!r}; "
                              "expected '### BEGIN SOLUTION A<n>.<task>' or '### END SOLUTION'")
        elif open_ and line.strip() and not line.startswith(open_[1]):
            raise MarkerError(f"{where}:{i + 1}: line is indented less than the BEGIN SOLUTION "
                              f"marker of {open_[2]} at line {open_[0] + 1}")
    if open_:
        raise MarkerError(f"{where}:{open_[0] + 1}: BEGIN SOLUTION {open_[2]} is never closed")
    return regions


def student_text(text: str, stubs: Dict[str, str], where: str = "<text>",
                 cell: bool = False) -> str:
    """The student version of ``text``. ``stubs`` maps each handed-out tag to the message
    of its NotImplementedError; regions whose assignment is not handed out keep their code.
    ``cell``: a notebook cell, which also gets a ``# YOUR CODE HERE`` line."""
    regions = find_regions(text, where)
    lines = text.splitlines(keepends=True)
    out: List[str] = []
    pos = 0
    for r in regions:
        out.extend(lines[pos:r.begin])
        if r.tag in stubs:
            if cell:
                out.append(f"{r.indent}# YOUR CODE HERE\n")
            out.append(f"{r.indent}raise NotImplementedError({json.dumps(stubs[r.tag])})\n")
        elif r.assignment in {t.split('.', 1)[0] for t in stubs}:
            raise MarkerError(f"{where}:{r.begin + 1}: {r.tag} is not a task of "
                              f"assignment {r.assignment}")
        else:
            out.extend(lines[r.begin + 1:r.end])
        pos = r.end + 1
    out.extend(lines[pos:])
    result = "".join(out)
    if text.endswith("\n") or not result:
        return result
    return result.rstrip("\n")          # a cell's last line has no newline


def student_python(text: str, stubs: Dict[str, str], where: str) -> str:
    """Student version of a ``.py`` file; a region must be inside a function body."""
    for r in find_regions(text, where):
        if not r.indent:
            raise MarkerError(f"{where}:{r.begin + 1}: region {r.tag} is at module level; "
                              "put it inside a function body, after the docstring")
    result = student_text(text, stubs, where)
    compile(result, where, "exec")      # a stub that does not parse is a bug in the markers
    return result


def cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def notebook_regions(text: str, where: str) -> List[Tuple[int, Region]]:
    """(cell index, region) of every region in a notebook's code cells."""
    found = []
    for k, cell in enumerate(json.loads(text).get("cells", [])):
        src = cell_source(cell)
        regions = find_regions(src, f"{where} cell {k}")
        if regions and cell.get("cell_type") != "code":
            raise MarkerError(f"{where} cell {k}: solution markers in a {cell.get('cell_type')} "
                              "cell; only code cells have regions")
        found.extend((k, r) for r in regions)
    return found


def student_notebook(text: str, stubs: Dict[str, str], where: str) -> str:
    """Student version of a notebook: regions stubbed, and every output and execution
    count removed (outputs show what the solution printed)."""
    notebook_regions(text, where)                      # validates every cell first
    nb = json.loads(text)
    for k, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":
            cell["source"] = student_text(cell_source(cell), stubs, f"{where} cell {k}",
                                          cell=True)
            cell["outputs"] = []
            cell["execution_count"] = None
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
