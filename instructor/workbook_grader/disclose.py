"""What a student may see of a failed test: the course's own check messages, nothing else.

A hidden test's source has to run inside the student's interpreter, so code that runs after it
can read it (the cell history, the caller's frame). The defence is at the way out: feedback
shows a test's message only when it is one that the test's author wrote, through the course's
check helpers (``transformer_workbook.checks``), with only short plain values in the places
where the helper or an f-string fills one in. Everything else is withheld; the student sees
the exception's type and why the message is not shown.

Messages are matched against templates read from the test cell's own source (the copy nbgrader
ran, which the student cannot change): each ``check(cond, message)``, ``check_close(...,
what, hint)``, ``check_shape(..., what)``, ``check_finite(..., what, hint)`` and
``raise AssertionError(message)`` gives one or more templates. A filled-in value may be a
number, a shape, a dtype or a short word: at most ``FIELD_CHARS`` characters without a line
break. That leaves a narrow channel (a student's code can choose what such a value shows, a
few dozen characters per failed test); docs/THREAT-MODEL.md says so.
"""
from __future__ import annotations

import ast
import builtins
import functools
import re

from .policy import parse

FIELD_CHARS = 40
FIELD = r"[\w.,:;()\[\]{}<>'\"+\-*/=%|# ]{0," + str(FIELD_CHARS) + "}"
NUMBER = r"-?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|inf|nan)"
SHAPE = r"\((?:\d+(?:, )?)*,?\)"
HELPERS = {"check", "check_close", "check_shape", "check_finite"}
SAFE_NAMES = frozenset(name for name, value in vars(builtins).items()
                       if isinstance(value, type) and issubclass(value, BaseException))
NOT_DEFINED = re.compile(r"name '(\w+)' is not defined")
WITHHELD = ("(the message is withheld: feedback shows a hidden test's message only when it is "
            "one of the course's check messages; run the visible tests and your own checks)")


def _pattern(node: ast.AST | None) -> str:
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(_pattern(part) if isinstance(part, ast.Constant) else FIELD
                       for part in node.values)
    return FIELD


def _argument(call: ast.Call, position: int, name: str) -> ast.AST | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return call.args[position] if len(call.args) > position else None


def _helper_templates(call: ast.Call, helper: str) -> list[str]:
    if helper == "check":
        return [_pattern(_argument(call, 1, "message"))]
    if helper == "check_shape":
        return [_pattern(_argument(call, 2, "what")) + rf" has shape {SHAPE}, expected {SHAPE}"]
    what_at = 1 if helper == "check_finite" else 2
    what = _pattern(_argument(call, what_at, "what"))
    hint = _argument(call, what_at + 1, "hint")
    suffix = f"(?:\\. {_pattern(hint)})?" if hint is not None else ""
    if helper == "check_finite":
        return [rf"{what} has \d+ NaN or infinite values{suffix}"]
    return [rf"{what} has shape {SHAPE}, expected {SHAPE}{suffix}",
            rf"{what} contains NaN or infinite values{suffix}",
            rf"{what} is wrong: largest difference {NUMBER} at index {SHAPE} "
            rf"\(got {NUMBER}, expected {NUMBER}\){suffix}"]


@functools.lru_cache(maxsize=1024)
def templates(test_source: str) -> tuple[re.Pattern, ...]:
    """The messages that the test cell ``test_source`` can raise through the course's helpers
    (cached: every student who fails a test asks for the same cell's templates)."""
    try:
        tree = parse(test_source)
    except (SyntaxError, ValueError):
        return ()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in HELPERS:
                found.extend(_helper_templates(node, name))
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                and getattr(node.exc.func, "id", None) == "AssertionError" and node.exc.args:
            found.append(_pattern(node.exc.args[0]))
    return tuple(re.compile(t, re.DOTALL) for t in found if t)


EXCEPTION_NAME = re.compile(r"[A-Za-z]{1,24}(?:Error|Exception|Exit|Interrupt|Warning)|gaierror|herror|timeout")


def exception_name(ename: str) -> str:
    """The exception's type, when it looks like one (a few letters ending in Error and the
    like); a student could name a class after anything."""
    return ename if ename in SAFE_NAMES or EXCEPTION_NAME.fullmatch(ename) else "an exception"


def test_message(ename: str, evalue: str, test_source: str, public_words: frozenset[str]) -> str:
    """What feedback shows for a test cell that raised ``ename: evalue``."""
    evalue = evalue.strip()
    if ename == "AssertionError" and any(t.fullmatch(evalue) for t in templates(test_source)):
        return f"AssertionError: {evalue}"
    missing = NOT_DEFINED.fullmatch(evalue)
    if ename == "NameError" and missing and missing.group(1) in public_words:
        return f"NameError: {evalue} (did the cell that defines it run without an error?)"
    if ename == "NotImplementedError" and not evalue:
        return "NotImplementedError: the exercise is not attempted yet"
    return f"{exception_name(ename)} {WITHHELD}"


def public_words(sources) -> frozenset[str]:
    """Every identifier in the released notebooks' code: what the student already has."""
    return frozenset(w for text in sources for w in re.findall(r"[A-Za-z_]\w*", text))
