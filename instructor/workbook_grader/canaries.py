"""Stage 4: plant an integrity check (a canary) before every test cell.

Student code runs in the same interpreter as the tests, so it could redefine ``check_close``,
patch ``torch.allclose`` to always say yes, or replace ``print``. Before every test cell the
grader inserts a short check that looks for such patches: functions defined in the notebook
sitting inside library modules, replaced builtins, a modified helper module. It prints one line
tagged with a nonce chosen per student; a test cell whose canary does not print "ok" scores 0.
This stops the easy tricks; it is not a proof against an attacker who studies the grader, which
is why grading also runs sandboxed (docs/THREAT-MODEL.md).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from transformer_workbook.notebooks import grade_id, is_graded, source

TAG = "grader-integrity"

CANARY = r'''# Integrity check inserted by the grader before a test cell (not part of the assignment).
def __grader_integrity():
    import builtins, sys, types
    problems = []

    def from_notebook(obj):
        code = getattr(obj, "__code__", None) or getattr(getattr(obj, "__func__", None), "__code__", None)
        name = getattr(code, "co_filename", "") or ""
        # IPython compiles cells to <ipython-input-...> or .../ipykernel_<pid>/<hash>.py
        return (name.startswith("<ipython-input") or "/ipykernel_" in name
                or name.startswith("<string>") or name.startswith("<lambda"))

    watched = ["builtins", "math", "torch", "torch.nn.functional", "torch.testing", "numpy",
               "transformer_workbook.checks"]
    for module_name in watched:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        if not isinstance(module, types.ModuleType):
            problems.append(f"sys.modules[{module_name!r}] was replaced")
            continue
        for attr, value in list(vars(module).items()):
            if callable(value) and from_notebook(value):
                problems.append(f"{module_name}.{attr} was replaced by notebook code")
    torch = sys.modules.get("torch")
    if torch is not None:
        for attr, value in list(vars(torch.Tensor).items()):
            if callable(value) and from_notebook(value):
                problems.append(f"torch.Tensor.{attr} was replaced by notebook code")
    for name in ("AssertionError", "Exception", "BaseException", "print", "isinstance", "len",
                 "abs", "all", "any", "bool", "float", "int", "range", "sum", "getattr",
                 "__import__", "hasattr", "type", "round", "max", "min"):
        if getattr(getattr(builtins, name, None), "__module__", None) != "builtins":
            problems.append(f"builtin {name} was replaced")
    helpers = sys.modules.get("transformer_workbook.checks")
    if helpers is not None:
        try:
            import hashlib
            with open(helpers.__spec__.origin, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        except Exception:
            digest = ""
        if digest != "@HELPERS_SHA256@":
            problems.append("the test helper module transformer_workbook.checks was modified")
        user = sys.modules.get("__main__")
        for name in ("check", "check_close", "check_shape", "check_finite"):
            if name in vars(user) and vars(user)[name] is not getattr(helpers, name, None):
                problems.append(f"{name} was redefined in the notebook")
    stream = sys.stdout
    if type(stream).__name__ != "_CappedStream" or \
            type(getattr(stream, "_stream", None)).__module__ != "ipykernel.iostream":
        problems.append("sys.stdout was replaced")
    verdict = "ok" if not problems else "tampered: " + "; ".join(sorted(set(problems))[:5])
    print("[@TAG@ @NONCE@] " + verdict)


__grader_integrity()
del __grader_integrity
'''


def helpers_digest() -> str:
    from transformer_workbook import checks

    return hashlib.sha256(Path(checks.__file__).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Canary:
    nonce: str
    digest: str

    @classmethod
    def new(cls) -> "Canary":
        return cls(secrets.token_hex(8), helpers_digest())

    def cell(self) -> dict:
        text = (CANARY.replace("@NONCE@", self.nonce).replace("@TAG@", TAG)
                .replace("@HELPERS_SHA256@", self.digest))
        return {"cell_type": "code", "execution_count": None,
                "id": f"grader-canary-{secrets.token_hex(4)}",
                "metadata": {"grader_canary": True}, "outputs": [], "source": text}

    def verdicts(self, cells: list[dict]) -> dict[str, str]:
        """``grade_id -> problem`` for every test cell, in an executed notebook, whose canary
        did not report ok."""
        problems = {}
        for before, cell in zip(cells, cells[1:]):
            if not is_graded(cell) or cell.get("cell_type") != "code":
                continue
            text = "".join("".join(o.get("text", "")) for o in before.get("outputs", [])
                           if o.get("output_type") == "stream")
            line = next((ln for ln in text.splitlines() if ln.startswith(f"[{TAG} {self.nonce}]")),
                        None)
            if TAG not in source(before):
                problems[grade_id(cell)] = "the grader's integrity check before this test is missing"
            elif line is None:
                problems[grade_id(cell)] = ("the integrity check before this test printed nothing "
                                            "(was print or sys.stdout replaced?)")
            elif not line.endswith("] ok"):
                problems[grade_id(cell)] = ("the notebook tampered with the tests: "
                                            + line.split("] ", 1)[1])
        return problems


def plant(notebook: dict, canary: Canary) -> dict:
    """A copy of ``notebook`` with the canary's cell right before every test cell."""
    cells = []
    for cell in notebook["cells"]:
        if is_graded(cell) and cell.get("cell_type") == "code":
            cells.append(canary.cell())
        cells.append(cell)
    return {**notebook, "cells": cells}
