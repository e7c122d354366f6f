"""`workbook check`, the student's own run of a notebook: what it reports for unfinished,
wrong, broken and runaway notebooks (small notebooks with nbgrader's marks, one kernel each)."""
import nbformat
import pytest

from conftest import run_workbook
from transformer_workbook.check import check_notebook, format_outcomes


def _cell(text, **nbgrader):
    cell = nbformat.v4.new_code_cell(text)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "solution": False,
                                     "grade": False, **nbgrader}
    return cell


def _notebook(tmp_path, square="    raise NotImplementedError()",
              cube="    raise NotImplementedError()", given="print(square(2))"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# squares"),
        _cell(f"def square(x):\n{square}", solution=True, grade_id="square"),
        _cell('assert square(3) == 9, "square(3) should be 9"', grade=True, locked=True,
              points=1, grade_id="test_square"),
        _cell(f"def cube(x):\n{cube}", solution=True, grade_id="cube"),
        _cell('assert cube(2) == 8, "cube(2) should be 8"', grade=True, locked=True, points=1,
              grade_id="test_cube"),
        _cell(given),
        _cell("# Hidden tests for cube run here when your notebook is graded.", grade=True,
              locked=True, points=2, grade_id="test_cube_hidden"),
    ]
    path = tmp_path / "squares.ipynb"
    nbformat.write(nb, path)
    return path


def _status(report):
    return {o.grade_id: o.status for o in report}


def test_unfinished_exercises_read_as_todo_and_a_test_blocked_by_another_says_which(tmp_path):
    report = check_notebook(_notebook(tmp_path), size="grade", timeout=60)
    assert _status(report) == {"test_square": "not attempted", "test_cube": "not attempted",
                               "test_cube_hidden": "hidden"}
    assert not report.other_errors   # the given cell's NotImplementedError repeats a TODO
    report = check_notebook(_notebook(tmp_path, cube="    return square(x) * x"), size="grade",
                            timeout=60)
    cube = next(o for o in report if o.grade_id == "test_cube")
    assert cube.status == "failed" and "'square' (cell 2)" in cube.message


def test_errors_outside_the_tests_are_reported(tmp_path):
    # a syntax error in an exercise is shown as itself, not as the NameError it causes later
    report = check_notebook(_notebook(tmp_path, square="    return x *"), size="grade", timeout=60)
    assert report.exercise_errors and "SyntaxError" in report.exercise_errors[0]
    assert "exercise 'square' (cell 2" in report.exercise_errors[0]
    # a wrong answer that passes its visible test but breaks a cell the course wrote
    report = check_notebook(_notebook(tmp_path, square="    return x * x",
                                      cube="    return x ** 3",
                                      given='assert square(-2) == 4 and square(0.5) == 0.25\n'
                                            'raise ValueError("the plot needs a float")'),
                            size="grade", timeout=60)
    assert _status(report)["test_square"] == "passed" and not report.ok
    assert "ValueError: the plot needs a float" in report.other_errors[0]
    assert "errors in the course's own cells" in format_outcomes(report)


@pytest.mark.parametrize("cube, stopped", [
    ("    import os\n    os._exit(1)", "the kernel died while it ran exercise 'cube'"),
    ("    while True:\n        pass", "ran longer than 5 s"),
])
def test_a_run_that_cannot_go_on_stops_with_a_reason(tmp_path, cube, stopped):
    """The kernel dying and an endless loop used to hang `workbook check` for good."""
    path = _notebook(tmp_path, square="    return x * x", cube=cube + "\n\ncube(2)")
    done = run_workbook("check", str(path), "--timeout", "5", timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert stopped in done.stdout and "STOPPED" in done.stdout
    assert "----  test_cube" in done.stdout and "did not run" in done.stdout
    assert "PASS  test_square" in done.stdout
