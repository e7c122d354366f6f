"""The ``workbook`` command line."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path


def _cmd_release(args) -> int:
    from .release import release

    for name in release(args.assignments or None):
        print(f"released course/{name}")
    return 0


def _cmd_check(args) -> int:
    from .grading.notebook_checks import UnreadableNotebook
    from .selfcheck import check_notebook, format_outcomes

    try:
        outcomes = check_notebook(Path(args.notebook), size=args.size, timeout=args.timeout)
    except UnreadableNotebook as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not outcomes:
        print(f"{args.notebook} has no graded test cells", file=sys.stderr)
        return 2
    print(format_outcomes(outcomes))
    return 0 if all(o.status != "failed" for o in outcomes) else 1


def _cmd_grade(args) -> int:
    from .grading.layout import GradingError
    from .grading.run import grade_class, print_summary
    from .paths import repo_root

    try:
        results, problems = grade_class(
            Path(args.submissions), Path(args.out), root=repo_root(), jobs=args.jobs,
            assignments=args.assignment or None, cell_timeout=args.cell_timeout,
            student_timeout=args.student_timeout, resume=not args.no_resume,
            progress=not args.no_progress, memory_gib=args.memory_limit, dask=args.dask)
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_summary(results, problems, Path(args.out))
    return 0


def _cmd_samples(args) -> int:
    from .paths import repo_root
    from .release import assignments
    from .samples import build_samples

    root = repo_root()
    target = Path(args.out) if args.out else root / "autograder" / "submitted"
    build_samples(root, args.assignments or assignments(root), target)
    print(f"sample submissions written to {target}")
    return 0


def _cmd_demo(args) -> int:
    from .grading.run import grade_class, print_summary
    from .paths import repo_root
    from .release import assignments, release
    from .samples import build_samples

    root = repo_root()
    everything = assignments(root)
    names = everything if args.all else (args.assignments or ["01-attention"])
    print("1/3 releasing the whole course from solutions/ ...")
    release(everything)
    print("2/3 building the sample class (reference, untouched release, wrong submissions) ...")
    submitted = build_samples(root, names, root / "autograder" / "submitted")
    print(f"3/3 grading it with {args.jobs or 'all'} parallel jobs ...")
    out = root / "demo-output"
    results, problems = grade_class(submitted, out, root=root, jobs=args.jobs, resume=False)
    print()
    print_summary(results, problems, out)
    if not args.all and not args.assignments:
        print("\nthe demo graded 01-attention; `workbook demo --all` grades every notebook's "
              "sample class (a few minutes per notebook on 2 cores)")
    return 0


def _cmd_fetch_data(args) -> int:
    from .data.reviews import fetch_sdist, load_reviews

    path = fetch_sdist(quiet=True)
    movie, product = load_reviews("movie", "all"), load_reviews("product", "all")
    print(f"review snippets cached at {path}: {len(movie)} movie, {len(product)} product "
          "(after dropping neutral scores)")
    return 0


def _cmd_refresh(args) -> int:
    """Re-run the solution notebooks at CI size so their stored outputs match nbval's run."""
    import nbformat

    from .execution import execute, strip_volatile_metadata
    from .paths import repo_root
    from .release import assignments

    root = repo_root()
    for name in args.assignments or assignments(root):
        for path in sorted((root / "solutions" / name).glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            execute(notebook, cwd=path.parent, size="ci", allow_errors=False, timeout=1200)
            strip_volatile_metadata(notebook)
            nbformat.write(notebook, path)
            print(f"refreshed {path.relative_to(root)}")
    return 0


# Subcommands that live next to the code they drive; each module exposes register(subparsers).
PLUGIN_COMMANDS = ("transformer_workbook.bench.cli", "transformer_workbook.quiz.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbook", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate course/ from solutions/ through nbgrader")
    p.add_argument("assignments", nargs="*")
    p.set_defaults(func=_cmd_release)

    p = sub.add_parser("check", help="run a notebook and report its visible tests")
    p.add_argument("notebook")
    p.add_argument("--size", default="grade", choices=["grade", "ci", "full"])
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("grade", help="autograde SUBMISSIONS/<student>/<assignment>/*.ipynb")
    p.add_argument("submissions")
    p.add_argument("--out", required=True, help="folder for grades.csv, cells.csv, feedback/")
    p.add_argument("--jobs", type=int, default=None, help="students in parallel (default: cores)")
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
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser("samples", help="build the sample class into autograder/submitted")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--out")
    p.set_defaults(func=_cmd_samples)

    p = sub.add_parser("demo", help="release, grade the sample class, print the gradebook")
    p.add_argument("assignments", nargs="*", help="whose sample class to grade (default: 01)")
    p.add_argument("--all", action="store_true", help="grade every notebook's sample class")
    p.add_argument("--jobs", type=int, default=None)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("fetch-data", help="download and cache the review snippets")
    p.set_defaults(func=_cmd_fetch_data)

    p = sub.add_parser("refresh", help="re-execute solution notebooks at CI size (maintainers)")
    p.add_argument("assignments", nargs="*")
    p.set_defaults(func=_cmd_refresh)

    for module in PLUGIN_COMMANDS:
        package = module.rpartition(".")[0]
        if importlib.util.find_spec(package) and importlib.util.find_spec(module):
            importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
