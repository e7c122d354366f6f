"""What the grader's kernel factory imports for a run: the course's common list
(``c.GradingSandbox.preload``) and, per assignment, the libraries only it needs
(``c.GradingSandbox.preload_for``). A run that grades notebook 01 must not import peft, and a
run that grades notebook 06 must: a module a notebook imports but its run did not preload
still works, but every student then pays for the import (peft: about 1.3 s of CPU each)."""
import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import COURSE, ROOT, assignments
from workbook_grader.execute import Settings
from workbook_grader.policy import _python, parse


def imported(code: str) -> set[str]:
    """Every module an ``import`` anywhere in ``code`` names (inside functions too), with the
    submodule that ``from package import name`` may load."""
    names = set()
    for node in ast.walk(parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def notebook_imports(assignment: str) -> set[str]:
    names = set()
    for path in sorted((ROOT / "solutions" / assignment).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                code, rule = _python(cell.source)
                assert rule is None, f"{path.name}: {rule}"
                names |= imported(code)
    return names


def reaches(name: str, modules: list[str]) -> set[str]:
    """The listed modules that importing ``name`` loads (itself, or a package above it)."""
    return {m for m in modules if name == m or name.startswith(m + ".")}


def test_preload_for_names_only_real_assignments():
    unknown = sorted(set(COURSE.preload_extras()) - set(assignments()))
    assert not unknown, (f"c.GradingSandbox.preload_for names {unknown}, which are not "
                         f"assignments of the course ({assignments()}): a misspelt name "
                         "preloads nothing for the assignment it meant")


@pytest.mark.parametrize("assignment", assignments())
def test_what_a_notebook_imports_is_preloaded_for_its_assignment(assignment):
    every = COURSE.preload
    needed = set().union(*(reaches(n, every) for n in notebook_imports(assignment)))
    missing = sorted(needed - set(COURSE.preload_for([assignment])))
    assert not missing, (
        f"solutions/{assignment} imports {missing}, which nbgrader_config.py preloads for "
        f"other assignments only: add them to c.GradingSandbox.preload_for[{assignment!r}] "
        "(or to the common c.GradingSandbox.preload), or every graded student imports them")


def test_the_student_package_imports_only_common_preloads():
    """The notebooks reach the student package's functions in ways no import line shows
    (notebook 01 loads MiniLM through it, which imports transformers inside a function), so
    anything it imports from the per-assignment lists must be common to every run."""
    extras = sorted({m for ms in COURSE.preload_extras().values() for m in ms}
                    - set(COURSE.preload_for([])))
    for path in sorted((ROOT / "src" / "transformer_workbook").rglob("*.py")):
        for name in imported(path.read_text(encoding="utf-8")):
            found = reaches(name, extras)
            assert not found, (f"{path.relative_to(ROOT)} imports {sorted(found)}, which "
                               "nbgrader_config.py preloads only for some assignments: move "
                               "them to the common c.GradingSandbox.preload")


def test_a_run_preloads_the_common_list_and_its_assignments_extras():
    common = COURSE.preload_for([])
    assert "torch" in common and "peft" not in common
    only_01 = COURSE.preload_for(["01-attention"])
    assert only_01 == common
    with_06 = COURSE.preload_for(["06-lora-qlora", "01-attention"])
    assert with_06[:len(common)] == common and "peft" in with_06
    assert len(with_06) == len(set(with_06)), "each module once"
    every = COURSE.preload
    assert set(every) == set(COURSE.preload_for(assignments()))


def test_the_grading_settings_pass_the_runs_assignments_to_the_factory(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr("workbook_grader.sandbox.kernelspec.factory_for",
                        lambda course, env, never, preload=None: seen.append(preload))
    Settings(course=COURSE, work=tmp_path, cell_timeout=30,
             assignments=("01-attention",)).factory()
    Settings(course=COURSE, work=tmp_path, cell_timeout=30).factory()
    assert seen == [COURSE.preload_for(["01-attention"]), COURSE.preload]


def test_the_dynamic_check_runs_a_notebook_and_reports_what_it_imported():
    """scripts/preload_usage.py (the check that sees imports no import line shows), end to end
    on notebook 01 at the ci size (about 10 s)."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "preload_usage.py"),
                           "01-attention"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("01-attention"))
    assert "imported but not preloaded for it: none" in line
    assert "transformers.models.llama.modeling_llama" in line.split("unused:")[1]
