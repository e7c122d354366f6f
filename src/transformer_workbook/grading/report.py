"""The gradebook outputs: grades.csv, cells.csv, one feedback HTML per student, a summary table."""
from __future__ import annotations

import csv
import html
import io
from pathlib import Path

from .results import StudentResult, write_atomically


def _reason_text(result: StudentResult) -> str:
    return "; ".join(result.reasons)


def write_grades_csv(results: list[StudentResult], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "assignment", "score", "max_score", "percent", "status", "reason",
                     "notes"])
    for r in results:
        percent = 100.0 * r.score / r.max_score if r.max_score else 0.0
        writer.writerow([r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}",
                         f"{percent:.1f}", r.status, _reason_text(r), "; ".join(r.notes)])
    write_atomically(path, buffer.getvalue())


def write_cells_csv(results: list[StudentResult], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "assignment", "notebook", "grade_id", "points", "max_points",
                     "message"])
    for r in results:
        for c in r.cells:
            writer.writerow([r.student, r.assignment, c.notebook, c.grade_id, f"{c.points:g}",
                             f"{c.max_points:g}", c.message])
    write_atomically(path, buffer.getvalue())


def feedback_html(student: str, results: list[StudentResult]) -> str:
    """Per-test results with their messages. Test source is never included."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Feedback for {esc(student)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
        ".pass{color:#1a7f37}.fail{color:#cf222e}code{white-space:pre-wrap}</style></head><body>",
        f"<h1>Feedback for {esc(student)}</h1>",
    ]
    for r in results:
        parts.append(f"<h2>{esc(r.assignment)}: {r.score:g} / {r.max_score:g}</h2>")
        for reason in r.reasons:
            parts.append(f"<p class='fail'>{esc(reason)}</p>")
        for note in r.notes:
            parts.append(f"<p>Note: {esc(note)}</p>")
        parts.append("<table><tr><th>test</th><th>points</th><th>result</th></tr>")
        for c in r.cells:
            kind = " (hidden)" if c.hidden else ""
            verdict = ("<span class='pass'>passed</span>" if c.passed else
                       f"<span class='fail'>failed</span><br><code>{esc(c.message)}</code>")
            parts.append(f"<tr><td>{esc(c.grade_id)}{kind}</td>"
                         f"<td>{c.points:g} / {c.max_points:g}</td><td>{verdict}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_feedback(results: list[StudentResult], folder: Path) -> None:
    by_student: dict[str, list[StudentResult]] = {}
    for r in results:
        by_student.setdefault(r.student, []).append(r)
    for student, own in by_student.items():
        write_atomically(folder / f"{student}.html", feedback_html(student, own))


def summary_table(results: list[StudentResult]) -> str:
    rows = [("student", "assignment", "score", "status / reason")]
    for r in results:
        reason = _reason_text(r)
        if len(reason) > 90:
            reason = reason[:87] + "..."
        rows.append((r.student, r.assignment, f"{r.score:g}/{r.max_score:g}",
                     r.status + (f": {reason}" if reason else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths))
                     + "  " + row[3])
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 15)
    return "\n".join(lines)
