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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass(frozen=True)
class Mutant:
    name: str
    mistake: str
    cell: str
    find: str
    replace: str
    loses: list[str] = field(default_factory=list)


def load_mutants(root: Path, assignment: str) -> list[Mutant]:
    path = root / "autograder" / "mutants" / f"{assignment}.toml"
    if not path.is_file():
        return []
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Mutant(name=name, **spec) for name, spec in table.items()]


def _as_student_code(solution_source: str) -> str:
    """What a student who solved the cell would have: the solution without nbgrader's markers."""
    lines = solution_source.splitlines()
    return "\n".join(ln for ln in lines if ln.strip() not in SOLUTION_MARKERS)


def _grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def reference_notebooks(root: Path, assignment: str) -> dict[str, dict]:
    """The released notebooks with every exercise filled in from the solutions."""
    notebooks = {}
    for released in sorted((root / "course" / assignment).glob("*.ipynb")):
        student = json.loads(released.read_text(encoding="utf-8"))
        solution = json.loads((root / "solutions" / assignment / released.name).read_text(encoding="utf-8"))
        answers = {_grade_id(c): "".join(c["source"]) for c in solution["cells"]
                   if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
        for cell in student["cells"]:
            gid = _grade_id(cell)
            if gid in answers and cell["metadata"]["nbgrader"].get("solution"):
                cell["source"] = _as_student_code(answers[gid])
        notebooks[released.stem] = student
    return notebooks


def apply_mutant(notebooks: dict[str, dict], mutant: Mutant) -> dict[str, dict]:
    changed = copy.deepcopy(notebooks)
    hits = [(nb, cell) for nb in changed.values() for cell in nb["cells"]
            if _grade_id(cell) == mutant.cell]
    if len(hits) != 1:
        raise ValueError(f"mutant {mutant.name}: expected one cell {mutant.cell!r}, found {len(hits)}")
    cell = hits[0][1]
    source = "".join(cell["source"])
    count = source.count(mutant.find)
    if count != 1:
        raise ValueError(f"mutant {mutant.name}: {mutant.find!r} occurs {count} times in cell "
                         f"{mutant.cell!r}; update autograder/mutants to match the solution")
    cell["source"] = source.replace(mutant.find, mutant.replace)
    return changed


def sample_class(root: Path, assignment: str) -> dict[str, dict[str, dict]]:
    """``student -> {notebook name -> notebook}`` for the whole sample class of one assignment."""
    reference = reference_notebooks(root, assignment)
    released = {p.stem: json.loads(p.read_text(encoding="utf-8"))
                for p in sorted((root / "course" / assignment).glob("*.ipynb"))}
    students = {"reference": reference, "untouched-release": released}
    for mutant in load_mutants(root, assignment):
        students[f"wrong-{mutant.name}"] = apply_mutant(reference, mutant)
    return students


def write_class(students: dict[str, dict[str, dict]], assignment: str, target: Path) -> None:
    for student, notebooks in students.items():
        folder = target / student / assignment
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, notebook in notebooks.items():
            (folder / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1), encoding="utf-8")


def build_samples(root: Path, assignments: list[str], target: Path) -> Path:
    for assignment in assignments:
        write_class(sample_class(root, assignment), assignment, target)
    return target
