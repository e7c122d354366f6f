"""The hostile and broken submissions catalogue (autograder/hostile.toml), graded in one run
beside a clean bystander: every case gets a fair score and a clear reason, nobody else is
affected, the gradebook stays intact, and the run finishes."""
import csv
import hashlib
import json

import pytest

from conftest import ROOT, run_workbook
from hostile_class import build_hostile_class, load_cases
from workbook_grader.sandbox.namespaces import probe

CASES = load_cases(ROOT)
NEEDS_ISOLATION = {"network_call", "write_outside"}
WHY_NO_SANDBOX = probe()
no_isolation = pytest.mark.skipif(
    WHY_NO_SANDBOX is not None,
    reason=f"grading runs without isolation here ({WHY_NO_SANDBOX}), the documented fallback; "
           "these cases need the real sandbox")


def test_catalogue_has_at_least_twelve_cases():
    assert len(CASES) >= 12


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    build_hostile_class(ROOT, tmp / "submitted")
    out = tmp / "out"
    done = run_workbook("grade", str(tmp / "submitted"), "--out", str(out), "--jobs", "2",
                        "--cell-timeout", "60", "--no-progress", "--memory-limit", "6")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "grades.csv", newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    return tmp, out, rows, done


def test_bystander_is_unaffected(graded):
    _, _, rows, _ = graded
    assert rows["bystander"]["score"] == rows["bystander"]["max_score"] == "16"
    assert rows["bystander"]["reason"] == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_gets_fair_score_and_clear_reason(case, graded):
    if case in NEEDS_ISOLATION and WHY_NO_SANDBOX:
        pytest.skip(f"no sandbox here ({WHY_NO_SANDBOX}); without it a {case} submission is "
                    "not stopped (documented fallback)")
    _, _, rows, _ = graded
    row, spec = rows[case], CASES[case]
    score, full = float(row["score"]), float(row["max_score"])
    expected = {"full": score == full, "zero": score == 0, "partial": 0 < score < full}
    assert expected[spec["score"]], f"{case}: scored {score}/{full}, expected {spec['score']} ({row['reason']})"
    said = f"{row['reason']} {row['notes']}"
    reasons = spec["reason"] if isinstance(spec["reason"], list) else [spec["reason"]]
    assert any(r in said for r in reasons), f"{case}: reason and notes were {said!r}"


@no_isolation
def test_network_really_blocked_and_files_untouched(graded):
    tmp, out, rows, _ = graded
    cells = (out / "cells.csv").read_text()
    assert "owned" not in (out / "results" / "01-attention" / "bystander.json").read_text()
    for result in (out / "results" / "01-attention").glob("*.json"):
        assert json.loads(result.read_text())["student"] == result.stem
    assert "gaierror" in rows["network_call"]["reason"] or "OSError" in rows["network_call"]["reason"] \
        or "Network is unreachable" in rows["network_call"]["reason"], rows["network_call"]["reason"]
    assert cells.count("\n") > 16


def test_hidden_test_source_never_reaches_feedback(graded):
    _, out, _, _ = graded
    solution = json.loads((ROOT / "solutions" / "01-attention" / "01-attention.ipynb").read_text())
    hidden_lines = [ln.strip() for c in solution["cells"]
                    if "BEGIN HIDDEN TESTS" in "".join(c["source"])
                    for ln in "".join(c["source"]).splitlines()
                    if ln.strip() and "HIDDEN TESTS" not in ln and len(ln.strip()) > 25]
    for page in (out / "feedback").glob("*.html"):
        text = page.read_text()
        leaked = [ln for ln in hidden_lines if ln in text]
        assert not leaked, f"{page.name} shows hidden test source: {leaked[:2]}"
