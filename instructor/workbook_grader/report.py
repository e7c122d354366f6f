"""Stage 8, once per class: grades.csv, cells.csv, one feedback page per student, a summary.

Everything a student controls (their id, messages raised by their code, reasons quoting it)
is made safe before it is written: control characters are removed everywhere, spreadsheet
formulas are neutralised in the CSV files, and the feedback page is HTML-escaped by Jinja2 and
forbids scripts (Content-Security-Policy). Test source is never included.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from transformer_workbook.storage import write_atomically

from .results import StudentResult

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean(text: str) -> str:
    """Without control characters (terminal escapes, bidirectional overrides, NULs)."""
    return CONTROL.sub("", str(text))


def cell_text(text: str) -> str:
    """A CSV field a spreadsheet shows as text, never evaluates as a formula."""
    text = clean(text)
    return "'" + text if text.startswith(FORMULA_START) else text


def _reason_text(result: StudentResult) -> str:
    return "; ".join(result.reasons)


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([cell_text(v) if isinstance(v, str) else v for v in row])
    return buffer.getvalue()


def write_grades_csv(results: list[StudentResult], path: Path) -> None:
    rows = [["student", "assignment", "score", "max_score", "percent", "status", "reason", "notes"]]
    for r in results:
        percent = 100.0 * r.score / r.max_score if r.max_score else 0.0
        rows.append([r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}",
                     f"{percent:.1f}", r.status, _reason_text(r), "; ".join(r.notes)])
    write_atomically(path, _csv(rows))


def write_cells_csv(results: list[StudentResult], path: Path) -> None:
    rows = [["student", "assignment", "notebook", "grade_id", "points", "max_points", "message"]]
    for r in results:
        for c in r.cells:
            rows.append([r.student, r.assignment, c.notebook, c.grade_id, f"{c.points:g}",
                         f"{c.max_points:g}", c.message])
    write_atomically(path, _csv(rows))


def _template():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("workbook_grader", "templates"),
                      autoescape=select_autoescape(default=True))
    env.finalize = lambda value: clean(value) if isinstance(value, str) else value
    return env.get_template("feedback.html.j2")


def feedback_html(student: str, results: list[StudentResult]) -> str:
    """Per-test results with their messages. Test source is never included."""
    return _template().render(student=student, results=results)


def write_feedback(results: list[StudentResult], folder: Path) -> None:
    by_student: dict[str, list[StudentResult]] = {}
    for r in results:
        by_student.setdefault(r.student, []).append(r)
    for student, own in by_student.items():
        write_atomically(folder / f"{student}.html", feedback_html(student, own))


def write_reports(results: list[StudentResult], out: Path) -> None:
    write_grades_csv(results, out / "grades.csv")
    write_cells_csv(results, out / "cells.csv")
    write_feedback(results, out / "feedback")


def summary_table(results: list[StudentResult]) -> str:
    rows = [("student", "assignment", "score", "status / reason")]
    for r in results:
        reason = clean(_reason_text(r))
        if len(reason) > 90:
            reason = reason[:87] + "..."
        rows.append((clean(r.student), r.assignment, f"{r.score:g}/{r.max_score:g}",
                     r.status + (f": {reason}" if reason else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths))
                     + "  " + row[3])
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 15)
    return "\n".join(lines)
