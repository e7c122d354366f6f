"""Load a solution notebook's code as a module, the way the grader runs a student's answer.

The grader executes the released notebook with the student's exercise cells filled in. For
timing and checking a kernel on a GPU we want the same code without the notebook's teaching
around it (prints, plots, its own small tests, its GPU demo cell). So:

* every exercise cell (nbgrader ``solution: true``) runs whole, as the student wrote it;
* graded test cells are left out (they are the grader's checks, not the answer);
* every other code cell keeps only what defines something: imports (not of display-only
  libraries), function and class definitions, and assignments to UPPER_CASE names
  (``HAS_CUDA``, ``DEVICE``). Calls, prints, loops and demo computations are dropped.

The code is registered with :mod:`linecache` under a name of its own, as IPython does for a
cell, because ``triton.jit`` reads a kernel's source through :func:`inspect.getsource`.
"""
from __future__ import annotations

import ast
import linecache
import re
import types
from pathlib import Path

from transformer_workbook.notebooks import is_graded, is_solution, read_notebook, source

DISPLAY_ONLY = ("matplotlib", "IPython", "ipywidgets", "tqdm", "seaborn")
CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*$")


class NotebookCodeError(Exception):
    """The notebook's code cannot be loaded or lacks what the caller needs."""


def _display_only(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        names = [node.module or ""]
    else:
        return False
    return all(name.split(".")[0] in DISPLAY_ONLY for name in names)


def _names(target: ast.expr) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        found = [_names(item) for item in target.elts]
        return None if any(f is None for f in found) else [n for f in found for n in f]
    return None


def _defines(node: ast.stmt) -> bool:
    """Kept from a non-exercise cell: an import, a def or class, or a constant assignment."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return not _display_only(node)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [_names(t) for t in targets]
        return all(n is not None and all(CONSTANT.match(x) for x in n) for n in names)
    return False


def _definitions(code: str, where: str) -> str:
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        raise NotebookCodeError(f"{where} is not valid Python (line {err.lineno}: {err.msg})") from None
    lines = code.splitlines()
    spans = []
    for node in tree.body:
        if _defines(node):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            spans.append("\n".join(lines[first - 1:node.end_lineno]))
    return "\n".join(spans)


def solution_code(notebook_path) -> str:
    """The code of a solution notebook as it would run for grading, minus its display, demos
    and tests (see the module's docstring for the rule)."""
    notebook = read_notebook(Path(notebook_path))
    parts = []
    for index, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code" or is_graded(cell):
            continue
        text = source(cell)
        where = f"{Path(notebook_path).name}, code cell {index}"
        if is_solution(cell):
            _definitions(text, where)  # a syntax error in an answer is reported here
            parts.append(f"# --- {where} (exercise) ---\n{text}")
        else:
            kept = _definitions(text, where)
            if kept.strip():
                parts.append(f"# --- {where} (definitions only) ---\n{kept}")
    return "\n\n".join(parts) + "\n"


def load_solution(notebook_path, name="notebook_solution", require=()) -> types.ModuleType:
    """Execute :func:`solution_code` in a fresh module; check that it defines ``require``."""
    code = solution_code(notebook_path)
    filename = f"<{name}: {Path(notebook_path).name}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    try:
        exec(compile(code, filename, "exec"), module.__dict__)
    except Exception as err:
        raise NotebookCodeError(
            f"running the code of {Path(notebook_path).name} failed: {type(err).__name__}: {err}. "
            "The notebook's exercise cells and definitions run in order, without its tests; "
            "check that each exercise cell runs on its own after the cells above it") from err
    missing = [n for n in require if not callable(getattr(module, n, None))]
    if missing:
        raise NotebookCodeError(
            f"{Path(notebook_path).name} defines no {', '.join(missing)}; the proof calls "
            "these by name, as the notebook's tests do. Was an exercise cell renamed?")
    return module
