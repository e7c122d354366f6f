"""Small, honest CPU measurements for notebooks: wall and CPU time of a call, peak memory.

Timings on a shared machine wobble, so every helper repeats the call and reports the median.
Peak memory is read from the process's resident set size (``/proc/self/statm`` on Linux),
sampled in a background thread while the call runs: large tensors are allocated with ``mmap``
and returned on free, so the peak increase over the baseline is the working memory of the call.
"""
from __future__ import annotations

import os
import statistics
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: fall back to the resource module (peak so far, coarse)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def time_call(fn, *, repeat: int = 3, warmup: int = 1) -> dict:
    """Run ``fn()`` ``warmup`` times, then ``repeat`` times; median and best wall and CPU ms.

    On a busy machine the best (minimum) of several calls is the least disturbed estimate.
    """
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"wall_ms": 1000 * statistics.median(walls), "cpu_ms": 1000 * statistics.median(cpus),
            "wall_min_ms": 1000 * min(walls), "cpu_min_ms": 1000 * min(cpus)}


def peak_memory_mib(fn, *, interval_s: float = 0.0005) -> float:
    """Peak increase of the resident set size (MiB) while ``fn()`` runs."""
    import gc

    gc.collect()
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    peak[0] = max(peak[0], _rss_bytes())
    return max(0.0, (peak[0] - base) / 2**20)
