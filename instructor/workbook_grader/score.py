"""Stage 7: one student's result, from what inspection found and what nbgrader recorded.

A test cell earns nbgrader's points, unless inspection zeroed it (deleted, duplicated, edited)
or its canary found tampering; a test that lost points says why. Reasons explain the rest:
a run that was stopped or crashed, problems outside the tests.
"""
from __future__ import annotations

from .execute import Execution
from .inspect import Inspection
from .masters import Master
from .read_back import ReadBack
from .results import CellResult, StudentResult


def _failure_reason(execution: Execution, student_timeout: float) -> str | None:
    if execution.returncode is None:
        return (f"grading was stopped after {student_timeout:.0f} s; does a cell loop forever "
                "or wait for input?")
    if execution.returncode == 0:
        return None
    log = execution.log
    if "DeadKernelError" in log or "Kernel died" in log or "UnresponsiveKernelError" in log:
        return ("the notebook's kernel died while it ran (os._exit, a crash, or too much "
                "memory), so the cells after that point were not graded")
    if "CellTimeoutError" in log or "Interrupting kernel" in log:
        return ("a cell ran past the per-cell time limit and did not stop when interrupted "
                "(native code that never checks for interrupts, or a notebook that ignores "
                "SIGINT), so nbgrader could not grade this notebook; make long computations "
                "smaller or interruptible")
    # nbgrader's log may quote a test cell (a hidden one too): it goes to the instructor's
    # copy (the run's .work folder), never into a reason that the student's feedback shows.
    return ("nbgrader could not grade this submission (exit status "
            f"{execution.returncode}); the instructor finds its log in the grading run's "
            ".work folder")


def cell_results(master: Master, points: dict[tuple[str, str], float],
                 messages: dict[str, dict[str, str]],
                 zeroed: dict[str, dict[str, str]]) -> list[CellResult]:
    results = []
    for notebook, cells in master.cells.items():
        for gid, max_points in cells.items():
            earned = points.get((notebook, gid), 0.0)
            message = messages.get(notebook, {}).get(gid, "")
            if gid in zeroed.get(notebook, {}):
                earned, message = 0.0, zeroed[notebook][gid]
            elif earned < max_points and not message:
                message = "this test did not run to completion (see the reasons above)"
            results.append(CellResult(gid, notebook, earned, max_points, message,
                                       gid in master.hidden.get(notebook, set())))
    return results


def score(student: str, master: Master, inspection: Inspection,
          execution: Execution | None, found: ReadBack | None,
          student_timeout: float) -> StudentResult:
    result = StudentResult(student, master.assignment)
    result.reasons.extend(inspection.problems)
    result.notes.extend(inspection.notes)
    zeroed = {nb: dict(ids) for nb, ids in inspection.zeroed.items()}
    if execution is None or found is None:  # nothing could be run
        result.status = "error"
        result.cells = cell_results(master, {}, {}, zeroed)
        result.total()
        return result
    if execution.note:
        result.notes.append(execution.note)
    result.seconds = round(execution.seconds, 2)
    failure = _failure_reason(execution, student_timeout)
    if failure:
        result.reasons.append(failure)
    result.reasons.extend(found.problems)
    for notebook, tampered in found.tampered.items():
        fresh = {gid: why for gid, why in tampered.items() if gid not in zeroed.get(notebook, {})}
        for why in sorted(set(fresh.values())):
            result.reasons.append(f"{notebook}.ipynb: {why}; the affected tests score 0")
        zeroed.setdefault(notebook, {}).update(fresh)
    result.cells = cell_results(master, found.points, found.messages, zeroed)
    result.total()
    return result
