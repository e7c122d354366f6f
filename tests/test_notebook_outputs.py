"""Stored outputs that nbval compares must not depend on floating-point noise.

nbval compares the text a solution notebook printed when it was refreshed with what the same
cell prints in CI. A difference of one ulp (`9e-16` against `1e-15`), a thread count or a
timing printed into such an output fails CI at random, whatever a change touched. This guard
reads the committed outputs of every solution notebook and names each cell that prints a
computed number at noise level; the cure is a verdict against a stated threshold ("below
1e-12: True"), rounding to meaningful digits, or the `nbval-ignore-output` tag for a cell
whose assertions still run.
"""
import json
import re

import pytest

from conftest import ROOT

# A number in scientific notation (9e-16, 1.0e+00, 2.5E-07) or a plain decimal (0.000012).
SCIENTIFIC = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?[eE][-+]?\d+(?![\w.])")
DECIMAL = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?![\w.])")
NOISE_LEVEL = 1e-4
IGNORED = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_RAISES_EXCEPTION")
IGNORE_TAGS = {"nbval-ignore-output", "nbval-skip", "raises-exception"}


def compared_text(cell: dict) -> str:
    """The text nbval compares for one code cell: stdout and plain-text results."""
    source = "".join(cell.get("source", ""))
    tags = set(cell.get("metadata", {}).get("tags", []))
    if any(marker in source for marker in IGNORED) or tags & IGNORE_TAGS:
        return ""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            parts.append("".join(output.get("text", "")))
        elif "data" in output:
            parts.append("".join(output["data"].get("text/plain", "")))
    return "".join(parts)


def noise_level_numbers(cell: dict) -> list[str]:
    """Computed numbers the cell prints at noise level: in scientific notation with a
    negative exponent or a zero mantissa, or plain decimals below 1e-4 that are not zero.
    A number that appears literally in the cell's source (a threshold in a sentence) is
    a constant, not a measurement, and is allowed."""
    text, source = compared_text(cell), "".join(cell.get("source", ""))
    found = []
    for match in SCIENTIFIC.findall(text):
        value = float(match)
        if match in source:
            continue
        if value == 0 or abs(value) < 1:
            found.append(match)
    for match in DECIMAL.findall(text):
        value = abs(float(match))
        if 0 < value < NOISE_LEVEL and match not in source:
            found.append(match)
    return found


def solution_notebooks():
    return sorted((ROOT / "solutions").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", solution_notebooks(), ids=lambda p: p.parent.name)
def test_no_compared_output_prints_noise(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code_cells = [c for c in cells if c["cell_type"] == "code"]
    noisy = {f"Cell {i}": numbers for i, c in enumerate(code_cells)
             if (numbers := noise_level_numbers(c))}
    assert not noisy, (
        f"{path.relative_to(ROOT)}: these cells print numbers at the level of floating-point "
        f"noise into outputs that nbval compares (nbval's cell numbers): {noisy}. A run on "
        "another machine or thread count prints other digits and fails CI. Print a verdict "
        "against a stated threshold (print('max difference below 1e-12:', diff < 1e-12)), "
        "round to meaningful digits, or tag the cell nbval-ignore-output and keep its assert.")


def _planted(source: str, printed: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}]}


def test_the_guard_catches_a_planted_unrounded_error():
    """The guard itself must be able to fail."""
    cell = _planted('print(f"tiled vs exact: max difference {diff:.0e}")',
                    "tiled vs exact: max difference 9e-16\n")
    assert noise_level_numbers(cell) == ["9e-16"]
    assert noise_level_numbers(_planted('print(f"gap {gap:.1e}")', "gap 0.0e+00\n")) == ["0.0e+00"]
    assert noise_level_numbers(_planted("print(err)", "0.0000123\n")) == ["0.0000123"]
    # Verdicts, rounded values, constants from the source and ignored cells pass.
    assert not noise_level_numbers(_planted('print("below 1e-12:", d < 1e-12)', "below 1e-12: True\n"))
    assert not noise_level_numbers(_planted('print(f"{acc:.3f}")', "0.625\n"))
    ignored = _planted("# NBVAL_IGNORE_OUTPUT\nprint(f'{t:.1e} s')", "3.2e-03 s\n")
    assert not noise_level_numbers(ignored)
