"""Grading throughput: `workbook grade --jobs J` against stock, serial `nbgrader autograde`.

    .venv/bin/python scripts/bench_grading.py --students 30 --modes workbook stock
    .venv/bin/python scripts/bench_grading.py --students 200 --modes workbook
    .venv/bin/python scripts/bench_grading.py --modes workbook workbook-no-prewarm  # fork server

With ``workbook`` among the modes, it also measures the floor: the cells that the grader ran
for each student (its executed notebooks, hidden tests included, the grader's own integrity
checks left out), run again in kernels that were started and had the course's preload imported
before the clock starts, ``--jobs`` kernels at once as in the graded run (in rounds: the clock
starts once every kernel of the round is warm). ``overhead`` is the
graded run's wall time per student slot (wall x jobs / students) over that floor: 1.0 would
mean that grading costs nothing beyond the students' own cells. ``grader_seconds_per_slot`` is
the same difference in seconds (wall per student slot minus the floor): a notebook whose cells
get cheaper raises the ratio while the grader's own cost stays put. ``cpu_busy`` is the share of
the machine's cores that were busy during the graded run (1.0: every core all the time, so only
less CPU per student can make it faster). ``floor_alone`` is the issue's plain measure: the
same cells one student at a time in a warm kernel (with the grader's torch threads and with the
machine's; the smaller counts), and ``overhead`` there is the graded run's wall time per
student (wall / students) over it: what grading a class costs per student against running
each notebook once, start-up free, on its own. With 100 students or more,
``students_per_minute_per_50`` gives the rate of each consecutive block of 50 (flat when
nothing builds up over a long run).

The class is built from the sample submissions of one assignment (reference, untouched release,
one per wrong submission), cycled until there are N students. Prints a JSON record with the
machine, versions and seconds; the numbers go into docs/results/grading-benchmark.md.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbook_grader.pipeline import cores, default_jobs
from workbook_instructor.course import Course
from workbook_instructor.samples import sample_class, write_class
from workbook_instructor.timing import busy_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
COURSE = Course(ROOT)


def build_class(assignment: str, n: int, target: Path) -> None:
    samples = sample_class(COURSE, assignment)
    names = itertools.cycle(sorted(samples))
    write_class({f"s{i:03d}-{name}": samples[name] for i, name in zip(range(n), names)},
                assignment, target)


def time_workbook(subs: Path, out: Path, jobs: int, prewarm: bool = True) -> tuple[float, float]:
    """`workbook grade`; with ``prewarm=False`` each student's nbgrader starts from scratch.
    Returns (wall seconds, busy CPU seconds of the whole machine meanwhile)."""
    exe = Path(sys.executable).parent / "workbook"
    env = {**os.environ, "WORKBOOK_PREWARM": "1" if prewarm else "0"}
    cpu, start = busy_cpu_seconds(), time.perf_counter()
    subprocess.run([str(exe), "grade", str(subs), "--out", str(out), "--jobs", str(jobs),
                    "--no-progress"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start, busy_cpu_seconds() - cpu


def block_rates(out: Path, assignment: str, start: float, block: int = 50) -> list[float]:
    """Students a minute in consecutive blocks of ``block`` students, in the order they finished
    (from the modification time of each student's result file): flat if nothing builds up."""
    done = sorted(p.stat().st_mtime for p in (out / "results" / assignment).glob("*.json"))
    rates, previous = [], start
    for i in range(block - 1, len(done), block):
        rates.append(round(60 * block / max(done[i] - previous, 1e-9), 1))
        previous = done[i]
    return rates


def time_stock(subs: Path, course: Path, assignment: str) -> float:
    """What an instructor does with plain nbgrader: one autograde call, students in series."""
    course.mkdir(parents=True, exist_ok=True)
    db = course / "gradebook.db"
    flags = [f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url=sqlite:///{db}",
             f"--CourseDirectory.source_directory={ROOT / 'solutions'}",
             "--CourseDirectory.release_directory=release", "--log-level=WARN"]
    env = COURSE.nbgrader_env()
    py = [sys.executable, "-m", "nbgrader"]
    subprocess.run([*py, "generate_assignment", assignment, "--force", *flags], check=True,
                   cwd=ROOT, env=env)
    shutil.copytree(subs, course / "submitted")
    start = time.perf_counter()
    subprocess.run([*py, "autograde", assignment, "--force", "--create", *flags,
                    "--CourseDirectory.submitted_directory=submitted",
                    "--CourseDirectory.autograded_directory=autograded"],
                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


CANARY_MARK = "# Integrity check inserted by the grader"


def _cells_to_time(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"
            and not "".join(c["source"]).startswith(CANARY_MARK)]


def _warm_run(codes: list[str], preload: list[str], threads: int, cwd: Path,
              timeout: float, barrier) -> float:
    """Seconds that ``codes`` take in a kernel whose start and imports are already done; the
    clock starts when every kernel of the round is that far (``barrier``), so that no kernel's
    cells share the machine with another kernel's imports."""
    from jupyter_client.manager import start_new_kernel
    from workbook_grader.execute import Settings

    # the environment the grader gives its kernels (size, threads, offline, seeds)
    env = Settings(course=COURSE, work=cwd, cell_timeout=int(timeout), threads=threads).env()
    cwd.mkdir(parents=True, exist_ok=True)
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(cwd))
    quiet = {"output_hook": lambda msg: None, "store_history": False}
    try:
        warm = "\n".join(f"try:\n    import {m}\nexcept Exception:\n    pass" for m in preload)
        client.execute_interactive(warm, timeout=600, **quiet)
        barrier.wait(timeout=900)
        start = time.perf_counter()
        for code in codes:
            client.execute_interactive(code, timeout=timeout, **quiet)
        return time.perf_counter() - start
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def time_floor(out: Path, subs: Path, assignment: str, jobs: int, scratch: Path,
               threads: int | None = None) -> dict:
    """Per student, the seconds of its own graded cells in a warm kernel (see the docstring).
    Each distinct submission of the cycled class runs once, in rounds of ``jobs`` at once;
    the class's mean weights them. ``threads``: torch threads per kernel (default: what the
    grader gives each of ``jobs`` kernels)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    students = sorted(p.name for p in subs.iterdir())
    kinds: dict[str, list[str]] = {}
    for student in students:
        kinds.setdefault(student.split("-", 1)[1], []).append(student)
    if threads is None:
        threads = max(1, cores() // jobs)   # as the grader gives its kernels

    def one(kind: str, barrier) -> tuple[str, float]:
        student = kinds[kind][0]
        folder = out / ".work" / "students" / assignment / student / "autograded" / student
        notebooks = sorted((folder / assignment).glob("*.ipynb"))
        seconds = sum(_warm_run(_cells_to_time(nb), COURSE.preload_for([assignment]), threads,
                                scratch / student, COURSE.cell_timeout, barrier)
                      for nb in notebooks)
        return kind, seconds

    per_kind = {}
    order = sorted(kinds)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for first in range(0, len(order), jobs):
            round_ = order[first:first + jobs]
            barrier = threading.Barrier(len(round_))
            per_kind.update(pool.map(one, round_, [barrier] * len(round_)))
    mean = sum(per_kind[k] * len(v) for k, v in kinds.items()) / len(students)
    return {"per_submission": {k: round(v, 2) for k, v in sorted(per_kind.items())},
            "mean_per_student": round(mean, 2)}


def machine() -> dict:
    """`timing.machine()` (CPU, cores, memory, Python) plus what this benchmark depends on."""
    import nbgrader
    import torch

    from workbook_grader.sandbox.namespaces import probe
    from workbook_instructor.timing import machine as base
    return {**base(), "grading_cores": cores(), "torch": torch.__version__,
            "nbgrader": nbgrader.__version__, "sandbox": probe() or "namespaces",
            "load_avg_at_start": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="01-attention")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="students at once (default: the grader's, cores + 1)")
    parser.add_argument("--modes", nargs="+", default=["workbook", "stock"],
                        choices=["workbook", "workbook-no-prewarm", "stock"])
    args = parser.parse_args()
    os.environ["WORKBOOK_SIZE"] = "grade"
    record = {"assignment": args.assignment, "students": args.students, "jobs": args.jobs,
              "machine": machine(), "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        subs = Path(tmp) / "submitted"
        build_class(args.assignment, args.students, subs)
        for mode in args.modes:
            if mode.startswith("workbook"):
                began = time.time()
                took, cpu = time_workbook(subs, Path(tmp) / f"out-{mode}", args.jobs,
                                          prewarm=mode == "workbook")
                record.setdefault("cpu_busy", {})[mode] = round(cpu / (took * cores()), 2)
                if args.students >= 100:
                    record.setdefault("students_per_minute_per_50", {})[mode] = block_rates(
                        Path(tmp) / f"out-{mode}", args.assignment, began)
            else:
                took = time_stock(subs, Path(tmp) / "stock", args.assignment)
            record["seconds"][mode] = round(took, 1)
            record.setdefault("students_per_minute", {})[mode] = round(
                60 * args.students / took, 2)
            print(f"{mode}: {took:.1f} s", file=sys.stderr, flush=True)
            if mode == "workbook":
                floor = time_floor(Path(tmp) / f"out-{mode}", subs, args.assignment, args.jobs,
                                   Path(tmp) / "floor")
                slot = took * args.jobs / args.students
                ran = [json.loads(p.read_text())["seconds"] for p in
                       (Path(tmp) / f"out-{mode}" / "results" / args.assignment).glob("*.json")]
                record["floor"] = {**floor, "wall_per_student_slot": round(slot, 2),
                                   "nbgrader_run_per_student": round(sum(ran) / len(ran), 2),
                                   "overhead": round(slot / floor["mean_per_student"], 2),
                                   "grader_seconds_per_slot": round(
                                       slot - floor["mean_per_student"], 2)}
                print(f"floor: {floor['mean_per_student']:.2f} s per student; overhead "
                      f"{record['floor']['overhead']:.2f}x "
                      f"({record['floor']['grader_seconds_per_slot']:.2f} s per student slot)",
                      file=sys.stderr, flush=True)
                # The notebook's own run time: one student at a time in a warm kernel, with
                # the grader's threads and with the whole machine's; the smaller is the floor.
                alone = {n: time_floor(Path(tmp) / f"out-{mode}", subs, args.assignment, 1,
                                       Path(tmp) / f"alone-{n}", threads=n)["mean_per_student"]
                         for n in sorted({max(1, cores() // args.jobs), cores()})}
                per_student = took / args.students
                record["floor_alone"] = {
                    "threads_seconds": {str(n): v for n, v in alone.items()},
                    "mean_per_student": min(alone.values()),
                    "wall_per_student": round(per_student, 2),
                    "overhead": round(per_student / min(alone.values()), 2)}
                print(f"floor alone: {min(alone.values()):.2f} s per student; wall per student "
                      f"{per_student:.2f} s; overhead {record['floor_alone']['overhead']:.2f}x",
                      file=sys.stderr, flush=True)
    if {"workbook", "stock"} <= record["seconds"].keys():
        record["speedup"] = round(record["seconds"]["stock"] / record["seconds"]["workbook"], 2)
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
