"""Grading on Dask workers that share no filesystem with the instructor's machine.

The grader (``pipeline._on_dask``) sends each worker everything one student needs as plain
bytes and built-in types, so that nothing depends on paths that exist only on the grader:

* once per assignment (``master_payload``, scattered to the cluster): the master gradebook,
  what ``masters.prepare`` read from it, the released assignment and the course's
  ``nbgrader_config.py``;
* per student (``job``): the student's notebooks, read the way ``inspect`` would read them
  (a link or a missing file is sent as such, never followed).

On the worker, ``grade`` rebuilds that layout in the worker's own scratch folder, runs the same
stages as a local grading run (``pipeline.grade_one``, in the same sandbox) and returns the
student's result with the executed notebooks and nbgrader's log, which the grader writes into
its own ``.work`` folder. Nothing else is written outside the worker.

A worker that cannot import this module (the workbook is not installed there) fails the task
while unpacking it; the grader turns that into a per-student error that says what to install.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

from transformer_workbook.notebooks import MAX_NOTEBOOK_BYTES

CONFIG = "nbgrader_config.py"
ENVIRONMENT_HINT = ("every Dask worker needs the course's environment: the same Python packages "
                    "as the grader (pip install -e . -e ./instructor, or the same requirements "
                    "files), with `dask worker` started from that environment")


# ------------------------------------------------------------------ on the grader's machine
def _files_under(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (links are not followed), by relative path."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        found[path.relative_to(folder).as_posix()] = path.read_bytes()
    return found


def master_payload(course, master) -> dict:
    """What every worker needs once per assignment, as built-in types only."""
    released = Path(master.db).parent / "release" / master.assignment
    return {
        "assignment": master.assignment,
        "config": (course.root / CONFIG).read_bytes(),
        "release_dir": os.path.relpath(course.release_dir, course.root),
        "release": _files_under(released) if released.is_dir() else {},
        "db": Path(master.db).read_bytes(),
        "cells": master.cells,
        "hidden": {k: sorted(v) for k, v in master.hidden.items()},
        "locked": master.locked,
        "released": {k: sorted(v) for k, v in master.released.items()},
        "public": sorted(master.public),
    }


def job(sub, notebooks: list[str], settings, run_id: str) -> dict:
    """One student's submission and the run's settings, as built-in types only."""
    files = {}
    for name in notebooks:
        path = sub.folder / f"{name}.ipynb"
        if path.is_symlink():
            files[name] = ("link", None)
        elif not path.is_file():
            files[name] = ("missing", None)
        elif path.stat().st_size > MAX_NOTEBOOK_BYTES:   # refused unread; keep only its size
            files[name] = ("oversized", path.stat().st_size)
        else:
            files[name] = ("file", path.read_bytes())
    return {"run": run_id, "student": sub.student, "assignment": sub.assignment,
            "files": files, "settings": {
                "cell_timeout": settings.cell_timeout, "student_timeout": settings.student_timeout,
                "threads": settings.threads, "size": settings.size,
                "memory_bytes": settings.memory_bytes, "cpu_seconds": settings.cpu_seconds,
                "file_bytes": settings.file_bytes, "output_chars": settings.output_chars,
                "assignments": list(settings.assignments)}}


def save_returned(returned: dict, work: Path) -> None:
    """Write what a worker sent back into the grader's ``.work`` folder, at the paths a local
    run would have used (``students/<assignment>/<student>/...``)."""
    folder = work / "students" / returned["assignment"] / returned["student"]
    shutil.rmtree(folder, ignore_errors=True)
    for relative, data in returned["files"].items():
        target = (folder / relative).resolve()
        if not target.is_relative_to(folder.resolve()):
            continue   # a path that would leave the student's folder
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# ------------------------------------------------------------------ on a worker
_LOCK = threading.Lock()


def _scratch() -> Path:
    """This worker's own scratch folder (Dask's ``local_directory`` when run by a worker)."""
    try:
        from distributed import get_worker

        base = Path(get_worker().local_directory)
    except (ImportError, ValueError):
        base = Path(tempfile.gettempdir())
    return base / "workbook-grading"


def _course_here(root: Path, payload: dict):
    """The course as this worker sees it: its config and the released assignment, in a folder
    named by their content (the same course reuses the same folder and kernel factory)."""
    from workbook_instructor.course import Course

    digest = hashlib.sha256(payload["config"])
    for name, data in sorted(payload["release"].items()):
        digest.update(name.encode() + b"\0" + data)
    folder = root / "courses" / digest.hexdigest()[:16]
    with _LOCK:
        if not (folder / CONFIG).is_file():
            release = folder / payload["release_dir"] / payload["assignment"]
            for name, data in payload["release"].items():
                (release / name).parent.mkdir(parents=True, exist_ok=True)
                (release / name).write_bytes(data)
            (folder / CONFIG).write_bytes(payload["config"])
    return Course(folder)


def _master_here(root: Path, payload: dict, run_id: str):
    from .masters import Master

    db = root / "runs" / run_id / "master" / payload["assignment"] / "master.db"
    with _LOCK:
        if not db.is_file():
            db.parent.mkdir(parents=True, exist_ok=True)
            db.write_bytes(payload["db"])
    return Master(payload["assignment"], db, payload["cells"],
                  {k: set(v) for k, v in payload["hidden"].items()}, payload["locked"],
                  {k: frozenset(v) for k, v in payload["released"].items()},
                  frozenset(payload["public"]))


def _submission_here(root: Path, job: dict):
    from .submissions import Submission

    folder = root / "runs" / job["run"] / "submitted" / job["student"] / job["assignment"]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, (kind, data) in job["files"].items():
        path = folder / f"{name}.ipynb"
        if kind == "file":
            path.write_bytes(data)
        elif kind == "link":
            path.symlink_to(os.devnull)
        elif kind == "oversized":
            with open(path, "wb") as handle:
                handle.truncate(int(data))   # sparse: the size is all inspect reads
    return Submission(job["student"], job["assignment"], folder)


def _returned_files(work: Path, assignment: str, student: str) -> dict[str, bytes]:
    folder = work / "students" / assignment / student
    wanted = [folder / "nbgrader.log", *sorted((folder / "autograded").rglob("*.ipynb"))]
    files = {}
    for path in wanted:
        if path.is_symlink() or not path.is_file():
            continue
        files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def grade(job: dict, payload: dict) -> dict:
    """Grade one student on this worker; return ``{"result": json, "files": {...}}``."""
    import workbook_instructor.course  # noqa: F401 - fail here, clearly, without the course

    from .execute import Settings
    from .pipeline import grade_failed, grade_one, prefetch_assets

    prefetch_assets()
    root = _scratch()
    course = _course_here(root, payload)
    master = _master_here(root, payload, job["run"])
    sub = _submission_here(root, job)
    work = root / "runs" / job["run"] / "out" / ".work"
    given = dict(job["settings"])
    given["assignments"] = tuple(given.get("assignments", ()))
    settings = Settings(course=course, work=work, hidden=(root, *course.hidden_from_students()),
                        **given)
    try:
        try:
            result = grade_one(sub, master, settings)
        except Exception as err:  # noqa: BLE001 - one student's failure never stops the class
            result = grade_failed(sub, master, settings, err)
        return {"assignment": job["assignment"], "student": job["student"],
                "result": result.to_json(),
                "files": _returned_files(work, job["assignment"], job["student"])}
    finally:
        shutil.rmtree(work / "students" / job["assignment"] / job["student"], ignore_errors=True)
        shutil.rmtree(sub.folder, ignore_errors=True)


def unreachable_result(student: str, assignment: str, master, err: BaseException):
    """The result of a student whose worker failed (the workbook missing there, a worker that
    died): 0 points, a reason that says what to check, and no fingerprint, so that the next
    run grades the student again."""
    from .inspect import Inspection
    from .score import score

    result = score(student, master, Inspection(), None, None, 0.0)
    result.reasons.append(f"a Dask worker could not grade this submission "
                          f"({type(err).__name__}: {str(err)[:300]}); {ENVIRONMENT_HINT}")
    return result
