"""The two nbgrader commands the grader runs: release a master, autograde one student.

Both run stock ``nbgrader`` from the repository root, so they read the workbook's one
``nbgrader_config.py``; command-line flags only redirect folders and the database into the
grading run's own work area. The master release runs as a subprocess through a launcher that
only skips a slow import; each student's autograde runs in a process of its own, forked from a
pre-started nbgrader (see prewarmed_nbgrader), or as such a subprocess where that is unavailable.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import prewarmed_nbgrader


@dataclass
class Finished:
    returncode: int | None   # None when it was killed for running too long
    log: str
    seconds: float


# nbgrader's command line through our launcher, which skips one slow import (see nbgrader_main).
NBGRADER = [sys.executable, "-m", "transformer_workbook.grading.nbgrader_main"]


def nbgrader_env(base: dict | None = None) -> dict:
    """Environment for an nbgrader subprocess: this interpreter's scripts folder comes first
    on PATH (nbgrader runs ``alembic`` from there when it creates a gradebook)."""
    env = dict(os.environ if base is None else base)
    scripts = os.path.dirname(sys.executable)
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    return env


def _flags(work: Path, db: Path, root: Path) -> list[str]:
    return [
        f"--CourseDirectory.root={work}",
        f"--CourseDirectory.source_directory={root / 'solutions'}",
        "--CourseDirectory.release_directory=release",
        "--CourseDirectory.submitted_directory=submitted",
        "--CourseDirectory.autograded_directory=autograded",
        "--CourseDirectory.feedback_directory=feedback",
        f"--CourseDirectory.db_url=sqlite:///{db}",
    ]


def run_bounded(cmd: list[str], *, cwd: Path, env: dict, timeout: float,
                log_limit: int = 200_000, preexec_fn=None) -> Finished:
    """Run ``cmd`` in its own process group; kill the whole group after ``timeout`` seconds."""
    import time

    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=preexec_fn)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    finally:
        try:  # the kernel may have outlived nbgrader; never leave strays behind
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return Finished(code, _clip(out.decode("utf-8", errors="replace"), log_limit),
                    time.monotonic() - start)


def _clip(text: str, limit: int = 200_000) -> str:
    if len(text) > limit:
        text = text[:limit // 2] + "\n[... log cut ...]\n" + text[-limit // 2:]
    return text


def release_master(root: Path, work: Path, assignment: str) -> Path:
    """Record the assignment's grade cells (hidden tests included) in ``work/master.db``."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / "master.db"
    cmd = [*NBGRADER, "generate_assignment", assignment, "--force",
           "--log-level=WARN", *_flags(work, db, root)]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=nbgrader_env())
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader could not prepare {assignment}:\n{done.stderr[-4000:]}")
    return db


def autograde(root: Path, work: Path, db: Path, assignment: str, student: str, *,
              cell_timeout: int | None, timeout: float, env: dict, extra: list[str] = (),
              preexec_fn=None) -> Finished:
    # A cell that runs past the timeout is interrupted and grading goes on with the next cell
    # (stock nbgrader would give up on the whole notebook and grade nothing).
    cmd = [*NBGRADER, "autograde", assignment, f"--student={student}",
           "--force", "--create", "--Execute.interrupt_on_timeout=True",
           *_flags(work, db, root), *extra]
    if cell_timeout is not None:
        cmd.append(f"--Execute.timeout={cell_timeout}")
    server = prewarmed_nbgrader.shared(str(root), nbgrader_env()) if preexec_fn is None else None
    if server is not None:
        try:
            code, log, seconds = server.run(cmd[len(NBGRADER):], cwd=str(root),
                                            env=nbgrader_env(env), timeout=timeout)
            return Finished(code, _clip(log), seconds)
        except (OSError, RuntimeError):
            pass  # the server failed: grade this student the plain way
    return run_bounded(cmd, cwd=root, env=nbgrader_env(env), timeout=timeout,
                       preexec_fn=preexec_fn)
