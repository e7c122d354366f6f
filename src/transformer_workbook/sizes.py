"""One parameter picks how big every experiment in a notebook is.

``WORKBOOK_SIZE`` is read from the environment:

* ``grade`` - the smallest size; the autograder runs every submission at it.
* ``ci``    - small but meaningful; CI and nbval run the solution notebooks at it.
* ``full``  - the default for a learner working a notebook for real.
"""
import os

SIZES = ("grade", "ci", "full")
ENV_VAR = "WORKBOOK_SIZE"


def run_size() -> str:
    """Return the current run size, validated."""
    size = os.environ.get(ENV_VAR, "full").strip().lower() or "full"
    if size not in SIZES:
        raise ValueError(
            f"{ENV_VAR}={size!r} is not a known size; use one of {', '.join(SIZES)}"
        )
    return size


def by_size(*, grade, ci, full):
    """Pick the value for the current size: ``steps = by_size(grade=5, ci=200, full=3000)``."""
    return {"grade": grade, "ci": ci, "full": full}[run_size()]
