"""Tests of the flash-attention GPU proof (``scripts/gpu-proof.sh``, issue 25): every path that
runs without CUDA - the arguments, notebook 07's code as the grader sees it, the correctness
harness in the Triton interpreter, the plan and its time budget, the result files, the message
without a GPU - so that the one prepared device call does not fail on a typo. A quick proof run
needs CUDA and is skipped elsewhere with the reason."""
import json
import os
import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("agg")
import pytest
import torch

from conftest import ROOT
from workbook_instructor.bench import proof, proof_plan, proof_report
from workbook_instructor.bench.attention import Point, new_row
from workbook_instructor.bench.notebook_code import NotebookCodeError, load_solution, solution_code
from workbook_instructor.reference.flops import FLOP_CONVENTION, attention_flops

NO_CUDA = not torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(NO_CUDA, reason="runs the proof on a CUDA GPU; none is available here")
SCRIPT = ROOT / "scripts" / "gpu-proof.sh"


def _cpu_env(**extra):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable, **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "instructor")])
    return env


# ----------------------------------------------------------------------------- arguments


def test_arguments_defaults_and_options(tmp_path):
    args = proof.parse_args(["--out", str(tmp_path / "p")])
    assert args.budget_s == 420.0 and not args.quick and args.seed == 0
    assert args.notebook == ROOT / "solutions" / "07-flash-attention" / "07-flash-attention.ipynb"
    assert args.notebook.is_file()
    args = proof.parse_args(["--out", "x", "--quick", "--budget-s", "90.5", "--seed", "3"])
    assert (args.out, args.quick, args.budget_s, args.seed) == ("x", True, 90.5, 3)


@pytest.mark.parametrize("argv, said", [
    ([], "--out"),
    (["--out", "x", "--budget-s", "0"], "more than 0 seconds"),
    (["--out", "x", "--budget-s", "soon"], "not a number of seconds"),
    (["--out", "x", "--fast"], "unrecognized"),
])
def test_bad_arguments_are_usage_errors(argv, said, capsys):
    with pytest.raises(SystemExit) as stop:
        proof.parse_args(argv)
    assert stop.value.code == 2 and said in capsys.readouterr().err


def test_out_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        proof.parse_args(["--out", str(tmp_path / "file")])
    assert "is a file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- plan and budget


def test_flop_convention():
    assert "4*B*H*N^2*d" in FLOP_CONVENTION and "2.5" in FLOP_CONVENTION and "3.5" in FLOP_CONVENTION
    fwd = 4 * 16 * 1 * 16384**2 * 64
    goal = proof_plan.goal_training()
    assert (goal.dtype, goal.d, goal.N, goal.B, goal.H, goal.causal, goal.mode) == \
        ("bf16", 64, 16384, 16, 1, True, "fwd_bwd")
    assert goal.flops == attention_flops(16, 1, 16384, 64, True, "fwd_bwd") == 3.5 * fwd / 2
    assert attention_flops(16, 1, 16384, 64, True, "bwd") == 2.5 * fwd / 2


def test_speed_plan_runs_the_goals_first_and_flex_last():
    tasks = proof_plan.speed_tasks()
    pairs = [(p, provider) for p, provider, _ in tasks]
    assert len(pairs) == len(set(pairs)), "a (point, provider) pair is timed twice"
    tiers = [tier for *_, tier in tasks]
    assert tiers == sorted(tiers, key=["goal", "sweep", "long", "flex"].index)
    goal = proof_plan.goal_training()
    assert [prov for p, prov, _ in tasks[:6]] == list(proof_plan.GOAL_PROVIDERS) and tasks[0][0] == goal
    forward = {(p.N, prov) for p, prov, tier in tasks if tier == "goal" and p.mode == "fwd"}
    assert {n for n, _ in forward} == {4096, 8192, 16384}
    assert {prov for _, prov in forward} == {"triton", "sdpa_flash", "sdpa_efficient", "flex", "naive"}
    for p in proof_plan.goal_forward():
        assert (p.d, p.causal, p.mode, p.dtype, p.B * p.N, p.H * p.d) == (128, False, "fwd", "bf16", 16384, 2048)
    sweep = {(p.mode, p.d, p.causal, p.N) for p, _, tier in tasks if tier in ("goal", "sweep") and p.tag == "sweep"}
    assert sweep == {(m, d, c, n) for m in ("fwd", "fwd_bwd") for d in (64, 128) for c in (False, True)
                     for n in (1024, 2048, 4096, 8192, 16384)}
    assert {p.N for p, _, tier in tasks if tier == "long"} == {32768}
    assert all(prov == "flex" for _, prov, tier in tasks if tier == "flex")
    assert {p for p, prov, _ in tasks if prov == "flex"} >= {p for p, _, t in tasks if t == "sweep"}
    quick = proof_plan.speed_tasks(quick=True)
    assert quick == tasks[:len(quick)] and {t for *_, t in quick} == {"goal"}


def test_memory_points_and_naive_limit():
    points = proof_plan.memory_points()
    assert [p.N for p in points] == [8192, 16384, 32768, 65536]
    assert {(p.mode, p.tag, p.dtype) for p in points} == {("fwd_bwd", "memory", "bf16")}
    assert [p.N for p in proof_plan.memory_points(quick=True)] == [8192, 32768]
    big = Point("bf16", 64, 32768, 1, 32, False, "fwd")
    reason = proof_plan.naive_too_big(big, 80 * 2**30)
    assert reason and "128.0 GiB" in reason and "80 GiB" in reason
    assert proof_plan.naive_too_big(Point("bf16", 64, 1024, 16, 32, False, "fwd"), 80 * 2**30) is None


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_budget_skips_the_rest_and_says_why():
    clock = FakeClock()
    budget = proof_plan.Budget(100, clock=clock)
    tasks = proof_plan.speed_tasks(quick=True)
    measured, saved, lines = [], [], []

    def measure(p, provider):
        measured.append((p, provider))
        clock.now += 10
        row = new_row(p, provider)
        row.update(ms=1.0, tflops=p.flops / 1e9)
        return row

    rows = proof_plan.run_tasks(tasks, measure, budget, reserve=30, log=lines.append,
                                on_row=lambda r: saved.append(len(r)))
    assert len(rows) == len(tasks) and saved == list(range(1, len(tasks) + 1))
    assert len(measured) == 7, "measured while more than 30 of 100 s were left: at 0, 10, ... 60 s"
    skipped = rows[7:]
    assert all(r["status"] == "skipped" and "time budget: 70 s of 100 s used" in r["note"] for r in skipped)
    assert all(r["tier"] == "goal" for r in rows)
    assert len(lines) == 7 + 2, "one line per measurement, then the first and the last skipped"
    assert budget.left() == 30 and not budget.allows(30) and budget.allows(0)


# ----------------------------------------------------------------------------- notebook code


def _cell(code, **nbgrader):
    meta = {"nbgrader": {"grade_id": nbgrader.pop("grade_id", "x"), "schema_version": 3, **nbgrader}} \
        if nbgrader else {}
    return {"cell_type": "code", "metadata": meta, "source": code, "outputs": [], "execution_count": None}


def _notebook(tmp_path, cells):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
    return path


def test_solution_code_keeps_answers_and_definitions_only(tmp_path):
    path = _notebook(tmp_path, [
        _cell("import math\nimport matplotlib.pyplot as plt\nSCALE = 2\nlower = 3\nprint('hello')\n"
              "def helper(x):\n    return x * SCALE\n"),
        _cell("def answer(x):\n    ### BEGIN SOLUTION\n    return helper(x) + math.floor(0.5)\n"
              "    ### END SOLUTION\nANSWER_RAN = True\n", solution=True, grade=False, grade_id="answer"),
        _cell("raise AssertionError('a test cell must not run')\n", grade=True, grade_id="t", points=1),
        _cell("if True:\n    raise RuntimeError('a demo cell must not run')\nfor i in range(3):\n    pass\n"),
    ])
    code = solution_code(path)
    assert "matplotlib" not in code and "print(" not in code and "lower" not in code
    assert "must not run" not in code and "ANSWER_RAN = True" in code
    module = load_solution(path, require=("answer", "helper"))
    assert module.answer(5) == 10 and module.SCALE == 2 and module.ANSWER_RAN
    assert not hasattr(module, "lower")
    with pytest.raises(NotebookCodeError, match="defines no flash_attention.*renamed"):
        load_solution(path, require=("flash_attention",))


def test_broken_answers_are_reported_with_the_cell(tmp_path):
    path = _notebook(tmp_path, [_cell("def answer(:\n", solution=True, grade=False)])
    with pytest.raises(NotebookCodeError, match="code cell 0 is not valid Python"):
        solution_code(path)
    path = _notebook(tmp_path, [_cell("x = undefined_name\n", solution=True, grade=False)])
    with pytest.raises(NotebookCodeError, match="NameError.*runs on its own"):
        load_solution(path)


def test_notebook_07_code_as_the_grader_sees_it():
    code = solution_code(proof.NOTEBOOK)
    for name in ("def _fwd_kernel(", "def _bwd_dkdv_kernel(", "def _bwd_dq_kernel(", "class FlashAttention(",
                 "def flash_attention(", "def flash_attention_forward(", "def flash_attention_backward(",
                 "def attention_flops(", "@triton.jit", "from transformer_workbook.checks import"):
        assert name in code, name
    for demo in ("HIDDEN TESTS", "do_bench", "seed_everything(0)", "largest_buffer(lambda", "GPU cell",
                 "import matplotlib", "print("):
        assert demo not in code, demo


# ----------------------------------------------------------------------------- correctness


def test_correctness_harness_in_the_triton_interpreter():
    """Both kernels (reference and notebook 07) pass at tiny fp32 sizes; a kernel that ignores
    causality, one that leaves a NaN and one that raises all fail with the reason. In a fresh
    process: TRITON_INTERPRET must be set before the kernels are defined."""
    script = textwrap.dedent("""
        import sys, torch
        import torch.nn.functional as F
        from workbook_instructor.bench import proof, proof_report, device  # noqa: F401
        from workbook_instructor.bench.correctness import TOLERANCE, case, failure_message, run_checks
        impls = proof.load_implementations(proof.NOTEBOOK, print)
        cases = [case("fp32", 16, 37, 1, 2, True), case("fp32", 32, 20, 2, 1, False),
                 case("fp32", 128, 18, 1, 1, True)]
        rows = run_checks(impls, cases, "cpu", log=print)
        assert len(rows) == 6 and all(r["ok"] for r in rows), [r.get("failure") for r in rows]
        assert all(r["limits"][t] == TOLERANCE["fp32"] for r in rows for t in ("out", "dq", "dk", "dv"))
        assert max(e for r in rows for e in r["errors"].values()) < 1e-5

        def ignores_causal(q, k, v, causal):
            return F.scaled_dot_product_attention(q, k, v, is_causal=False)

        def leaves_a_nan(q, k, v, causal):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            hole = torch.zeros_like(out, dtype=torch.bool)
            hole[0, 0, -1, 0] = True
            return out.masked_fill(hole, float("nan"))

        def raises(q, k, v, causal):
            raise ValueError("no kernel here")

        bad = run_checks({"causal?": ignores_causal, "nan": leaves_a_nan, "raises": raises},
                         [case("fp32", 16, 24, 1, 2, True)], "cpu", log=print)
        why = {r["impl"]: r.get("failure", "") for r in bad}
        assert not any(r["ok"] for r in bad)
        assert "out relative error" in why["causal?"] and "> limit" in why["causal?"], why
        assert "out has NaN or inf" in why["nan"], why
        assert why["raises"] == "raised ValueError: no kernel here", why
        message = failure_message(rows + bad)
        assert message.startswith("3 of 9 correctness checks failed, so nothing was timed")
        assert "Tolerances: relative error" in message
        assert not any(m.split(".")[0] == "nbgrader" for m in sys.modules), "the proof imports nbgrader"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=_cpu_env(TRITON_INTERPRET="1"), cwd=ROOT)
    assert done.returncode == 0 and done.stdout.rstrip().endswith("ok"), done.stdout[-3000:] + done.stderr[-3000:]


# ----------------------------------------------------------------------------- result files


def _fake_document():
    rows = []
    goal = proof_plan.goal_training()
    for provider, tflops in (("triton", 371.0), ("notebook", 120.0), ("sdpa_flash", 330.0),
                             ("sdpa_efficient", 200.0), ("flex", 300.0)):
        row = new_row(goal, provider)
        row.update(tflops=tflops, ms=round(goal.flops / tflops / 1e9, 5), peak_memory_bytes=2**28)
        rows.append(row)
    rows.append(new_row(goal, "naive", status="skipped", note="not run: too big"))
    for p in proof_plan.goal_forward() + [Point("bf16", 64, 1024, 16, 32, True, "fwd_bwd")]:
        for provider, ms in (("triton", 1.0), ("sdpa_flash", 1.3), ("sdpa_efficient", 1.8),
                             ("flex", 0.9), ("naive", 4.0)):
            row = new_row(p, provider)
            row.update(ms=ms, tflops=round(p.flops / ms / 1e9, 3))
            rows.append(row)
    rows.append(new_row(Point("bf16", 64, 32768, 1, 32, False, "fwd"), "triton", status="skipped",
                        note="time budget: 361 s of 420 s used, 60 s kept for the steps after this one"))
    memory = []
    for p in proof_plan.memory_points():
        kernel = new_row(p, "triton")
        kernel["peak_memory_bytes"] = 6 * 2 * p.B * p.H * p.N * p.d + 4 * p.N
        naive = new_row(p, "naive", status="ok" if p.N <= 16384 else "oom")
        naive["nxn_bytes"] = 4 * p.B * p.H * p.N**2 * 2
        naive["peak_memory_bytes"] = naive["nxn_bytes"] if p.N <= 16384 else None
        memory += [kernel, naive]
    checks = [{"impl": impl, "dtype": dtype, "d": 64, "N": 1000, "B": 2, "H": 2, "causal": True,
               "ok": True, "errors": {t: 1e-3 for t in ("out", "dq", "dk", "dv")},
               "sdpa_errors": {t: 8e-4 for t in ("out", "dq", "dk", "dv")}, "limits": {}}
              for impl in ("reference", "notebook") for dtype in ("fp16", "bf16")]
    return {"status": "done", "created": "2026-11-27T00:00:00+00:00", "command": "python -m x --out y",
            "budget_s": 420.0, "elapsed_s": 400.0, "flop_convention": FLOP_CONVENTION, "timing": "do_bench",
            "environment": {"device": "Fake H100", "torch": "2.11", "triton": "3.6", "sm_count": 132},
            "matmul_peak_tflops": 790.0, "copy_bandwidth_gbs": 3000.0,
            "correctness": {"rule": "relative error rule", "rows": checks, "passed": True},
            "results": rows, "memory": memory}


def test_result_files_fit_the_device_tool(tmp_path):
    out = tmp_path / "proof"
    written = proof_report.write_outputs(_fake_document(), out)
    (out / proof_report.LOG).write_text("log\n")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(proof_report.FILES) and len(names) <= 8
    assert all(p.is_file() for p in out.iterdir()), "the device tool brings back files, not folders"
    assert {p.name for p in written} == set(proof_report.FILES) - {proof_report.LOG}
    for png in ("tflops.png", "memory.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "proof.json").read_text())
    kernel = next(r for r in doc["results"] if r["provider"] == "triton" and r["N"] == 4096)
    assert kernel["speedup_vs_sdpa_flash"] == 1.3 and kernel["speedup_vs_flex"] == 0.9
    assert kernel["speedup_vs_sdpa_efficient"] == 1.8 and kernel["speedup_vs_naive"] == 4.0
    met = {g["goal"].split(":")[0] + g["target"]: g["met"] for g in doc["goals"]}
    assert list(met.values()) == [True, True, False, True, True], doc["goals"]
    text = (out / "proof.md").read_text()
    assert "# Flash-attention GPU proof: Fake H100" in text and FLOP_CONVENTION in text
    assert "| forward+backward, causal, d=64, N=16k, B=16, H=1, bf16 | >= 360 TFLOP/s | 371.0 TFLOP/s | yes |" in text
    assert "| 4k 1.30x, 8k 1.30x, 16k 1.30x | yes |" in text and "| 4k 0.90x, 8k 0.90x, 16k 0.90x | NO |" in text
    assert "**fwd, d=128, non-causal, bf16**" in text and "| N | BxH | triton |" in text
    assert "2 of 27 speed measurements were skipped" in text
    assert "| 32768 | naive | oom |" in text and "Kernel bytes per token, max / min over N: 1.000" in text
    assert "| reference | bf16 | 2/2 |" not in text and "| reference | bf16 | 1/1 | 1.0e-03 (8.0e-04) |" in text


def test_partial_document_still_writes(tmp_path):
    """What a run that stopped after its correctness step leaves behind."""
    doc = {"status": "correctness failed", "environment": {}, "correctness": {
        "rule": "r", "rows": [{"impl": "notebook", "dtype": "bf16", "d": 64, "N": 128, "B": 2, "H": 2,
                               "causal": False, "ok": False, "failure": "dq relative error 1 > limit 0.03",
                               "errors": {"out": 0.001, "dq": 1.0}, "sdpa_errors": {"out": 0.001, "dq": 0.001},
                               "limits": {}}]}}
    written = proof_report.write_outputs(doc, tmp_path)
    assert [p.name for p in written] == ["proof.json", "proof.md"]
    text = (tmp_path / "proof.md").read_text()
    assert "- FAILED notebook bf16 d=64 N=128 full: dq relative error 1 > limit 0.03" in text
    assert "| correct: every case, reference kernel and notebook 07 | all pass | 0/1 pass (notebook) | NO |" in text
    assert "| not measured |" in text


# ----------------------------------------------------------------------------- the whole run, faked


def _sdpa(q, k, v, causal):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _ignores_causal(q, k, v, causal):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=False)


def _fake_time_point(p, provider, peak=None, fn=None, timed=True):
    assert (fn is not None) == (provider == "notebook"), "only notebook 07's kernel comes as a function"
    if provider == "flex" and p.N == 2048:
        raise KeyError("flex broke")
    row = new_row(p, provider)
    if provider == "naive" and p.N >= 32768:
        row.update(status="oom", note="predicted")
        return row
    row["peak_memory_bytes"] = (12 * p.N if provider != "naive" else 8 * p.N**2) * p.B * p.H * p.d
    if timed:
        ms = {"triton": 1.0, "notebook": 3.0, "sdpa_flash": 1.3, "sdpa_efficient": 1.6, "flex": 1.1,
              "naive": 5.0}[provider] * (10 if p.tag == "comparison" else 1)
        row.update(ms=ms, tflops=round(p.flops / ms / 1e9, 3), fraction_of_matmul_peak=0.5)
    return row


@pytest.fixture
def faked_gpu(monkeypatch):
    """Everything the proof would ask of CUDA, answered on the CPU: the orchestration, the
    correctness step (SDPA stand-ins, fp32, tiny), the plan, the files."""
    from types import SimpleNamespace

    from workbook_instructor.bench import attention, correctness

    def environment(doc, log):
        doc["environment"] = {"device": "Fake GPU", "sm_count": 132}
        doc["matmul_peak_tflops"], doc["copy_bandwidth_gbs"] = 790.0, 3000.0

    monkeypatch.setattr(attention, "check_cuda", lambda command: None)
    monkeypatch.setattr(attention, "time_point", _fake_time_point)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(total_memory=80 * 2**30))
    monkeypatch.setattr(proof, "DEVICE", "cpu")
    monkeypatch.setattr(proof, "step_environment", environment)
    monkeypatch.setattr(proof, "load_implementations", lambda nb, log: {"reference": _sdpa, "notebook": _sdpa})
    monkeypatch.setattr(correctness, "gpu_cases",
                        lambda seq_lens: [correctness.case("fp32", 16, 24, 1, 2, c) for c in (False, True)])
    return monkeypatch


def test_a_whole_run_with_the_gpu_faked(faked_gpu, tmp_path, capsys):
    out = tmp_path / "proof"
    assert proof.main(["--out", str(out), "--budget-s", "300"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(proof_report.FILES)
    doc = json.loads((out / "proof.json").read_text())
    assert doc["status"] == "done" and doc["correctness"]["passed"] and len(doc["correctness"]["rows"]) == 4
    assert set(doc["steps_s"]) == {"environment", "correctness", "speed", "memory"}
    rows = doc["results"]
    assert len(rows) == len(proof_plan.speed_tasks()) and rows[0]["tier"] == "goal"
    status = {(r["provider"], r["N"], r["mode"], r["d"], r["causal"]): r for r in rows}
    assert status[("naive", 16384, "fwd_bwd", 64, False)]["status"] == "skipped"
    assert "not run: naive attention keeps 64.0 GiB" in status[("naive", 16384, "fwd_bwd", 64, False)]["note"]
    broken = status[("flex", 2048, "fwd", 64, False)]
    assert broken["status"] == "error" and broken["note"] == "KeyError: 'flex broke'"
    assert {r["provider"] for r in rows if r["tag"] == "comparison"} == set(proof_plan.GOAL_PROVIDERS)
    assert len(doc["memory"]) == 8 and all("nxn_bytes" in r for r in doc["memory"] if r["provider"] == "naive")
    met = [g["met"] for g in doc["goals"]]
    assert met == [True, True, True, False, True], doc["goals"]
    said = capsys.readouterr().out
    assert "goal NOT met: forward+backward, causal, d=64, N=16k" in said
    assert "exit status 0" in (out / "proof.log").read_text()


def test_a_failed_check_stops_the_run_before_timing(faked_gpu, tmp_path, capsys):
    faked_gpu.setattr(proof, "load_implementations",
                      lambda nb, log: {"reference": _sdpa, "notebook": _ignores_causal})
    assert proof.main(["--out", str(tmp_path), "--quick"]) == 1
    err = capsys.readouterr().err
    assert "1 of 4 correctness checks failed, so nothing was timed" in err
    assert "notebook: fp32 d=16 N=24 B=1 H=2 causal: out relative error" in err
    doc = json.loads((tmp_path / "proof.json").read_text())
    assert doc["status"] == "correctness failed" and doc["results"] == [] and "speed" not in doc["steps_s"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proof.json", "proof.log", "proof.md"]
    assert "- FAILED notebook fp32 d=16 N=24 causal: out relative error" in (tmp_path / "proof.md").read_text()


def test_an_unexpected_error_keeps_the_log_and_the_json(faked_gpu, tmp_path, capsys):
    def broken(doc, log):
        raise RuntimeError("the GPU fell off the bus")

    faked_gpu.setattr(proof, "step_environment", broken)
    assert proof.main(["--out", str(tmp_path)]) == 3
    log = (tmp_path / "proof.log").read_text()
    assert "Traceback" in log and "the GPU fell off the bus" in log and "exit status 3" in log
    assert json.loads((tmp_path / "proof.json").read_text())["status"] == "error"


# ----------------------------------------------------------------------------- the command


@pytest.mark.skipif(not NO_CUDA, reason="checks the message shown when there is no CUDA")
def test_no_cuda_exits_with_a_clear_message(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "proof"), "--quick"],
                          capture_output=True, text=True, timeout=120, env=_cpu_env(), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the GPU proof (scripts/gpu-proof.sh) needs a CUDA GPU" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert [p.name for p in (tmp_path / "proof").iterdir()] == ["proof.log"]
    assert "needs a CUDA GPU" in (tmp_path / "proof" / "proof.log").read_text()


def test_the_script_reports_usage_errors(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path), "--budget-s", "-1"],
                          capture_output=True, text=True, timeout=120, env=_cpu_env(), cwd=tmp_path)
    assert done.returncode == 2 and "more than 0 seconds" in done.stderr and "Traceback" not in done.stderr


@needs_cuda
def test_quick_proof_on_cuda(tmp_path):
    code = proof.main(["--out", str(tmp_path), "--quick", "--budget-s", "240"])
    doc = json.loads((tmp_path / "proof.json").read_text())
    assert code == 0, doc.get("correctness", {}).get("rows")
    assert doc["status"] == "done" and doc["correctness"]["passed"]
    assert doc["environment"]["sm_count"] > 0 and doc["matmul_peak_tflops"] > 0
    assert any(r["status"] == "ok" and r["provider"] == "triton" for r in doc["results"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(proof_report.FILES)
