"""The flash-attention GPU proof in one command (issue 25)::

    PYTHONPATH=src:instructor python3 -m workbook_instructor.bench.proof --out DIR [--quick] [--budget-s 420]

(``scripts/gpu-proof.sh`` sets the path and runs this.) On one CUDA GPU, in this order:

a. environment: GPU, driver, clocks, versions; the measured bf16 matmul peak and copy bandwidth;
b. correctness, before any timing: the reference kernel and notebook 07's solution against
   ``scaled_dot_product_attention`` (fp16 and bf16, forward and dQ/dK/dV, causal and not,
   d 64 and 128, N 128/1000/4096, B*H = 4); any failure exits with status 1;
c. speed with ``triton.testing.do_bench`` (median) against SDPA-flash, SDPA-efficient,
   FlexAttention and naive attention, in the priority order of :mod:`.proof_plan`;
d. memory: peak allocated bytes of the kernel and naive attention at N = 8k..64k;
e. ``proof.json``, ``proof.md``, ``tflops.png``, ``memory.png`` and ``proof.log`` in DIR.

The budget (seconds from the start) cuts step c short, keeping time for d and e, so the run
always finishes and writes its files. Exit status: 0 done, 1 a correctness check failed,
2 no CUDA or a bad argument, 3 an unexpected error (its traceback is in proof.log).

Imports only what runs on the device image (torch, triton, matplotlib, this tree): nothing
here imports nbgrader.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOK = ROOT / "solutions" / "07-flash-attention" / "07-flash-attention.ipynb"
DEFAULT_BUDGET_S = 420.0
RESERVE_S = 60.0          # kept for the memory step and the files after the speed step
COMMAND = "the GPU proof (scripts/gpu-proof.sh)"
DEVICE = "cuda"           # where the correctness cases run (the tests swap in "cpu")
NOTEBOOK_NAMES = ("flash_attention", "flash_attention_forward", "flash_attention_backward")


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"the budget must be more than 0 seconds, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workbook_instructor.bench.proof",
        description="Flash-attention GPU proof: correctness, speed and memory on one CUDA GPU.")
    p.add_argument("--out", required=True, help="folder for the 5 result files (created if missing)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: correctness at N 128 and 1000, the goal points, memory at 8k and 32k")
    p.add_argument("--budget-s", type=_positive, default=DEFAULT_BUDGET_S,
                   help=f"seconds for the whole run; speed points past it are skipped (default {DEFAULT_BUDGET_S:g})")
    p.add_argument("--notebook", type=Path, default=NOTEBOOK,
                   help="the solution notebook whose kernel is checked (default: notebook 07)")
    p.add_argument("--seed", type=int, default=0, help="seed of the correctness inputs")
    return p


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        build_parser().error(f"--out {args.out} is a file; give a folder")
    return args


class Log:
    """Print and append to proof.log (flushed every line, so a killed run keeps its log)."""

    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def __call__(self, message: str, err=False) -> None:
        print(message, file=sys.stderr if err else sys.stdout, flush=True)
        self.file.write(message + "\n")
        self.file.flush()

    def close(self):
        self.file.close()


def new_document(args, argv) -> dict:
    from ..reference.flops import FLOP_CONVENTION

    return {
        "proof": "flash-attention GPU proof (issue 25)",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m workbook_instructor.bench.proof", *argv]),
        "arguments": {"out": str(args.out), "quick": args.quick, "budget_s": args.budget_s,
                      "notebook": str(args.notebook), "seed": args.seed},
        "budget_s": args.budget_s, "elapsed_s": 0.0, "status": "running", "steps_s": {},
        "flop_convention": FLOP_CONVENTION,
        "timing": "triton.testing.do_bench, median of repeats after warm-up (CUDA events)",
        "environment": {}, "correctness": {}, "results": [], "memory": [],
    }


def load_implementations(notebook: Path, log) -> dict:
    """The two kernels under test: the instructor's reference and notebook 07's solution."""
    from ..reference.flash_kernel import flash_attention
    from .notebook_code import load_solution

    solution = load_solution(notebook, name="notebook07", require=NOTEBOOK_NAMES)
    log(f"loaded notebook 07's solution code from {notebook}")
    return {"reference": flash_attention, "notebook": solution.flash_attention}


def step_environment(doc, log):
    from .attention import environment_info, measure_matmul_peak
    from .device import gpu_details, measure_copy_bandwidth

    doc["environment"] = {**environment_info(), **gpu_details()}
    log("environment: " + ", ".join(f"{k}={v}" for k, v in doc["environment"].items()))
    doc["matmul_peak_tflops"] = round(measure_matmul_peak("bf16"), 2)
    doc["copy_bandwidth_gbs"] = round(measure_copy_bandwidth(), 1)
    log(f"bf16 matmul peak {doc['matmul_peak_tflops']} TFLOP/s, copy {doc['copy_bandwidth_gbs']} GB/s")


def step_correctness(doc, args, log) -> tuple[dict, str | None]:
    """Fill doc['correctness']; return the implementations and the failure message (None when
    every case passed)."""
    from .correctness import TOLERANCE, TOLERANCE_RULE, failure_message, gpu_cases, run_checks
    from .notebook_code import NotebookCodeError

    section = doc["correctness"] = {"rule": TOLERANCE_RULE, "tolerance": TOLERANCE, "rows": [],
                                    "passed": False}
    try:
        impls = load_implementations(args.notebook, log)
    except NotebookCodeError as err:
        section["error"] = str(err)
        return {}, f"notebook 07's solution could not be loaded, so nothing was timed: {err}"
    cases = gpu_cases(seq_lens=(128, 1000) if args.quick else (128, 1000, 4096))
    section["rows"] = run_checks(impls, cases, DEVICE, log=log, seed=args.seed)
    section["passed"] = all(r["ok"] for r in section["rows"])
    return impls, failure_message(section["rows"])


def _speed_measure(doc, notebook_fn):
    """``measure(point, provider)`` for the speed and memory steps."""
    import torch

    from .attention import naive_bytes, new_row, time_point
    from .proof_plan import naive_too_big

    total = torch.cuda.get_device_properties(0).total_memory
    flex_missing = _flex_missing()
    peak = doc.get("matmul_peak_tflops")

    def measure(p, provider, timed=True):
        if provider == "naive" and timed and naive_too_big(p, total):
            return new_row(p, provider, status="skipped", note=naive_too_big(p, total))
        if provider == "flex" and flex_missing:
            return new_row(p, provider, status="skipped", note=flex_missing)
        fn = None
        if provider == "notebook":
            fn = lambda q, k, v: notebook_fn(q, k, v, p.causal)  # noqa: E731
        try:
            row = time_point(p, provider, peak, fn=fn, timed=timed)
        except Exception as err:  # noqa: BLE001 - one provider's failure must not end the proof
            row = new_row(p, provider, status="error", note=f"{type(err).__name__}: {str(err)[:200]}")
        if provider == "naive":
            row["nxn_bytes"] = naive_bytes(p)
        return row
    return measure


def _flex_missing() -> str | None:
    try:
        from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
    except ImportError as err:
        return f"FlexAttention is not in this torch ({err})"
    return None


def run(args, argv, out: Path, log) -> int:
    from .attention import check_cuda
    from .proof_plan import Budget, memory_points, run_tasks, speed_tasks
    from .proof_report import write_outputs

    reason = check_cuda(COMMAND)
    if reason:
        log(reason, err=True)
        return 2
    budget = Budget(args.budget_s)
    doc = new_document(args, argv)

    def finish(status, plots=True):
        doc["status"], doc["elapsed_s"] = status, round(budget.elapsed(), 1)
        for path in write_outputs(doc, out, plots=plots, log=log):
            log(f"wrote {path}")
        for goal in doc["goals"]:
            met = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
            log(f"goal {met}: {goal['goal']}: {goal['measured']} (target {goal['target']})")

    saved = [0.0]

    def keep(key):
        def on_row(rows):  # partial results reach the disk every 30 s
            doc[key] = rows
            if budget.elapsed() - saved[0] > 30:
                saved[0] = budget.elapsed()
                write_outputs(doc, out, plots=False, log=log)
        return on_row

    def step(name, fn, *a):
        start = budget.elapsed()
        result = fn(*a)
        doc["steps_s"][name] = round(budget.elapsed() - start, 1)
        write_outputs(doc, out, plots=False, log=log)
        return result

    try:
        step("environment", step_environment, doc, log)
        impls, failure = step("correctness", step_correctness, doc, args, log)
        if failure:
            log(failure, err=True)
            finish("correctness failed")
            return 1
        log(f"correctness: all {len(doc['correctness']['rows'])} checks passed "
            f"({budget.elapsed():.0f} s used of {budget.seconds:.0f} s)")
        measure = _speed_measure(doc, impls["notebook"])
        doc["results"] = step("speed", run_tasks, speed_tasks(args.quick), measure, budget, RESERVE_S,
                              log, keep("results"))
        memory = [(p, provider) for p in memory_points(args.quick) for provider in ("triton", "naive")]
        doc["memory"] = step("memory", run_tasks, memory, lambda p, provider: measure(p, provider, timed=False),
                             budget, 10.0, log, keep("memory"))
        finish("done")
        return 0
    except Exception:  # noqa: BLE001 - keep what was measured and say where it broke
        log("unexpected error; what was measured so far is in proof.json:\n" + traceback.format_exc(), err=True)
        finish("error", plots=False)
        return 3


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "proof.log")
    started, code = time.monotonic(), 3
    try:
        code = run(args, argv, out, log)
    finally:
        log(f"exit status {code} after {time.monotonic() - started:.0f} s")
        log.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
