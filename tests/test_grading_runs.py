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


def test_grades_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    subs = _small_class(tmp_path / "submitted", ("reference", "untouched-release"))
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        done = run_workbook("grade", str(subs), "--out", str(out), "--no-progress",
                            "--dask", cluster.scheduler_address)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _grades(out) == {"reference": ("16", "16"), "untouched-release": ("0", "16")}
    _assert_gradebook_matches(out, ("reference", "untouched-release"))


def test_unreachable_dask_scheduler_is_a_clear_error(tmp_path):
    pytest.importorskip("dask.distributed")
    subs = _small_class(tmp_path / "submitted", ("untouched-release",))
    done = run_workbook("grade", str(subs), "--out", str(tmp_path / "out"), "--no-progress",
                        "--dask", "tcp://127.0.0.1:9")
    assert done.returncode == 2
    assert "could not reach the Dask scheduler" in done.stderr
