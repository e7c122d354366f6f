"""Stage 1: find the submissions to grade, in nbgrader's layout:
``ROOT/<student>/<assignment>/*.ipynb``. Links are never followed: a student folder, an
assignment folder or a file that is a link is reported and left alone."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}")   # whole name: fullmatch


class GradingError(Exception):
    """The whole grading job cannot go on (the message says why and what to do)."""


@dataclass(frozen=True)
class Submission:
    student: str
    assignment: str
    folder: Path

    def fingerprint(self, source_folder: Path) -> str:
        """Changes when the submission or the assignment's source notebooks change."""
        digest = hashlib.sha256()
        for folder, tag in ((self.folder, b"submission"), (source_folder, b"source")):
            digest.update(tag)
            for path in sorted(p for p in folder.rglob("*")
                               if not p.is_symlink() and p.is_file()):
                if tag == b"source" and path.suffix != ".ipynb":
                    continue
                digest.update(str(path.relative_to(folder)).encode())
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
        return digest.hexdigest()


def find_submissions(root: Path, known_assignments: list[str],
                     only: list[str] | None = None) -> tuple[list[Submission], list[str]]:
    """Return the submissions and a list of problems with the folder layout itself."""
    root = Path(root)
    if not root.exists():
        raise GradingError(f"submissions folder {root} does not exist")
    if not root.is_dir():
        raise GradingError(f"{root} is a file; pass the folder that holds one folder per student")
    found, problems = [], []
    for student_dir in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if student_dir.is_symlink():
            problems.append(f"{student_dir.name}: a link, not a folder; skipped")
            continue
        if not student_dir.is_dir():
            problems.append(f"{student_dir.name}: not a student folder (expected "
                            f"{root.name}/<student>/<assignment>/*.ipynb); skipped")
            continue
        if not SAFE_ID.fullmatch(student_dir.name):
            problems.append(f"{student_dir.name!r}: a student id may hold only letters, digits "
                            "and ._@+-; skipped")
            continue
        assignment_dirs = sorted(p for p in student_dir.iterdir() if p.is_dir()
                                 and not p.is_symlink() and not p.name.startswith("."))
        if not assignment_dirs:
            problems.append(f"{student_dir.name}: no assignment folder inside; skipped")
        for folder in assignment_dirs:
            if only and folder.name not in only:
                continue
            if folder.name not in known_assignments:
                problems.append(f"{student_dir.name}/{folder.name}: no assignment called "
                                f"{folder.name!r} in solutions/; skipped")
                continue
            found.append(Submission(student_dir.name, folder.name, folder))
    if not found:
        detail = "; ".join(problems[:5]) or "the folder is empty"
        raise GradingError(f"no gradable submissions under {root}: {detail}")
    return found, problems
