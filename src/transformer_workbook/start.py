"""``workbook start NN [DEST]``: copy an assignment's released notebooks into your own folder.

The released notebooks in ``course/`` are the course's copy; you work in yours (by default
``work/NN-name/`` next to ``course/``, which git ignores). Nothing is ever overwritten: if a
file is already there, your work is kept and you are told how to get a fresh copy.
"""
from __future__ import annotations

import shutil
from pathlib import Path


class StartError(Exception):
    """The assignment or the course could not be found, or the copy would overwrite work."""


def find_course(start: Path | None = None) -> Path:
    """The nearest ``course/`` folder (with assignment folders in it) at or above ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        course = folder / "course"
        if course.is_dir() and any(course.glob("*/*.ipynb")):
            return course
    raise StartError("no course/ folder with released notebooks here or above; run this from "
                     "the course's folder (the one that holds course/)")


def find_assignment(course: Path, name: str) -> Path:
    """Accept "01", "1", "01-attention" or a folder name."""
    folders = sorted(p for p in course.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))
    wanted = name.strip().rstrip("/").split("/")[-1]
    for folder in folders:
        number = folder.name.split("-", 1)[0]
        if wanted in (folder.name, number) or (wanted.isdigit() and number.isdigit()
                                               and int(wanted) == int(number)):
            return folder
    raise StartError(f"no assignment {name!r} in {course}; choose one of: "
                     + ", ".join(f.name for f in folders))


def start(name: str, dest: Path | None = None, *, course: Path | None = None) -> list[Path]:
    """Copy the released files of assignment ``name`` into ``dest``; return the new files."""
    course = course or find_course()
    assignment = find_assignment(course, name)
    dest = Path(dest) if dest is not None else course.parent / "work" / assignment.name
    sources = sorted(p for p in assignment.rglob("*") if p.is_file()
                     and ".ipynb_checkpoints" not in p.parts)
    targets = [dest / p.relative_to(assignment) for p in sources]
    taken = [t for t in targets if t.exists()]
    if taken:
        fresh = next(dest.parent / f"{assignment.name}-fresh{n or ''}" for n in range(1000)
                     if not (dest.parent / f"{assignment.name}-fresh{n or ''}").exists())
        raise StartError(
            f"{taken[0]} already exists, so nothing was copied: your work there is kept. For a "
            f"fresh copy beside it, run `workbook start {assignment.name.split('-')[0]} "
            f"{fresh}` (any folder that does not exist yet)")
    for source, target in zip(sources, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return targets
