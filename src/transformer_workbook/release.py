"""Regenerate ``course/`` from ``solutions/`` through nbgrader (never edit ``course/`` by hand)."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from .grading.nbgrader_calls import nbgrader_env
from .paths import repo_root


def assignments(root: Path | None = None) -> list[str]:
    root = root or repo_root()
    return sorted(p.name for p in (root / "solutions").iterdir()
                  if p.is_dir() and any(p.glob("*.ipynb")))


def release(names: list[str] | None = None, *, root: Path | None = None,
            release_dir: Path | None = None) -> list[str]:
    """Run ``nbgrader generate_assignment`` for each assignment, from the repository root.

    ``release_dir`` redirects the output (the sync test releases into a temporary folder and
    compares it with the committed ``course/``). The gradebook it touches is a throwaway one.
    """
    root = root or repo_root()
    names = names or assignments(root)
    unknown = sorted(set(names) - set(assignments(root)))
    if unknown:
        raise ValueError(f"no such assignment in solutions/: {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(prefix="workbook-release-") as scratch:
        db = f"sqlite:///{Path(scratch) / 'gradebook.db'}"
        for name in names:
            cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force",
                   f"--CourseDirectory.db_url={db}", "--log-level=WARN"]
            if release_dir is not None:
                cmd.append(f"--CourseDirectory.release_directory={release_dir}")
            done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=nbgrader_env())
            if done.returncode != 0:
                raise RuntimeError(f"nbgrader could not release {name}:\n{done.stderr[-4000:]}")
    return names
