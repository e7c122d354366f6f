"""``workbook check NOTEBOOK``: run a notebook and report each exercise's visible tests."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .grading.collect import ANSI
from .grading.notebook_checks import UnreadableNotebook, grade_id, is_graded, read_notebook


@dataclass
class TestOutcome:
    grade_id: str
    points: float
    status: str      # "passed", "failed", "hidden"
    message: str = ""


def _is_placeholder(source: str) -> bool:
    """A released hidden-test cell holds only comments."""
    return all(not ln.strip() or ln.strip().startswith("#") for ln in source.splitlines())


def check_notebook(path: Path, *, size: str = "grade", timeout: int = 600) -> list[TestOutcome]:
    import nbformat

    from .execution import execute

    path = Path(path)
    if not path.is_file():
        raise UnreadableNotebook(f"{path} does not exist")
    read_notebook(path)   # clear messages for files that are not notebooks
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory():
        execute(notebook, cwd=path.parent.resolve(), size=size, timeout=timeout)
    outcomes = []
    for cell in notebook.cells:
        if not is_graded(cell):
            continue
        points = float(cell.metadata["nbgrader"].get("points", 0))
        if _is_placeholder(cell.source):
            outcomes.append(TestOutcome(grade_id(cell), points, "hidden"))
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            message = ANSI.sub("", f"{errors[0].get('ename')}: {errors[0].get('evalue')}")
            outcomes.append(TestOutcome(grade_id(cell), points, "failed", message))
        else:
            outcomes.append(TestOutcome(grade_id(cell), points, "passed"))
    return outcomes


def format_outcomes(outcomes: list[TestOutcome]) -> str:
    lines = []
    for o in outcomes:
        mark = {"passed": "PASS", "failed": "FAIL", "hidden": "....."}[o.status]
        extra = "hidden tests: they run when your notebook is graded" if o.status == "hidden" else ""
        lines.append(f"{mark:5} {o.grade_id:28} {o.points:g} pt  {extra}".rstrip())
        if o.message:
            lines.append(f"      {o.message}")
    visible = [o for o in outcomes if o.status != "hidden"]
    earned = sum(o.points for o in visible if o.status == "passed")
    lines.append(f"\nvisible tests: {sum(o.status == 'passed' for o in visible)}/{len(visible)} "
                 f"passed, {earned:g}/{sum(o.points for o in visible):g} points; "
                 f"hidden tests worth {sum(o.points for o in outcomes if o.status == 'hidden'):g} "
                 "more points run at grading")
    return "\n".join(lines)
