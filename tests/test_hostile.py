"""The hostile and broken submissions catalogue (autograder/hostile.toml) and our red team's
attacks (autograder/redteam.toml), graded in one run beside a clean bystander: every case gets
a fair score and a clear reason, each attack has the outcome its guarantee promises
(docs/THREAT-MODEL.md), nobody else is affected, the gradebook stays intact, and the run
finishes."""
import csv
import hashlib
import json

import pytest

from conftest import ROOT, run_workbook
from hostile_class import build_hostile_class, load_cases
from transformer_workbook.notebooks import printed
from workbook_grader.sandbox.namespaces import probe

CASES = load_cases(ROOT)
ATTACKS = {name: case for name, case in CASES.items() if "guarantee" in case}
GRADED = {name: case for name, case in CASES.items() if "refused" not in case}
NEEDS_ISOLATION = {"network_call", "write_outside"} | {
    name for name, case in ATTACKS.items() if case.get("isolation")}
GUARANTEES = ("confidentiality", "honest-scores", "isolation", "safe-outputs")
WHY_NO_SANDBOX = probe()
no_isolation = pytest.mark.skipif(
    WHY_NO_SANDBOX is not None,
    reason=f"grading runs without isolation here ({WHY_NO_SANDBOX}), the documented fallback; "
           "these cases need the real sandbox")


def test_catalogue_has_at_least_twelve_cases():
    assert len(CASES) - len(ATTACKS) >= 12


def test_red_team_has_two_attacks_per_guarantee():
    counts = {g: sum(1 for a in ATTACKS.values() if a["guarantee"] == g) for g in GUARANTEES}
    assert len(ATTACKS) >= 15 and min(counts.values()) >= 2, counts


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


@pytest.mark.parametrize("case", sorted(GRADED))
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
    reason = spec.get("reason", "")
    reasons = reason if isinstance(reason, list) else [reason]
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


def _graded_copy(out, case: str) -> str:
    path = (out / ".work" / "students" / "01-attention" / case / "autograded" / case
            / "01-attention" / "01-attention.ipynb")
    return path.read_text(encoding="utf-8")


def _printed(out, case: str) -> list[str]:
    """What each code cell of the graded copy printed, one text per cell."""
    cells = json.loads(_graded_copy(out, case))["cells"]
    return [printed(c) for c in cells if c["cell_type"] == "code"]


def _skip_without_sandbox(case: str) -> None:
    if case in NEEDS_ISOLATION and WHY_NO_SANDBOX:
        pytest.skip(f"no sandbox here ({WHY_NO_SANDBOX}); the documented fallback does not stop "
                    f"{case}")


@pytest.mark.parametrize("case", sorted(a for a in ATTACKS if "shows" in ATTACKS[a]))
def test_attack_sees_what_the_threat_model_promises(case, graded):
    """The attack's own cell reports what it could reach: nothing."""
    _skip_without_sandbox(case)
    _, out, _, _ = graded
    assert any(ATTACKS[case]["shows"] in text for text in _printed(out, case)), \
        f"{case}: its cell did not print {ATTACKS[case]['shows']!r}"


@pytest.mark.parametrize("case", sorted(a for a in ATTACKS if "message" in ATTACKS[a]))
def test_attack_message_is_withheld(case, graded):
    _, out, _, _ = graded
    with open(out / "cells.csv", newline="") as handle:
        messages = [r["message"] for r in csv.DictReader(handle) if r["student"] == case]
    assert any(ATTACKS[case]["message"] in m for m in messages), messages


@pytest.mark.parametrize("case", sorted(a for a in ATTACKS if "absent" in ATTACKS[a]))
def test_attack_payload_reaches_no_report(case, graded):
    _, out, _, _ = graded
    payload = ATTACKS[case]["absent"]
    reports = [out / "feedback" / f"{case}.html"]
    if "<" not in payload:   # markup is only dangerous in the HTML page
        reports += [out / "grades.csv", out / "cells.csv"]
    for path in reports:
        assert payload not in path.read_text(encoding="utf-8"), f"{payload!r} is in {path.name}"


@pytest.mark.parametrize("case", sorted(a for a in ATTACKS if "process" in ATTACKS[a]))
def test_attack_leaves_no_process_behind(case, graded):
    import psutil

    _skip_without_sandbox(case)
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
            if " ".join(p.info["cmdline"] or []) == ATTACKS[case]["process"]]
    assert not left, f"{case}: still running after grading: {left}"


@pytest.mark.parametrize("case", sorted(a for a in ATTACKS if "refused" in ATTACKS[a]))
def test_unsafe_student_id_is_refused_with_a_reason(case, graded):
    _, out, rows, done = graded
    assert ATTACKS[case]["refused"] in done.stdout + done.stderr
    assert ATTACKS[case]["student"] not in rows


def test_formulas_in_messages_stay_text(graded):
    _, out, _, _ = graded
    with open(out / "grades.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            for value in row.values():
                assert not value.startswith(("=", "+", "-", "@")), value
