"""Autograde round trip: the reference earns full marks, the untouched release earns nothing,
and every wrong submission in autograder/mutants loses points on the tests meant for it."""
import functools

import pytest

from conftest import COURSE, assignments
from workbook_grader.pipeline import grade_class
from workbook_instructor.samples import build_samples


@functools.lru_cache(maxsize=None)
def graded(assignment: str, tmp: str):
    from pathlib import Path

    submitted = build_samples(COURSE, [assignment], Path(tmp) / "submitted")
    results, problems = grade_class(submitted, Path(tmp) / "out", course=COURSE, jobs=2,
                                    progress=False, resume=False)
    assert not problems, problems
    from workbook_grader.sandbox import factory as kernel_factory

    left = [f for f in kernel_factory._shared.values() if f.alive]
    assert not left, (f"the grading run left {len(left)} kernel factory process(es) running, each "
                      "holding the course's imports in memory: a run must close its factory")
    return {r.student: r for r in results}


@pytest.fixture(scope="module")
def class_results(tmp_path_factory):
    cache = {}

    def get(assignment):
        if assignment not in cache:
            cache[assignment] = graded(assignment, str(tmp_path_factory.mktemp(assignment)))
        return cache[assignment]

    return get


def _per_assignment():
    """One xdist group per assignment, so each class is graded once, by one worker, and the
    assignments spread over the workers (`make test` runs `--dist loadgroup`)."""
    return [pytest.param(a, marks=pytest.mark.xdist_group(f"roundtrip-{a}"), id=a)
            for a in assignments()]


# Every notebook keeps at least this many plausible wrong submissions (5 unless stated).
MIN_WRONG = {"03-bert-finetuning": 4, "04-training-diagnostics": 4,
             "05-efficient-architectures": 4}


@pytest.mark.parametrize("assignment", _per_assignment())
def test_reference_gets_full_marks(assignment, class_results):
    ref = class_results(assignment)["reference"]
    failed = {c.grade_id: c.message for c in ref.cells if not c.passed}
    assert ref.max_score > 0 and ref.score == ref.max_score, (
        f"reference lost points: {failed}; reasons: {ref.reasons}")
    assert ref.status == "graded" and not ref.reasons


@pytest.mark.parametrize("assignment", _per_assignment())
def test_untouched_release_gets_no_points(assignment, class_results):
    release = class_results(assignment)["untouched-release"]
    assert release.score == 0, {c.grade_id: c.points for c in release.cells if c.points}


@pytest.mark.parametrize("assignment", assignments())
def test_enough_wrong_submissions(assignment):
    found, wanted = len(COURSE.mutants(assignment)), MIN_WRONG.get(assignment, 5)
    assert found >= wanted, (
        f"autograder/mutants/{assignment}.toml has {found} wrong submissions; keep at least "
        f"{wanted}, each a plausible mistake that a test catches")


@pytest.mark.parametrize(
    "assignment,mutant",
    [pytest.param(a, m, marks=pytest.mark.xdist_group(f"roundtrip-{a}"), id=f"{a}-{m.name}")
     for a in assignments() for m in COURSE.mutants(a)])
def test_wrong_submission_loses_points_where_expected(assignment, mutant, class_results):
    results = class_results(assignment)
    wrong = results[f"wrong-{mutant.name}"]
    by_id = {c.grade_id: c for c in wrong.cells}
    assert mutant.loses, f"mutant {mutant.name} names no test that should catch it"
    for gid in mutant.loses:
        assert gid in by_id, f"mutant {mutant.name} names unknown test cell {gid}"
        assert not by_id[gid].passed, (
            f"{mutant.mistake} was not caught by {gid} (scored {by_id[gid].points}/"
            f"{by_id[gid].max_points}): the test cannot fail on this mistake")
        assert by_id[gid].message, f"{gid} failed without a message for the student"
    assert wrong.score < results["reference"].score


EXPECTED = COURSE.autograder_dir / "expected-scores.json"


@pytest.mark.parametrize("assignment", _per_assignment())
def test_sample_class_scores_are_as_recorded(assignment, class_results):
    """The sample class (what `workbook demo --all` grades) scores exactly as recorded in
    autograder/expected-scores.json: a faster or stricter grader must not change a grade by
    accident. After an intended change (a new test, a new wrong submission), update the file
    with the values this test prints."""
    import json

    got = {s: r.score for s, r in sorted(class_results(assignment).items())}
    recorded = json.loads(EXPECTED.read_text(encoding="utf-8")).get(assignment, {})
    changed = {s: {"recorded": recorded.get(s), "now": got.get(s)}
               for s in sorted(set(recorded) | set(got)) if recorded.get(s) != got.get(s)}
    assert not changed, (
        f"{assignment}: the sample class scored differently from "
        f"autograder/expected-scores.json: {changed}")
