"""Stage 3: read a submission's notebooks and compare their test cells with the master.

Everything here is static: nothing in the submission runs. Each problem becomes a sentence that
names the file and what is wrong and, where it concerns a test cell, that cell's id so that it
scores 0: a test cell deleted, duplicated or edited (a student who edits a test to pass it
gets nothing for it, although nbgrader would restore the original). A file that cannot be
read as a notebook scores 0 as a whole, with the reason.

Duplicated cells are dropped from the copy that runs (the first of each id stays): nbgrader's
own de-duplication keeps the last one and strips the others' metadata, after which nbgrader
refuses the whole notebook as "an old metadata format".
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from transformer_workbook.notebooks import UnreadableNotebook, grade_id, is_graded, read_notebook

from . import policy
from .masters import Master, cell_checksum
from .submissions import Submission

EXPECTED_KERNEL = "python3"


@dataclass
class Inspection:
    notebooks: dict[str, dict] = field(default_factory=dict)     # name -> parsed notebook to run
    problems: list[str] = field(default_factory=list)            # reasons for the grade table
    notes: list[str] = field(default_factory=list)               # harmless, repaired by nbgrader
    zeroed: dict[str, dict[str, str]] = field(default_factory=dict)  # notebook -> {id: reason}


def _inspect_notebook(name: str, notebook: dict, tests: dict[str, float],
                      locked: dict[str, str], found: Inspection,
                      master_released: frozenset[str] = frozenset()) -> None:
    zeroed = found.zeroed.setdefault(name, {})
    cells = notebook["cells"]
    for cell in cells:
        gid = grade_id(cell)
        if gid not in locked:
            continue
        try:
            changed = cell_checksum(cell) != locked[gid]
        except Exception:  # malformed metadata counts as an edit
            changed = True
        if not changed:
            continue
        if gid in tests:
            reason = f"test cell {gid!r} was edited in {name}.ipynb"
            found.problems.append(reason + "; it scores 0")
            zeroed[gid] = reason
        else:
            found.notes.append(f"locked cell {gid!r} was edited; the original was restored")
    counts = Counter(grade_id(c) for c in cells if is_graded(c))
    for gid, count in sorted(counts.items()):
        if gid in tests and count > 1:
            reason = f"grade cell {gid!r} appears {count} times in {name}.ipynb"
            found.problems.append(reason + "; it scores 0")
            zeroed[gid] = reason
    for gid in tests:
        if gid not in counts:
            reason = f"grade cell {gid!r} was deleted from {name}.ipynb"
            found.problems.append(reason + "; it scores 0")
            zeroed[gid] = reason
    breach = policy.first_breach(cells, master_released)
    if breach is not None:
        position, found_breach = breach
        reason = found_breach.reason(name)
        after = [grade_id(c) for c in cells[position:] if grade_id(c) in tests]
        if after:
            found.problems.append(reason)
        for gid in after:
            zeroed.setdefault(gid, reason)
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != EXPECTED_KERNEL:
        found.notes.append(f"kernel {kernel!r} in the metadata was replaced by {EXPECTED_KERNEL!r}")


def without_duplicate_grade_cells(notebook: dict) -> dict:
    """A copy that keeps only the first cell of each grade id."""
    seen: set[str] = set()
    kept = []
    for cell in notebook["cells"]:
        gid = grade_id(cell)
        if gid is not None:
            if gid in seen:
                continue
            seen.add(gid)
        kept.append(cell)
    return {**notebook, "cells": kept}


def inspect(sub: Submission, master: Master) -> Inspection:
    """Read every notebook the master expects from ``sub.folder``."""
    found = Inspection()
    for name, tests in master.cells.items():
        path = sub.folder / f"{name}.ipynb"
        if path.is_symlink() or not path.is_file():
            reason = (f"{name}.ipynb is a link, not a file, so it was not read"
                      if path.is_symlink() else f"{name}.ipynb is missing from the submission")
            found.problems.append(reason)
            found.zeroed[name] = {gid: reason for gid in tests}
            continue
        try:
            notebook = read_notebook(path)
            inspected = Inspection()
            _inspect_notebook(name, notebook, tests, master.locked.get(name, {}), inspected,
                              master.released.get(name, frozenset()))
            to_run = without_duplicate_grade_cells(notebook)
        except UnreadableNotebook as err:
            unreadable(found, name, tests, str(err))
            continue
        except Exception as err:  # noqa: BLE001 - any odd shape: this notebook scores 0, the class goes on
            unreadable(found, name, tests, f"{name}.ipynb could not be inspected "
                       f"({type(err).__name__}); re-save it from Jupyter and resubmit")
            continue
        found.problems += inspected.problems
        found.notes += inspected.notes
        found.zeroed[name] = inspected.zeroed.get(name, {})
        found.notebooks[name] = to_run
    return found


def unreadable(found: Inspection, name: str, tests: dict[str, float], reason: str) -> None:
    """``name`` cannot be graded: say why, and every test in it scores 0."""
    found.problems.append(reason)
    found.zeroed[name] = {gid: reason for gid in tests}
