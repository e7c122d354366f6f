"""The instructor's ``workbook`` subcommands, registered with the student package's command.

    release   regenerate course/ from solutions/ (refuses to overwrite hand edits)
    bundle    what a class gets: the released notebooks and the student package, no answers
    samples   the sample class (reference, untouched release, one wrong submission per mistake)
    demo      release, build the sample class and grade it, all inside demo-output/
    refresh   re-execute the solution notebooks at CI size (their stored outputs)
    time      run solution notebooks at one size into --out and record how long they took
    grade     autograde a class (workbook_grader)
    bench     GPU benchmarks of the reference kernels; `bench compile` checks them for Hopper, no GPU
"""
from __future__ import annotations

import sys
from pathlib import Path

from .course import Course, CourseError


def _course() -> Course:
    return Course.find()


def _cmd_release(args) -> int:
    from .release import release

    course = _course()
    for name in release(course, args.assignments or None, force=args.force):
        print(f"released {course.release_dir.name}/{name}")
    return 0


def _cmd_bundle(args) -> int:
    from .bundle import build_bundle

    built = build_bundle(_course(), Path(args.dest))
    print(f"student bundle written to {built.folder}: {len(built.notebooks)} notebooks, "
          f"{built.wheel.name}; see {built.folder / 'README.md'}")
    return 0


def _cmd_samples(args) -> int:
    from .samples import build_samples

    course = _course()
    target = Path(args.out) if args.out else course.submitted_dir
    build_samples(course, course.check_assignments(args.assignments or None), target)
    print(f"sample submissions written to {target}")
    return 0


def _cmd_grade(args) -> int:
    from workbook_grader.pipeline import grade_class, print_summary
    from workbook_grader.submissions import GradingError

    try:
        results, problems = grade_class(
            Path(args.submissions), Path(args.out), course=_course(), jobs=args.jobs,
            assignments=args.assignment or None, cell_timeout=args.cell_timeout,
            student_timeout=args.student_timeout, resume=not args.no_resume,
            progress=not args.no_progress, memory_gib=args.memory_limit, dask=args.dask)
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_summary(results, problems, Path(args.out))
    return 0


def _cmd_demo(args) -> int:
    from workbook_grader.pipeline import default_jobs, grade_class, print_summary

    from .release import release
    from .samples import build_samples

    course = _course()
    names = course.assignments() if args.all else course.check_assignments(
        args.assignments or ["01-attention"])
    out = Path(args.out).resolve()
    print(f"1/3 releasing {', '.join(names)} from {course.source_dir.name}/ into {out / 'course'} ...")
    release(course, names, into=out / "course")
    print("2/3 building the sample class (reference, untouched release, wrong submissions) ...")
    submitted = build_samples(course, names, out / "submitted", release_dir=out / "course")
    print(f"3/3 grading it with {args.jobs or default_jobs()} parallel jobs ...")
    results, problems = grade_class(submitted, out / "grades", course=course, jobs=args.jobs,
                                    resume=False)
    print()
    print_summary(results, problems, out / "grades")
    if not args.all and not args.assignments:
        print("\nthe demo graded 01-attention; `workbook demo --all` grades every notebook's "
              "sample class (a minute or two per notebook on 2 cores)")
    return 0


def _cmd_refresh(args) -> int:
    """Re-run the solution notebooks at CI size so their stored outputs match nbval's run."""
    import nbformat

    from transformer_workbook.execution import execute, strip_volatile_metadata

    course = _course()
    for name in course.check_assignments(args.assignments or None):
        for path in sorted((course.source_dir / name).glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            execute(notebook, cwd=path.parent, size="ci", allow_errors=False, timeout=1200,
                    quiet=True)
            strip_volatile_metadata(notebook)
            nbformat.write(notebook, path)
            print(f"refreshed {path.relative_to(course.root)}")
    return 0


def _cmd_time(args) -> int:
    """Run solution notebooks at one size into --out; print and log how long each took."""
    from .timing import time_notebook

    course = _course()
    failed = 0
    for name in course.check_assignments(args.assignments or None):
        for path in sorted((course.source_dir / name).glob("*.ipynb")):
            record = time_notebook(path, size=args.size, out=Path(args.out), root=course.root,
                                   timeout=args.cell_timeout)
            slowest = ", ".join(f"cell {c['cell']} {c['s']} s" for c in record["slowest_cells"][:3])
            print(f"{name} at {args.size}: {record['wall_s']} s wall, {record['machine_cpu_busy_s']} s machine CPU "
                  f"(load {record['load_before'][0]} -> {record['load_after'][0]}; "
                  f"slowest {slowest})" + (f"; FAILED: {record['error']}" if record["error"] else ""),
                  flush=True)
            failed += record["error"] is not None
    return 1 if failed else 0


def _errors_explained(command):
    def run(args) -> int:
        try:
            return command(args)
        except CourseError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return run


def register(sub) -> None:
    """Add the instructor's subcommands to ``workbook``."""
    p = sub.add_parser("release", help="(instructor) regenerate course/ from solutions/")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--force", action="store_true",
                   help="overwrite files in course/ that were changed since the last release")
    p.set_defaults(func=_errors_explained(_cmd_release))

    p = sub.add_parser("bundle", help="(instructor) what a class gets: notebooks and the "
                                      "student package, no answers")
    p.add_argument("dest", help="folder to write (must not exist yet)")
    p.set_defaults(func=_errors_explained(_cmd_bundle))

    p = sub.add_parser("samples", help="(instructor) build the sample class")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--out", help="folder (default: nbgrader's submitted folder)")
    p.set_defaults(func=_errors_explained(_cmd_samples))

    p = sub.add_parser("demo", help="(instructor) release, grade the sample class, print the "
                                    "gradebook, all inside --out")
    p.add_argument("assignments", nargs="*", help="whose sample class to grade (default: 01)")
    p.add_argument("--all", action="store_true", help="grade every notebook's sample class")
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--out", default="demo-output", help="folder for everything the demo writes")
    p.set_defaults(func=_errors_explained(_cmd_demo))

    p = sub.add_parser("refresh", help="(maintainers) re-execute solution notebooks at CI size")
    p.add_argument("assignments", nargs="*")
    p.set_defaults(func=_errors_explained(_cmd_refresh))

    p = sub.add_parser("time", help="(maintainers) run solution notebooks at one size into "
                                    "--out and record wall/CPU time (times.jsonl)")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--size", choices=("grade", "ci", "full"), default="full")
    p.add_argument("--out", default="build/times",
                   help="folder for the executed copies and times.jsonl (default build/times)")
    p.add_argument("--cell-timeout", type=int, default=1800, help="seconds per cell")
    p.set_defaults(func=_errors_explained(_cmd_time))

    p = sub.add_parser("grade", help="(instructor) autograde SUBMISSIONS/<student>/<assignment>/*.ipynb")
    p.add_argument("submissions")
    p.add_argument("--out", required=True, help="folder for grades.csv, cells.csv, feedback/")
    p.add_argument("--jobs", type=int, default=None, help="students in parallel (default: cores + 1)")
    p.add_argument("--assignment", action="append", help="grade only this assignment")
    p.add_argument("--cell-timeout", type=int, default=None,
                   help="seconds per cell (default: c.Execute.timeout in nbgrader_config.py)")
    p.add_argument("--student-timeout", type=float, default=1800.0,
                   help="wall-clock seconds for one student")
    p.add_argument("--memory-limit", type=float, default=8.0,
                   help="GiB of address space for one student's kernel")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run students on a Dask distributed cluster (scheduler address, e.g. "
                        "tcp://host:8786, or 'local' for a LocalCluster of --jobs workers)")
    p.add_argument("--no-resume", action="store_true", help="regrade everyone from scratch")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_errors_explained(_cmd_grade))

    from .bench.cli import register as bench

    bench(sub)
