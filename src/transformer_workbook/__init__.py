"""Plumbing shared by the Transformer Workbook notebooks.

The learning lives in the notebooks; this package only loads data and models, draws plots,
releases the course and grades submissions. Heavy imports (torch, transformers) are deferred
until the function that needs them is called, so ``import transformer_workbook`` stays fast.
"""
from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "run_size": "sizes",
    "by_size": "sizes",
    "seed_everything": "seeding",
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
