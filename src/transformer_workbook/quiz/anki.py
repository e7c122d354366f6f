"""Export questions as a CSV file that Anki imports (File > Import): front, back, tags."""
from __future__ import annotations

import csv
import html
import io
from pathlib import Path

from ..storage import write_atomically
from .bank import Question


def _back(q: Question) -> str:
    points = "".join(f"<li>{html.escape(p)}</li>" for p in q.key_points)
    return f"{html.escape(q.answer)}<br><br><b>Key points</b><ul>{points}</ul>"


def export_anki(path, questions: list[Question]) -> Path:
    """Write one note per question; returns the path. Written atomically (temp file + rename)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "transformer-workbook-quiz.csv"
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {path.parent} does not exist; create it or pick "
                                "another path for the Anki export")
    buffer = io.StringIO(newline="")
    # Anki (2.1.55+) reads these header lines; older versions ask in the import dialog.
    buffer.write("#separator:Comma\n#html:true\n#tags column:3\n")
    writer = csv.writer(buffer)
    for q in questions:
        writer.writerow([html.escape(q.question), _back(q), f"transformer-workbook {q.topic}"])
    write_atomically(path, buffer.getvalue())
    return path
