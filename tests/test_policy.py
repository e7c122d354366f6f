"""The grader's static rules for a student's own code (workbook_grader.policy) and what feedback
may show of a failed test (workbook_grader.disclose): ordinary exercise code passes, the ways
into the interpreter do not, and only the course's own check messages reach a student."""
import json

import pytest

from conftest import ROOT
from workbook_grader import disclose, policy

ORDINARY = [
    "def f(x):\n    return torch.softmax(x, dim=-1)",
    "model.eval()\nout = model(x)",
    "for name, module in model.named_modules():\n    parent, _, child = name.rpartition('.')\n"
    "    setattr(model.get_submodule(parent), child, module)",
    "print('the string type of compile time')",
    "%time y = f(x)",
    "%%timeit\nf(x)",
    "import math, copy, re, collections\nx = '{:.3f}'.format(math.pi)",
    "class A(nn.Module):\n    def __init__(self):\n        super().__init__()",
    "stacked = torch.stack([a, b])",
    "if __name__ == '__main__':\n    pass",
]
FORBIDDEN = {
    "get_ipython().set_custom_exc((Exception,), print)": "set_custom_exc",
    "shell = get_ipython()": "get_ipython",
    "import sys\nsys._getframe(1)": "imports sys",
    "import inspect": "inspect",
    "from IPython import get_ipython": "IPython",
    "x = In[-1]": "In",
    "f = lambda: 0\nf.__globals__": "__globals__",
    "class T(torch.Tensor):\n    def __torch_function__(cls, *a): return True": "__torch_function__",
    "class Yes:\n    def __eq__(self, other): return True": "__eq__",
    "eval('1 + 1')": "eval",
    "getattr(x, '__class__')": "__class__",
    "torch.allclose = lambda *a, **k: True": "torch.allclose",
    "setattr(torch, 'all' + 'close', print)": "setattr",
    "'{0.__globals__}'.format(f)": "reaches into",
    "'{0.f_back}'.format(frame)": "reaches into",
    "template.format(x)": "format",
    "!cat /etc/passwd": "shell command",
    "%config InlineBackend.figure_format = 'svg'": "magic",
    "torch.load(path, weights_only=False)": "pickled",
    "type('Yes', (), {})": "type(name",
    "class M(metaclass=Meta):\n    pass": "metaclass",
    "import __main__": "__main__",
    "x = ''.join(['get_', 'ipython'])\ny = 'get_ipython'": "get_ipython",
}


@pytest.mark.parametrize("code", ORDINARY)
def test_ordinary_exercise_code_passes(code):
    assert policy.cell_rule(code) is None


@pytest.mark.parametrize("code", sorted(FORBIDDEN))
def test_ways_into_the_interpreter_are_named(code):
    rule = policy.cell_rule(code)
    assert rule is not None and FORBIDDEN[code] in rule, rule


def test_unicode_lookalikes_are_normalised_like_python_does():
    # Python reads identifiers in NFKC form: a full-width "ｇet_ipython" is get_ipython
    assert policy.cell_rule("\uff47et_ipython()") is not None


def test_only_changed_cells_are_read_and_later_tests_lose_points():
    cells = [{"cell_type": "code", "source": "import sys"},       # as released: the course's
             {"cell_type": "code", "source": "x = 1"},
             {"cell_type": "code", "source": "import inspect"},   # the student's
             {"cell_type": "code", "source": "print(x)"}]
    position, breach = policy.first_breach(cells, {"import sys"})
    assert position == 2 and breach.cell == 3 and "imports inspect" in breach.rule
    assert "tests after it score 0" in breach.reason("01-attention")


def test_every_reference_solution_keeps_to_the_rules():
    """No solution cell of the course needs what the rules forbid (else honest students
    would lose points)."""
    from transformer_workbook.notebooks import is_solution, source

    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        modules = policy.PATCHED_ROOTS | policy.module_names(cells)
        for index, cell in enumerate(cells, start=1):
            if cell["cell_type"] == "code" and is_solution(cell):
                assert policy.cell_rule(source(cell), modules) is None, f"{path.name} cell {index}"


TEST_CELL = '''
check_close(out, ref, "attention output", "did you scale by sqrt(d_k)?")
check(w.sum(-1).allclose(torch.ones(3)), f"rows of the weights sum to {w.sum(-1)[0]:.3f}, not 1")
check_shape(out, (2, 3), "output")
'''


@pytest.mark.parametrize("message", [
    "attention output is wrong: largest difference 0.5 at index (0, 1) (got 1, expected 0.5). "
    "did you scale by sqrt(d_k)?",
    "attention output has shape (2, 4), expected (2, 3). did you scale by sqrt(d_k)?",
    "rows of the weights sum to 0.998, not 1",
    "output has shape (4,), expected (2, 3)",
])
def test_check_messages_are_shown(message):
    assert disclose.test_message("AssertionError", message, TEST_CELL, frozenset()) \
        == f"AssertionError: {message}"


@pytest.mark.parametrize("ename,message", [
    ("AssertionError", "attention output is wrong: largest difference 0.5 at index (0, 1) "
                       "(got 1, expected 0.5). payload: ref = sdpa(q, k, v, mask=causal)"),
    ("AssertionError", "check_close(out, ref, 'attention output')"),
    ("AssertionError", "rows of the weights sum to " + "x" * 60 + ", not 1"),
    ("ValueError", "ref = sdpa(q, k, v)"),
    ("Secret_ref_sdpa_q_k_v", "anything"),
])
def test_anything_else_is_withheld(ename, message):
    shown = disclose.test_message(ename, message, TEST_CELL, frozenset())
    assert "withheld" in shown and "sdpa" not in shown and "payload" not in shown
    assert "x" * 60 not in shown


def test_name_errors_show_public_names_only():
    public = disclose.public_words(["def softmax(x):\n    pass"])
    assert "softmax" in disclose.test_message("NameError", "name 'softmax' is not defined", "", public)
    assert "withheld" in disclose.test_message("NameError", "name 'hidden_ref' is not defined",
                                               "", public)
