"""Broken submissions get 0 with a reason; everyone else is graded normally."""
import json
import shutil

import pytest

from conftest import COURSE, ROOT, run_workbook
from transformer_workbook.notebooks import UnreadableNotebook, read_notebook
from workbook_grader.inspect import inspect
from workbook_grader.masters import Master
from workbook_grader.submissions import GradingError, Submission, find_submissions
from workbook_instructor.samples import reference_notebooks

A = "01-attention"
NB = "01-attention"


def _grade_cells():
    cells = json.loads((ROOT / "solutions" / A / f"{NB}.ipynb").read_text())["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
            for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def test_missing_submissions_folder_is_a_clear_error(tmp_path):
    with pytest.raises(GradingError, match="does not exist"):
        find_submissions(tmp_path / "nope", [A])
    done = run_workbook("grade", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "nope" in done.stderr


def test_not_json_names_the_file_and_the_problem(tmp_path):
    bad = tmp_path / f"{NB}.ipynb"
    bad.write_text("{ this is not json")
    with pytest.raises(UnreadableNotebook, match=rf"{NB}.ipynb is not notebook JSON \(line 1"):
        read_notebook(bad)


def test_wrong_nbformat_version(tmp_path):
    bad = tmp_path / "x.ipynb"
    bad.write_text(json.dumps({"nbformat": 3, "cells": []}))
    with pytest.raises(UnreadableNotebook, match="nbformat version 3"):
        read_notebook(bad)


def test_deleted_and_duplicated_grade_cells_are_reported(tmp_path):
    nb = reference_notebooks(COURSE, A)[NB]
    cells = nb["cells"]
    gid = lambda c: c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    nb["cells"] = [c for c in cells if gid(c) != "test_softmax"]
    dup = next(c for c in nb["cells"] if gid(c) == "test_sdpa")
    nb["cells"].append(dup)
    (tmp_path / f"{NB}.ipynb").write_text(json.dumps(nb))
    master = Master(A, tmp_path / "unused.db", {NB: _grade_cells()}, {NB: set()}, {NB: {}})
    found = inspect(Submission("someone", A, tmp_path), master)
    assert set(found.zeroed[NB]) == {"test_softmax", "test_sdpa"}
    text = " ".join(found.problems)
    assert "'test_softmax' was deleted" in text and "'test_sdpa' appears 2 times" in text


def test_broken_students_get_zero_and_others_are_unaffected(tmp_path):
    """One run with a good student beside four broken ones."""
    subs = tmp_path / "submitted"
    good = reference_notebooks(COURSE, A)[NB]

    def put(student, text):
        folder = subs / student / A
        folder.mkdir(parents=True)
        (folder / f"{NB}.ipynb").write_text(text)

    put("good", json.dumps(good))
    put("not-json", "definitely { not json")
    raising = json.loads(json.dumps(good))
    setup = next(c for c in raising["cells"] if c["cell_type"] == "code")
    setup["source"] = "import a_module_that_does_not_exist\n" + "".join(setup["source"])
    put("raises-at-import", json.dumps(raising))
    deleted = json.loads(json.dumps(good))
    deleted["cells"] = [c for c in deleted["cells"]
                        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != "test_entropy"]
    put("deleted-cell", json.dumps(deleted))
    (subs / "empty-student").mkdir()

    done = run_workbook("grade", str(subs), "--out", str(tmp_path / "out"), "--jobs", "2",
                        "--no-progress")
    assert done.returncode == 0, done.stderr
    rows = {line.split(",")[0]: line for line in
            (tmp_path / "out" / "grades.csv").read_text().splitlines()[1:]}
    assert rows["good"].startswith("good,01-attention,16,16,")
    assert ",0,16," in rows["not-json"] and "not notebook JSON" in rows["not-json"]
    assert ",0,16," in rows["raises-at-import"]
    assert "'test_entropy' was deleted" in rows["deleted-cell"]
    assert rows["deleted-cell"].split(",")[2] == "15"
    assert "empty-student: no assignment folder inside" in done.stdout
    feedback = (tmp_path / "out" / "feedback" / "raises-at-import.html").read_text()
    assert "ModuleNotFoundError" in feedback
    assert "_big = torch.tensor" not in feedback, "hidden test source leaked into feedback"


def test_uninterruptible_cell_gets_a_reason_that_says_so(tmp_path):
    """A cell past the time limit that ignores the interrupt (SIGINT ignored, or long native
    code) makes nbgrader give up on the notebook; the reason must say that, not only "exit
    status 1". The log is nbgrader's own, from a graded run of such a cell (red team, 2026-11-29)."""
    from workbook_grader.execute import Execution
    from workbook_grader.score import _failure_reason

    log = ("[AutogradeApp | ERROR] Timeout waiting for execute reply (10s).\n"
           "[AutogradeApp | ERROR] Interrupting kernel\n"
           "    nbclient.exceptions.CellTimeoutError: A cell timed out while it was being "
           "executed, after 4 seconds.\n    The message was: Timeout waiting for IOPub output.\n")
    ran = Execution(1, log, 12.0, {}, tmp_path / "gradebook.db")
    reason = _failure_reason(ran, 1800.0)
    assert "did not stop when interrupted" in reason and "time limit" in reason
    assert "exit status" not in reason
