"""Stage 2: the master copy of an assignment, prepared once per grading run.

nbgrader's ``generate_assignment`` records every grade cell (hidden tests included) in a
gradebook; each student is later graded against a private copy of it. From the solutions we
also take which tests are hidden, and from the release the checksums of the locked cells (to
spot a test cell a student edited).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from transformer_workbook.notebooks import grade_id, is_graded, nbgrader_meta, read_notebook, source

from . import disclose

HIDDEN_MARK = "BEGIN HIDDEN TESTS"


@dataclass(frozen=True)
class Master:
    assignment: str
    db: Path                                  # gradebook with the grade cells (copied per student)
    cells: dict[str, dict[str, float]]        # notebook -> {grade_id: points} of the test cells
    hidden: dict[str, set[str]]               # notebook -> ids of hidden test cells
    locked: dict[str, dict[str, str]]         # notebook -> {grade_id: checksum} as released
    released: dict[str, frozenset[str]] = field(default_factory=dict)  # notebook -> code cells
    public: frozenset[str] = frozenset()      # identifiers in the released code (disclose.py)


def cell_checksum(cell: dict) -> str:
    """nbgrader's own checksum (source and grading metadata) of one cell."""
    import nbformat
    from nbgrader.utils import compute_checksum

    return compute_checksum(nbformat.from_dict({**cell, "source": source(cell)}))


def _grade_cells(db: Path, assignment: str) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        found = gb.find_assignment(assignment)
        return {nb.name: {gc.name: float(gc.max_score) for gc in nb.grade_cells
                          if gc.cell_type == "code"} for nb in found.notebooks}


def prepare(course, assignment: str, work: Path) -> Master:
    """Release ``assignment`` into ``work`` with a fresh gradebook and read what it holds."""
    shutil.rmtree(work, ignore_errors=True)
    db = work / "master.db"
    released = course.generate(assignment, work / "release", db)
    cells = _grade_cells(db, assignment)
    hidden, locked, released_code = {}, {}, {}
    for notebook in cells:
        solution = json.loads((course.source_dir / assignment / f"{notebook}.ipynb")
                              .read_text(encoding="utf-8"))
        hidden[notebook] = {grade_id(c) for c in solution["cells"]
                            if is_graded(c) and HIDDEN_MARK in source(c)}
        release = read_notebook(released / f"{notebook}.ipynb")
        locked[notebook] = {grade_id(c): cell_checksum(c) for c in release["cells"]
                            if nbgrader_meta(c).get("locked") and grade_id(c)}
        released_code[notebook] = frozenset(source(c) for c in release["cells"]
                                            if c.get("cell_type") == "code")
    public = disclose.public_words(text for texts in released_code.values() for text in texts)
    return Master(assignment, db, cells, hidden, locked, released_code, public)
