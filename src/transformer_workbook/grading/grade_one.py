"""Grade one student's submission of one assignment, start to finish, in a work folder of its own."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import collect, nbgrader_calls
from .layout import Submission
from .notebook_checks import UnreadableNotebook, inspect_submission, without_duplicate_grade_cells
from .results import StudentResult


@dataclass(frozen=True)
class GradingSettings:
    root: Path                       # the workbook checkout (solutions/, nbgrader_config.py)
    work: Path                       # scratch space of this grading run
    cell_timeout: int | None = None  # None: nbgrader_config.py's c.Execute.timeout
    student_timeout: float = 1800.0  # wall clock for one student, all notebooks
    threads: int = 1                 # intra-op threads per student's kernel
    size: str = "grade"


def grading_env(settings: GradingSettings) -> dict:
    env = dict(os.environ)
    env.update({
        "WORKBOOK_SIZE": settings.size,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": str(settings.threads),
        "MKL_NUM_THREADS": str(settings.threads),
        "TQDM_DISABLE": "1",
        "MPLBACKEND": "agg",
    })
    return env


def _last_lines(log: str, n: int = 6) -> str:
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def grade_submission(sub: Submission, master_db: Path, master: dict[str, dict[str, float]],
                     hidden: dict[str, set[str]], settings: GradingSettings) -> StudentResult:
    result = StudentResult(sub.student, sub.assignment)
    work = settings.work / "students" / sub.assignment / sub.student
    shutil.rmtree(work, ignore_errors=True)
    inbox = work / "submitted" / sub.student / sub.assignment
    inbox.mkdir(parents=True)
    db = work / "gradebook.db"
    shutil.copyfile(master_db, db)

    zeroed: dict[str, dict[str, str]] = {}
    gradable = 0
    for notebook, cells in master.items():
        path = sub.folder / f"{notebook}.ipynb"
        if not path.is_file():
            reason = f"{notebook}.ipynb is missing from the submission"
            result.reasons.append(reason)
            zeroed[notebook] = {gid: reason for gid in cells}
            continue
        try:
            found = inspect_submission(path, cells)
        except UnreadableNotebook as err:
            result.reasons.append(str(err))
            zeroed[notebook] = {gid: str(err) for gid in cells}
            continue
        result.reasons.extend(found.problems)
        result.notes.extend(found.notes)
        zeroed[notebook] = dict(found.zeroed)
        (inbox / path.name).write_text(json.dumps(without_duplicate_grade_cells(found.notebook)),
                                       encoding="utf-8")
        gradable += 1

    messages: dict[str, dict[str, str]] = {}
    if gradable:
        done = nbgrader_calls.autograde(
            settings.root, work, db, sub.assignment, sub.student,
            cell_timeout=settings.cell_timeout, timeout=settings.student_timeout,
            env=grading_env(settings))
        result.seconds = round(done.seconds, 2)
        if done.returncode is None:
            result.reasons.append(
                f"grading was stopped after {settings.student_timeout:.0f} s; does a cell loop "
                "forever or wait for input?")
        elif done.returncode != 0:
            result.reasons.append(f"nbgrader could not grade this submission: {_last_lines(done.log)}")
        for notebook in master:
            messages[notebook] = collect.failure_messages(
                work / "autograded" / sub.student / sub.assignment / f"{notebook}.ipynb")
        scores = collect.scores_from_gradebook(db, sub.assignment, sub.student)
    else:
        scores = {}
        result.status = "error"
    result.cells = collect.cell_results(master, scores, messages, hidden, zeroed)
    result.total()
    return result
