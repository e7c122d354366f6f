"""The GPU proof's results on disk: proof.json (everything), proof.md (a summary with tables
ready to paste), tflops.png and memory.png. Works without CUDA (the tests write fake results).

Every file goes straight into one folder, never a subfolder: the device tool brings back at
most 8 files, two folders deep.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .attention import add_ratios, plot_results
from .proof_plan import PEERS, goal_forward, goal_training

JSON, MARKDOWN, TFLOPS_PNG, MEMORY_PNG, LOG = "proof.json", "proof.md", "tflops.png", "memory.png", "proof.log"
FILES = (JSON, MARKDOWN, TFLOPS_PNG, MEMORY_PNG, LOG)
SPEEDUP_FORWARD = 1.25        # x SDPA-flash, forward, non-causal, d=128, N=4k-16k
SPEEDUP_FLEX = 1.0            # x FlexAttention on the same points
TRAINING_TFLOPS = 360.0       # fwd+bwd, causal, d=64, N=16k, B=16, H=1
LINEAR_SPREAD = 1.25          # max / min of the kernel's peak bytes per token over N
SHOWN = ("triton", "notebook", "sdpa_flash", "sdpa_efficient", "flex", "naive")


def _key(p) -> tuple:
    return (p.dtype, p.d, p.N, p.B, p.H, p.causal, p.mode)


def _find(rows, point, provider):
    for r in rows:
        if (r["dtype"], r["d"], r["N"], r["B"], r["H"], r["causal"], r["mode"]) == _key(point) \
                and r["provider"] == provider:
            return r
    return None


def _met(values, test):
    if not values or any(v is None for v in values):
        return None
    return all(test(v) for v in values)


def evaluate_goals(doc: dict) -> list[dict]:
    """The issue's goals, each with its target, what this run measured and met: True, False or
    None (not measured)."""
    rows, goals = doc.get("results", []), []
    checks = doc.get("correctness", {}).get("rows", [])
    impls = sorted({r["impl"] for r in checks})
    goals.append({"goal": "correct: every case, reference kernel and notebook 07",
                  "target": "all pass",
                  "measured": f"{sum(r['ok'] for r in checks)}/{len(checks)} pass ({', '.join(impls)})",
                  "met": bool(checks) and all(r["ok"] for r in checks) if checks else None})
    for peer, target in (("sdpa_flash", SPEEDUP_FORWARD), ("flex", SPEEDUP_FLEX)):
        values, shown = [], []
        for p in goal_forward():
            row = _find(rows, p, "triton")
            value = row.get(f"speedup_vs_{peer}") if row else None
            values.append(value)
            shown.append(f"{p.N // 1024}k " + (f"{value:.2f}x" if value else "n/a"))
        goals.append({"goal": f"forward, non-causal, d=128, N=4k-16k, bf16: speed vs {peer}",
                      "target": f">= {target:g}x", "measured": ", ".join(shown),
                      "met": _met(values, lambda v, t=target: v >= t)})
    row = _find(rows, goal_training(), "triton")
    tflops = row.get("tflops") if row else None
    goals.append({"goal": "forward+backward, causal, d=64, N=16k, B=16, H=1, bf16",
                  "target": f">= {TRAINING_TFLOPS:g} TFLOP/s",
                  "measured": f"{tflops:.1f} TFLOP/s" if tflops else (row or {}).get("status", "n/a"),
                  "met": _met([tflops], lambda v: v >= TRAINING_TFLOPS)})
    goals.append(_memory_goal(doc.get("memory", [])))
    return goals


def kernel_spread(memory_rows) -> float | None:
    """max / min over N of the kernel's peak bytes per token (1.0 = exactly linear)."""
    per_token = [r["peak_memory_bytes"] / r["N"] for r in memory_rows
                 if r["provider"] == "triton" and r.get("status") == "ok" and r.get("peak_memory_bytes")]
    return max(per_token) / min(per_token) if len(per_token) >= 2 else None


def _memory_goal(memory_rows) -> dict:
    at = {(r["provider"], r["N"]): r for r in memory_rows}
    kernel, naive = at.get(("triton", 32768)), at.get(("naive", 32768))
    spread = kernel_spread(memory_rows)
    measured = []
    if spread is not None:
        measured.append(f"kernel bytes/token spread {spread:.2f}")
    if kernel:
        measured.append(f"N=32k kernel {kernel['status']}")
    if naive:
        measured.append(f"naive {naive['status']}")
    met = None
    if kernel and naive and spread is not None:
        met = kernel["status"] == "ok" and naive["status"] == "oom" and spread <= LINEAR_SPREAD
    return {"goal": "memory linear in N; at N=32k the kernel runs where naive cannot",
            "target": f"bytes/token spread <= {LINEAR_SPREAD:g}; kernel ok, naive oom at 32k",
            "measured": ", ".join(measured) or "n/a", "met": met}


# ----------------------------------------------------------------------------- markdown


def _cell(row, field="tflops", digits=1, status=True):
    """A number, or (when ``status``) the row's status where it has none: oom, skipped, error."""
    if row is None:
        return ""
    value = row.get(field)
    if value is None:
        return row.get("status", "") if status else ""
    return f"{value:.{digits}f}"


def _table(header, lines) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in line) + " |" for line in lines]
    return out


def _speed_tables(rows) -> list[str]:
    out = []
    sweep = [r for r in rows if r.get("tag", "sweep") == "sweep"]
    panels = sorted({(r["dtype"], r["mode"], r["d"], r["causal"]) for r in sweep})
    for dtype, mode, d, causal in panels:
        mine = [r for r in sweep if (r["dtype"], r["mode"], r["d"], r["causal"]) == (dtype, mode, d, causal)]
        providers = [p for p in SHOWN if any(r["provider"] == p for r in mine)]
        peers = [p for p in PEERS if p in providers and p != "triton"]
        out += ["", f"**{mode}, d={d}, {'causal' if causal else 'non-causal'}, {dtype}** "
                "(TFLOP/s; B*N = 16k, H*d = 2048; ratio = peer time / kernel time)", ""]
        lines = []
        for n in sorted({r["N"] for r in mine}):
            at = {r["provider"]: r for r in mine if r["N"] == n}
            kernel = at.get("triton", {})
            lines.append([n, f"{kernel.get('B', '')}x{kernel.get('H', '')}"]
                         + [_cell(at.get(p)) for p in providers]
                         + [_cell(kernel, f"speedup_vs_{p}", 2, status=False) for p in peers])
        out += _table(["N", "BxH", *providers, *[f"kernel / {p}" for p in peers]], lines)
    return out


def _goal_point_table(rows) -> list[str]:
    goal = [r for r in rows if r.get("tag") == "comparison"]
    if not goal:
        return []
    kernel = next((r for r in goal if r["provider"] == "triton"), {})
    lines = [[r["provider"], _cell(r, "ms", 3), _cell(r), _cell(r, "fraction_of_matmul_peak", 3, status=False),
              _cell(kernel, f"speedup_vs_{r['provider']}", 2, status=False),
              _gib(r.get("peak_memory_bytes")), r.get("note", "")] for r in goal]
    return ["", "**Goal point: forward+backward, causal, d=64, N=16k, B=16, H=1, bf16**", "",
            *_table(["provider", "ms", "TFLOP/s", "of matmul peak", "kernel / this", "peak GiB", "note"], lines)]


def _gib(value):
    return "" if value is None else f"{value / 2**30:.3f}"


def _correctness_lines(section) -> list[str]:
    rows = section.get("rows", [])
    if not rows:
        return ["", "Not run."]
    out = ["", section.get("rule", ""), ""]
    lines = []
    for impl in sorted({r["impl"] for r in rows}):
        for dtype in sorted({r["dtype"] for r in rows}):
            mine = [r for r in rows if r["impl"] == impl and r["dtype"] == dtype]
            if not mine:
                continue
            worst = [max((r["errors"].get(t, math.inf) for r in mine), default=math.nan)
                     for t in ("out", "dq", "dk", "dv")]
            sdpa = [max((r["sdpa_errors"].get(t, 0.0) for r in mine), default=math.nan)
                    for t in ("out", "dq", "dk", "dv")]
            lines.append([impl, dtype, f"{sum(r['ok'] for r in mine)}/{len(mine)}",
                          *[f"{w:.1e} ({s:.1e})" for w, s in zip(worst, sdpa)]])
    out += _table(["implementation", "dtype", "cases passed", "out", "dQ", "dK", "dV"], lines)
    out += ["", "Worst relative error over the cases; SDPA's own error in the same dtype in brackets."]
    failed = [r for r in rows if not r["ok"]]
    for r in failed[:20]:
        out.append(f"- FAILED {r['impl']} {r['dtype']} d={r['d']} N={r['N']} "
                   f"{'causal' if r['causal'] else 'full'}: {r.get('failure', '')}")
    return out


def _memory_lines(rows) -> list[str]:
    if not rows:
        return ["", "Not measured."]
    lines = [[r["N"], r["provider"], r["status"], _gib(r.get("peak_memory_bytes")),
              f"{r['peak_memory_bytes'] / r['N']:.0f}" if r.get("peak_memory_bytes") else "",
              _gib(r.get("nxn_bytes")), r.get("note", "")] for r in rows]
    first = rows[0]
    spread = kernel_spread(rows)
    return ["", f"{first['mode']}, d={first['d']}, B={first['B']}, H={first['H']}, {first['dtype']}; "
            "peak allocated bytes of one call beyond q, k, v and the upstream gradient.", "",
            *_table(["N", "provider", "status", "peak GiB", "bytes/token", "N x N tensors GiB", "note"], lines),
            "", f"Kernel bytes per token, max / min over N: {spread:.3f}" if spread else ""]


def markdown(doc: dict) -> str:
    env = doc.get("environment", {})
    out = [f"# Flash-attention GPU proof: {env.get('device', '?')}", "",
           f"Status: **{doc.get('status', '?')}**. Created {doc.get('created', '?')} by "
           f"`{doc.get('command', '?')}` in {doc.get('elapsed_s', 0):.0f} s "
           f"(budget {doc.get('budget_s', 0):.0f} s).", ""]
    out += ["## Environment", "",
            *_table(["field", "value"], [[k, v] for k, v in env.items()]),
            "", f"Measured bf16 matmul peak: {_fmt(doc.get('matmul_peak_tflops'), 'TFLOP/s')}; "
            f"device copy bandwidth (read + write): {_fmt(doc.get('copy_bandwidth_gbs'), 'GB/s')}.", ""]
    goals = doc.get("goals") or evaluate_goals(doc)
    out += ["## Goals", "", *_table(["goal", "target", "measured", "met"],
                                    [[g["goal"], g["target"], g["measured"],
                                      {True: "yes", False: "NO", None: "not measured"}[g["met"]]]
                                     for g in goals])]
    out += ["", "## Correctness (before any timing)", *_correctness_lines(doc.get("correctness", {}))]
    rows = doc.get("results", [])
    out += ["", "## Speed", "", f"FLOP convention: {doc.get('flop_convention', '')}. "
            f"Timing: {doc.get('timing', '')}.", *_goal_point_table(rows), *_speed_tables(rows)]
    skipped = [r for r in rows if r.get("status") == "skipped"]
    if skipped:
        out += ["", f"{len(skipped)} of {len(rows)} speed measurements were skipped; "
                f"the first: {skipped[0]['provider']} at N={skipped[0]['N']}: {skipped[0].get('note', '')}"]
    out += ["", "## Memory", *_memory_lines(doc.get("memory", []))]
    return "\n".join(out) + "\n"


def _fmt(value, unit):
    return "not measured" if value is None else f"{value:.1f} {unit}"


# ----------------------------------------------------------------------------- files


def plot_memory(rows, out_png) -> Path:
    """Peak allocated GiB against N, one line per provider; naive's N x N bytes dashed where
    it ran out of memory."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for provider in sorted({r["provider"] for r in rows}):
        pts = sorted((r["N"], r["peak_memory_bytes"] / 2**30) for r in rows
                     if r["provider"] == provider and r.get("peak_memory_bytes"))
        color = None
        if pts:
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{provider} (measured)")
            color = line.get_color()
        need = sorted((r["N"], r["nxn_bytes"] / 2**30) for r in rows
                      if r["provider"] == provider and r.get("status") != "ok" and r.get("nxn_bytes"))
        if need:
            ax.plot([p[0] for p in need], [p[1] for p in need], "x--", color=color,
                    label=f"{provider} N x N (cannot run)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("N")
    ax.set_ylabel("GiB")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("peak memory, forward+backward", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return Path(out_png)


def write_outputs(doc: dict, out_dir, plots=True, log=print) -> list[Path]:
    """proof.json and proof.md, then the plots when asked (a plot that fails is logged, not
    fatal: the numbers are already on disk)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc["results"] = add_ratios(doc.get("results", []), peers=PEERS)
    doc["goals"] = evaluate_goals(doc)
    written = [out_dir / JSON, out_dir / MARKDOWN]
    written[0].write_text(json.dumps(doc, indent=1, default=str) + "\n")
    written[1].write_text(markdown(doc))
    if plots:
        for name, draw, data in ((TFLOPS_PNG, plot_results, doc.get("results")),
                                 (MEMORY_PNG, plot_memory, doc.get("memory"))):
            if not data:
                continue
            try:
                written.append(draw(doc if name == TFLOPS_PNG else data, out_dir / name))
            except Exception as err:  # noqa: BLE001 - report and go on
                log(f"could not draw {name}: {type(err).__name__}: {err}")
    return written
