"""Whole grading runs: killed and resumed, repeated, on a Dask cluster; the class gradebook
(nbgrader's database) always agrees with grades.csv and holds one submission per student."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import COURSE, ROOT, run_workbook
from workbook_grader.gradebook import scores_in_gradebook
from workbook_instructor.samples import sample_class, write_class

A = "01-attention"
CLASS = ("reference", "wrong-no_scaling", "untouched-release")


def _small_class(target: Path, students=CLASS) -> Path:
    everyone = sample_class(COURSE, A)
    write_class({s: everyone[s] for s in students}, A, target)
    return target


def _grades(out: Path) -> dict[str, tuple[str, str]]:
    with open(out / "grades.csv", newline="") as handle:
        return {r["student"]: (r["score"], r["max_score"]) for r in csv.DictReader(handle)}


def _assert_gradebook_matches(out: Path, students) -> None:
    in_db = scores_in_gradebook(out / "gradebook.db")
    assert sorted(s for _, s in in_db) == sorted(students), \
        f"the gradebook should hold exactly one submission per student, found {sorted(in_db)}"
    for student, (score, max_score) in _grades(out).items():
        assert in_db[(A, student)] == (float(score), float(max_score)), (
            f"gradebook and grades.csv disagree for {student}: {in_db[(A, student)]} vs "
            f"{(score, max_score)}")


def _assert_nbgrader_tools_agree(out: Path, tmp: Path) -> None:
    """The class gradebook as nbgrader's own tools see it: through its Gradebook API (what
    formgrader shows and lets the instructor override), every submission and every test cell
    in grades.csv and cells.csv, with the same points; and `nbgrader export` gives the same
    totals as grades.csv."""
    from nbgrader.api import Gradebook

    with open(out / "cells.csv", newline="") as handle:
        cells = list(csv.DictReader(handle))
    grades = _grades(out)
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        assert sorted(s.id for s in gb.students) == sorted(grades), \
            "formgrader would list other students than grades.csv"
        for student, (score, max_score) in grades.items():
            submission = gb.find_submission(A, student)
            assert (submission.score, submission.max_score) == (float(score), float(max_score)), \
                f"{student}: nbgrader's submission total differs from grades.csv"
        for row in cells:
            grade = gb.find_grade(row["grade_id"], row["notebook"], row["assignment"],
                                  row["student"])
            assert (grade.score, grade.max_score) == (float(row["points"]),
                                                      float(row["max_points"])), \
                f"{row['student']} {row['grade_id']}: gradebook and cells.csv disagree"
    exported = tmp / "export.csv"
    tmp.mkdir(exist_ok=True)
    done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export",
                           f"--CourseDirectory.db_url=sqlite:///{out / 'gradebook.db'}",
                           f"--CsvExportPlugin.to={exported}"], cwd=tmp, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(exported, newline="") as handle:
        totals = {r["student_id"]: (float(r["score"]), float(r["max_score"]))
                  for r in csv.DictReader(handle)}
    assert totals == {s: (float(a), float(b)) for s, (a, b) in grades.items()}, \
        "nbgrader export and grades.csv give different totals"


def _cli() -> list[str]:
    return [str(Path(sys.executable).parent / "workbook")]


def test_killed_run_resumes_and_regrading_is_identical(tmp_path):
    subs = _small_class(tmp_path / "submitted")
    out = tmp_path / "out"
    args = [*_cli(), "grade", str(subs), "--out", str(out), "--jobs", "1", "--no-progress"]

    # 1. Start a run and kill it (the whole process group) once the first student is saved.
    proc = subprocess.Popen(args, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved = out / "results" / A
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and not list(saved.glob("*.json")):
        assert proc.poll() is None, "the grading run ended before it could be killed"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in saved.glob("*.json")}
    assert 1 <= len(first) < len(CLASS), f"expected a partial run, found {sorted(first)}"
    assert not (out / "grades.csv").exists()

    # 2. Run again: it grades only the rest and completes.
    done = run_workbook("grade", str(subs), "--out", str(out), "--jobs", "1", "--no-progress")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for name, mtime in first.items():
        assert (saved / name).stat().st_mtime_ns == mtime, f"{name} was graded twice"
    resumed = _grades(out)
    assert sorted(resumed) == sorted(CLASS)
    assert resumed["reference"] == ("16", "16") and resumed["untouched-release"] == ("0", "16")
    _assert_gradebook_matches(out, CLASS)

    # 3. Grade the whole class again from scratch: identical grades, still one row each.
    done = run_workbook("grade", str(subs), "--out", str(out), "--jobs", "2", "--no-progress",
                        "--no-resume")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _grades(out) == resumed
    _assert_gradebook_matches(out, CLASS)
    _assert_nbgrader_tools_agree(out, tmp_path / "export")


def test_without_the_sandbox_grades_are_the_same_and_say_so(tmp_path):
    """The fallback for machines without Linux namespaces (here forced with
    WORKBOOK_SANDBOX=none): same scores, and every row says it was not isolated."""
    subs = _small_class(tmp_path / "submitted", ("reference", "wrong-no_scaling"))
    out = tmp_path / "out"
    done = run_workbook("grade", str(subs), "--out", str(out), "--no-progress",
                        env={"WORKBOOK_SANDBOX": "none"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _grades(out) == {"reference": ("16", "16"), "wrong-no_scaling": ("9", "16")}
    with open(out / "grades.csv", newline="") as handle:
        notes = [row["notes"] for row in csv.DictReader(handle)]
    assert all("graded without isolation (WORKBOOK_SANDBOX=none)" in n for n in notes), notes


# A Dask worker preload: the worker works in its own scratch folder, and any attempt of the
# worker process to open, list or hand a subprocess a path on the grader's side (the class's
# submissions, the grader's output, the course checkout's notebooks and config) fails loudly.
# So a green test means that nothing reaches the worker except through Dask's messages.
NO_SHARED_FILES = """
import os
import sys

FORBIDDEN = tuple(p for p in os.environ["WORKBOOK_TEST_FORBIDDEN"].split(os.pathsep) if p)


def _hook(event, args):
    if event in ("open", "os.listdir", "os.scandir", "os.chdir", "shutil.copyfile",
                 "subprocess.Popen", "os.exec", "os.posix_spawn"):
        for value in args:
            for text in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(text, (str, bytes, os.PathLike)):
                    text = os.fsdecode(text)
                    if any(text == p or text.startswith(p + os.sep) or
                           ("=" + p) in text for p in FORBIDDEN):
                        raise PermissionError(f"the worker touched the grader's side: {text}")


def dask_setup(worker):
    os.chdir(worker.local_directory)
    sys.addaudithook(_hook)
"""

# A worker without the workbook: importing the grader there fails.
WITHOUT_WORKBOOK = """
import sys

def dask_setup(worker):
    for name in ("workbook_grader", "workbook_instructor"):
        sys.modules[name] = None
"""


def _forbidden(tmp_path) -> str:
    paths = [tmp_path / "submitted", tmp_path / "out", ROOT / "solutions", ROOT / "course",
             ROOT / "autograder", ROOT / "nbgrader_config.py"]
    return os.pathsep.join(str(p.resolve()) for p in paths)


def test_grades_on_a_dask_cluster_that_shares_no_files(tmp_path, monkeypatch):
    """Separate worker processes, each in its own scratch folder, that may not touch a file on
    the grader's side: they grade from what Dask sends them, and the grades, the gradebook and
    the executed notebooks come back."""
    distributed = pytest.importorskip("dask.distributed")
    subs = _small_class(tmp_path / "submitted", ("reference", "untouched-release"))
    out = tmp_path / "out"
    monkeypatch.setenv("WORKBOOK_TEST_FORBIDDEN", _forbidden(tmp_path))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, local_directory=tmp_path / "workers",
                                  preload=[NO_SHARED_FILES]) as cluster:
        done = run_workbook("grade", str(subs), "--out", str(out), "--no-progress",
                            "--dask", cluster.scheduler_address)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open(out / "grades.csv", newline="") as handle:
        reasons = {r["student"]: r["reason"] for r in csv.DictReader(handle)}
    assert _grades(out) == {"reference": ("16", "16"), "untouched-release": ("0", "16")}, reasons
    _assert_gradebook_matches(out, ("reference", "untouched-release"))
    for student in ("reference", "untouched-release"):
        executed = (out / ".work" / "students" / A / student / "autograded" / student / A
                    / f"{A}.ipynb")
        assert executed.is_file(), f"the worker did not send back {student}'s executed notebook"
        assert (out / ".work" / "students" / A / student / "nbgrader.log").is_file()


def test_a_worker_without_the_workbook_is_a_clear_error_per_student(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    subs = _small_class(tmp_path / "submitted", ("reference", "untouched-release"))
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, local_directory=tmp_path / "workers",
                                  preload=[WITHOUT_WORKBOOK]) as cluster:
        done = run_workbook("grade", str(subs), "--out", str(out), "--no-progress",
                            "--dask", cluster.scheduler_address, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open(out / "grades.csv", newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    assert sorted(rows) == ["reference", "untouched-release"]
    for row in rows.values():
        assert row["score"] == "0", row
        assert "a Dask worker could not grade this submission" in row["reason"], row
        assert "course's environment" in row["reason"], row
    assert not list((out / "results" / A).glob("*.json")), \
        "a student the workers could not grade must be graded again on the next run"


def test_unreachable_dask_scheduler_is_a_clear_error(tmp_path):
    pytest.importorskip("dask.distributed")
    subs = _small_class(tmp_path / "submitted", ("untouched-release",))
    done = run_workbook("grade", str(subs), "--out", str(tmp_path / "out"), "--no-progress",
                        "--dask", "tcp://127.0.0.1:9")
    assert done.returncode == 2
    assert "could not reach the Dask scheduler" in done.stderr


def test_our_empty_gradebook_is_nbgraders_own(tmp_path, monkeypatch):
    """Course.generate creates each new gradebook itself (nbgrader would start an `alembic
    heads` process for its schema stamp, seconds on a 2-core machine): same tables, same
    stamp as a gradebook that nbgrader's Gradebook creates."""
    import sqlite3

    from nbgrader.api import Gradebook
    from workbook_instructor.course import new_gradebook

    ours, theirs = tmp_path / "ours.db", tmp_path / "theirs.db"
    new_gradebook(ours)
    # nbgrader runs `alembic` from this interpreter's scripts folder
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    Gradebook(f"sqlite:///{theirs}").close()

    def described(path):
        with sqlite3.connect(path) as db:
            return (db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
                    db.execute("SELECT version_num FROM alembic_version").fetchall())

    assert described(ours) == described(theirs)
