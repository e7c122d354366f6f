"""What the GPU proof times, in which order, and how a time budget cuts it short.

Speed tasks are (point, provider) pairs in priority order, so that when the budget runs out the
least important ones are the ones skipped (and recorded as skipped):

1. ``goal``: the issue's goal shapes with every provider: forward+backward, causal, d=64, N=16k,
   B=16, H=1 (also notebook 07's kernel); forward, non-causal, d=128, N=4k..16k;
2. ``sweep``: bf16, d in {64, 128}, causal and not, forward and forward+backward, N=1k..16k,
   without FlexAttention (B*N = 16k tokens, H*d = 2048, as ``workbook bench attention``);
3. ``long``: the same at N=32k;
4. ``flex``: FlexAttention on the sweep points (each new shape costs it a compile).

Nothing here needs CUDA; the runner takes the timer as an argument.
"""
from __future__ import annotations

import time

from .attention import COMPARISON_POINTS, Point, naive_bytes, new_row, plan

PEERS = ("sdpa_flash", "sdpa_efficient", "flex", "naive")
SWEEP_PROVIDERS = ("triton", "sdpa_flash", "sdpa_efficient", "naive")
GOAL_PROVIDERS = ("triton", "notebook", "sdpa_flash", "sdpa_efficient", "flex", "naive")
SEQ_LENS = (1024, 2048, 4096, 8192, 16384)
LONG = 32768
MEMORY_SEQ_LENS = (8192, 16384, 32768, 65536)
NAIVE_FRACTION = 0.5   # naive is timed only when its N x N tensors take at most this share of the GPU


def goal_training() -> Point:
    """Forward+backward, causal, d=64, N=16k, B=16, H=1, bf16 (the published comparison)."""
    return COMPARISON_POINTS[0]


def goal_forward() -> list[Point]:
    """Forward, non-causal, d=128, N=4k..16k, bf16: the points of the 1.25x SDPA-flash goal."""
    return [p for p in plan(dtypes=("bf16",), head_dims=(128,), seq_lens=(4096, 8192, 16384),
                            causal=(False,), modes=("fwd",), comparison=False)]


def speed_tasks(quick=False) -> list[tuple[Point, str, str]]:
    """(point, provider, tier) in the order they run."""
    tasks: list[tuple[Point, str, str]] = []
    seen = set()

    def add(points, providers, tier):
        for p in points:
            for provider in providers:
                if (p, provider) not in seen:
                    seen.add((p, provider))
                    tasks.append((p, provider, tier))

    goal_providers = tuple(x for x in GOAL_PROVIDERS if x != "notebook")
    add([goal_training()], GOAL_PROVIDERS, "goal")
    add(goal_forward(), goal_providers, "goal")
    if quick:
        return tasks
    sweep = [p for n in SEQ_LENS for p in plan(dtypes=("bf16",), seq_lens=(n,), comparison=False)]
    add(sweep, SWEEP_PROVIDERS, "sweep")
    add(plan(dtypes=("bf16",), seq_lens=(LONG,), comparison=False), SWEEP_PROVIDERS, "long")
    by_shape = sorted(sweep, key=lambda p: (p.mode, p.d, p.causal, p.N))
    add(by_shape, ("flex",), "flex")
    return tasks


def memory_points(quick=False) -> list[Point]:
    """Forward+backward, non-causal, d=64, B=1, H=32 (H*d = 2048 as in the sweep), bf16, at
    N = 8k..64k (tag ``memory``). At 32k one [B, H, N, N] bf16 tensor is 64 GiB, so naive
    attention cannot train there on an 80 GiB H100 nor on a 141 GB H200."""
    seq_lens = (8192, 32768) if quick else MEMORY_SEQ_LENS
    return [Point("bf16", 64, n, 1, 32, False, "fwd_bwd", tag="memory") for n in seq_lens]


def naive_too_big(p: Point, total_bytes: int) -> str | None:
    """Why naive attention is not run at ``p`` for speed, or None when it is."""
    need = naive_bytes(p)
    if need <= NAIVE_FRACTION * total_bytes:
        return None
    return (f"not run: naive attention keeps {need / 2**30:.1f} GiB of N x N tensors, over "
            f"{NAIVE_FRACTION:.0%} of the GPU's {total_bytes / 2**30:.0f} GiB")


class Budget:
    """Seconds since the proof started, against a limit; ``clock`` is injectable for tests."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds = float(seconds)
        self.clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def allows(self, reserve: float = 0.0) -> bool:
        return self.left() > reserve


def run_tasks(tasks, measure, budget: Budget, reserve: float = 0.0, log=print, on_row=None) -> list[dict]:
    """``measure(point, provider)`` for each task while the budget leaves more than ``reserve``
    seconds; every later task becomes a row with status ``skipped`` saying why.
    ``on_row(rows)`` is called after each row (the proof saves partial results with it)."""
    rows = []
    for i, (p, provider, *tier) in enumerate(tasks, 1):
        if not budget.allows(reserve):
            note = (f"time budget: {budget.elapsed():.0f} s of {budget.seconds:.0f} s used, "
                    f"{reserve:.0f} s kept for the steps after this one")
            row = new_row(p, provider, status="skipped", note=note)
        else:
            row = measure(p, provider)
        if tier:
            row["tier"] = tier[0]
        rows.append(row)
        shown = (f"{row['ms']:.3f} ms, {row['tflops']:.1f} TFLOP/s" if row.get("ms")
                 else row["status"] + (f" ({row['note']})" if row.get("note") else ""))
        first_skip = row["status"] == "skipped" and (len(rows) == 1 or rows[-2]["status"] != "skipped")
        if row["status"] != "skipped" or first_skip or i == len(tasks):
            log(f"[{i}/{len(tasks)} {budget.elapsed():.0f}s] {p.dtype} d={p.d} N={p.N} B={p.B} H={p.H} "
                f"{'causal' if p.causal else 'full'} {p.mode} {provider}: {shown}")
        if on_row:
            on_row(rows)
    return rows
