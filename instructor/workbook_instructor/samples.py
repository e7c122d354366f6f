"""Build the sample class: the reference, the untouched release, and the wrong submissions.

Wrong submissions are kept small and readable in ``autograder/mutants/<assignment>.toml``:
each names a solution cell, a piece of its code to find, what to put instead, and the test
cells that must lose points. Building them from the current solutions means they never go
stale: if a ``find`` string no longer occurs exactly once, building fails loudly.
"""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from transformer_workbook.notebooks import grade_id, is_solution, source

from .course import Course, Mutant

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _as_student_code(solution_source: str) -> str:
    """What a student who solved the cell would have: the solution without nbgrader's markers."""
    return "\n".join(ln for ln in solution_source.splitlines()
                     if ln.strip() not in SOLUTION_MARKERS)


def _released(course: Course, assignment: str, release_dir: Path | None) -> list[Path]:
    folder = (release_dir or course.release_dir) / assignment
    return sorted(folder.glob("*.ipynb"))


def reference_notebooks(course: Course, assignment: str,
                        release_dir: Path | None = None) -> dict[str, dict]:
    """The released notebooks with every exercise filled in from the solutions."""
    notebooks = {}
    for released in _released(course, assignment, release_dir):
        student = json.loads(released.read_text(encoding="utf-8"))
        solution = json.loads((course.source_dir / assignment / released.name)
                              .read_text(encoding="utf-8"))
        answers = {grade_id(c): source(c) for c in solution["cells"] if is_solution(c)}
        for cell in student["cells"]:
            if is_solution(cell) and grade_id(cell) in answers:
                cell["source"] = _as_student_code(answers[grade_id(cell)])
        notebooks[released.stem] = student
    return notebooks


def apply_mutant(notebooks: dict[str, dict], mutant: Mutant) -> dict[str, dict]:
    changed = copy.deepcopy(notebooks)
    hits = [cell for nb in changed.values() for cell in nb["cells"]
            if grade_id(cell) == mutant.cell]
    if len(hits) != 1:
        raise ValueError(f"mutant {mutant.name}: expected one cell {mutant.cell!r}, found {len(hits)}")
    text = source(hits[0])
    count = text.count(mutant.find)
    if count != 1:
        raise ValueError(f"mutant {mutant.name}: {mutant.find!r} occurs {count} times in cell "
                         f"{mutant.cell!r}; update autograder/mutants to match the solution")
    hits[0]["source"] = text.replace(mutant.find, mutant.replace)
    return changed


def sample_class(course: Course, assignment: str,
                 release_dir: Path | None = None) -> dict[str, dict[str, dict]]:
    """``student -> {notebook name -> notebook}`` for the whole sample class of one assignment."""
    reference = reference_notebooks(course, assignment, release_dir)
    released = {p.stem: json.loads(p.read_text(encoding="utf-8"))
                for p in _released(course, assignment, release_dir)}
    students = {"reference": reference, "untouched-release": released}
    for mutant in course.mutants(assignment):
        students[f"wrong-{mutant.name}"] = apply_mutant(reference, mutant)
    return students


def write_class(students: dict[str, dict[str, dict]], assignment: str, target: Path) -> None:
    for student, notebooks in students.items():
        folder = target / student / assignment
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, notebook in notebooks.items():
            (folder / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1), encoding="utf-8")


def build_samples(course: Course, assignments: list[str], target: Path,
                  release_dir: Path | None = None) -> Path:
    for assignment in assignments:
        write_class(sample_class(course, assignment, release_dir), assignment, target)
    return target
