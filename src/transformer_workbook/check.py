"""``workbook check NOTEBOOK``: run your notebook and report each exercise's visible tests.

Hidden tests are not in your copy (they run when the instructor grades), so this reports them
as such. An exercise you have not started yet (its cell still raises ``NotImplementedError``)
reads "not attempted yet", with where to write the code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .notebooks import grade_id, is_graded, is_solution, nbgrader_meta, plain, read_notebook, source


@dataclass
class TestOutcome:
    grade_id: str
    points: float
    status: str      # "passed", "failed", "not attempted", "hidden"
    message: str = ""


def _is_placeholder(text: str) -> bool:
    """A released hidden-test cell holds only comments."""
    return all(not ln.strip() or ln.strip().startswith("#") for ln in text.splitlines())


def check_notebook(path: Path, *, size: str = "grade", timeout: int = 600) -> list[TestOutcome]:
    import nbformat

    from .execution import execute

    path = Path(path)
    read_notebook(path)   # a clear sentence for files that are not notebooks
    notebook = nbformat.read(path, as_version=4)
    execute(notebook, cwd=path.parent.resolve(), size=size, timeout=timeout, quiet=True)
    outcomes, exercise = [], None
    for index, cell in enumerate(notebook.cells):
        if is_solution(cell):
            exercise = (grade_id(cell), index)
        if not is_graded(cell):
            continue
        points = float(nbgrader_meta(cell).get("points", 0))
        if _is_placeholder(source(cell)):
            outcomes.append(TestOutcome(grade_id(cell), points, "hidden"))
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not errors:
            outcomes.append(TestOutcome(grade_id(cell), points, "passed"))
        elif errors[0].get("ename") == "NotImplementedError":
            where = (f"replace `raise NotImplementedError()` in the exercise cell "
                     f"'{exercise[0]}' (cell {exercise[1] + 1} of the notebook)"
                     if exercise else "write the exercise above this test")
            outcomes.append(TestOutcome(grade_id(cell), points, "not attempted", where))
        else:
            message = plain(f"{errors[0].get('ename')}: {errors[0].get('evalue')}")
            outcomes.append(TestOutcome(grade_id(cell), points, "failed", message))
    return outcomes


def format_outcomes(outcomes: list[TestOutcome]) -> str:
    marks = {"passed": "PASS", "failed": "FAIL", "not attempted": "TODO", "hidden": "....."}
    notes = {"hidden": "hidden tests: they run when your notebook is graded",
             "not attempted": "not attempted yet"}
    lines = []
    for o in outcomes:
        lines.append(f"{marks[o.status]:5} {o.grade_id:28} {o.points:g} pt  "
                     f"{notes.get(o.status, '')}".rstrip())
        if o.message:
            lines.append(f"      {o.message}")
    visible = [o for o in outcomes if o.status != "hidden"]
    earned = sum(o.points for o in visible if o.status == "passed")
    todo = sum(o.status == "not attempted" for o in visible)
    lines.append(f"\nvisible tests: {sum(o.status == 'passed' for o in visible)}/{len(visible)} "
                 f"passed ({todo} not attempted yet), {earned:g}/"
                 f"{sum(o.points for o in visible):g} points; hidden tests worth "
                 f"{sum(o.points for o in outcomes if o.status == 'hidden'):g} more points run "
                 "when your notebook is graded")
    return "\n".join(lines)
