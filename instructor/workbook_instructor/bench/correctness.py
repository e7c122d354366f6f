"""Correctness of an attention implementation against ``scaled_dot_product_attention``.

For every case, fresh random q, k, v and an upstream gradient are drawn; the implementation's
output and its gradients dQ, dK, dV are compared with SDPA run in float64 on the same inputs (the
reference), by the relative error ``||got - ref|| / ||ref||``. SDPA run in the case's own dtype
is measured the same way, to show what rounding alone costs. A tensor passes when it is finite
and its error is at most ``max(TOLERANCE[dtype], SDPA_FACTOR x SDPA's own error)``.

Works on any device: the GPU proof runs fp16/bf16 cases on CUDA; the tests run fp32 cases on
the CPU through the Triton interpreter.
"""
from __future__ import annotations

from dataclasses import asdict

from .attention import Point

TOLERANCE = {"fp32": 1e-4, "fp16": 5e-3, "bf16": 3e-2}
SDPA_FACTOR = 3.0
TENSORS = ("out", "dq", "dk", "dv")
TOLERANCE_RULE = (
    "relative error ||got - ref|| / ||ref|| against SDPA in float64 on the same inputs; a tensor "
    f"passes when finite and at most max(tolerance[dtype], {SDPA_FACTOR:g} x the error of SDPA run in "
    "the same dtype); tolerance: " + ", ".join(f"{k} {v:g}" for k, v in TOLERANCE.items())
)


def case(dtype, d, N, B, H, causal) -> Point:
    """One correctness case: a forward+backward point tagged ``correctness``."""
    return Point(dtype, d, N, B, H, causal, "fwd_bwd", tag="correctness")


def label(point) -> str:
    """``bf16 d=64 N=1000 B=2 H=2 causal`` for a case or a result row."""
    get = point.get if isinstance(point, dict) else lambda k: getattr(point, k)
    return (f"{get('dtype')} d={get('d')} N={get('N')} B={get('B')} H={get('H')} "
            f"{'causal' if get('causal') else 'full'}")


def gpu_cases(seq_lens=(128, 1000, 4096), dtypes=("fp16", "bf16"), head_dims=(64, 128)) -> list[Point]:
    """The proof's cases: lengths that are and are not multiples of the tile sizes, B*H = 4."""
    return [case(dtype, d, n, 2, 2, causal) for dtype in dtypes for d in head_dims
            for n in seq_lens for causal in (False, True)]


def torch_dtype(name):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def relative_error(got, ref) -> float:
    """||got - ref|| / ||ref|| in float64; inf when got has a NaN or an inf."""
    import torch

    got = got.detach().double()
    if not torch.isfinite(got).all():
        return float("inf")
    ref = ref.detach().double()
    scale = ref.norm().item() or 1.0
    return (got - ref).norm().item() / scale


def _poison_allocator(like, count=10):
    """Hand freed NaN-filled blocks to the caching allocator, so an output the kernel forgets to
    write comes back NaN instead of stale numbers (CUDA only; a no-op elsewhere)."""
    import torch

    if like.is_cuda:
        blocks = [torch.full_like(like, float("nan")) for _ in range(count)]
        del blocks


def _run(fn, q, k, v, dout, causal):
    import torch

    q, k, v = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    out = fn(q, k, v, causal)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    return (out, *grads)


def _sdpa(q, k, v, causal):
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def check_case(fn, p: Point, device, seed=0) -> dict:
    """Compare ``fn(q, k, v, causal)`` and its gradients with SDPA on one p."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = (p.B, p.H, p.N, p.d)
    q, k, v, dout = (torch.randn(shape, generator=gen).to(device=device, dtype=torch_dtype(p.dtype))
                     for _ in range(4))
    reference = _run(_sdpa, q.double(), k.double(), v.double(), dout.double(), p.causal)
    baseline = _run(_sdpa, q, k, v, dout, p.causal)
    _poison_allocator(q)
    row = {**asdict(p), "ok": True, "errors": {}, "sdpa_errors": {}, "limits": {}}
    try:
        got = _run(fn, q, k, v, dout, p.causal)
    except Exception as err:  # a crash is a failed case, reported with its message
        return {**row, "ok": False, "failure": f"raised {type(err).__name__}: {str(err)[:300]}"}
    bad = []
    for name, g, b, r in zip(TENSORS, got, baseline, reference):
        if tuple(g.shape) != shape:
            bad.append(f"{name} has shape {tuple(g.shape)}, expected {shape}")
            continue
        err, sdpa_err = relative_error(g, r), relative_error(b, r)
        limit = max(TOLERANCE[p.dtype], SDPA_FACTOR * sdpa_err)
        row["errors"][name], row["sdpa_errors"][name] = err, sdpa_err
        row["limits"][name] = limit
        if not err <= limit:
            why = "has NaN or inf (an element never written, or an overflow)" if err == float("inf") \
                else f"relative error {err:.2e} > limit {limit:.2e} (SDPA in {p.dtype}: {sdpa_err:.2e})"
            bad.append(f"{name} {why}")
    if bad:
        row.update(ok=False, failure="; ".join(bad))
    return row


def run_checks(impls: dict, cases, device, log=print, seed=0) -> list[dict]:
    """Every implementation on every case; one row each, with ``impl`` naming it."""
    rows = []
    for i, one in enumerate(cases):
        for name, fn in impls.items():
            row = {"impl": name, **check_case(fn, one, device, seed=seed + i)}
            rows.append(row)
            worst = max(row["errors"].values(), default=float("nan"))
            log(f"correctness {name:>9} {label(one)}: "
                + ("ok" if row["ok"] else "FAILED") + f" (worst relative error {worst:.1e})"
                + ("" if row["ok"] else f"\n    {row['failure']}"))
    return rows


def failure_message(rows) -> str | None:
    """None when every row passed, else a sentence per failure and what to check."""
    failed = [r for r in rows if not r["ok"]]
    if not failed:
        return None
    lines = [f"{len(failed)} of {len(rows)} correctness checks failed, so nothing was timed:"]
    lines += [f"  {r['impl']}: {label(r)}: {r['failure']}" for r in failed[:20]]
    if len(failed) > 20:
        lines.append(f"  ... and {len(failed) - 20} more (all in proof.json)")
    lines.append("Check the failing kernel at those shapes first: ragged N (masks), causal tiles, and "
                 "the grid over B*H are the usual causes; a NaN means an output element was never "
                 "written. Tolerances: " + TOLERANCE_RULE)
    return "\n".join(lines)
