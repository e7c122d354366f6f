"""``workbook grade``: grade a class in parallel, one process tree per student.

Each student is graded in a work folder of its own, against a copy of a master gradebook, so
one broken or hostile submission cannot change another student's grade. Results are saved per
student as soon as they exist; a killed run resumes where it stopped.
"""
from __future__ import annotations

import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import collect, nbgrader_calls, sandbox
from .gradebook import write_gradebook
from .grade_one import GradingSettings, grade_submission, grading_env
from .layout import GradingError, Submission, find_submissions
from .report import summary_table, write_cells_csv, write_feedback, write_grades_csv
from .results import StudentResult, write_atomically


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _result_path(out: Path, sub: Submission) -> Path:
    return out / "results" / sub.assignment / f"{sub.student}.json"


def _load_previous(path: Path, fingerprint: str) -> StudentResult | None:
    try:
        previous = StudentResult.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return previous if previous.fingerprint == fingerprint else None


def grade_class(submissions: Path, out: Path, *, root: Path, jobs: int | None = None,
                assignments: list[str] | None = None, cell_timeout: int | None = None,
                student_timeout: float = 1800.0, resume: bool = True,
                progress: bool = True, memory_gib: float = 8.0,
                dask: str | None = None) -> tuple[list[StudentResult], list[str]]:
    """Grade everything under ``submissions``; write the reports into ``out``.

    Students run ``jobs`` at a time on this machine, or, with ``dask`` set to the address of
    a Dask distributed scheduler (``tcp://host:8786``), on that cluster's workers: each worker
    must see the repository, the submissions and ``out`` at the same paths (a shared filesystem)
    and have the workbook installed. ``dask="local"`` starts a LocalCluster of ``jobs`` workers.
    """
    from ..release import assignments as known_assignments

    jobs = jobs or default_jobs()
    if jobs < 1:
        raise GradingError("--jobs must be at least 1")
    if dask and dask != "local":
        _check_reachable(dask)
    subs, problems = find_submissions(Path(submissions).resolve(), known_assignments(root), assignments)
    out = Path(out).resolve()
    work = out / ".work"
    settings = GradingSettings(root=root, work=work, cell_timeout=cell_timeout,
                               student_timeout=student_timeout,
                               threads=max(1, (os.cpu_count() or 1) // jobs),
                               memory_bytes=int(memory_gib * 1024 ** 3),
                               hidden=(root / "solutions", out, Path(submissions).resolve()))

    _prefetch_assets()
    if not dask:  # start the kernel factory now: its imports overlap the master releases
        note = sandbox.isolation_note(sandbox.factory_for(root, grading_env(settings),
                                                          never=list(settings.hidden)))
        if note:
            print(f"warning: {note}", file=sys.stderr)
    masters = {}
    for assignment in sorted({s.assignment for s in subs}):
        master_work = work / "master" / assignment
        shutil.rmtree(master_work, ignore_errors=True)
        db = nbgrader_calls.release_master(root, master_work, assignment)
        cells = collect.master_grade_cells(db, assignment)
        masters[assignment] = (db, cells, {
            nb: collect.hidden_cells(root / "solutions" / assignment / f"{nb}.ipynb")
            for nb in cells})

    results: dict[Submission, StudentResult] = {}
    todo = []
    for sub in subs:
        fingerprint = sub.fingerprint(root / "solutions" / sub.assignment)
        previous = _load_previous(_result_path(out, sub), fingerprint) if resume else None
        if previous is not None:
            results[sub] = previous
        else:
            todo.append((sub, fingerprint))

    def run(item):
        sub, fingerprint = item
        db, master, hidden = masters[sub.assignment]
        try:
            result = grade_submission(sub, db, master, hidden, settings)
        except Exception as err:  # one student's failure must never stop the class
            result = StudentResult(sub.student, sub.assignment, status="error",
                                   reasons=[f"the grader failed on this submission: {err!r}"])
            result.cells = collect.cell_results(master, {}, {}, hidden, {})
            result.total()
        result.fingerprint = fingerprint
        write_atomically(_result_path(out, sub), result.to_json())
        return sub, result

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="grading", unit="student", file=sys.stderr)
    for sub, result in (_on_dask(dask, jobs, run, todo) if dask else _on_threads(jobs, run, todo)):
        results[sub] = result
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    ordered = [results[s] for s in sorted(results, key=lambda s: (s.assignment, s.student))]
    write_grades_csv(ordered, out / "grades.csv")
    write_cells_csv(ordered, out / "cells.csv")
    write_feedback(ordered, out / "feedback")
    write_gradebook(ordered, {a: m[0] for a, m in masters.items()}, out / "gradebook.db")
    return ordered, problems


def _prefetch_assets() -> None:
    """Kernels run without network, so cache the review snippets here first (once)."""
    from ..data.reviews import fetch_sdist

    try:
        fetch_sdist()
    except RuntimeError as err:  # offline grader: notebooks that need the snippets will say so
        print(f"warning: {err}", file=sys.stderr)


def _on_threads(jobs: int, run, todo):
    """One thread per concurrent student; each thread waits on the student's own processes."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in as_completed([pool.submit(run, item) for item in todo]):
            yield future.result()


def _on_dask(address: str, jobs: int, run, todo):
    """The same per-student function, scheduled by Dask distributed instead of local threads.

    Each worker saves its student's result file (the resume checkpoint) in ``out``; the
    results also come back here, and only this process writes the reports and the gradebook.
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError as err:
        raise GradingError("--dask needs the 'distributed' package: "
                           "pip install 'transformer-workbook[distributed]'") from err
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        address = cluster.scheduler_address
    try:
        with Client(address, timeout="30s") as client:
            futures = [client.submit(run, item, pure=False, key=f"grade-{item[0].assignment}-"
                                     f"{item[0].student}") for item in todo]
            for future in dask_completed(futures):
                yield future.result()
    except OSError as err:
        raise GradingError(f"could not reach the Dask scheduler at {address}: {err}") from err
    finally:
        if cluster is not None:
            cluster.close()


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail at once when nothing listens at a ``tcp://HOST:PORT`` scheduler address (Dask's
    client would retry for its whole connect timeout before saying so)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        return  # another transport (tls, ucx, inproc): leave it to Dask
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            pass
    except OSError as err:
        raise GradingError(f"could not reach the Dask scheduler at {address}: {err}; is "
                           "`dask scheduler` running there, and is the port open?") from err


def print_summary(results: list[StudentResult], problems: list[str], out: Path) -> None:
    print(summary_table(results))
    for problem in problems:
        print(f"skipped: {problem}")
    print(f"\ngrades: {out / 'grades.csv'}   per test: {out / 'cells.csv'}   "
          f"feedback: {out / 'feedback'}/<student>.html   gradebook: {out / 'gradebook.db'}")
