import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbook_instructor.course import Course  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COURSE = Course(ROOT)


def assignments() -> list[str]:
    return COURSE.assignments()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_workbook(*args, cwd=ROOT, timeout=1800, env=None):
    """Run the installed CLI as a user would; return the CompletedProcess."""
    exe = shutil.which("workbook") or str(Path(sys.executable).parent / "workbook")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
