"""Measure how long a solution notebook takes at one run size (``workbook time``).

The executed copy goes to its own folder (never into ``solutions/``), and one JSON record per
run is appended to ``times.jsonl`` there: wall seconds, the machine's busy CPU seconds during
the run (every process's, so on a quiet machine the kernel's; compare with the load average
recorded beside it), the slowest cells, the machine, the load average before and after,
the commit and the command, so every time quoted in ``docs/results/`` can name its run.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


def machine() -> dict:
    """The CPU model, logical cores, memory and Python version of this machine."""
    import psutil

    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": psutil.cpu_count(logical=True),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version()}


def _commit(root: Path, notebook: Path) -> str:
    """The commit, with "+changes" when the notebook differs from it."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", str(notebook)],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent on anything but idling, since boot."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _cell_seconds(cell) -> float | None:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def time_notebook(path: Path, *, size: str, out: Path, root: Path, timeout: int = 1800) -> dict:
    """Run one notebook at ``size``, write the executed copy into ``out``, return the record."""
    import nbformat

    from transformer_workbook.execution import execute
    from transformer_workbook.notebooks import plain

    out.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(path, as_version=4)
    commit = _commit(root, path)       # the notebook's version as it is read now
    load_before = os.getloadavg()
    cpu_before = busy_cpu_seconds()
    started = time.perf_counter()
    error = None
    try:
        execute(notebook, cwd=path.parent, size=size, allow_errors=False, timeout=timeout,
                quiet=True)
    except Exception as exc:  # the record says which cell failed; the copy keeps its output
        error = f"{type(exc).__name__}: {plain(str(exc)).strip().splitlines()[-1][:300]}"
    wall = time.perf_counter() - started
    cpu = busy_cpu_seconds() - cpu_before
    copy = out / f"{path.stem}-{size}.ipynb"
    nbformat.write(notebook, copy)
    cells = [(i, s) for i, c in enumerate(notebook.cells) if c.cell_type == "code"
             for s in [_cell_seconds(c)] if s is not None]
    record = {
        "notebook": path.stem, "size": size, "wall_s": round(wall, 1),
        "machine_cpu_busy_s": round(cpu, 1),
        "cells_s": round(sum(s for _, s in cells), 1),
        "slowest_cells": [{"cell": i, "s": round(s, 1)}
                          for i, s in sorted(cells, key=lambda c: -c[1])[:5]],
        "error": error,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(), "commit": commit,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["workbook", "time"] + sys.argv[2:]),
        "executed_copy": str(copy),
    }
    with open(out / "times.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    return record
