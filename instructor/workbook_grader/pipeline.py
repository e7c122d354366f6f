"""``workbook grade``: every stage of the grader, in order (see the package docstring).

``grade_one`` takes one student down the stages; ``grade_class`` prepares each assignment's
master once, fans the students out over threads (or Dask workers), saves each result as soon as
it exists (a killed run resumes where it stopped) and writes the class's reports.
"""
from __future__ import annotations

import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from transformer_workbook.storage import write_atomically

from . import canaries, masters, nbgrader_server, report
from .execute import Settings, execute
from .gradebook import write_gradebook
from .inspect import Inspection, inspect, unreadable
from .kernel_pool import KernelPool
from .read_back import read_back
from .results import StudentResult
from .score import score
from .submissions import GradingError, Submission, find_submissions


def cores() -> int:
    """The CPU cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def default_jobs() -> int:
    """Students graded at once: one more than the cores. A student's grading also waits (for
    its kernel to come up, for messages, for nbgrader's gradebook), and the extra student fills
    those gaps: notebook 01, 2 cores, the cores were busy 80% of a run with 2 jobs and 87% with
    3, and the class took about a sixth less time (docs/results/grading-benchmark.md)."""
    return cores() + 1


def grade_one(sub: Submission, master: masters.Master, settings: Settings,
              ahead=None) -> StudentResult:
    """One student, down the stages: inspect, plant canaries, execute, read back, score.
    ``ahead`` is a kernel the pool started for this student (``kernel_pool``), or None."""
    inspection = inspect(sub, master)
    if not inspection.notebooks:
        return score(sub.student, master, inspection, None, None, settings.student_timeout)
    canary = canaries.Canary.new()
    planted = {name: canaries.plant(nb, canary.binding(
                   canaries.released_bindings(master.released.get(name, frozenset()))))
               for name, nb in inspection.notebooks.items()}
    execution = execute(sub.student, sub.assignment, planted, master.db, settings, ahead=ahead)
    found = read_back(execution, sub.assignment, sub.student, canary, master.public)
    return score(sub.student, master, inspection, execution, found, settings.student_timeout)


def grade_failed(sub: Submission, master: masters.Master, settings: Settings,
                 err: Exception) -> StudentResult:
    """The result of a student on whom the grader itself failed: what inspection found, the
    rest at 0, and the error as the reason."""
    try:
        inspection = inspect(sub, master)
    except Exception:  # noqa: BLE001 - never let one student's submission stop the class
        inspection = Inspection()
        for name, tests in master.cells.items():
            unreadable(inspection, name, tests, f"{name}.ipynb could not be inspected")
    result = score(sub.student, master, inspection, None, None, settings.student_timeout)
    result.reasons.append(f"the grader failed on this submission: {type(err).__name__}")
    print(f"warning: the grader failed on {sub.student}/{sub.assignment}: {err!r:.300}",
          file=sys.stderr)
    return result


def _result_path(out: Path, sub: Submission) -> Path:
    return out / "results" / sub.assignment / f"{sub.student}.json"


def _load_previous(path: Path, fingerprint: str) -> StudentResult | None:
    try:
        previous = StudentResult.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return previous if previous.fingerprint == fingerprint else None


def grade_class(submissions: Path, out: Path, *, course, jobs: int | None = None,
                assignments: list[str] | None = None, cell_timeout: int | None = None,
                student_timeout: float = 1800.0, resume: bool = True,
                progress: bool = True, memory_gib: float = 8.0,
                dask: str | None = None) -> tuple[list[StudentResult], list[str]]:
    """Grade everything under ``submissions``; write the reports into ``out``.

    Students run ``jobs`` at a time on this machine, or, with ``dask`` set to the address of
    a Dask distributed scheduler (``tcp://host:8786``), on that cluster's workers, which need
    the course's Python environment but no shared filesystem (``remote``).
    ``dask="local"`` starts a LocalCluster of ``jobs`` workers.
    """
    jobs = jobs or default_jobs()
    if jobs < 1:
        raise GradingError("--jobs must be at least 1")
    if dask and dask != "local":
        _check_reachable(dask)
    subs, problems = find_submissions(Path(submissions).resolve(), course.assignments(),
                                      assignments)
    out = Path(out).resolve()
    work = out / ".work"
    settings = Settings(course=course, work=work,
                        cell_timeout=cell_timeout or course.cell_timeout,
                        student_timeout=student_timeout,
                        threads=max(1, cores() // jobs),
                        memory_bytes=int(memory_gib * 1024 ** 3),
                        hidden=course.hidden_from_students() + (out, Path(submissions).resolve()),
                        assignments=tuple(sorted({s.assignment for s in subs})))
    prefetch_assets()
    # Start the kernel factory (its imports take seconds) and the pre-started nbgrader on
    # threads: they overlap the master releases, which run here meanwhile.
    with ThreadPoolExecutor(max_workers=2) as starter:
        starting = [] if dask else [
            starter.submit(settings.factory),
            starter.submit(nbgrader_server.shared, str(course.root), course.nbgrader_env())]
        prepared = {a: masters.prepare(course, a, work / "master" / a)
                    for a in sorted({s.assignment for s in subs})}
        started = [future.result() for future in starting]
    if started:
        from .sandbox.kernelspec import isolation_note

        factory = started[0]
        note = isolation_note(factory)
        if note:
            print(f"warning: {note}", file=sys.stderr)
        unknown = sorted(set(course.preload_extras()) - set(course.assignments()))
        if unknown:
            print(f"note: c.GradingSandbox.preload_for names {unknown}, which are not "
                  "assignments of this course: they preload nothing", file=sys.stderr)
        for failed in getattr(factory, "failed", []):
            print(f"note: c.GradingSandbox.preload: {failed} (each kernel imports it itself)",
                  file=sys.stderr)

    results: dict[Submission, StudentResult] = {}
    todo = []
    for sub in subs:
        fingerprint = sub.fingerprint(course.source_dir / sub.assignment)
        previous = _load_previous(_result_path(out, sub), fingerprint) if resume else None
        if previous is not None:
            results[sub] = previous
        else:
            todo.append((sub, fingerprint))

    # Kernels for the next students start while these are graded (one ahead per job).
    pool = None
    if started and os.environ.get("WORKBOOK_KERNEL_POOL") != "0":
        pool = KernelPool(settings, started[0],
                          [(sub.assignment, sub.student) for sub, _ in todo], depth=jobs)

    def run(item):
        sub, fingerprint = item
        master = prepared[sub.assignment]
        ahead = None
        try:
            ahead = pool.take(sub.assignment, sub.student) if pool is not None else None
            result = grade_one(sub, master, settings, ahead)
        except Exception as err:  # one student's failure must never stop the class
            result = grade_failed(sub, master, settings, err)
        finally:
            if ahead is not None:
                ahead.discard()   # a kernel nobody took over dies here
        result.fingerprint = fingerprint
        return sub, result

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="grading", unit="student", file=sys.stderr)
    stream = (_on_dask(dask, jobs, todo, prepared, settings, course) if dask
              else _on_threads(jobs, run, todo))
    try:
        for sub, result in stream:
            if result.fingerprint:   # a student whose worker failed is graded again next run
                write_atomically(_result_path(out, sub), result.to_json())
            results[sub] = result
            if bar is not None:
                bar.update(1)
    finally:
        if pool is not None:
            pool.close()
    if bar is not None:
        bar.close()
    if started:  # one factory per grading run: its kernels are all done
        from .sandbox.factory import close_shared

        close_shared(started[0])

    ordered = [results[s] for s in sorted(results, key=lambda s: (s.assignment, s.student))]
    report.write_reports(ordered, out)
    write_gradebook(ordered, {a: m.db for a, m in prepared.items()}, out / "gradebook.db")
    return ordered, problems


@functools.cache
def prefetch_assets() -> None:
    """Kernels run without network, so cache the review snippets here first (once a process)."""
    from transformer_workbook.data.reviews import fetch_sdist

    try:
        fetch_sdist()
    except RuntimeError as err:  # offline grader: notebooks that need the snippets will say so
        print(f"warning: {err}", file=sys.stderr)


def _on_threads(jobs: int, run, todo):
    """One thread per concurrent student; each thread waits on the student's own processes."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in as_completed([pool.submit(run, item) for item in todo]):
            yield future.result()


def _on_dask(address: str, jobs: int, todo, prepared, settings: Settings, course):
    """The students on the workers of a Dask distributed cluster (``remote`` says how: each
    worker gets the master and the student's notebooks as bytes, and sends back the result,
    the executed notebooks and nbgrader's log; no filesystem is shared).

    A student whose task fails on the worker (the workbook not installed there, a worker that
    died) gets a result that says so; the other students go on.
    """
    import uuid

    from . import remote

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
    run_id = uuid.uuid4().hex[:12]
    try:
        with Client(address, timeout="30s") as client:
            payloads = {a: client.scatter(remote.master_payload(course, m), broadcast=False)
                        for a, m in prepared.items()}
            futures = {}
            for sub, fingerprint in todo:
                master = prepared[sub.assignment]
                task = remote.job(sub, list(master.cells), settings, run_id)
                future = client.submit(remote.grade, task, payloads[sub.assignment], pure=False,
                                       key=f"grade-{run_id}-{sub.assignment}-{sub.student}",
                                       retries=0)
                futures[future] = (sub, fingerprint)
            for future in dask_completed(list(futures)):
                sub, fingerprint = futures[future]
                try:
                    returned = future.result()
                except Exception as err:  # noqa: BLE001 - the worker's error, per student
                    yield sub, remote.unreachable_result(sub.student, sub.assignment,
                                                         prepared[sub.assignment], err)
                    continue
                remote.save_returned(returned, settings.work)
                result = StudentResult.from_json(returned["result"])
                result.fingerprint = fingerprint
                yield sub, result
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
    print(report.summary_table(results))
    for problem in problems:
        print(f"skipped: {problem}")
    print(f"\ngrades: {out / 'grades.csv'}   per test: {out / 'cells.csv'}   "
          f"feedback: {out / 'feedback'}/<student>.html   gradebook: {out / 'gradebook.db'}")
