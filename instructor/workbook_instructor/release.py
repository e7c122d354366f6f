"""``workbook release``: regenerate ``course/`` from ``solutions/`` through nbgrader.

``course/`` is what students copy their work from, so it is never overwritten behind anyone's
back: every release records the sha256 of each file it wrote (``course/.released.json``), and
the next release into ``course/`` refuses, naming the files, if any of them was changed by hand
since (or if a file that the release did not write would be deleted), unless ``force`` is set.
Releases into any other folder (the demo, the sync test, the student bundle) go to fresh
folders and need no such check.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from transformer_workbook.storage import write_atomically

from .course import Course, CourseError

MANIFEST = ".released.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def hand_edits(target: Path, names: list[str]) -> list[str]:
    """Files under ``target/<name>`` that differ from what was last released there."""
    manifest = target / MANIFEST
    released = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
    changed = []
    for name in names:
        for path in _files(target / name):
            key = path.relative_to(target).as_posix()
            if released.get(key) != _sha256(path):
                changed.append(key)
    return changed


def release(course: Course, names: list[str] | None = None, *, into: Path | None = None,
            force: bool = False) -> list[str]:
    """Release ``names`` (default: every assignment) into ``into`` (default: the course's
    release folder, ``course/``); return the names released."""
    names = course.check_assignments(names)
    target = Path(into) if into is not None else course.release_dir
    protected = into is None
    if protected and not force:
        changed = hand_edits(target, names)
        if changed and not (target / MANIFEST).is_file():
            raise CourseError(
                f"not releasing: {target} holds files but no record of what was last released "
                f"there ({MANIFEST}), so hand edits cannot be told apart. Check that nobody's "
                "work is in it, then run `workbook release --force` once.")
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise CourseError(
                f"not releasing: {shown} in {target} changed since the last release (edited by "
                "hand, or not written by a release) and would be overwritten. Students work in "
                "their own copies (`workbook start`), so course/ should only ever change through "
                "a release: move those edits into solutions/, or run `workbook release --force` "
                "to overwrite them.")
    with tempfile.TemporaryDirectory(prefix="workbook-release-") as scratch:
        for name in names:
            course.generate(name, target, Path(scratch) / "gradebook.db")
    if protected:
        manifest = target / MANIFEST
        recorded = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        recorded = {k: v for k, v in recorded.items() if k.split("/", 1)[0] not in names}
        for name in names:
            for path in _files(target / name):
                recorded[path.relative_to(target).as_posix()] = _sha256(path)
        write_atomically(manifest, json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")
    return names
