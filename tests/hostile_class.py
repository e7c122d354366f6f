"""Test data: build the hostile and broken submissions catalogued in ``autograder/hostile.toml``."""
from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

from workbook_instructor.course import Course
from workbook_instructor.samples import apply_mutant, reference_notebooks

ASSIGNMENT = "01-attention"


def load_cases(root: Path) -> dict[str, dict]:
    """The hostile catalogue and our red team's attacks (autograder/redteam.toml), by name."""
    cases = {}
    for name in ("hostile.toml", "redteam.toml"):
        found = tomllib.loads((root / "autograder" / name).read_text(encoding="utf-8"))
        assert not set(found) & set(cases), f"{name} repeats a case name"
        cases.update(found)
    return cases


def _gid(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _index(cells: list[dict], gid: str) -> int:
    for i, cell in enumerate(cells):
        if _gid(cell) == gid:
            return i
    raise KeyError(f"no cell {gid!r}")


def build_case(root: Path, case: dict) -> bytes:
    """The bytes of the one notebook file this case submits."""
    if "raw" in case:
        return case["raw"].encode()
    notebooks = reference_notebooks(Course(root), ASSIGNMENT)
    if "base" in case:
        mutant = {m.name: m for m in Course(root).mutants(ASSIGNMENT)}[case["base"]]
        notebooks = apply_mutant(notebooks, mutant)
    nb = copy.deepcopy(notebooks[ASSIGNMENT])
    cells = nb["cells"]
    if "nbformat" in case:
        nb["nbformat"] = case["nbformat"]
    for gid in case.get("delete", []):
        del cells[_index(cells, gid)]
    if "duplicate" in case:
        i = _index(cells, case["duplicate"])
        cells.insert(i + 1, copy.deepcopy(cells[i]))
    if "edit" in case:
        cells[_index(cells, case["edit"]["cell"])]["source"] = case["edit"]["source"]
    if "insert" in case:
        text = case["insert"]["source"] + case["insert"].get("repeat", "") * case["insert"].get(
            "times", 0)
        cells.insert(_index(cells, case["insert"]["after"]) + 1, {
            "cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": text})
    if "replace" in case:   # path: keys from the notebook down; "cell:<grade_id>" picks a cell
        *where, last = case["replace"]["path"]
        node = nb
        for key in where:
            node = cells[_index(cells, key[5:])] if key.startswith("cell:") else node[key]
        node[last] = case["replace"]["value"]
    if "kernel" in case:
        nb["metadata"]["kernelspec"]["name"] = case["kernel"]
    if "nest_depth" in case:   # a cell's metadata nested this deep (json.dumps could not)
        marker = '"nested-here"'
        cells[0].setdefault("metadata", {})["deep"] = "nested-here"
        depth = case["nest_depth"]
        return json.dumps(nb).replace(marker, "[" * depth + "]" * depth, 1).encode()
    if "pad_mb" in case:
        junk = "0123456789abcdef" * (case["pad_mb"] * 1024 * 64)
        cells[0].setdefault("metadata", {})["padding"] = junk
    return json.dumps(nb).encode()


def build_hostile_class(root: Path, target: Path) -> dict[str, dict]:
    """Write ``target/<case>/01-attention/01-attention.ipynb`` for every case, plus a clean
    reference student called ``bystander``; return the cases."""
    cases = load_cases(root)
    students = {"bystander": json.dumps(reference_notebooks(Course(root), ASSIGNMENT)[ASSIGNMENT]).encode()}
    students.update({name: build_case(root, case) for name, case in cases.items()})
    folders = {name: case.get("student", name) for name, case in cases.items()}
    for student, blob in students.items():
        folder = target / folders.get(student, student) / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_bytes(blob)
    return cases
