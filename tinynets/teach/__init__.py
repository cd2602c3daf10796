"""Classroom assignments from the library's own source: stubs, hidden tests, a grader.

* ``markers``: the solution regions (``### BEGIN SOLUTION A1.task`` ... ``### END
  SOLUTION``) in ``.py`` files and notebook code cells, and the student version of each;
* ``assignments/A<n>.json``: what each assignment asks for (tasks, files, functions, tests,
  points, prerequisites);
* ``assign``: ``python -m tinynets assign OUT`` writes ``OUT/student`` and ``OUT/grader``;
* ``grade``: ``python -m tinynets grade SUBMISSION --grader OUT/grader``; ``report``: its
  text, Gradescope and CSV reports.

This package uses only the standard library: the grader bundle carries a copy of it, so
that Gradescope (or any machine) can grade without the solution library installed.
It is not shipped to students.
"""
