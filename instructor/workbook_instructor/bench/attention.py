"""``workbook bench attention``: time tiled Triton attention against PyTorch on a CUDA GPU.

Providers, for every point of the sweep:

* ``triton``       - the reference kernel in :mod:`workbook_instructor.reference.flash_kernel`;
* ``naive``        - softmax(QK^T / sqrt(d)) V in PyTorch (materialises N x N);
* ``sdpa_flash``   - ``scaled_dot_product_attention`` with the flash backend pinned;
* ``sdpa_default`` - ``scaled_dot_product_attention`` with PyTorch's own choice of backend;
* ``notebook``     - with ``--notebook IPYNB``: the ``flash_attention`` of a notebook 07 (a
  student's own copy, loaded by :mod:`.notebook_code` the way the grader runs the answer:
  exercise cells and definitions only), checked against SDPA first, then timed like the rest.

The GPU proof (:mod:`workbook_instructor.bench.proof`) also times ``sdpa_efficient`` (the
memory-efficient SDPA backend pinned) and ``flex`` (``torch.nn.attention.flex_attention`` under
``torch.compile``), and passes its own function for notebook 07's kernel.

Each point is timed with ``triton.testing.do_bench`` (median) and reported as milliseconds,
TFLOP/s (FlashAttention convention: forward 4*B*H*N^2*d, causal halved, forward+backward 3.5x),
the fraction of the measured bf16 matmul peak, the peak memory, and the speed ratio to both
SDPA variants. Out-of-memory is recorded as a status, not a crash. The output is
``attention.json`` (with the device name and library versions) and ``attention.png``.

Everything but the timing itself (FLOP counting, the sweep plan, the JSON and the plot) runs
without CUDA, so it is unit-tested on any machine.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..reference.flops import FLOP_CONVENTION, attention_flops

PROVIDERS = ("triton", "naive", "sdpa_flash", "sdpa_default")
EXTRA_PROVIDERS = ("sdpa_efficient", "flex")
MODES = ("fwd", "fwd_bwd")
DTYPES = ("bf16", "fp16")
HEAD_DIMS = (64, 128)
SEQ_LENS = (1024, 2048, 4096, 8192, 16384, 32768)
TOKENS_PER_BATCH = 16384      # B * N is held fixed, as in the FlashAttention papers
HIDDEN = 2048                 # H * d is held fixed

NO_CUDA_MESSAGE = (
    "{command} needs a CUDA GPU, and torch.cuda.is_available() is False here.\n"
    "Run it on a machine with an NVIDIA GPU (it times Triton kernels, which only the GPU can "
    "run fast). To check the kernels on a CPU, use the Triton interpreter instead: "
    "TRITON_INTERPRET=1 with float32 inputs, as notebook 07 does."
)


@dataclass(frozen=True)
class Point:
    """One configuration of the sweep (every provider is timed on it)."""

    dtype: str
    d: int
    N: int
    B: int
    H: int
    causal: bool
    mode: str
    tag: str = "sweep"

    @property
    def flops(self) -> float:
        return attention_flops(self.B, self.H, self.N, self.d, self.causal, self.mode)


# The shape on which student Triton kernels are usually compared: forward+backward, causal,
# d=64, N=16k, B=16, H=1.
COMPARISON_POINTS = tuple(
    Point(dtype, 64, 16384, 16, 1, True, "fwd_bwd", tag="comparison") for dtype in ("bf16",)
)


def plan(dtypes=DTYPES, head_dims=HEAD_DIMS, seq_lens=SEQ_LENS, causal=(False, True), modes=MODES,
         tokens=TOKENS_PER_BATCH, hidden=HIDDEN, comparison=True) -> list[Point]:
    """The sweep: B = max(1, tokens // N), H = hidden // d, for every combination."""
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    points = [
        Point(dtype, d, n, max(1, tokens // n), max(1, hidden // d), c, mode)
        for dtype in dtypes for mode in modes for d in head_dims for c in causal for n in seq_lens
    ]
    if comparison:
        points += [p for p in COMPARISON_POINTS if p.dtype in dtypes and p not in points]
    return points


def quick_plan() -> list[Point]:
    """A few minutes on one GPU: bf16, both head dims, N in {1k, 4k}."""
    return plan(dtypes=("bf16",), seq_lens=(1024, 4096), comparison=False)


def naive_bytes(p: Point) -> int:
    """Bytes naive attention keeps in [B, H, N, N] tensors (scores and probabilities; +grad)."""
    element = 4 if p.dtype == "fp32" else 2
    copies = 2 if p.mode == "fwd" else 4
    return copies * p.B * p.H * p.N * p.N * element


def environment_info() -> dict:
    """Device name and library versions; works without CUDA."""
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info["device"] = torch.cuda.get_device_name(0)
            info["device_memory_gib"] = round(props.total_memory / 2**30, 1)
            info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        else:
            info["device"] = "cpu (no CUDA)"
    except ImportError:  # pragma: no cover - torch is a dependency
        info["device"] = "unknown (torch missing)"
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    from transformer_workbook import __version__

    info["transformer_workbook"] = __version__
    return info


def add_ratios(rows: list[dict], peers=("sdpa_flash", "sdpa_default")) -> list[dict]:
    """Fill speedup_vs_<peer> = peer ms / provider ms for rows sharing a point."""
    by_point: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        by_point.setdefault(_point_key(row), {})[row["provider"]] = row
    for providers in by_point.values():
        for row in providers.values():
            for ref in peers:
                other = providers.get(ref)
                ok = row.get("ms") and other is not None and other.get("ms")
                row[f"speedup_vs_{ref}"] = round(other["ms"] / row["ms"], 4) if ok else None
    return rows


def _point_key(row: dict) -> tuple:
    return tuple(row[k] for k in ("dtype", "d", "N", "B", "H", "causal", "mode", "tag"))


def write_results(rows: list[dict], out_dir, *, matmul_peak_tflops=None, env=None,
                  args=None) -> Path:
    """Write out_dir/attention.json with the device, versions and every row; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "attention",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": env if env is not None else environment_info(),
        "matmul_peak_tflops": matmul_peak_tflops,
        "flop_convention": FLOP_CONVENTION,
        "timing": "triton.testing.do_bench, median",
        "arguments": args or {},
        "results": add_ratios(list(rows)),
    }
    path = out_dir / "attention.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def plot_results(source, out_png) -> Path:
    """Draw TFLOP/s against N, one panel per (mode, d, causal), one line per provider."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    document = json.loads(Path(source).read_text()) if not isinstance(source, dict) else source
    rows = [r for r in document["results"] if r.get("tag", "sweep") == "sweep"]
    dtypes = sorted({r["dtype"] for r in rows}) or ["bf16"]
    dtype = "bf16" if "bf16" in dtypes else dtypes[0]
    rows = [r for r in rows if r["dtype"] == dtype]
    panels = sorted({(r["mode"], r["d"], r["causal"]) for r in rows})
    cols = max(1, min(4, len(panels)))
    nrows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), squeeze=False)
    drawn = [p for p in PROVIDERS + EXTRA_PROVIDERS if any(r["provider"] == p for r in rows)]
    drawn += sorted({r["provider"] for r in rows} - set(drawn))
    for ax, (mode, d, causal) in zip(axes.flat, panels):
        for provider in drawn:
            pts = sorted((r["N"], r["tflops"]) for r in rows
                         if (r["mode"], r["d"], r["causal"], r["provider"]) == (mode, d, causal, provider)
                         and r.get("status") == "ok" and r.get("tflops") is not None)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=provider)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{mode}, d={d}, {'causal' if causal else 'full'}", fontsize=9)
        ax.set_xlabel("N")
        ax.set_ylabel("TFLOP/s")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    env = document.get("environment", {})
    fig.suptitle(f"attention {dtype} on {env.get('device', '?')} (torch {env.get('torch', '?')}, "
                 f"triton {env.get('triton', '?')})", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


# ----------------------------------------------------------------------------- CUDA only


def _torch_dtype(name):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}[name]


def measure_matmul_peak(dtype="bf16", size=8192) -> float:
    """TFLOP/s of one large square matmul: the 'peak' the fractions are relative to."""
    import torch
    from triton.testing import do_bench

    a = torch.randn(size, size, device="cuda", dtype=_torch_dtype(dtype))
    b = torch.randn(size, size, device="cuda", dtype=_torch_dtype(dtype))
    ms = do_bench(lambda: a @ b, return_mode="median")
    return 2 * size**3 / (ms * 1e-3) / 1e12


def _attention_fn(provider, causal):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if provider == "triton":
        from ..reference.flash_kernel import flash_attention

        return lambda q, k, v: flash_attention(q, k, v, causal)
    if provider == "naive":
        def naive(q, k, v):
            s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            if causal:
                n = q.shape[-2]
                s = s.masked_fill(~torch.ones(n, n, dtype=torch.bool, device=q.device).tril(), float("-inf"))
            return torch.softmax(s, dim=-1) @ v
        return naive
    if provider == "sdpa_flash":
        def flash(q, k, v):
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return flash
    if provider == "sdpa_efficient":
        def efficient(q, k, v):
            with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return efficient
    if provider == "sdpa_default":
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    if provider == "flex":
        return _flex_fn(causal)
    raise ValueError(f"unknown provider {provider!r}")


_compiled_flex = None


def _flex_fn(causal):
    """FlexAttention compiled once per process (static shapes: each N compiles its own kernel,
    its best case); a causal block mask is built once per N, outside the timed call."""
    global _compiled_flex
    import torch
    import torch._dynamo
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    if _compiled_flex is None:
        for name in ("recompile_limit", "cache_size_limit"):  # one entry per N, d, mask, grad
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, max(64, getattr(torch._dynamo.config, name)))
        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    masks = {}

    def below_diagonal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def flex(q, k, v):
        mask = None
        if causal:
            n = q.shape[-2]
            if n not in masks:
                masks[n] = create_block_mask(below_diagonal, None, None, n, n, device=q.device)
            mask = masks[n]
        return _compiled_flex(q, k, v, block_mask=mask)
    return flex


def new_row(p: Point, provider: str, status: str = "ok", note: str | None = None) -> dict:
    """One result row: the point, the provider and empty measurements."""
    row = {**asdict(p), "provider": provider, "flops": p.flops, "status": status, "ms": None,
           "tflops": None, "fraction_of_matmul_peak": None, "peak_memory_bytes": None}
    if note:
        row["note"] = note
    return row


def time_point(p: Point, provider: str, peak_tflops=None, warmup=25, rep=100, fn=None,
               timed=True) -> dict:
    """Time one provider on one point; out-of-memory and errors become a status.

    ``fn(q, k, v)`` replaces the provider's own function (the proof times notebook 07's kernel
    this way); ``timed=False`` only measures the peak memory of one call. A first call (compiling
    and autotuning) runs before the peak is measured, so tuning buffers stay out of it."""
    import torch
    from triton.testing import do_bench

    row = new_row(p, provider)
    total = torch.cuda.get_device_properties(0).total_memory
    if provider == "naive" and naive_bytes(p) > total:
        row.update(status="oom", note=f"predicted: needs {naive_bytes(p) / 2**30:.0f} GiB for N x N")
        return row
    fn = fn or _attention_fn(provider, p.causal)
    q, k, v = (None, None, None)
    try:
        torch.cuda.empty_cache()
        shape, dtype = (p.B, p.H, p.N, p.d), _torch_dtype(p.dtype)
        grad = p.mode == "fwd_bwd"
        q, k, v = (torch.randn(shape, device="cuda", dtype=dtype, requires_grad=grad) for _ in range(3))
        dout = torch.randn(shape, device="cuda", dtype=dtype) if grad else None

        def step():
            out = fn(q, k, v)
            if grad:
                out.backward(dout)
            return out

        step()
        torch.cuda.synchronize()
        for t in (q, k, v):
            t.grad = None
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        row["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated() - base)
        if not timed:
            return row
        ms = do_bench(step, warmup=warmup, rep=rep, grad_to_none=[q, k, v] if grad else None,
                      return_mode="median")
        row["ms"] = round(float(ms), 5)
        row["tflops"] = round(p.flops / (ms * 1e-3) / 1e12, 3)
        if peak_tflops:
            row["fraction_of_matmul_peak"] = round(row["tflops"] / peak_tflops, 4)
    except torch.cuda.OutOfMemoryError:
        row.update(status="oom", note="torch.cuda.OutOfMemoryError")
    except RuntimeError as err:  # e.g. a backend that does not support this shape
        if "out of memory" in str(err).lower():
            row.update(status="oom", note=str(err).splitlines()[0][:200])
        else:
            row.update(status="error", note=str(err).splitlines()[0][:200])
    finally:
        del q, k, v
        torch.cuda.empty_cache()
    return row


def check_cuda(command="workbook bench attention") -> str | None:
    """None when the benchmark can run, else the reason it cannot."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return "torch is not installed"
    if not torch.cuda.is_available():
        return NO_CUDA_MESSAGE.format(command=command)
    try:
        import triton  # noqa: F401
    except ImportError:
        return "triton is not installed: pip install 'transformer-workbook[kernels]'"
    return None


def run_sweep(points, providers=PROVIDERS, out_dir="bench-results", progress=print, args=None,
              functions=None):
    """Time every provider on every point, write JSON and PNG, return the JSON path.

    ``functions`` maps extra provider names to ``make(causal) -> fn(q, k, v)`` (the notebook's
    kernel); they are timed after ``providers``."""
    functions = dict(functions or {})
    peak = measure_matmul_peak("bf16")
    progress(f"measured bf16 matmul peak: {peak:.1f} TFLOP/s")
    rows = []
    for i, p in enumerate(points, 1):
        for provider in tuple(providers) + tuple(functions):
            make = functions.get(provider)
            row = time_point(p, provider, peak, fn=make(p.causal) if make else None)
            rows.append(row)
            shown = f"{row['ms']:.3f} ms {row['tflops']:.1f} TFLOP/s" if row["ms"] else row["status"]
            progress(f"[{i}/{len(points)}] {p.dtype} d={p.d} N={p.N} B={p.B} H={p.H} "
                     f"{'causal' if p.causal else 'full'} {p.mode} {provider}: {shown}")
    path = write_results(rows, out_dir, matmul_peak_tflops=round(peak, 2), args=args)
    plot_results(path, Path(out_dir) / "attention.png")
    return path


def notebook_functions(notebook, device="cuda", dtypes=("bf16",), log=print, seq_lens=(128, 1000),
                       head_dims=(64, 128)):
    """``{"notebook": make(causal)}`` for the notebook's ``flash_attention``, after checking it
    (forward and dQ/dK/dV, causal and not, ragged N) against SDPA on ``device``. Raises
    :class:`.notebook_code.NotebookCodeError` when it cannot be loaded, ``ValueError`` (with the
    failures) when a check fails."""
    from . import correctness
    from .notebook_code import load_solution

    module = load_solution(notebook, name="bench_notebook", require=("flash_attention",))

    def call(q, k, v, causal):
        return module.flash_attention(q, k, v, causal)

    cases = correctness.gpu_cases(seq_lens=seq_lens, dtypes=dtypes, head_dims=head_dims)
    rows = correctness.run_checks({"notebook": call}, cases, device, log=log)
    failed = correctness.failure_message(rows)
    if failed:
        raise ValueError(failed)
    return {"notebook": lambda causal: (lambda q, k, v: call(q, k, v, causal))}


def main(args) -> int:
    """Entry point behind ``workbook bench attention``; returns the exit code."""
    reason = check_cuda()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    functions = {}
    if getattr(args, "notebook", None):
        from .notebook_code import NotebookCodeError

        try:
            functions = notebook_functions(args.notebook)
        except (NotebookCodeError, ValueError) as err:
            print(f"{args.notebook}: {err}", file=sys.stderr)
            return 1
    if args.quick:
        points = quick_plan()
    else:
        points = plan(dtypes=args.dtypes, head_dims=args.head_dims, seq_lens=args.seq_lens,
                      causal={"both": (False, True), "yes": (True,), "no": (False,)}[args.causal],
                      modes=args.modes)
    path = run_sweep(points, providers=args.providers, out_dir=args.out,
                     args={k: v for k, v in vars(args).items() if k != "func"}, functions=functions)
    print(f"wrote {path} and {Path(args.out) / 'attention.png'}")
    return 0
