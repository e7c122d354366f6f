"""Run a notebook with nbclient at a chosen run size (``workbook check``, solution refresh)."""
from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

# What every notebook run by the workbook sees: the run size, no hub, no progress bars, plots
# as inline images, a fixed hash seed.
RUN_ENV = {"HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


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


def execute(notebook, *, cwd: Path, size: str, timeout: int = 600, allow_errors: bool = True,
            quiet: bool = False, on_cell_start=None):
    """Run every cell of an nbformat notebook in place and return it.

    The kernel talks over Unix sockets in a private folder (no TCP port, nothing to encrypt);
    with ``quiet`` whatever the kernel process itself prints (library warnings) is dropped.
    A cell past ``timeout`` raises nbclient's ``CellTimeoutError`` and a kernel that dies its
    ``DeadKernelError``: the kernel manager is the asynchronous one, because with the blocking
    one nbclient waits for the next output message with no time limit and never notices either
    (a ``workbook check`` of a notebook that called ``os._exit`` hung for good).
    ``on_cell_start(cell, cell_index)`` is nbclient's hook, called before each cell runs.
    """
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="wb-") as ipc, \
            _environment(WORKBOOK_SIZE=size, **RUN_ENV):
        km = AsyncKernelManager(kernel_name="python3", transport="ipc",
                                ip=os.path.join(ipc, "k"))
        client = NotebookClient(notebook, km=km, timeout=timeout, allow_errors=allow_errors,
                                resources={"metadata": {"path": str(cwd)}},
                                on_cell_start=on_cell_start)
        streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else {}
        # nbclient shuts down only kernels it created itself: ask it to shut this one down too,
        # or a process that runs several notebooks keeps every finished kernel alive.
        client.execute(cleanup_kc=True, **streams)
    return notebook


def strip_volatile_metadata(notebook) -> None:
    """Drop widget state and execution timing, which change on every run, and join the
    consecutive pieces of one stream (how a kernel splits a cell's prints into messages
    depends on timing; nbval compares them joined)."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        joined = []
        for output in cell.get("outputs", []):
            previous = joined[-1] if joined else None
            if (output.get("output_type") == "stream" and previous is not None
                    and previous.get("output_type") == "stream"
                    and previous.get("name") == output.get("name")):
                previous["text"] = "".join(previous["text"]) + "".join(output["text"])
            else:
                joined.append(output)
        if "outputs" in cell:
            cell.outputs = joined
