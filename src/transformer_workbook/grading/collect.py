"""Read one student's per-cell scores back from nbgrader's gradebook and autograded notebook."""
from __future__ import annotations

import json
import re
from pathlib import Path

from .results import CellResult

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HIDDEN_MARK = "BEGIN HIDDEN TESTS"


def failure_messages(notebook_path: Path) -> dict[str, str]:
    """``grade_id -> "ErrorType: message"`` for every grade cell that raised.

    Only the exception's type and message are kept: a traceback would quote test source,
    and hidden tests must never reach a student.
    """
    if not notebook_path.is_file():
        return {}
    notebook = json.loads(notebook_path.read_text(encoding="utf-8"))
    messages = {}
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
                messages[meta.get("grade_id")] = ANSI.sub("", text).strip()[:1000]
                break
    return messages


# With interrupt_on_timeout, a cell stopped for running too long ends in KeyboardInterrupt
# (nobody presses Ctrl-C in a grading run).
TIMEOUT_NAMES = ("CellTimeoutError", "TimeoutError", "KeyboardInterrupt")
OUTPUT_CUT = "[output cut by the grader"


def run_problems(notebook_path: Path, limit: int = 3) -> list[str]:
    """Sentences about what went wrong outside the test cells: timeouts, exits, crashes in the
    setup or in cells the student added, and output floods. They explain lost points."""
    if not notebook_path.is_file():
        return []
    cells = json.loads(notebook_path.read_text(encoding="utf-8")).get("cells", [])
    problems = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or cell.get("metadata", {}).get("grader_canary"):
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream" and OUTPUT_CUT in "".join(output.get("text", "")):
                problems.append(f"cell {index} printed more than the grader keeps; the rest was cut")
            if kind != "error":
                continue
            name = output.get("ename", "")
            text = ANSI.sub("", f"{name}: {output.get('evalue', '')}").strip()[:300]
            if name in TIMEOUT_NAMES or "timeout" in text.lower():
                problems.append(f"cell {index} ran past the per-cell time limit and was stopped")
            elif not meta.get("grade") and not meta.get("solution"):
                problems.append(f"cell {index} (outside the exercises) raised {text}")
    unique = list(dict.fromkeys(problems))
    return unique[:limit] + ([f"and {len(unique) - limit} more"] if len(unique) > limit else [])


def hidden_cells(source_notebook: Path) -> set[str]:
    notebook = json.loads(source_notebook.read_text(encoding="utf-8"))
    hidden = set()
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and HIDDEN_MARK in "".join(cell.get("source", "")):
            hidden.add(meta["grade_id"])
    return hidden


def master_grade_cells(db: Path, assignment: str) -> dict[str, dict[str, float]]:
    """``notebook -> {grade_id: max points}`` for the autograded cells of the assignment."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        found = gb.find_assignment(assignment)
        return {nb.name: {gc.name: float(gc.max_score) for gc in nb.grade_cells
                          if gc.cell_type == "code"}
                for nb in found.notebooks}


def scores_from_gradebook(db: Path, assignment: str, student: str) -> dict[tuple[str, str], float]:
    """``(notebook, grade_id) -> points`` as nbgrader recorded them (missing = 0)."""
    from nbgrader.api import Gradebook, MissingEntry

    scores = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return scores
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.cell_type == "code":
                    scores[(notebook.name, grade.name)] = float(grade.score or 0.0)
    return scores


def cell_results(master: dict[str, dict[str, float]], scores: dict[tuple[str, str], float],
                 messages: dict[str, dict[str, str]], hidden: dict[str, set[str]],
                 zeroed: dict[str, dict[str, str]]) -> list[CellResult]:
    results = []
    for notebook, cells in master.items():
        for gid, max_points in cells.items():
            points = scores.get((notebook, gid), 0.0)
            message = messages.get(notebook, {}).get(gid, "")
            if gid in zeroed.get(notebook, {}):
                points, message = 0.0, zeroed[notebook][gid]
            elif points < max_points and not message:
                message = "this test did not run to completion (see the reasons above)"
            results.append(CellResult(gid, notebook, points, max_points, message,
                                      gid in hidden.get(notebook, set())))
    return results
