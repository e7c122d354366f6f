"""Execute a notebook with nbclient at a chosen run size (self-check and solution refresh)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _environment(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def execute(notebook, *, cwd: Path, size: str, timeout: int = 600, allow_errors: bool = True):
    """Run every cell of an nbformat notebook in place and return it."""
    from nbclient import NotebookClient

    with _environment(WORKBOOK_SIZE=size, HF_HUB_OFFLINE="1", TQDM_DISABLE="1",
                      MPLBACKEND="module://matplotlib_inline.backend_inline",
                      PYTHONHASHSEED="0"):
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                allow_errors=allow_errors, resources={"metadata": {"path": str(cwd)}})
        client.execute()
    return notebook


def strip_volatile_metadata(notebook) -> None:
    """Drop widget state and execution timing, which change on every run."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
