"""Every lesson notebook runs top to bottom without an error.

Each ``lessons/NN_*.ipynb`` is executed in a fresh ``python3`` kernel with the
lessons folder as its working directory (so figures land in ``../assets``).
The executed copy is thrown away: the source notebook is never rewritten.
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
def test_lesson_runs(path: pathlib.Path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(LESSONS)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell raised an error\n{err}", pytrace=False)
