"""Read a submitted notebook and compare its grade cells with the released master.

Everything here is static: nothing in the submission runs. Each problem becomes a sentence
that names the file and what is wrong, and, where it concerns a graded cell, that cell's id
so the grader can give it zero.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
EXPECTED_KERNEL = "python3"


class UnreadableNotebook(Exception):
    """The file cannot be graded at all (not JSON, wrong format, far too large...)."""


@dataclass
class Inspection:
    path: Path
    notebook: dict
    problems: list[str] = field(default_factory=list)   # sentences for the grade table
    zeroed: dict[str, str] = field(default_factory=dict)  # grade_id -> reason it scores 0
    notes: list[str] = field(default_factory=list)       # harmless, repaired by the grader


def grade_id(cell: dict) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if meta.get("grade") or meta.get("solution") or meta.get("locked") else None


def is_graded(cell: dict) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def read_notebook(path: Path) -> dict:
    """Parse a notebook file or raise ``UnreadableNotebook`` with a sentence that says why."""
    path = Path(path)
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
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UnreadableNotebook(f"{path.name} is JSON but not a notebook (no list of cells)")
    if data.get("nbformat") != 4:
        raise UnreadableNotebook(
            f"{path.name} has nbformat version {data.get('nbformat')!r}; the course uses "
            "version 4. Re-save it from Jupyter"
        )
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise UnreadableNotebook(f"{path.name}: cell {index} is not a valid notebook cell")
    return data


def locked_checksums(released: Path) -> dict[str, str]:
    """``grade_id -> checksum`` of every locked cell, as released to students."""
    notebook = read_notebook(released)
    return {grade_id(c): cell_checksum(c) for c in notebook["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("locked") and grade_id(c)}


def cell_checksum(cell: dict) -> str:
    """nbgrader's own checksum (source and grading metadata) of one cell."""
    import nbformat
    from nbgrader.utils import compute_checksum

    source = cell.get("source", "")
    cell = {**cell, "source": "".join(source) if isinstance(source, list) else source}
    return compute_checksum(nbformat.from_dict(cell))


def inspect_submission(path: Path, master_grade_ids: dict[str, float],
                       released_locked: dict[str, str] | None = None) -> Inspection:
    """Check a submission against the master's grade cells (``grade_id -> points``) and,
    when given, the checksums of the locked cells as released."""
    notebook = read_notebook(path)
    found = Inspection(Path(path), notebook)
    cells = notebook["cells"]
    for cell in cells:
        gid = grade_id(cell)
        expected = (released_locked or {}).get(gid)
        if expected is None:
            continue
        try:
            changed = cell_checksum(cell) != expected
        except Exception:  # malformed metadata counts as an edit
            changed = True
        if not changed:
            continue
        if gid in master_grade_ids:
            reason = f"test cell {gid!r} was edited in {found.path.name}"
            found.problems.append(reason + "; it scores 0")
            found.zeroed[gid] = reason
        else:
            found.notes.append(f"locked cell {gid!r} was edited; the original was restored")
    ids = [grade_id(c) for c in cells if is_graded(c)]
    counts = Counter(ids)
    for gid, count in sorted(counts.items()):
        if gid in master_grade_ids and count > 1:
            reason = f"grade cell {gid!r} appears {count} times in {found.path.name}"
            found.problems.append(reason + "; it scores 0")
            found.zeroed[gid] = reason
    for gid in master_grade_ids:
        if gid not in counts:
            reason = f"grade cell {gid!r} was deleted from {found.path.name}"
            found.problems.append(reason + "; it scores 0")
            found.zeroed[gid] = reason
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != EXPECTED_KERNEL:
        found.notes.append(f"kernel {kernel!r} in the metadata was replaced by {EXPECTED_KERNEL!r}")
    return found


def without_duplicate_grade_cells(notebook: dict) -> dict:
    """A copy that keeps only the first cell of each grade id (the grader runs this copy)."""
    seen: set[str] = set()
    kept = []
    for cell in notebook["cells"]:
        gid = grade_id(cell)
        if gid is not None:
            if gid in seen:
                continue
            seen.add(gid)
        kept.append(cell)
    return {**notebook, "cells": kept}
