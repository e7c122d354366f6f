"""Stage 6: what nbgrader recorded for one student, read back from the gradebook and the
executed notebooks.

* the points of every test cell (nbgrader's gradebook: the only source of points);
* each failed test's message: the exception's type and first line, never a traceback, which
  would quote the hidden test's source;
* problems outside the tests (timeouts, exits, crashes in setup or in cells the student added,
  output floods), which explain lost points;
* the canaries' verdicts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from transformer_workbook.notebooks import grade_id, is_graded, is_solution, plain, source

from . import disclose
from .canaries import Canary
from .masters import HIDDEN_MARK
from .execute import Execution

# With interrupt_on_timeout, a cell stopped for running too long ends in KeyboardInterrupt
# (nobody presses Ctrl-C in a grading run).
TIMEOUT_NAMES = ("CellTimeoutError", "TimeoutError", "KeyboardInterrupt")
OUTPUT_CUT = "[output cut by the grader"
MESSAGE_CHARS = 1000


@dataclass
class ReadBack:
    points: dict[tuple[str, str], float] = field(default_factory=dict)  # (notebook, id) -> points
    messages: dict[str, dict[str, str]] = field(default_factory=dict)   # notebook -> {id: message}
    problems: list[str] = field(default_factory=list)
    tampered: dict[str, dict[str, str]] = field(default_factory=dict)   # notebook -> {id: why}


def _cells(path: Path) -> list[dict]:
    if path.is_symlink() or not path.is_file():
        return []
    return json.loads(path.read_text(encoding="utf-8")).get("cells", [])


def failure_messages(cells: list[dict], public: frozenset[str] = frozenset()) -> dict[str, str]:
    """``grade_id -> message`` for every test cell that raised: the course's check message,
    or the exception's type when the message is not one of them (disclose.py)."""
    messages = {}
    for cell in cells:
        if not is_graded(cell):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                text = disclose.test_message(plain(str(output.get("ename", ""))),
                                             plain(str(output.get("evalue", ""))),
                                             source(cell), public)
                messages[grade_id(cell)] = text.strip()[:MESSAGE_CHARS]
                break
    return messages


def run_problems(cells: list[dict], limit: int = 3) -> list[str]:
    """Sentences about what went wrong outside the test cells. Cells are numbered as in the
    student's own notebook (from 1, the grader's inserted checks not counted). Once a hidden
    test has run, an error's message could carry its source, so only the type is shown."""
    problems = []
    own = [c for c in cells if not c.get("metadata", {}).get("grader_canary")]
    hidden_ran = False
    for index, cell in enumerate(own, start=1):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream" and OUTPUT_CUT in "".join(output.get("text", "")):
                problems.append(f"cell {index} printed more than the grader keeps; the rest was cut")
            if kind != "error":
                continue
            name = plain(str(output.get("ename", "")))
            text = plain(f"{name}: {output.get('evalue', '')}").strip()[:300]
            timed_out = name in TIMEOUT_NAMES or "timeout" in text.lower()
            if hidden_ran:
                text = disclose.exception_name(name)
            if timed_out:
                problems.append(f"cell {index} ran past the per-cell time limit and was stopped")
            elif not is_graded(cell) and not is_solution(cell):
                problems.append(f"cell {index} (outside the exercises) raised {text}")
        if is_graded(cell) and HIDDEN_MARK in source(cell):
            hidden_ran = True
    unique = list(dict.fromkeys(problems))
    return unique[:limit] + ([f"and {len(unique) - limit} more"] if len(unique) > limit else [])


def gradebook_points(db: Path, assignment: str, student: str) -> dict[tuple[str, str], float]:
    """``(notebook, grade_id) -> points`` as nbgrader recorded them (missing = 0)."""
    from nbgrader.api import Gradebook, MissingEntry

    points = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return points
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.cell_type == "code":
                    points[(notebook.name, grade.name)] = float(grade.score or 0.0)
    return points


def read_back(execution: Execution, assignment: str, student: str, canary: Canary,
              public: frozenset[str] = frozenset()) -> ReadBack:
    found = ReadBack(points=gradebook_points(execution.db, assignment, student))
    for notebook, path in execution.autograded.items():
        cells = _cells(path)
        found.messages[notebook] = failure_messages(cells, public)
        found.problems.extend(f"{notebook}.ipynb: {p}" for p in run_problems(cells))
        found.tampered[notebook] = canary.verdicts(cells, execution.key) if cells else {}
    return found
