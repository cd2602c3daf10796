"""The grader's reports of one result (``grade.grade_one``): text for the teacher, Gradescope's
``results.json``, and a CSV gradebook of many. Points are integers throughout."""
from __future__ import annotations

import csv
import io
from typing import List


def text_report(r: dict) -> str:
    commit = f" at commit {r['submission_commit'][:12]}" if r.get("submission_commit") else ""
    lines = [f"submission {r['submission']}{commit}: {r['score']}/{r['max_score']} points "
             f"(graded in {r['execution_time']:.1f} s)"]
    lines += [f"  note: {n}" for n in r["notes"]]
    for a in r["assignments"]:
        lines.append(f"{a['name']}  {a['title']}: {a['score']}/{a['max_score']}")
        for t in a["tasks"]:
            lines.append(f"  {t['tag']:<24} {t['score']:>3}/{t['max_score']:<3} {t['status']}")
            for test in t["tests"]:
                hidden = " (hidden)" if test["visibility"] == "hidden" else ""
                lines.append(f"    {test['status']:<15} {test['score']:>2}/{test['max_score']:<2} "
                             f"{test['name']}{hidden}")
                if test["message"] and test["status"] != "not implemented":
                    lines.append(f"        {test['message']}")
    return "\n".join(lines) + "\n"


def gradescope_report(r: dict) -> dict:
    """Gradescope's results.json: hidden tests are shown after the due date."""
    tests = []
    for a in r["assignments"]:
        for t in a["tasks"]:
            for test in t["tests"]:
                tests.append({
                    "name": f"{t['tag']}: {test['name']}", "score": test["score"],
                    "max_score": test["max_score"],
                    "status": "passed" if test["status"] == "passed" else "failed",
                    "output": test["status"] + (f": {test['message']}" if test["message"]
                                                else ""),
                    "tags": [a["name"], t["tag"]],
                    "visibility": "after_due_date" if test["visibility"] == "hidden"
                    else "visible"})
    summary = "; ".join(f"{a['name']} {a['score']}/{a['max_score']}" for a in r["assignments"])
    output = "\n".join([summary] + [f"note: {n}" for n in r["notes"]])
    return {"score": r["score"], "execution_time": r["execution_time"], "output": output,
            "tests": tests}


def gradebook(rows: List[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    first = rows[0]
    cols = [(a["name"], [t["tag"] for t in a["tasks"]]) for a in first["assignments"]]
    w.writerow(["submission"] + [c for name, tags in cols for c in tags + [name]]
               + ["total", "max", "notes"])
    for r in rows:
        cells = []
        for a in r["assignments"]:
            cells += [t["score"] for t in a["tasks"]] + [a["score"]]
        w.writerow([r["submission"]] + cells + [r["score"], r["max_score"], " | ".join(r["notes"])])
    return buf.getvalue()
