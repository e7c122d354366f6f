"""How big a run is and how it is seeded: the two settings every experiment reads.

``WORKBOOK_SIZE`` picks the size of every experiment in a notebook:

* ``grade`` - the smallest size; the autograder runs every submission at it.
* ``ci``    - small but meaningful; CI and nbval run the solution notebooks at it.
* ``full``  - the default for a learner working a notebook for real.

``seed_everything`` makes a run repeatable.
"""
import os
import random

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


def seed_everything(seed: int = 0, threads: int | None = None) -> None:
    """Seed Python, NumPy and PyTorch; make PyTorch pick deterministic kernels.

    ``threads`` fixes the number of intra-op threads. Without it the count comes from the
    environment (``OMP_NUM_THREADS``, else one per core); results printed by the course's
    notebooks do not depend on it.
    """
    import numpy as np
    import torch

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
