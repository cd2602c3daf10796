"""Every lesson notebook runs top to bottom without an error.

Each ``lessons/NN_*.ipynb`` is executed in a fresh ``python3`` kernel. Its working
directory is ``lessons/`` inside a temporary copy of the layout, whose ``tests`` is
the repository's (lessons read ``../tests/fixtures``) and whose ``assets`` holds links to
the committed data files (lessons read ``../assets/reference_counts.json``) but none of the
lesson figures, so the figures a test run draws do not overwrite the committed ones. The executed
copy is thrown away: the source notebook is never rewritten.
"""
from __future__ import annotations

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

LESSONS = pathlib.Path(__file__).resolve().parent.parent / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 600          # seconds per cell; a lesson is meant to take under two minutes


@pytest.mark.lesson
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_lesson_runs(path: pathlib.Path, tmp_path: pathlib.Path):
    nb = nbformat.read(path, as_version=4)
    (tmp_path / "lessons").mkdir()
    (tmp_path / "assets").mkdir()
    data = [p for p in (LESSONS.parent / "assets").iterdir() if p.suffix in (".json", ".txt")]
    for p in data:                              # data the lessons read; figures are drawn afresh
        (tmp_path / "assets" / p.name).symlink_to(p)
    (tmp_path / "tests").symlink_to(LESSONS.parent / "tests")
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path / "lessons")}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell raised an error\n{err}", pytrace=False)
    drawn = {p.name for p in (tmp_path / "assets").iterdir()} - {p.name for p in data}
    committed = {p.name for p in (LESSONS.parent / "assets").glob(f"lesson{path.name[:2]}_*")}
    assert drawn == committed, f"{path.name} draws {sorted(drawn)}, assets/ has {sorted(committed)}"


@pytest.mark.lesson
def test_reference_counts_are_the_tests_table():
    """The lessons' copy of the reference counts (assets/) is the table the model tests use."""
    import json
    shipped = LESSONS.parent / "assets" / "reference_counts.json"
    fixture = LESSONS.parent / "tests" / "fixtures" / "targets.json"
    assert json.loads(shipped.read_text()) == json.loads(fixture.read_text())
