"""Export questions as a CSV file that Anki imports (File > Import): front, back, tags."""
from __future__ import annotations

import csv
import html
import os
import tempfile
from pathlib import Path

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
    fd, tmp = tempfile.mkstemp(prefix=".anki-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            # Anki (2.1.55+) reads these header lines; older versions ask in the import dialog.
            handle.write("#separator:Comma\n#html:true\n#tags column:3\n")
            writer = csv.writer(handle)
            for q in questions:
                writer.writerow([html.escape(q.question), _back(q),
                                 f"transformer-workbook {q.topic}"])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
