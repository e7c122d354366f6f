"""Grade one student's submission of one assignment, start to finish, in a work folder of its own."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import collect, integrity, nbgrader_calls, sandbox
from .layout import Submission
from .notebook_checks import (UnreadableNotebook, inspect_submission, locked_checksums,
                              without_duplicate_grade_cells)
from .results import StudentResult

GiB = 1024 ** 3


@dataclass(frozen=True)
class GradingSettings:
    root: Path                       # the workbook checkout (solutions/, nbgrader_config.py)
    work: Path                       # scratch space of this grading run
    cell_timeout: int | None = None  # None: nbgrader_config.py's c.Execute.timeout
    student_timeout: float = 1800.0  # wall clock for one student, all notebooks
    threads: int = 1                 # intra-op threads per student's kernel
    size: str = "grade"
    memory_bytes: int = 8 * GiB      # address-space limit of a student's kernel
    cpu_seconds: int = 3600          # CPU-time limit of a student's kernel
    file_bytes: int = 256 * 1024 ** 2  # largest file a kernel may write
    output_chars: int = 1_000_000    # what one kernel may print, per stream
    hidden: tuple[Path, ...] = ()    # folders no kernel may see (solutions, submissions, output)


def grading_env(settings: GradingSettings) -> dict:
    env = dict(os.environ)
    env.update({
        "WORKBOOK_SIZE": settings.size,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": str(settings.threads),
        "MKL_NUM_THREADS": str(settings.threads),
        "TQDM_DISABLE": "1",
        "MPLBACKEND": "agg",
    })
    return env


def _last_lines(log: str, n: int = 6) -> str:
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def _failure_reason(log: str) -> str:
    if "DeadKernelError" in log or "Kernel died" in log or "UnresponsiveKernelError" in log:
        return ("the notebook's kernel died while it ran (os._exit, a crash, or too much "
                "memory), so the cells after that point were not graded")
    return f"nbgrader could not grade this submission: {_last_lines(log)}"


def _prepare_sandbox(work: Path, sub: Submission, settings: GradingSettings,
                     ipc: Path) -> tuple[dict, list[str], str]:
    """Kernelspec, environment and nbgrader flags that put the student's kernel in its sandbox;
    and a note for the grade table when there is no isolation.

    The kernel works in a folder of its own (``work/kernel``), not in the folder where
    nbgrader writes the autograded notebook. Its Unix sockets live in ``ipc``, a short path
    under the system temp folder: socket paths are limited to 107 bytes, which a deep
    ``--out`` folder would exceed.
    """
    kernel_cwd = work / "kernel"
    kernel_cwd.mkdir(parents=True, exist_ok=True)
    env = grading_env(settings)
    factory = sandbox.factory_for(settings.root, env, never=list(settings.hidden))
    sandbox.write_kernelspec(work / "jupyter", factory=factory, cwd=kernel_cwd,
                             writable=[kernel_cwd, ipc], root=settings.root,
                             memory_bytes=settings.memory_bytes,
                             cpu_seconds=settings.cpu_seconds, file_bytes=settings.file_bytes,
                             output_chars=settings.output_chars, threads=settings.threads)
    env["JUPYTER_PATH"] = str(work / "jupyter")
    env["JUPYTER_RUNTIME_DIR"] = str(ipc)
    flags = ["--KernelManager.transport=ipc", f"--KernelManager.ip={ipc / 'k'}"]
    return env, flags, sandbox.isolation_note(factory)


def grade_submission(sub: Submission, master_db: Path, master: dict[str, dict[str, float]],
                     hidden: dict[str, set[str]], settings: GradingSettings) -> StudentResult:
    result = StudentResult(sub.student, sub.assignment)
    released = master_db.parent / "release" / sub.assignment
    nonce, digest = integrity.new_nonce(), integrity.helpers_digest()
    work = settings.work / "students" / sub.assignment / sub.student
    shutil.rmtree(work, ignore_errors=True)
    inbox = work / "submitted" / sub.student / sub.assignment
    inbox.mkdir(parents=True)
    db = work / "gradebook.db"
    shutil.copyfile(master_db, db)

    zeroed: dict[str, dict[str, str]] = {}
    gradable = 0
    for notebook, cells in master.items():
        path = sub.folder / f"{notebook}.ipynb"
        if not path.is_file():
            reason = f"{notebook}.ipynb is missing from the submission"
            result.reasons.append(reason)
            zeroed[notebook] = {gid: reason for gid in cells}
            continue
        try:
            found = inspect_submission(path, cells,
                                       locked_checksums(released / f"{notebook}.ipynb"))
        except UnreadableNotebook as err:
            result.reasons.append(str(err))
            zeroed[notebook] = {gid: str(err) for gid in cells}
            continue
        result.reasons.extend(found.problems)
        result.notes.extend(found.notes)
        zeroed[notebook] = dict(found.zeroed)
        runnable = integrity.insert_canaries(without_duplicate_grade_cells(found.notebook),
                                             nonce, digest)
        (inbox / path.name).write_text(json.dumps(runnable), encoding="utf-8")
        gradable += 1

    messages: dict[str, dict[str, str]] = {}
    if gradable:
        ipc = Path(tempfile.mkdtemp(prefix="wb-"))
        try:
            env, flags, note = _prepare_sandbox(work, sub, settings, ipc)
            if note:
                result.notes.append(note)
            done = nbgrader_calls.autograde(
                settings.root, work, db, sub.assignment, sub.student,
                cell_timeout=settings.cell_timeout, timeout=settings.student_timeout,
                env=env, extra=flags)
        finally:
            shutil.rmtree(ipc, ignore_errors=True)
        result.seconds = round(done.seconds, 2)
        if done.returncode is None:
            result.reasons.append(
                f"grading was stopped after {settings.student_timeout:.0f} s; does a cell loop "
                "forever or wait for input?")
        elif done.returncode != 0:
            result.reasons.append(_failure_reason(done.log))
        for notebook in master:
            autograded = work / "autograded" / sub.student / sub.assignment / f"{notebook}.ipynb"
            messages[notebook] = collect.failure_messages(autograded)
            result.reasons.extend(f"{notebook}.ipynb: {p}" for p in collect.run_problems(autograded))
            tampered = {gid: why for gid, why in integrity.canary_verdicts(autograded, nonce).items()
                        if gid not in zeroed.get(notebook, {})}
            for why in sorted(set(tampered.values())):
                result.reasons.append(f"{notebook}.ipynb: {why}; the affected tests score 0")
            zeroed.setdefault(notebook, {}).update(tampered)
        scores = collect.scores_from_gradebook(db, sub.assignment, sub.student)
    else:
        scores = {}
        result.status = "error"
    result.cells = collect.cell_results(master, scores, messages, hidden, zeroed)
    result.total()
    return result
