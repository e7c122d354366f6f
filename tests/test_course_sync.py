"""course/ must be exactly what nbgrader generates from solutions/ (never hand-edited)."""
import filecmp
import json

import pytest

from conftest import COURSE, ROOT, assignments
from workbook_instructor.release import MANIFEST, hand_edits, release


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    target = tmp_path_factory.mktemp("release")
    release(COURSE, assignments(), into=target)
    return target


def test_release_manifest_matches_the_committed_course():
    """course/.released.json records what the last release wrote; if it disagreed with the
    committed files, the next `workbook release` would refuse on a fresh clone."""
    assert (ROOT / "course" / MANIFEST).is_file()
    assert hand_edits(ROOT / "course", assignments()) == []


@pytest.mark.parametrize("assignment", assignments())
def test_course_matches_a_fresh_release(assignment, fresh_release):
    committed = ROOT / "course" / assignment
    fresh = fresh_release / assignment
    assert committed.is_dir(), f"course/{assignment} is missing: run `workbook release {assignment}`"
    comparison = filecmp.dircmp(fresh, committed, ignore=["__pycache__", ".ipynb_checkpoints"])
    stale = comparison.diff_files + comparison.left_only + comparison.right_only
    assert not stale, (f"course/{assignment} is out of sync with solutions/ ({stale}); run "
                       f"`workbook release {assignment}` and commit the result")


@pytest.mark.parametrize("assignment", assignments())
def test_release_holds_no_solutions_or_hidden_tests(assignment):
    for path in (ROOT / "course" / assignment).glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{path.name} leaks {marker!r} to students"
        notebook = json.loads(text)
        outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        assert not outputs, f"{path.name} was released with outputs"


@pytest.mark.parametrize("assignment", assignments())
def test_every_exercise_has_visible_and_hidden_tests(assignment):
    """Graded notebooks have visible and hidden tests, and every test cell checks something."""
    graded_notebooks = 0
    for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        graded = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
        if not graded:
            continue  # e.g. a reading notebook beside the graded one
        graded_notebooks += 1
        hidden = [c for c in graded if "BEGIN HIDDEN TESTS" in "".join(c["source"])]
        visible = [c for c in graded if c not in hidden]
        assert visible and hidden, f"{path.name} needs both visible and hidden test cells"
        for cell in graded:
            code = [ln for ln in "".join(cell["source"]).splitlines()
                    if ln.strip() and not ln.strip().startswith("#")]
            assert code, f"test cell {cell['metadata']['nbgrader']['grade_id']} asserts nothing"
    assert graded_notebooks, f"{assignment} has no graded notebook"


@pytest.mark.parametrize("assignment", assignments())
def test_figures_are_laid_out_only_when_drawn(assignment):
    """``tight_layout()`` measures every tick label the moment it is called, and the grader
    never draws a figure (``MPLBACKEND=agg``), so each graded student paid for a layout that
    nobody saw; constrained layout runs only when a figure is drawn (docs/AUTHORING.md)."""
    for path in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "code" and "tight_layout(" in "".join(cell["source"]):
                pytest.fail(f"{path.name}, cell {index} calls tight_layout(): create the figure "
                            "with plt.subplots(..., layout=\"constrained\") instead "
                            "(docs/AUTHORING.md, 'Outputs and nbval')")
