"""Which of the grader's preloaded modules each solution notebook really imports when it runs.

    .venv/bin/python scripts/preload_usage.py [ASSIGNMENT ...]      # all: about 13 min on 2 cores

Runs each solution notebook at the ci size in a fresh kernel (in a scratch folder) with one
extra cell at the end that lists the modules of the course's preload lists
(``c.GradingSandbox.preload`` and every ``preload_for``) found in ``sys.modules``, and prints,
per assignment, those that its grading run would not preload (each graded student would import
them itself: add them to ``preload_for``) and those it preloads but never used. The static
check, on every test run, is tests/test_preload.py; this is the dynamic one, for imports that
no import line shows (a library importing another inside a function).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from workbook_instructor.course import Course

ROOT = Path(__file__).resolve().parents[1]


def used(notebook: Path, modules: list[str]) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import sys as _sys, json as _json\n"
        f"print('PRELOAD-USED', _json.dumps([m for m in {modules!r} if m in _sys.modules]))"))
    scratch = Path(tempfile.mkdtemp(prefix="preload-"))
    try:
        NotebookClient(nb, timeout=1200, kernel_name="python3",
                       resources={"metadata": {"path": str(scratch)}}).execute()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = "".join(out.get("text", "") for out in nb.cells[-1].outputs)
    return json.loads(text.split("PRELOAD-USED", 1)[1])


def main(names: list[str]) -> int:
    course = Course(ROOT)
    os.environ.update(WORKBOOK_SIZE="ci", MPLBACKEND="agg", TQDM_DISABLE="1",
                      HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    every = course.preload
    missing_somewhere = False
    for assignment in names or course.assignments():
        start = time.perf_counter()
        found = set()
        for notebook in sorted((course.source_dir / assignment).glob("*.ipynb")):
            found |= set(used(notebook, every))
        planned = set(course.preload_for([assignment]))
        missing = sorted(found - planned)
        missing_somewhere |= bool(missing)
        print(f"{assignment} ({time.perf_counter() - start:.0f} s): imported but not preloaded "
              f"for it: {missing or 'none'}; preloaded but unused: {sorted(planned - found)}",
              flush=True)
    return 1 if missing_somewhere else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
