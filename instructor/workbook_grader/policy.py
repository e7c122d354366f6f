"""Stage 3b: what a student's own code may not do, checked before anything runs.

A student's code and the hidden tests share one Python interpreter, and Python lets code
reach almost anything in its interpreter: the cell history (where a hidden test's source
lands once it has run), the caller's frame (the test that called the student's function),
IPython's input transformers and exception handlers (which decide what a later cell runs and
whether its failure is shown), torch's dispatch modes and ``__torch_function__`` (which let a
returned value lie to every comparison). None of the exercises needs any of that, so the
grader forbids the ways in, by reading the code rather than by running it:

* names that lead into the interpreter's machinery (``get_ipython``, ``In``, ``_getframe``,
  ``f_back``, ``set_custom_exc``, ``settrace``, ``TorchFunctionMode`` ...);
* modules whose only use here would be reflection (``sys``, ``inspect``, ``gc``, ``builtins``,
  ``ctypes``, ``importlib``, ``IPython``, ``pickle`` ...);
* dunder attributes other than a few harmless ones (``x.__class__``, ``f.__globals__``),
  dunder methods that change how a value compares or converts (``__eq__``, ``__bool__``,
  ``__float__``, ``__torch_function__`` ...), metaclasses;
* code built from strings at run time: ``eval``, ``exec``, ``compile``, ``__import__``,
  ``globals()``, ``vars()``, ``str.format`` on a computed template, pickled bytes; and any
  string that names one of the above (``getattr`` with a computed name is allowed, since
  replacing a model's layers needs it: the kernel's audit hook refuses, at run time, what it
  could reach that matters — frames, code objects, tracing);
* replacing a library's functions (``torch.allclose = ...``, ``setattr(torch, ...)``);
* ``global`` for a name that starts with ``_`` (the hidden tests' own names) or that names a
  module, which would let a function a test calls rebind what the test reads next;
* IPython magics and shell escapes, except the harmless timing and plotting ones.

Only code the student wrote or changed is read: a cell whose source is exactly as released is
the course's. The first cell that breaks the rules zeroes every test that runs after it (the
tests before it ran untouched), with a reason that names the cell and the rule. This is the
static half of the "honest scores" guarantee in docs/THREAT-MODEL.md; the canaries are the
dynamic half.
"""
from __future__ import annotations

import ast
import functools
import re
import threading
from dataclasses import dataclass

# Bare names (builtins and IPython's user namespace) that lead into the interpreter.
FORBIDDEN_NAMES = frozenset({
    "get_ipython", "In", "Out", "_ih", "_oh", "_dh", "_i", "_ii", "_iii",
    "eval", "exec", "compile", "__import__", "globals", "vars", "locals", "breakpoint",
})
# Attributes that do: IPython's hooks and history, frames and tracing, the garbage collector,
# torch's interception points, string templates that reach into attributes.
FORBIDDEN_ATTRS = frozenset({
    "history_manager", "input_transformers_post", "input_transformers_cleanup",
    "ast_transformers", "set_custom_exc", "showtraceback", "showsyntaxerror", "run_cell",
    "run_cell_async", "run_ast_nodes", "transform_cell", "user_ns", "user_global_ns",
    "displayhook", "display_pub", "excepthook", "register_magic_function",
    "_getframe", "f_back", "f_locals", "f_globals", "f_code", "f_builtins", "tb_frame",
    "tb_next", "gi_frame", "cr_frame", "ag_frame", "settrace", "setprofile", "gettrace",
    "get_referrers", "get_referents", "get_objects", "currentframe",
    "TorchFunctionMode", "TorchDispatchMode", "overrides", "_python_dispatch", "_C",
    "_dynamo", "format_map", "vformat", "attrgetter", "methodcaller", "import_module",
})
# Modules that a student may not replace functions in (the canaries also watch them).
PATCHED_ROOTS = frozenset({"torch", "np", "numpy", "math", "F", "nn", "functional", "checks",
                           "transformer_workbook", "tw"})
FORBIDDEN_MODULES = frozenset({
    "sys", "builtins", "inspect", "gc", "ctypes", "importlib", "IPython", "ipykernel",
    "traceback", "linecache", "code", "codeop", "types", "dis", "marshal", "pickle",
    "cloudpickle", "dill", "copyreg", "shelve", "operator", "string", "threading", "_thread",
    "atexit", "faulthandler", "site", "runpy", "pdb", "bdb", "tracemalloc", "weakref",
    "jupyter_client", "nbformat", "nbclient", "nbgrader", "workbook_grader",
    "workbook_instructor",
})
SAFE_DUNDERS = frozenset({
    "__init__", "__name__", "__qualname__", "__doc__", "__version__", "__len__",
    "__getitem__", "__iter__", "__next__", "__repr__", "__str__", "__call__", "__enter__",
    "__exit__", "__post_init__", "__contains__", "__hash__", "__setitem__", "__main__",
})
SAFE_MAGICS = frozenset({"time", "timeit", "matplotlib", "capture"})
DUNDER = re.compile(r"__\w+__")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAGIC = re.compile(r"^\s*(%%?|!)(\w*)")
DYNAMIC_ATTR = frozenset({"getattr", "setattr", "delattr", "hasattr"})


_PARSING = threading.Lock()


@functools.lru_cache(maxsize=4096)
def parse(code: str) -> ast.Module:
    """``ast.parse``, one thread at a time: Python 3.11's parser can fail with "AST constructor
    recursion depth mismatch" when threads parse at once (the grader grades students on
    threads). Cached: every student's notebook repeats the released cells, and the rules, the
    import scan and the feedback filter read the same cells. Callers must not change the tree."""
    with _PARSING:
        return ast.parse(code)


@dataclass(frozen=True)
class Breach:
    cell: int          # 1-based, counted as in the student's notebook
    rule: str          # what the code does, in words

    def reason(self, notebook: str) -> str:
        return (f"cell {self.cell} of {notebook}.ipynb {self.rule}, which graded code may not "
                "do (docs/THREAT-MODEL.md, 'What your code may not do'); the tests after it "
                "score 0")


def _python(text: str) -> tuple[str, str | None]:
    """The cell's Python with harmless magics stripped; or a rule it breaks."""
    lines = []
    for line in text.splitlines():
        found = MAGIC.match(line)
        if found:
            kind, name = found.groups()
            if kind == "!" or name not in SAFE_MAGICS:
                return "", f"runs the IPython magic or shell command {line.strip()[:40]!r}"
            line = line[found.end():].lstrip()
        lines.append(line)
    return "\n".join(lines), None


def _string_rule(value: str) -> str | None:
    """Strings are read for identifiers that prose does not use: ones with an underscore or in
    CamelCase from the lists above, and dunders (``"f_back"``, ``"__globals__"``)."""
    for word in WORD.findall(value):
        odd = "_" in word or word[:1].isupper() and any(ch.isupper() for ch in word[1:])
        if odd and (word in FORBIDDEN_NAMES or word in FORBIDDEN_ATTRS) \
                or DUNDER.fullmatch(word) and word not in SAFE_DUNDERS:
            return f"has a string that names {word!r}"
    return None


def _template_rule(template: str) -> str | None:
    """``str.format`` templates may format values, not reach into them (``{0.f_back}``)."""
    from string import Formatter

    try:
        fields = [f for _, f, _, _ in Formatter().parse(template) if f]
    except ValueError:
        return None
    if any("." in f or "[" in f for f in fields):
        return "formats a template that reaches into attributes or items"
    return None


def _root(node: ast.AST) -> tuple[str | None, int]:
    """The name at the root of ``a.b.c`` and the chain's length."""
    depth = 0
    while isinstance(node, ast.Attribute):
        node, depth = node.value, depth + 1
    return (node.id if isinstance(node, ast.Name) else None), depth


class _Reader(ast.NodeVisitor):
    def __init__(self, modules: frozenset[str] = PATCHED_ROOTS):
        self.rule: str | None = None
        self.modules = modules

    def _flag(self, rule: str) -> None:
        if self.rule is None:
            self.rule = rule

    def visit_Import(self, node):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] in FORBIDDEN_MODULES or DUNDER.fullmatch(parts[0]) \
                    or any(p in FORBIDDEN_ATTRS for p in parts):
                self._flag(f"imports {alias.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        module = node.module or ""
        parts = module.split(".")
        if node.level or parts[0] in FORBIDDEN_MODULES or DUNDER.fullmatch(parts[0]) \
                or any(p in FORBIDDEN_ATTRS for p in parts):
            self._flag(f"imports from {module or '.'}")
        for alias in node.names:
            if alias.name in FORBIDDEN_NAMES or alias.name in FORBIDDEN_ATTRS or alias.name == "*" \
                    or DUNDER.fullmatch(alias.name):
                self._flag(f"imports {alias.name} from {module}")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in FORBIDDEN_NAMES or DUNDER.fullmatch(node.id) and node.id not in SAFE_DUNDERS:
            self._flag(f"uses {node.id}")

    def visit_Attribute(self, node):
        if node.attr in FORBIDDEN_ATTRS or DUNDER.fullmatch(node.attr) and node.attr not in SAFE_DUNDERS:
            self._flag(f"uses the attribute {node.attr}")
        root, depth = _root(node)
        if isinstance(node.ctx, (ast.Store, ast.Del)) and root in self.modules and depth <= 3:
            self._flag(f"replaces {ast.unparse(node)} (a library's own function)")
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name) and func.id in DYNAMIC_ATTR:
            # A computed name is allowed (replacing a model's layers needs it); where it would
            # lead to a frame or a code object, the kernel's audit hook refuses at run time.
            literal = len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str)
            if literal and (node.args[1].value in FORBIDDEN_ATTRS | FORBIDDEN_NAMES
                            or DUNDER.fullmatch(node.args[1].value)
                            and node.args[1].value not in SAFE_DUNDERS):
                self._flag(f"uses {func.id} on {node.args[1].value!r}")
            if func.id in ("setattr", "delattr") and node.args \
                    and _root(node.args[0])[0] in self.modules:
                self._flag(f"replaces an attribute of {ast.unparse(node.args[0])} with {func.id}")
        if isinstance(func, ast.Attribute) and func.attr == "format":
            if isinstance(func.value, ast.Constant) and isinstance(func.value.value, str):
                rule = _template_rule(func.value.value)
                if rule:
                    self._flag(rule)
            else:
                self._flag("calls .format on a template built at run time")
        if isinstance(func, ast.Name) and func.id == "type" and len(node.args) == 3:
            self._flag("builds a class with type(name, bases, namespace)")
        for keyword in node.keywords:
            if keyword.arg in ("weights_only", "allow_pickle") and not (
                    isinstance(keyword.value, ast.Constant)
                    and keyword.value.value is (keyword.arg == "weights_only")):
                self._flag(f"loads pickled data ({keyword.arg}=...)")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str):
            rule = _string_rule(node.value)
            if rule:
                self._flag(rule)

    def visit_FunctionDef(self, node):
        if DUNDER.fullmatch(node.name) and node.name not in SAFE_DUNDERS:
            self._flag(f"defines {node.name}, which changes how its values behave")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        for keyword in node.keywords:
            self._flag(f"gives class {node.name} a {keyword.arg}")
        self.generic_visit(node)

    def visit_Global(self, node):
        # From inside a function a test calls, a global declaration could rebind, while the
        # test runs, a name the test reads after the call: its own ``_`` names, or a module.
        for name in node.names:
            if name in FORBIDDEN_NAMES or name.startswith("_") or name in self.modules:
                self._flag(f"declares global {name}")


def cell_rule(text: str, modules: frozenset[str] = PATCHED_ROOTS) -> str | None:
    """The first rule that ``text`` (one cell's source) breaks, or None. ``modules``: names
    bound to library modules, whose attributes the code may not replace."""
    code, rule = _python(text)
    if rule:
        return rule
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return None   # it cannot run either; the cell's own error will say so
    except (RecursionError, MemoryError):
        return "nests its code too deeply for the grader's checks to read"
    reader = _Reader(modules)
    reader.visit(tree)
    return reader.rule


def first_breach(cells: list[dict], released: set[str]) -> tuple[int, Breach] | None:
    """``(position in cells, Breach)`` of the first code cell, not as released, that breaks a
    rule. Positions count every cell; the breach's number counts cells as the student sees
    them (from 1)."""
    from transformer_workbook.notebooks import source

    modules = PATCHED_ROOTS | module_names(cells)
    for position, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        text = source(cell)
        if text in released:
            continue
        rule = cell_rule(text, modules)
        if rule:
            return position, Breach(position + 1, rule)
    return None


def module_names(cells: list[dict]) -> frozenset[str]:
    """Names that ``import`` statements anywhere in the notebook bind to modules."""
    from transformer_workbook.notebooks import source

    names = set()
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = parse(_python(source(cell))[0])
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update((a.asname or a.name.split(".")[0]) for a in node.names)
    return frozenset(names)
