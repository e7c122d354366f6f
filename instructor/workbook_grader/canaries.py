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

import functools
import hashlib
import re
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

    import functools

    def from_notebook(obj, depth=0):
        # Code the notebook wrote: a function whose globals are the notebook's namespace, an
        # instance or class the notebook defined, or any of these wrapped in a method, a
        # partial or a property.
        if depth > 8:
            return True
        kind = type(obj)
        if kind.__module__ == "__main__" or isinstance(obj, type) and obj.__module__ == "__main__":
            return True
        if isinstance(obj, functools.partial):
            return from_notebook(obj.func, depth + 1) or any(
                from_notebook(a, depth + 1) for a in (*obj.args, *obj.keywords.values()))
        if isinstance(obj, (types.MethodType, staticmethod, classmethod)):
            return from_notebook(obj.__func__, depth + 1)
        if isinstance(obj, property):
            return any(from_notebook(f, depth + 1) for f in (obj.fget, obj.fset) if f)
        return isinstance(obj, types.FunctionType) and obj.__globals__ is user

    def library(obj, prefixes):
        # A callable that a library defined: its module starts with one of ``prefixes``.
        while isinstance(obj, types.MethodType):
            obj = obj.__func__
        module = getattr(obj, "__module__", None) or ""
        return not from_notebook(obj) and isinstance(module, str) and module.startswith(prefixes)

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
            if callable(value) and (from_notebook(value) or isinstance(value, functools.partial)):
                problems.append(f"{module_name}.{attr} was replaced by notebook code")
    for name, module_name, attr in @BINDINGS@:
        # names the released cells import (math, torch, F, ...) still mean what they imported
        module = sys.modules.get(module_name)
        expected = module if attr is None else sys.modules.get(
            f"{module_name}.{attr}", getattr(module, attr, None))
        if module is not None and name in user and user[name] is not expected:
            problems.append(f"{name} was rebound by the notebook")
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
                if not library(getattr(kernel, name, None), ("ipykernel.",)):
                    problems.append(f"the kernel's {name} was replaced")
            # every message out of the kernel goes through its session and its sockets
            session = getattr(kernel, "session", None)
            if type(session).__module__ != "jupyter_client.session" or any(
                    callable(v) for v in vars(session).values()):
                problems.append("the kernel's session was replaced")
            else:
                for name in ("send", "serialize", "sign", "msg", "msg_header"):
                    if not library(getattr(type(session), name, None),
                                   ("jupyter_client.", "json", "zmq.")):
                        problems.append(f"the kernel's session.{name} was replaced")
            for name in ("iopub_socket", "iopub_thread"):
                sock = getattr(kernel, name, None)
                if sock is not None and (from_notebook(sock) or any(
                        callable(v) for v in vars(sock).values() if not isinstance(v, type))):
                    problems.append(f"the kernel's {name} was replaced")
        for name in ("display_pub", "displayhook"):
            hook = getattr(shell, name, None)
            if from_notebook(hook) or not type(hook).__module__.startswith(
                    ("IPython.", "ipykernel.")) or any(
                    callable(v) and not library(v, ("IPython.", "ipykernel.", "_grader_kernel"))
                    for v in vars(hook).values() if not isinstance(v, type)):
                problems.append(f"IPython's {name} was replaced")
        for event, callbacks in shell.events.callbacks.items():
            if not all(library(cb, ("IPython.", "ipykernel.", "matplotlib", "_grader_kernel",
                                    "ipywidgets.", "traitlets."))
                       for cb in callbacks):
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
    if type(stream).__name__ != "_CappedStream" or type(stream).__module__ != "_grader_kernel" \
            or type(getattr(stream, "_stream", None)).__module__ != "ipykernel.iostream" \
            or from_notebook(getattr(getattr(stream, "_stream", None), "write", None)):
        problems.append("sys.stdout was replaced")
    verdict = "ok" if not problems else "tampered: " + "; ".join(sorted(set(problems))[:5])
    print("[@TAG@ @NONCE@] " + verdict)


__grader_integrity()
del __grader_integrity
'''


def helpers_digest() -> str:
    from transformer_workbook import checks

    return hashlib.sha256(Path(checks.__file__).read_bytes()).hexdigest()


# What a canary may report, one pattern per problem it writes above. A line that says anything
# else was not written by the canary (the notebook printed it), so none of its text is shown.
REPORTED = [re.compile(p) for p in (
    r"sys\.modules\['[\w.]{1,60}'\] was replaced",
    r"[\w.]{1,80} was replaced by notebook code",
    r"\w{1,40} was rebound by the notebook",
    r"a torch function or dispatch mode is active",
    r"the notebook subclassed torch\.Tensor \(\w{1,40}\)",
    r"builtin \w{1,20} was replaced",
    r"a trace or profile function is set",
    r"IPython input or AST transformers were added",
    r"IPython's input transformers were changed",
    r"IPython's exception handling was replaced \(set_custom_exc\)",
    r"IPython's \w{1,30} was replaced",
    r"the kernel's [\w.]{1,30} was replaced",
    r"the notebook registered an IPython \w{1,20} callback",
    r"the test helper module transformer_workbook\.checks was modified",
    r"\w{1,20} was redefined in the notebook",
    r"sys\.stdout was replaced",
)]


@functools.lru_cache(maxsize=64)
def released_bindings(sources: frozenset[str]) -> tuple[tuple[str, str, str | None], ...]:
    """``(name, module, attribute or None)`` for each name that a top-level import in the
    released cells binds: ``import torch.nn.functional as F`` gives ``("F",
    "torch.nn.functional", None)``, ``from torch import nn`` gives ``("nn", "torch", "nn")``."""
    import ast

    from .policy import _python, parse   # the one parser lock (threads grade at once) and cache

    found = {}
    for text in sorted(sources):
        try:
            tree = parse(_python(text)[0])
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        found[alias.asname] = (alias.name, None)
                    else:
                        found[alias.name.split(".")[0]] = (alias.name.split(".")[0], None)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        found[alias.asname or alias.name] = (node.module, alias.name)
    return tuple(sorted((name, module, attr) for name, (module, attr) in found.items()))


@dataclass(frozen=True)
class Canary:
    nonce: str
    digest: str
    bindings: tuple = ()

    @classmethod
    def new(cls) -> "Canary":
        return cls(secrets.token_hex(8), helpers_digest())

    def binding(self, bindings: tuple) -> "Canary":
        """The same canary (same nonce), checking the names that ``bindings`` lists."""
        return Canary(self.nonce, self.digest, tuple(bindings))

    def cell(self) -> dict:
        text = (CANARY.replace("@NONCE@", self.nonce).replace("@TAG@", TAG)
                .replace("@HELPERS_SHA256@", self.digest)
                .replace("@BINDINGS@", repr(list(self.bindings))))
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
            lines = [ln for ln in printed(before).splitlines() if ln.strip()]
            tagged = [ln for ln in lines if ln.startswith(f"[{TAG} {self.nonce}]")]
            if TAG not in source(before):
                problems[grade_id(cell)] = "the grader's integrity check before this test is missing"
            elif not tagged:
                problems[grade_id(cell)] = ("the integrity check before this test printed nothing "
                                            "(was print or sys.stdout replaced?)")
            elif len(lines) > 1:
                # the canary prints one line; more means the notebook printed into its cell
                problems[grade_id(cell)] = ("the notebook added output to the grader's integrity "
                                            "check (a callback or a replaced stream?)")
            elif not tagged[0].endswith("] ok"):
                problems[grade_id(cell)] = "the notebook tampered with the tests" + _described(
                    tagged[0].split("] ", 1)[-1])
        return problems


def _described(verdict: str) -> str:
    """``": what was found"`` when every problem in a canary's verdict is one that the canary
    reports (REPORTED); otherwise nothing of the line's text (the notebook wrote it)."""
    parts = verdict.removeprefix("tampered: ").split("; ")
    if verdict.startswith("tampered: ") and all(
            any(p.fullmatch(part) for p in REPORTED) for part in parts):
        return ": " + "; ".join(parts)
    return ""


def plant(notebook: dict, canary: Canary) -> dict:
    """A copy of ``notebook`` with the canary's cell right before every test cell."""
    cells = []
    for cell in notebook["cells"]:
        if is_graded(cell) and cell.get("cell_type") == "code":
            cells.append(canary.cell())
        cells.append(cell)
    return {**notebook, "cells": cells}
