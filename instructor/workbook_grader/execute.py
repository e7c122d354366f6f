"""Stage 5: run stock ``nbgrader autograde`` on one student, with the kernel in its sandbox.

The student gets a work folder of their own: the planted notebooks in nbgrader's submitted
layout, a private copy of the master gradebook, a kernelspec that puts the kernel in the
sandbox (``sandbox/``), and the folder the kernel works in. nbgrader itself runs from the course
root, so it reads the one ``nbgrader_config.py``; flags only point it at this folder. Each
student's nbgrader is a process of its own, forked from a pre-started nbgrader
(``nbgrader_server``), or started the plain way where that is unavailable; its whole process
group is killed at the student's wall-clock limit.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import nbgrader_server
from .sandbox import kernelspec

# nbgrader's command line through our launcher, which skips one slow import (see nbgrader_main).
NBGRADER = [sys.executable, "-m", "workbook_grader.nbgrader_main"]
LOG_LIMIT = 200_000


@dataclass(frozen=True)
class Settings:
    """How every student of a grading run is executed."""
    course: object                   # workbook_instructor.course.Course
    work: Path                       # scratch space of this grading run
    cell_timeout: int                # seconds per cell
    student_timeout: float = 1800.0  # wall clock for one student, all notebooks
    threads: int = 1                 # intra-op threads per student's kernel
    size: str = "grade"
    memory_bytes: int = 8 * 1024 ** 3  # address-space limit of a student's kernel
    cpu_seconds: int = 3600          # CPU-time limit of a student's kernel
    file_bytes: int = 256 * 1024 ** 2  # largest file a kernel may write
    output_chars: int = 1_000_000    # what one kernel may print, per stream
    hidden: tuple[Path, ...] = ()    # folders no kernel may see (solutions, submissions, output)
    assignments: tuple[str, ...] = ()  # graded in this run: what the kernel factory preloads

    def env(self) -> dict:
        """The environment of nbgrader and the kernel (and of the kernel factory)."""
        env = self.course.nbgrader_env()
        env.update({
            "WORKBOOK_SIZE": self.size, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads), "TQDM_DISABLE": "1", "MPLBACKEND": "agg",
        })
        return env

    def factory(self):
        """This process's kernel factory (None where there is no sandbox)."""
        preload = (self.course.preload_for(self.assignments) if self.assignments
                   else self.course.preload)
        return kernelspec.factory_for(self.course, self.env(), never=list(self.hidden),
                                      preload=preload)


@dataclass
class Execution:
    returncode: int | None           # None when it was killed at the student's time limit
    log: str
    seconds: float
    autograded: dict[str, Path]      # notebook -> the executed notebook nbgrader wrote
    db: Path                         # the student's gradebook
    note: str = ""                   # graded without isolation, and why
    key: str = ""                    # the key the kernel's integrity checks signed with


def clip(text: str, limit: int = LOG_LIMIT) -> str:
    if len(text) > limit:
        text = text[:limit // 2] + "\n[... log cut ...]\n" + text[-limit // 2:]
    return text


def run_bounded(cmd: list[str], *, cwd: Path, env: dict, timeout: float) -> tuple[int | None, str, float]:
    """Run ``cmd`` in its own process group; kill the whole group after ``timeout`` seconds."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    finally:
        try:  # nothing nbgrader started may outlive it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return code, clip(out.decode("utf-8", errors="replace")), time.monotonic() - start


def _autograde(settings: Settings, work: Path, db: Path, assignment: str, student: str,
               env: dict, flags: list[str]) -> tuple[int | None, str, float]:
    # A cell that runs past the timeout is interrupted and grading goes on with the next cell
    # (stock nbgrader would give up on the whole notebook and grade nothing).
    argv = ["autograde", assignment, f"--student={student}", "--force", "--create",
            "--Execute.interrupt_on_timeout=True", f"--Execute.timeout={settings.cell_timeout}",
            # the kernel is thrown away after its notebook: kill it rather than wait for it
            "--Execute.shutdown_kernel=immediate",
            # nbconvert validates the whole notebook after every one of nbgrader's preprocessors
            # (twelve, over its two passes) by default; once per pass, after the last, is enough
            "--Exporter.optimistic_validation=True",
            *settings.course.nbgrader_flags(work, db), *flags]
    root = settings.course.root
    server = nbgrader_server.shared(str(root), settings.course.nbgrader_env())
    if server is not None:
        try:
            code, log, seconds = server.run(argv, cwd=str(root), env=env,
                                            timeout=settings.student_timeout)
            return code, clip(log), seconds
        except (OSError, RuntimeError):
            pass  # the server failed: grade this student the plain way
    return run_bounded([*NBGRADER, *argv], cwd=root, env=env, timeout=settings.student_timeout)


@dataclass(frozen=True)
class Folders:
    """One student's scratch folders. The kernel works in a folder of its own (``kernel``), not
    where nbgrader writes the autograded notebook. Its Unix sockets live in a short folder under
    the system temp folder (``ipc``): socket paths are limited to 107 bytes, which a deep --out
    folder would exceed. ``key`` signs the verdicts of this student's integrity checks
    (``canaries``); every kernel started in these folders gets it."""
    work: Path
    kernel: Path
    ipc: Path
    key: str

    @classmethod
    def fresh(cls, settings: Settings, assignment: str, student: str) -> "Folders":
        work = settings.work / "students" / assignment / student
        shutil.rmtree(work, ignore_errors=True)
        (work / "kernel").mkdir(parents=True)
        return cls(work, work / "kernel", Path(tempfile.mkdtemp(prefix="wb-")),
                   secrets.token_hex(16))

    def sandbox_args(self, settings: Settings) -> dict:
        """The sandbox of this student's kernel, as ``kernelspec`` takes it."""
        return dict(cwd=self.kernel, writable=[self.kernel, self.ipc], course=settings.course,
                    memory_bytes=settings.memory_bytes, cpu_seconds=settings.cpu_seconds,
                    file_bytes=settings.file_bytes, output_chars=settings.output_chars,
                    threads=settings.threads, integrity_key=self.key)

    def env(self, settings: Settings) -> dict:
        """The environment of this student's nbgrader (and, filtered, of the kernel)."""
        return {**settings.env(), "JUPYTER_PATH": str(self.work / "jupyter"),
                "JUPYTER_RUNTIME_DIR": str(self.ipc)}


def execute(student: str, assignment: str, notebooks: dict[str, dict], master_db: Path,
            settings: Settings, ahead=None) -> Execution:
    """Autograde the planted ``notebooks`` of one student in a fresh work folder. ``ahead``
    (``kernel_pool.Ahead``) is a kernel already started for this student, in these folders."""
    folders = ahead.folders if ahead is not None else Folders.fresh(settings, assignment, student)
    work, ipc = folders.work, folders.ipc
    try:
        inbox = work / "submitted" / student / assignment
        inbox.mkdir(parents=True)
        for name, notebook in notebooks.items():
            (inbox / f"{name}.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
        db = work / "gradebook.db"
        shutil.copyfile(master_db, db)
        factory = settings.factory()
        kernelspec.write_kernelspec(
            work / "jupyter", factory=factory, **folders.sandbox_args(settings),
            attach=ahead.attach if ahead is not None else None)
        flags = ["--KernelManager.transport=ipc", f"--KernelManager.ip={ipc / 'k'}"]
        code, log, seconds = _autograde(settings, work, db, assignment, student,
                                        folders.env(settings), flags)
    finally:
        shutil.rmtree(ipc, ignore_errors=True)
    (work / "nbgrader.log").write_text(log, encoding="utf-8", errors="replace")
    autograded = {name: work / "autograded" / student / assignment / f"{name}.ipynb"
                  for name in notebooks}
    return Execution(code, log, seconds, autograded, db, kernelspec.isolation_note(factory),
                     folders.key)
