"""Stage 4: plant an integrity check (a canary) before every test cell.

Student code runs in the same interpreter as the tests, so it could redefine ``check_close``,
patch ``torch.allclose`` to always say yes, or replace ``print``. Before every test cell the
grader inserts a one-line cell that calls the kernel's integrity check (``CHECK_STARTUP``,
which the kernel installs at start-up, before any notebook code runs) and prints its verdict:
whether functions defined in the notebook sit inside library modules, builtins were replaced,
the helper module was modified, IPython or the kernel were rewired.

The verdict must reach the grader unchanged, through a ``print`` and a ``sys.stdout`` that
the notebook may have replaced. So the check signs it: an HMAC under a key that only the grader
and the check know, over the student's nonce, a challenge drawn for this one cell and the
verdict. A test whose check printed nothing, printed beside something else, or printed a line
whose signature does not verify (rewritten on its way out, or forged) scores 0, as does one
whose check found a problem. The check answers each challenge once, and only when called
straight from the top-level code of the cell that holds the challenge.

This stops the easy tricks and the known ways around them (``autograder/redteam.toml``); it is
not a proof against an attacker who reads the key out of the kernel's memory, which is why
grading also runs sandboxed (docs/THREAT-MODEL.md).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from transformer_workbook.notebooks import grade_id, is_graded, printed, source

TAG = "grader-integrity"
ENTRY = "__grader_integrity__"   # the builtin name under which the kernel's check is called

# The cell planted before each test. Its text is short on purpose: IPython tokenizes, hashes
# and compiles a cell's whole text each time it runs one, which cost about 30 ms of kernel CPU
# per check when the whole check was written out in every cell (a third of notebook 01's own
# run time over its ten tests).
CELL = ('# Integrity check inserted by the grader before a test cell (not part of the '
        'assignment).\nprint(' + ENTRY + '(("[@TAG@ @NONCE@]", "@CHALLENGE@", "@BINDINGS@", '
        '"@HELPERS_SHA256@")))\n')
CALL = re.compile(re.escape(ENTRY) + r'\(\("\[([\w-]+) (\w+)\]", "(\w+)"')

# Installed in every kernel at start-up, after the audit hook and the output cap
# (sandbox/kernelspec.py). Everything the check uses is taken now, before any notebook code
# runs, and kept in the frame of a generator, which notebook code cannot reach (the audit hook
# refuses gi_frame): the key, the builtins, sys, the shell, the HMAC function. Notebook code
# that later replaces print, isinstance, a module's functions or a module in sys.modules changes
# what the check looks at, not what it looks with.
CHECK_STARTUP = r"""
def _integrity_check(key):
    import _hashlib, builtins, functools, sys, types
    (isinstance, getattr, type, vars, callable, any, all, list, set, tuple, sorted, str, len,
     open, property, staticmethod, classmethod, Exception, BaseException, GeneratorExit) = (
        builtins.isinstance, builtins.getattr, builtins.type, builtins.vars, builtins.callable,
        builtins.any, builtins.all, builtins.list, builtins.set, builtins.tuple,
        builtins.sorted, builtins.str, builtins.len, builtins.open, builtins.property,
        builtins.staticmethod, builtins.classmethod, builtins.Exception,
        builtins.BaseException, builtins.GeneratorExit)
    getframe, gettrace, getprofile, modules = (sys._getframe, sys.gettrace, sys.getprofile,
                                               sys.modules)
    hmac, sha256 = _hashlib.hmac_digest, _hashlib.openssl_sha256
    torch = modules.get("torch")   # preloaded: its mode stacks are taken now too
    mode_stacks = ((torch._C._len_torch_function_stack, torch._C._len_torch_dispatch_stack)
                   if torch is not None else None)
    partial, FunctionType, MethodType, ModuleType = (functools.partial, types.FunctionType,
                                                     types.MethodType, types.ModuleType)
    shell = modules["IPython"].get_ipython()
    user = shell.user_global_ns
    kernel = getattr(shell, "kernel", None)
    key = key.encode()
    answered = set()
    line = None

    def from_notebook(obj, depth=0):
        # Code the notebook wrote: a function whose globals are the notebook's namespace, an
        # instance or class the notebook defined, or any of these wrapped in a method, a
        # partial or a property.
        if depth > 8:
            return True
        if type(obj).__module__ == "__main__" or (isinstance(obj, type)
                                                  and obj.__module__ == "__main__"):
            return True
        if isinstance(obj, partial):
            return any(from_notebook(a, depth + 1)
                       for a in (obj.func, *obj.args, *obj.keywords.values()))
        if isinstance(obj, (MethodType, staticmethod, classmethod)):
            return from_notebook(obj.__func__, depth + 1)
        if isinstance(obj, property):
            return any(from_notebook(f, depth + 1) for f in (obj.fget, obj.fset) if f)
        return isinstance(obj, FunctionType) and obj.__globals__ is user

    def library(obj, prefixes):
        # A callable that a library defined: its module starts with one of ``prefixes``.
        while isinstance(obj, MethodType):
            obj = obj.__func__
        module = getattr(obj, "__module__", None) or ""
        return not from_notebook(obj) and isinstance(module, str) and module.startswith(prefixes)

    def notebook_file(filename):
        # where IPython keeps a cell's code: <tmp>/ipykernel_<pid>/<hash>.py
        parts = filename.rsplit("/", 2)
        return filename.startswith("<ipython-input") or len(parts) == 3 and parts[1].startswith(
            "ipykernel_")

    def called_from(caller, request):
        # Straight from the top-level code of the cell that holds this request (its challenge
        # with it, as one constant), run by IPython as the cell it is executing: no other
        # notebook code on the stack (a callback, a wrapper, a hook that runs the cell's text
        # again) and no second run_cell.
        code = caller.f_code
        if code.co_name != "<module>" or request not in code.co_consts or caller.f_back is None \
                or caller.f_back.f_code.co_name != "run_code":
            return False
        runs, frame = 0, caller.f_back
        while frame is not None:
            filename = frame.f_code.co_filename
            if notebook_file(filename):
                return False
            runs += frame.f_code.co_name == "run_cell" and filename.endswith(
                "/IPython/core/interactiveshell.py")
            frame = frame.f_back
        return runs == 1

    def problems_now(bindings, digest):
        problems = []
        add = problems.append
        for module_name in ("builtins math torch torch.nn.functional torch.testing numpy "
                            "transformer_workbook.checks").split():
            module = modules.get(module_name)
            if module is None:
                continue
            if not isinstance(module, ModuleType):
                add(f"sys.modules[{module_name!r}] was replaced")
                continue
            for attr, value in list(vars(module).items()):
                if callable(value) and (from_notebook(value) or isinstance(value, partial)):
                    add(f"{module_name}.{attr} was replaced by notebook code")
        # names the released cells import (math, torch, F, ...) still mean what they imported:
        # "name=module:attribute" each (no attribute for a plain import)
        for binding in bindings.split():
            name, _, rest = binding.partition("=")
            module_name, _, attr = rest.partition(":")
            module = modules.get(module_name)
            expected = module if not attr else modules.get(
                f"{module_name}.{attr}", getattr(module, attr, None))
            if module is not None and name in user and user[name] is not expected:
                add(f"{name} was rebound by the notebook")
        torch = modules.get("torch")
        if torch is not None:
            for attr, value in list(vars(torch.Tensor).items()):
                if from_notebook(value) or (isinstance(value, property)
                                            and from_notebook(value.fget)):
                    add(f"torch.Tensor.{attr} was replaced by notebook code")
            stacks = mode_stacks or (torch._C._len_torch_function_stack,
                                     torch._C._len_torch_dispatch_stack)
            if stacks[0]() or stacks[1]():
                add("a torch function or dispatch mode is active")
            pending, seen = list(torch.Tensor.__subclasses__()), set()
            while pending:
                cls = pending.pop()
                if cls in seen:
                    continue
                seen.add(cls)
                pending.extend(cls.__subclasses__())
                if any(from_notebook(v) for v in vars(cls).values()):
                    add(f"the notebook subclassed torch.Tensor ({cls.__name__})")
        for name in ("AssertionError Exception BaseException print isinstance len abs all any "
                     "bool float int range sum getattr __import__ hasattr type round max min "
                     "issubclass str repr tuple list dict zip sorted enumerate vars id").split():
            if getattr(getattr(builtins, name, None), "__module__", None) != "builtins":
                add(f"builtin {name} was replaced")
        if gettrace() is not None or getprofile() is not None:
            add("a trace or profile function is set")
        if shell.input_transformers_post or shell.ast_transformers:
            add("IPython input or AST transformers were added")
        for step in shell.input_transformers_cleanup:
            if not (getattr(step, "__module__", "") or "").startswith("IPython."):
                add("IPython's input transformers were changed")
        if shell.custom_exceptions:
            add("IPython's exception handling was replaced (set_custom_exc)")
        for name in ("run_cell run_cell_async run_ast_nodes run_code transform_cell "
                     "showtraceback _showtraceback showsyntaxerror should_run_async "
                     "transform_ast ex ev").split():
            method = getattr(shell, name, None)
            module = getattr(getattr(method, "__func__", method), "__module__", "") or ""
            if from_notebook(method) or not module.startswith(("IPython.", "ipykernel.")):
                add(f"IPython's {name} was replaced")
        if kernel is not None:
            for name in "do_execute execute_request send_response".split():
                if not library(getattr(kernel, name, None), ("ipykernel.",)):
                    add(f"the kernel's {name} was replaced")
            # every message out of the kernel goes through its session and its sockets
            session = getattr(kernel, "session", None)
            if type(session).__module__ != "jupyter_client.session" or any(
                    callable(v) for v in vars(session).values()):
                add("the kernel's session was replaced")
            else:
                for name in "send serialize sign msg msg_header".split():
                    if not library(getattr(type(session), name, None),
                                   ("jupyter_client.", "json", "zmq.")):
                        add(f"the kernel's session.{name} was replaced")
            for name in ("iopub_socket", "iopub_thread"):
                sock = getattr(kernel, name, None)
                if sock is not None and (from_notebook(sock) or any(
                        callable(v) for v in vars(sock).values() if not isinstance(v, type))):
                    add(f"the kernel's {name} was replaced")
        for name in ("display_pub", "displayhook"):
            hook = getattr(shell, name, None)
            if from_notebook(hook) or not type(hook).__module__.startswith(
                    ("IPython.", "ipykernel.")) or any(
                    callable(v) and not library(v, ("IPython.", "ipykernel.", "_grader_kernel"))
                    for v in vars(hook).values() if not isinstance(v, type)):
                add(f"IPython's {name} was replaced")
        for event, callbacks in shell.events.callbacks.items():
            if not all(library(cb, ("IPython.", "ipykernel.", "matplotlib", "_grader_kernel",
                                    "ipywidgets.", "traitlets."))
                       for cb in callbacks):
                add(f"the notebook registered an IPython {event} callback")
        helpers = modules.get("transformer_workbook.checks")
        if helpers is not None:
            try:
                with open(helpers.__spec__.origin, "rb") as handle:
                    found = sha256(handle.read()).hexdigest()
            except Exception:
                found = ""
            if found != digest:
                add("the test helper module transformer_workbook.checks was modified")
            for name in "check check_close check_shape check_finite".split():
                if name in user and user[name] is not getattr(helpers, name, None):
                    add(f"{name} was redefined in the notebook")
        stream = sys.stdout
        if type(stream).__name__ != "_CappedStream" or type(stream).__module__ != "_grader_kernel" \
                or type(getattr(stream, "_stream", None)).__module__ != "ipykernel.iostream" \
                or from_notebook(getattr(getattr(stream, "_stream", None), "write", None)):
            add("sys.stdout was replaced")
        return problems

    while True:
        request = yield line
        prefix, challenge, problems = "[?]", "", []
        try:
            if type(request) is not tuple or len(request) != 4 or any(
                    type(part) is not str for part in request):
                problems = ["the integrity check was called from somewhere else than its cell"]
            else:
                prefix, challenge, bindings, digest = request
                if challenge in answered:
                    problems = ["the integrity check was asked twice"]
                elif not called_from(getframe(1), request):
                    problems = ["the integrity check was called from somewhere else than its cell"]
                else:
                    problems = problems_now(bindings, digest)
                answered.add(challenge)
        except GeneratorExit:
            raise
        except BaseException:  # the check itself failed (or was interrupted): no "ok"
            problems = ["the integrity check could not finish"]
        verdict = "ok" if not problems else "tampered: " + "; ".join(sorted(set(problems))[:5])
        verdict = verdict.replace("\n", " ").replace("\r", " ")
        signed = f"{prefix} {challenge} {verdict}".encode("utf-8", "backslashreplace")
        line = f"{prefix} {verdict} #{hmac(key, signed, 'sha256').hex()[:32]}"


def _install_integrity_check(key):
    import builtins

    check = _integrity_check(key)
    next(check)
    setattr(builtins, "@ENTRY@", check.send)


_install_integrity_check("@KEY@")
del _install_integrity_check, _integrity_check
"""


def check_startup(key: str) -> str:
    """The kernel-side check, under ``key`` (``CHECK_STARTUP``), for the kernel's start-up."""
    return CHECK_STARTUP.replace("@ENTRY@", ENTRY).replace("@KEY@", key)


def signature(key: str, prefix: str, challenge: str, verdict: str) -> str:
    """What the kernel's check appends to a verdict line (``CHECK_STARTUP``)."""
    signed = f"{prefix} {challenge} {verdict}".encode("utf-8", "backslashreplace")
    return hmac.new(key.encode(), signed, "sha256").hexdigest()[:32]


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
    r"the integrity check was asked twice",
    r"the integrity check was called from somewhere else than its cell",
    r"the integrity check could not finish",
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
        """The cell planted before one test: it calls the kernel's check with a challenge drawn
        for this cell alone (the grader reads it back from the cell's source)."""
        bindings = " ".join(f"{name}={module}:{attr or ''}" for name, module, attr in self.bindings)
        text = (CELL.replace("@TAG@", TAG).replace("@NONCE@", self.nonce)
                .replace("@CHALLENGE@", secrets.token_hex(8))
                .replace("@BINDINGS@", bindings).replace("@HELPERS_SHA256@", self.digest))
        return {"cell_type": "code", "execution_count": None,
                "id": f"grader-canary-{secrets.token_hex(4)}",
                "metadata": {"grader_canary": True}, "outputs": [], "source": text}

    def verdicts(self, cells: list[dict], key: str) -> dict[str, str]:
        """``grade_id -> problem`` for every test cell, in an executed notebook, whose check
        did not report ok under a signature that verifies with ``key`` (the kernel's)."""
        problems = {}
        prefix = f"[{TAG} {self.nonce}]"
        for before, cell in zip(cells, cells[1:]):
            if not is_graded(cell) or cell.get("cell_type") != "code":
                continue
            call = CALL.search(source(before))
            lines = [ln for ln in printed(before).splitlines() if ln.strip()]
            tagged = [ln for ln in lines if ln.startswith(prefix + " ")]
            if call is None or call.group(1, 2) != (TAG, self.nonce):
                problems[grade_id(cell)] = "the grader's integrity check before this test is missing"
            elif not tagged:
                problems[grade_id(cell)] = ("the integrity check before this test printed nothing "
                                            "(was print or sys.stdout replaced?)")
            elif len(lines) > 1:
                # the check prints one line; more means the notebook printed into its cell
                problems[grade_id(cell)] = ("the notebook added output to the grader's integrity "
                                            "check (a callback or a replaced stream?)")
            else:
                verdict, sep, mac = tagged[0][len(prefix) + 1:].rpartition(" #")
                if not sep or not hmac.compare_digest(
                        mac, signature(key, prefix, call.group(3), verdict)):
                    problems[grade_id(cell)] = (
                        "the integrity check's verdict before this test did not arrive as the "
                        "check wrote it (was print or sys.stdout replaced?)")
                elif verdict != "ok":
                    problems[grade_id(cell)] = "the notebook tampered with the tests" + _described(
                        verdict)
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
