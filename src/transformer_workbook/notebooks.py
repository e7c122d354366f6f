"""Read notebook files defensively and find their graded cells.

Used by ``workbook check`` on a student's notebook and by the grader on every submission, so a
file that is not a notebook gets the same clear sentence everywhere.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class UnreadableNotebook(Exception):
    """The file cannot be used as a notebook (not JSON, wrong format, far too large...)."""


def nbgrader_meta(cell: dict) -> dict:
    """The cell's nbgrader metadata ({} when there is none or it is not a mapping)."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    found = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return found if isinstance(found, dict) else {}


def grade_id(cell: dict) -> str | None:
    """The id of an exercise, test or locked cell; None for an ordinary cell."""
    meta = nbgrader_meta(cell)
    marked = meta.get("grade") or meta.get("solution") or meta.get("locked")
    return meta.get("grade_id") if marked else None


def is_graded(cell: dict) -> bool:
    """A test cell that earns points."""
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution(cell: dict) -> bool:
    """An exercise cell the student writes."""
    return bool(nbgrader_meta(cell).get("solution"))


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else str(text)


def printed(cell: dict) -> str:
    """Everything a code cell printed (stdout and stderr), joined: a kernel may send one print
    in several stream messages ("processes stopped:" then " 0")."""
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")


def plain(text: str) -> str:
    """Terminal colour codes removed (tracebacks carry them)."""
    return ANSI.sub("", text)


def read_notebook(path: Path) -> dict:
    """Parse a notebook file or raise ``UnreadableNotebook`` with a sentence that says why."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableNotebook(f"{path} does not exist or is not a file")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise UnreadableNotebook(
            f"{path.name} is {size / 2**20:.0f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB "
            "limit; clear the outputs (Kernel > Restart & Clear Output) and resubmit"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UnreadableNotebook(f"{path.name} is not text (is it really a .ipynb file?)") from None
    except json.JSONDecodeError as err:
        raise UnreadableNotebook(
            f"{path.name} is not notebook JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    except RecursionError:
        raise UnreadableNotebook(f"{path.name} nests its JSON too deeply to be a notebook") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UnreadableNotebook(f"{path.name} is JSON but not a notebook (no list of cells)")
    if data.get("nbformat") != 4:
        raise UnreadableNotebook(
            f"{path.name} has nbformat version {data.get('nbformat')!r}; the course uses "
            "version 4. Re-save it from Jupyter"
        )
    problem = _shape_problem(data)
    if problem:
        raise UnreadableNotebook(f"{path.name}: {problem}; re-save it from Jupyter")
    return data


def _shape_problem(data: dict) -> str | None:
    """What in a notebook's structure is not as nbformat 4 writes it, where the course's tools
    read it (metadata, kernelspec, sources, nbgrader's marks), or None."""
    if not isinstance(data.get("metadata", {}), dict):
        return "the notebook's metadata is not a JSON object"
    if not isinstance(data.get("metadata", {}).get("kernelspec", {}), dict):
        return "the notebook's kernelspec is not a JSON object"
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return f"cell {index} is not a valid notebook cell"
        text = cell.get("source", "")
        if not (isinstance(text, str) or isinstance(text, list)
                and all(isinstance(line, str) for line in text)):
            return f"cell {index}'s source is not text"
        meta = cell.get("metadata", {})
        if not isinstance(meta, dict) or not isinstance(meta.get("nbgrader", {}), dict):
            return f"cell {index}'s metadata is not a JSON object"
        mark = meta.get("nbgrader", {}).get("grade_id")
        if mark is not None and not isinstance(mark, str):
            return f"cell {index}'s nbgrader grade_id is not a string"
        if not isinstance(cell.get("outputs", []), list):
            return f"cell {index}'s outputs are not a list"
    return None
