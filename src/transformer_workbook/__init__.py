"""The student's package: what the Transformer Workbook notebooks import.

The learning lives in the notebooks; this package only loads data and models, draws plots,
sizes and seeds runs, checks answers with teaching messages, measures, and runs the quiz and
``workbook check``. It holds no answer to any graded exercise and never imports nbgrader: the
instructor's tools (release, grading, reference answers) are the separate ``workbook_instructor``
and ``workbook_grader`` packages. Heavy imports (torch, transformers) are deferred until the
function that needs them is called, so ``import transformer_workbook`` stays fast.
"""
from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "run_size": "run",
    "by_size": "run",
    "seed_everything": "run",
    "load_reviews": "data.reviews",
    "load_lexicon": "data.reviews",
    "load_corpus": "data.corpus",
    "load_encoder": "models",
    "load_decoder": "models",
    "attention_heatmap": "plots",
    "attention_explorer": "explorer",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        module = import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
