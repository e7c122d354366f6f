"""``workbook check NOTEBOOK``: run your notebook and report each exercise's visible tests.

Hidden tests are not in your copy (they run when the instructor grades), so this reports them
as such. An exercise you have not started yet (its cell still raises ``NotImplementedError``)
reads "not attempted yet", with where to write the code; a test that fails because an earlier
exercise is unfinished says which one. An error in an exercise cell itself (a syntax error, say)
is reported first, and so is an error in any other cell of the notebook: a cell the course
wrote usually fails because an exercise it uses is wrong. A cell that kills the kernel or runs
past the time limit stops the run; the report says which cell, and the tests after it did not
run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .notebooks import grade_id, is_graded, is_solution, nbgrader_meta, plain, read_notebook, source

UNFINISHED = "raise NotImplementedError"


@dataclass
class TestOutcome:
    grade_id: str
    points: float
    status: str      # "passed", "failed", "not attempted", "hidden", "not run"
    message: str = ""


@dataclass
class Report:
    """Everything ``check`` found: the tests, and the cells that went wrong outside them."""
    tests: list[TestOutcome] = field(default_factory=list)
    exercise_errors: list[str] = field(default_factory=list)   # errors in exercise cells
    other_errors: list[str] = field(default_factory=list)      # errors in the course's cells
    stopped: str = ""                                          # why the run ended early

    def __iter__(self):   # a Report reads like the list of test outcomes it holds
        return iter(self.tests)

    def __len__(self):
        return len(self.tests)

    @property
    def ok(self) -> bool:
        return not self.stopped and not self.exercise_errors and not self.other_errors and all(
            o.status in ("passed", "hidden") for o in self.tests)


def _is_placeholder(text: str) -> bool:
    """A released hidden-test cell holds only comments."""
    return all(not ln.strip() or ln.strip().startswith("#") for ln in text.splitlines())


def _first_line(cell) -> str:
    line = next((ln.strip() for ln in source(cell).splitlines() if ln.strip()), "")
    return line if len(line) <= 50 else line[:47] + "..."


def _where(cell, index: int) -> str:
    name = grade_id(cell) if is_solution(cell) else None
    return (f"exercise '{name}' (cell {index + 1}, `{_first_line(cell)}`)" if name
            else f"cell {index + 1} (`{_first_line(cell)}`)")


def _error(cell) -> dict | None:
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def _said(error: dict) -> str:
    text = plain(f"{error.get('ename')}: {error.get('evalue')}")
    return text if len(text) <= 300 else text[:297] + "..."


def _run(notebook, cwd: Path, size: str, timeout: int) -> tuple[str, set[int]]:
    """Execute the notebook; return why it stopped early (or "") and the cells it started."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .execution import execute

    started: list[int] = []
    try:
        execute(notebook, cwd=cwd, size=size, timeout=timeout, quiet=True,
                on_cell_start=lambda cell, cell_index: started.append(cell_index))
    except DeadKernelError:
        index = started[-1] if started else 0
        return (f"the kernel died while it ran {_where(notebook.cells[index], index)}: out of "
                "memory, or code that ends the process (os._exit)? The cells after it did not "
                "run", set(started))
    except CellTimeoutError:
        index = started[-1] if started else 0
        return (f"{_where(notebook.cells[index], index)} ran longer than {timeout} s and was "
                "stopped: an endless loop, or work too big for this run size? The cells after "
                "it did not run (raise the limit with --timeout)", set(started))
    return "", set(started)


def check_notebook(path: Path, *, size: str = "grade", timeout: int = 600) -> Report:
    import nbformat

    path = Path(path)
    read_notebook(path)   # a clear sentence for files that are not notebooks
    notebook = nbformat.read(path, as_version=4)
    stopped, ran = _run(notebook, path.parent.resolve(), size, timeout)
    report = Report(stopped=stopped)
    unfinished = [(grade_id(c), i) for i, c in enumerate(notebook.cells)
                  if is_solution(c) and UNFINISHED in source(c)]
    exercise = None
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code":
            continue
        # a cell the run did not reach keeps the outputs saved with the file: ignore them
        error = _error(cell) if index in ran else None
        if is_solution(cell):
            exercise = (grade_id(cell), index, cell)
            if error is not None and error.get("ename") != "NotImplementedError":
                report.exercise_errors.append(f"{_where(cell, index)}: {_said(error)}")
            continue
        if not is_graded(cell):
            # below an unfinished exercise, a course cell's error only repeats it (its test
            # says TODO); once the exercises above are written, it points at a wrong one
            if error is not None and not any(i < index for _, i in unfinished):
                report.other_errors.append(f"{_where(cell, index)}: {_said(error)}")
            continue
        points = float(nbgrader_meta(cell).get("points", 0))
        if _is_placeholder(source(cell)):
            report.tests.append(TestOutcome(grade_id(cell), points, "hidden"))
        elif index not in ran:
            report.tests.append(TestOutcome(grade_id(cell), points, "not run",
                                            "the run stopped before this test (see above)"))
        elif error is None:
            report.tests.append(TestOutcome(grade_id(cell), points, "passed"))
        elif error.get("ename") == "NotImplementedError":
            if exercise is not None and UNFINISHED in source(exercise[2]):
                where = (f"replace `raise NotImplementedError()` in the exercise cell "
                         f"'{exercise[0]}' (cell {exercise[1] + 1} of the notebook)")
                status = "not attempted"
            else:
                before = [f"'{gid}' (cell {i + 1})" for gid, i in unfinished if i < index]
                where = ("it uses an exercise that is not written yet: "
                         + (", ".join(before) if before else "one of the exercises above"))
                status = "failed"
            report.tests.append(TestOutcome(grade_id(cell), points, status, where))
        else:
            report.tests.append(TestOutcome(grade_id(cell), points, "failed", _said(error)))
    return report


def format_outcomes(outcomes) -> str:
    marks = {"passed": "PASS", "failed": "FAIL", "not attempted": "TODO", "hidden": ".....",
             "not run": "----"}
    notes = {"hidden": "hidden tests: they run when your notebook is graded",
             "not attempted": "not attempted yet", "not run": "did not run"}
    lines = []
    if isinstance(outcomes, Report):
        if outcomes.stopped:
            lines += [f"STOPPED {outcomes.stopped}", ""]
        if outcomes.exercise_errors:
            lines.append("errors in your exercise cells (fix these first):")
            lines += [f"  {e}" for e in outcomes.exercise_errors] + [""]
        if outcomes.other_errors:
            lines.append("errors in the course's own cells (usually an exercise above them is "
                         "wrong, even when its visible test passed):")
            lines += [f"  {e}" for e in outcomes.other_errors] + [""]
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
    lines.append("(check reads the notebook as saved on disk: save it in JupyterLab first)")
    return "\n".join(lines)
