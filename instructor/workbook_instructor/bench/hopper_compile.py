"""Compile the flash-attention kernels for Hopper (sm_90) on a machine without a GPU.

    workbook bench compile [--out DIR] [--quick]

Triton can compile ahead of time for a target it is told about: the wheel ships its own
``ptxas``, so neither a GPU nor a driver is needed. For every tile configuration the autotuner
may try (the reference kernel's ``TUNING`` table, its pruning rule applied) and for notebook
07's solution kernels (the tiles they launch on CUDA), in fp16 and bf16, head dim 64 and 128,
causal and not, this reports what the GPU would run: registers per thread, bytes spilled to
local memory, shared memory against the 227 KiB that one block may use on sm_90, and whether
the matrix products became Hopper's warpgroup MMA (``wgmma``). A tile that spills or does not fit
is a tile the GPU proof would compile and time for nothing; a kernel that fails to compile is
found here instead of in the few minutes a GPU is lent. Exit status 1 when a kept tile fails to
compile, does not fit, spills or does not use wgmma (notebook 07's one fixed tile: when it does not
compile or fit). Results: docs/results/gpu/sm90-compile-triton-*/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

CAPABILITY = 90                # H100 and H200
SHARED_LIMIT = 232448          # bytes of shared memory one block may use on sm_90 (227 KiB)
DTYPES = ("fp16", "bf16")
HEAD_DIMS = (64, 128)
INT_ARGS = ("N",)              # besides every stride_*
FP32_POINTERS = ("LSE", "DELTA")
RESOURCES = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")
INSTRUCTION = re.compile(r"^\s+(?:@!?%p\d+\s+)?([a-z][\w.]*)", re.MULTILINE)   # opcode of a PTX line
COUNTED = ("ex2", "fma.rn.f32", "mul.f32", "sub.f32", "wgmma.mma_async")

# Filled in the parent before the workers fork: name -> (source, kernel, [(tile, kept)]).
_KERNELS: dict = {}


def _require_compiler():
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("TRITON_INTERPRET=1 turns every kernel into the CPU interpreter's; "
                         "run `workbook bench compile` without it")
    import triton

    return triton


def kernels_under_test(notebook: Path | None, head_dims=HEAD_DIMS) -> dict:
    """The reference kernels with every tile of their autotune lists (and whether the pruning
    rule keeps it, per head dim), and notebook 07's solution kernels with the tiles they launch
    on CUDA."""
    import torch

    from ..reference import flash_kernel as fk

    found = {}
    for name, (kernel, tiles, prune) in fk.TUNING.items():
        configs = fk._configs(tiles)
        kept = {d: {id(c) for c in prune(configs, {"D": d})} for d in head_dims}
        found[f"reference {name}"] = ("reference", kernel,
                                      [((c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_warps,
                                         c.num_stages), {d: id(c) in kept[d] for d in head_dims})
                                       for c in configs])
    if notebook is not None:
        from .notebook_code import load_solution
        from .proof import NOTEBOOK_NAMES

        solution = load_solution(notebook, name="notebook07_compile", require=NOTEBOOK_NAMES)
        blocks = getattr(solution, "_blocks", None)   # the notebook's helper; 64 x 64 without it
        block_m, block_n = blocks(torch.device("cuda")) if blocks else (64, 64)
        for label, attr in (("forward", "_fwd_kernel"), ("backward dK dV", "_bwd_dkdv_kernel"),
                            ("backward dQ", "_bwd_dq_kernel")):
            kernel = getattr(solution, attr)
            # the launch passes no num_warps / num_stages: Triton's defaults for CUDA, 4 and 3
            found[f"notebook {label}"] = ("notebook", kernel,
                                          [((block_m, block_n, 4, 3), {d: True for d in head_dims})])
    for name, (_, kernel, _) in found.items():
        if not hasattr(kernel, "arg_names") or type(kernel).__name__ != "JITFunction":
            raise SystemExit(f"{name}: {type(kernel).__name__} is not a compiled Triton kernel "
                             "(was TRITON_INTERPRET set when it was defined?)")
    return found


def signature(kernel, dtype: str, constants: dict) -> dict:
    """Triton's signature for one compile: pointers to ``dtype`` (fp32 for the log-sum-exp and
    delta rows), int32 lengths and strides, fp32 scales, constexprs as given."""
    sig = {}
    for name in kernel.arg_names:
        if name in constants:
            sig[name] = "constexpr"
        elif name in INT_ARGS or name.startswith("stride"):
            sig[name] = "i32"
        elif name.endswith("scale"):
            sig[name] = "fp32"
        elif name in FP32_POINTERS:
            sig[name] = "*fp32"
        elif name.isupper():
            sig[name] = "*" + dtype
        else:
            raise ValueError(f"{kernel.__name__}: no rule gives argument {name!r} a type; "
                             "add it to bench/hopper_compile.py")
    return sig


def _resources(cubin: bytes) -> dict:
    """Registers, stack and local bytes of the one kernel in ``cubin`` (cuobjdump -res-usage)."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    tool = str(tool) if tool.exists() else shutil.which("cuobjdump")
    if tool is None:
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True,
                              check=True).stdout
    found = RESOURCES.search(text)
    if not found:
        return {}
    reg, stack, _, local = map(int, found.groups())
    return {"registers": reg, "spill_bytes": stack + local}


def ptx_counts(ptx: str) -> dict:
    """PTX instructions in the kernel (a static count: each loop body once), in all and of the
    kinds that the softmax and the products cost, by opcode prefix."""
    opcodes = INSTRUCTION.findall(ptx)
    return {"ptx_instructions": len(opcodes),
            "ptx_counts": {kind: sum(op.startswith(kind) for op in opcodes) for kind in COUNTED}}


def compile_one(job: tuple) -> dict:
    """Compile one (kernel, tile, dtype, head dim, causality) for sm_90; never raises."""
    name, (block_m, block_n, warps, stages), dtype, d, causal, kept = job
    triton = _require_compiler()
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend

    source, kernel, _ = _KERNELS[name]
    row = {"kernel": name, "source": source, "dtype": dtype, "D": d, "causal": causal,
           "BLOCK_M": block_m, "BLOCK_N": block_n, "num_warps": warps, "num_stages": stages,
           "kept": kept}
    constants = {"H": 16, "D": d, "CAUSAL": causal, "BLOCK_M": block_m, "BLOCK_N": block_n,
                 "PRECISION": "tf32"}   # what the launchers pass for fp16 and bf16
    target = GPUTarget("cuda", CAPABILITY, 32)
    try:
        sig = signature(kernel, dtype, constants)
        aligned = make_backend(target).parse_attr("D")   # 16-byte aligned, as for N = 4096
        attrs = {(i,): aligned for i, n in enumerate(kernel.arg_names) if sig[n] != "constexpr"
                 and (sig[n].startswith("*") or sig[n] == "i32")}
        start = time.perf_counter()
        compiled = triton.compile(ASTSource(kernel, sig, constants, attrs), target=target,
                                  options={"num_warps": warps, "num_stages": stages})
        row["seconds"] = round(time.perf_counter() - start, 2)
    except Exception as e:   # a compile error is a result to report, not a crash
        row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        return row
    row["shared_bytes"] = int(compiled.metadata.shared)
    row["wgmma"] = "wgmma" in compiled.asm["ptx"]
    row.update(ptx_counts(compiled.asm["ptx"]))
    row.update(_resources(compiled.asm["cubin"]))
    return row


def problems(row: dict) -> list[str]:
    """What is wrong with one compiled tile for Hopper (empty when nothing is)."""
    if "error" in row:
        return [f"does not compile ({row['error']})"]
    found = []
    if "registers" not in row:
        found.append("registers and spills not read (no cuobjdump beside Triton's ptxas or on PATH)")
    if row.get("spill_bytes"):
        found.append(f"spills {row['spill_bytes']} bytes to local memory")
    if row["shared_bytes"] > SHARED_LIMIT:
        found.append(f"needs {row['shared_bytes']} bytes of shared memory (sm_90 allows {SHARED_LIMIT})")
    if not row["wgmma"]:
        found.append("its matrix products do not use wgmma")
    return found


def fails(row: dict) -> bool:
    """Whether a row fails the check: a reference tile that the autotuner keeps, with any
    problem; notebook 07's tile when it does not compile or does not fit. The notebook launches
    one fixed tile, the one a student's solution is written for, so a spill there is reported
    without failing the check. Tiles the tuner never tries are reported only."""
    if not row["kept"]:
        return False
    if row["source"] == "reference":
        return bool(problems(row))
    return "error" in row or row["shared_bytes"] > SHARED_LIMIT


def jobs_for(found: dict, dtypes, head_dims, quick: bool) -> list[tuple]:
    jobs = []
    for name, (_, _, tiles) in found.items():
        for tile, kept in (tiles[:1] if quick else tiles):
            for dtype in dtypes:
                for d in head_dims:
                    for causal in ((True,) if quick else (False, True)):
                        jobs.append((name, tile, dtype, d, causal, kept[d]))
    return jobs


def report(rows: list[dict], versions: dict, command: str, seconds: float) -> str:
    """A Markdown page: the environment, one line per kernel and tile, the problems found."""
    lines = [f"Compiled for sm_{CAPABILITY} (H100, H200) on {versions['machine']}, no GPU: Triton "
             f"{versions['triton']}, torch {versions['torch']}, Python {versions['python']}, "
             f"{len(rows)} compiles in {seconds:.0f} s.", "", "```", command, "```", "",
             "Registers per thread, bytes spilled to local memory, shared memory per block "
             "(sm_90 allows 227 KiB) and PTX instructions (a static count, each loop body once); "
             "each line gives the worst over the dtypes and causal modes compiled. `kept`: the "
             "autotuner tries the tile at this head dim. compile.json also counts ex2, fma, mul, "
             "sub and wgmma per compile.", "",
             "| kernel | tile (M x N, warps, stages) | D | kept | registers | spilled | shared KiB | wgmma | PTX instr. | problems |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for row in rows:
        key = (row["kernel"], row["BLOCK_M"], row["BLOCK_N"], row["num_warps"], row["num_stages"], row["D"])
        groups.setdefault(key, []).append(row)
    for (kernel, bm, bn, w, s, d), group in groups.items():
        ok = [r for r in group if "error" not in r]
        worst = {"shared_bytes": max((r["shared_bytes"] for r in ok), default=0),
                 "ptx_instructions": max((r["ptx_instructions"] for r in ok), default=0),
                 "wgmma": bool(ok) and all(r["wgmma"] for r in ok)}
        if ok and all("registers" in r for r in ok):   # else problems() says they were not read
            worst.update(registers=max(r["registers"] for r in ok),
                         spill_bytes=max(r["spill_bytes"] for r in ok))
        errors = sorted({r["error"] for r in group if "error" in r})
        issues = ([f"does not compile ({e})" for e in errors]
                  + (problems(worst) if ok else []))
        lines.append(
            f"| {kernel} | {bm} x {bn}, {w}, {s} | {d} | {'yes' if group[0]['kept'] else 'no'} | "
            f"{worst.get('registers', '-')} | {worst.get('spill_bytes', '-')} | "
            f"{worst['shared_bytes'] / 1024:.0f} | {'yes' if worst['wgmma'] else 'no'} | "
            f"{worst['ptx_instructions'] if ok else '-'} | {'; '.join(issues) or '-'} |")
    bad = [r for r in rows if fails(r)]
    spills = sorted({r["kernel"] for r in rows if r["kept"] and not fails(r) and problems(r)})
    lines += ["", f"**{len(bad)} compile(s) fail the check.**" if bad else
              "**Every tile the autotuner keeps compiles for sm_90, uses wgmma, fits in shared "
              "memory and spills nothing.**"]
    if spills:
        lines.append(f"Reported, not failing (notebook 07's fixed tiles): {', '.join(spills)}.")
    return "\n".join(lines) + "\n"


def main(args) -> int:
    triton = _require_compiler()
    import torch

    notebook = None if args.no_notebook else Path(args.notebook)
    _KERNELS.clear()
    _KERNELS.update(kernels_under_test(notebook, args.head_dims))
    dtypes = args.dtypes or (("bf16",) if args.quick else DTYPES)
    jobs = jobs_for(_KERNELS, dtypes, args.head_dims, args.quick)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="triton-sm90-") as cache:
        # an empty cache of its own: every tile is compiled now, and the GPU cache is untouched
        os.environ["TRITON_CACHE_DIR"] = cache
        with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=get_context("fork")) as pool:
            rows = list(pool.map(compile_one, jobs))
    seconds = time.perf_counter() - start
    from ..timing import machine

    here = machine()
    versions = {"triton": triton.__version__, "torch": torch.__version__, "python": here["python"],
                "machine": f"{here['cpu']}, {here['cores']} cores"}
    command = " ".join(["workbook", *sys.argv[1:]])
    text = report(rows, versions, command, seconds)
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compile.json").write_text(json.dumps({"target": f"cuda sm_{CAPABILITY}",
                                                      "versions": versions, "rows": rows}, indent=1) + "\n")
        (out / "compile.md").write_text(text)
        print(f"wrote {out / 'compile.json'} and {out / 'compile.md'}", file=sys.stderr)
    return 1 if any(fails(r) for r in rows) else 0
