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

from transformer_workbook.notebooks import grade_id, is_graded, printed, source

TAG = "grader-integrity"

CANARY = r'''# Integrity check inserted by the grader before a test cell (not part of the assignment).
def __grader_integrity():
    import builtins, sys, types
    problems = []
    user = vars(sys.modules["__main__"])

    def from_notebook(obj):
        # A function's globals are the notebook's namespace when the notebook defined it.
        func = getattr(obj, "__func__", obj)
        return isinstance(func, types.FunctionType) and func.__globals__ is user

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
            if from_notebook(value) or isinstance(value, property) and from_notebook(value.fget):
                problems.append(f"torch.Tensor.{attr} was replaced by notebook code")
        if torch._C._len_torch_function_stack() or torch._C._len_torch_dispatch_stack():
            problems.append("a torch function or dispatch mode is active")
        pending, seen = list(torch.Tensor.__subclasses__()), set()
        while pending:
            cls = pending.pop()
            if cls in seen:
                continue
            seen.add(cls)
            pending.extend(cls.__subclasses__())
            if any(from_notebook(v) for v in vars(cls).values()):
                problems.append(f"the notebook subclassed torch.Tensor ({cls.__name__})")
    for name in ("AssertionError", "Exception", "BaseException", "print", "isinstance", "len",
                 "abs", "all", "any", "bool", "float", "int", "range", "sum", "getattr",
                 "__import__", "hasattr", "type", "round", "max", "min", "issubclass", "str",
                 "repr", "tuple", "list", "dict", "zip", "sorted", "enumerate", "vars", "id"):
        if getattr(getattr(builtins, name, None), "__module__", None) != "builtins":
            problems.append(f"builtin {name} was replaced")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        problems.append("a trace or profile function is set")
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    if shell is not None:
        if shell.input_transformers_post or shell.ast_transformers:
            problems.append("IPython input or AST transformers were added")
        for step in shell.input_transformers_cleanup:
            if not (getattr(step, "__module__", "") or "").startswith("IPython."):
                problems.append("IPython's input transformers were changed")
        if shell.custom_exceptions:
            problems.append("IPython's exception handling was replaced (set_custom_exc)")
        for name in ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "transform_cell",
                     "showtraceback", "_showtraceback", "showsyntaxerror", "should_run_async",
                     "transform_ast", "ex", "ev"):
            method = getattr(shell, name, None)
            module = getattr(getattr(method, "__func__", method), "__module__", "") or ""
            if from_notebook(method) or not module.startswith(("IPython.", "ipykernel.")):
                problems.append(f"IPython's {name} was replaced")
        kernel = getattr(shell, "kernel", None)
        if kernel is not None:
            for name in ("do_execute", "execute_request", "send_response"):
                method = getattr(kernel, name, None)
                module = getattr(getattr(method, "__func__", method), "__module__", "") or ""
                if from_notebook(method) or not module.startswith("ipykernel."):
                    problems.append(f"the kernel's {name} was replaced")
        for event, callbacks in shell.events.callbacks.items():
            if any(from_notebook(cb) for cb in callbacks):
                problems.append(f"the notebook registered an IPython {event} callback")
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
        for name in ("check", "check_close", "check_shape", "check_finite"):
            if name in user and user[name] is not getattr(helpers, name, None):
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
            text = printed(before)
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
