"""Merge the class's final scores into one nbgrader gradebook (``OUT/gradebook.db``).

Each student is autograded against a private copy of the master gradebook, so no student's
kernel can touch the class's database. Once everyone is graded, this module rebuilds the class
gradebook from the saved per-student results through nbgrader's own ``Gradebook`` API: the
assignments and grade cells come from the masters, one submission per student, and each grade's
``auto_score`` is the workbook's final score for that cell (tampered cells already zeroed).

The file is rebuilt from scratch on every run and swapped in atomically, so grading twice, or
resuming a killed run, never leaves duplicates or a half-written database behind. Instructors
can open it with nbgrader's formgrader or export it with ``nbgrader export``.
"""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from .results import StudentResult


def _copy_assignment(source_db: Path, assignment: str, gb) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{source_db}") as master:
        found = master.find_assignment(assignment)
        gb.update_or_create_assignment(assignment)
        for notebook in found.notebooks:
            gb.update_or_create_notebook(notebook.name, assignment)
            for cell in notebook.grade_cells:
                gb.update_or_create_grade_cell(cell.name, notebook.name, assignment,
                                               max_score=cell.max_score,
                                               cell_type=cell.cell_type)
            for cell in notebook.solution_cells:
                gb.update_or_create_solution_cell(cell.name, notebook.name, assignment)
            for cell in notebook.source_cells:
                gb.update_or_create_source_cell(cell.name, notebook.name, assignment,
                                                cell_type=cell.cell_type, locked=cell.locked,
                                                source=cell.source, checksum=cell.checksum)


def write_gradebook(results: list[StudentResult], masters: dict[str, Path], target: Path) -> Path:
    """Rebuild ``target`` (an nbgrader sqlite gradebook) from ``results``; return its path."""
    from nbgrader.api import Gradebook

    if not masters:
        return target
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    first, *others = sorted(masters)
    shutil.copyfile(masters[first], partial)   # carries nbgrader's schema and migrations stamp
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{partial}") as gb:
        # nbgrader's add_submission triggers SQLAlchemy autoflush warnings that are harmless
        warnings.simplefilter("ignore", category=Warning)
        for assignment in others:
            _copy_assignment(masters[assignment], assignment, gb)
        for result in results:
            if result.assignment not in masters:
                continue
            gb.update_or_create_student(result.student)
            gb.add_submission(result.assignment, result.student)
            for cell in result.cells:
                grade = gb.find_grade(cell.grade_id, cell.notebook, result.assignment,
                                      result.student)
                grade.auto_score = cell.points
        gb.db.commit()
    os.replace(partial, target)
    return target


def scores_in_gradebook(path: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """``(assignment, student) -> (score, max_score)`` as nbgrader computes them."""
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{path}") as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                scores[(assignment.name, submission.student.id)] = (
                    float(submission.score), float(submission.max_score))
    return scores
