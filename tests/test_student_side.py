"""The student's side: independent of the instructor's, and no tool ever touches a student's work."""
import ast
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, run_workbook

STUDENT = ROOT / "src" / "transformer_workbook"
INSTRUCTOR_SIDE = ("nbgrader", "workbook_instructor", "workbook_grader")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_student_package_imports_nothing_from_the_instructor_side():
    offending = {str(p.relative_to(ROOT)): sorted(_imports(p) & set(INSTRUCTOR_SIDE))
                 for p in STUDENT.rglob("*.py") if _imports(p) & set(INSTRUCTOR_SIDE)}
    assert not offending, f"the student package must not import these: {offending}"


def test_every_student_module_imports_without_nbgrader_or_the_instructor_packages():
    modules = sorted(".".join(p.relative_to(STUDENT.parent).with_suffix("").parts)
                     .removesuffix(".__init__") for p in STUDENT.rglob("*.py"))
    script = ("import sys\n"
              + "".join(f"sys.modules[{m!r}] = None\n" for m in INSTRUCTOR_SIDE)
              + "import importlib\n"
              + f"for name in {modules!r}:\n    importlib.import_module(name)\n"
              + "from transformer_workbook.cli import build_parser\nbuild_parser()\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _course_copy(target: Path) -> Path:
    """A checkout of the course with one assignment (what the tools need to run)."""
    target.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", target)
    for folder in ("solutions/01-attention", "course/01-attention"):
        shutil.copytree(ROOT / folder, target / folder)
    shutil.copy(ROOT / "course" / ".released.json", target / "course")
    (target / "autograder" / "mutants").mkdir(parents=True)
    shutil.copy(ROOT / "autograder" / "mutants" / "01-attention.toml",
                target / "autograder" / "mutants")
    return target


def test_no_command_changes_what_a_student_wrote(tmp_path):
    """A student edits the released copy in course/ (by mistake) and their own copy in work/.
    Starting again, releasing and the demo leave both exactly as the student left them."""
    checkout = _course_copy(tmp_path / "checkout")
    done = run_workbook("start", "01", cwd=checkout)
    assert done.returncode == 0, done.stderr
    mine = checkout / "work" / "01-attention" / "01-attention.ipynb"
    assert mine.is_file()
    for notebook in (mine, checkout / "course" / "01-attention" / "01-attention.ipynb"):
        data = json.loads(notebook.read_text())
        data["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "my notes"})
        notebook.write_text(json.dumps(data))
    before = {"course": _digests(checkout / "course"), "work": _digests(checkout / "work")}

    again = run_workbook("start", "01", cwd=checkout)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "your work there is kept" in again.stderr and "workbook start 01 " in again.stderr

    refused = run_workbook("release", "01-attention", cwd=checkout)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "01-attention/01-attention.ipynb" in refused.stderr and "--force" in refused.stderr

    demo = run_workbook("demo", "--out", str(tmp_path / "demo-output"), cwd=checkout)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "reference" in demo.stdout and "16/16" in demo.stdout
    assert not (checkout / "autograder" / "submitted").exists()

    after = {"course": _digests(checkout / "course"), "work": _digests(checkout / "work")}
    assert after == before, "a command changed files the student had edited"
    forced = run_workbook("release", "01-attention", "--force", cwd=checkout)
    assert forced.returncode == 0, forced.stderr
    assert _digests(checkout / "work") == before["work"]
