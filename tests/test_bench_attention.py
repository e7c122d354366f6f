"""Tests of ``workbook bench attention``: everything that runs without CUDA, plus the timing
path on a CUDA machine (skipped elsewhere with the reason)."""
import json
import os
import subprocess
import sys
import textwrap

import matplotlib

matplotlib.use("agg")
import pytest
import torch

from conftest import ROOT, run_workbook
from transformer_workbook import cli
from workbook_instructor.bench import attention as bench

NO_CUDA = not torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(NO_CUDA, reason="times kernels on a CUDA GPU; none is available here")


def parse(*argv):
    return cli.build_parser().parse_args(["bench", "attention", *argv])


def test_arguments_defaults_and_lists():
    args = parse()
    assert args.out == "bench-results" and not args.quick and args.causal == "both"
    assert args.dtypes == ("bf16", "fp16") and args.head_dims == (64, 128)
    assert args.seq_lens[0] == 1024 and args.seq_lens[-1] == 32768
    args = parse("--out", "x", "--quick", "--dtypes", "bf16", "--head-dims", "64",
                 "--seq-lens", "1024,2048", "--modes", "fwd", "--causal", "yes",
                 "--providers", "triton,sdpa_flash")
    assert (args.out, args.quick, args.dtypes, args.head_dims) == ("x", True, ("bf16",), (64,))
    assert args.seq_lens == (1024, 2048) and args.modes == ("fwd",) and args.causal == "yes"
    assert args.providers == ("triton", "sdpa_flash")
    assert args.func.__module__ == "workbook_instructor.bench.cli"


def test_bad_choice_is_a_usage_error():
    with pytest.raises(SystemExit):
        parse("--causal", "maybe")


@pytest.mark.skipif(not NO_CUDA, reason="checks the message shown when there is no CUDA")
def test_no_cuda_gives_a_clear_message_and_exit_code(capsys):
    assert cli.main(["bench", "attention", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "TRITON_INTERPRET=1" in err


@pytest.mark.skipif(not NO_CUDA, reason="checks the message shown when there is no CUDA")
def test_no_cuda_from_the_installed_command(tmp_path):
    done = run_workbook("bench", "attention", "--out", str(tmp_path), timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs a CUDA GPU" in done.stderr
    assert not (tmp_path / "attention.json").exists()


def test_unknown_provider_is_refused(capsys):
    assert cli.main(["bench", "attention", "--providers", "triton,cudnn"]) == 2
    assert "cudnn" in capsys.readouterr().err


def test_flop_convention():
    fwd = 4 * 2 * 3 * 1024**2 * 64
    assert bench.attention_flops(2, 3, 1024, 64, False, "fwd") == fwd
    assert bench.attention_flops(2, 3, 1024, 64, True, "fwd") == fwd / 2
    assert bench.attention_flops(2, 3, 1024, 64, False, "fwd_bwd") == 3.5 * fwd
    assert bench.attention_flops(2, 3, 1024, 64, True, "bwd") == 2.5 * fwd / 2
    with pytest.raises(ValueError, match="mode"):
        bench.attention_flops(1, 1, 8, 8, False, "train")


def test_sweep_plan_covers_the_issue():
    points = bench.plan()
    keys = {(p.dtype, p.d, p.N, p.causal, p.mode) for p in points if p.tag == "sweep"}
    assert len(keys) == 2 * 2 * 6 * 2 * 2
    assert {p.N for p in points} == {1024, 2048, 4096, 8192, 16384, 32768}
    for p in points:
        if p.tag == "sweep":
            assert p.B * p.N == max(p.N, 16384) and p.H * p.d == 2048
    goal = [p for p in points if p.tag == "comparison"]
    assert [(p.dtype, p.d, p.N, p.B, p.H, p.causal, p.mode) for p in goal] == [
        ("bf16", 64, 16384, 16, 1, True, "fwd_bwd")]
    assert goal[0].flops == 3.5 * 4 * 16 * 16384**2 * 64 / 2
    quick = bench.quick_plan()
    assert 0 < len(quick) < len(points) and {p.dtype for p in quick} == {"bf16"}
    with pytest.raises(ValueError):
        bench.plan(dtypes=("fp8",))


def test_naive_memory_estimate_flags_32k():
    p = bench.Point("bf16", 64, 32768, 1, 32, False, "fwd")
    assert bench.naive_bytes(p) > 80 * 2**30
    assert bench.naive_bytes(bench.Point("bf16", 64, 1024, 16, 32, False, "fwd")) == 2 * 16 * 32 * 1024**2 * 2


def _fake_rows():
    rows = []
    for n in (1024, 4096):
        for causal in (False, True):
            p = bench.Point("bf16", 64, n, 16384 // n, 32, causal, "fwd")
            for provider, ms in (("triton", 1.0), ("naive", 3.0), ("sdpa_flash", 1.5), ("sdpa_default", 2.0)):
                rows.append({**p.__dict__, "provider": provider, "flops": p.flops, "status": "ok",
                             "ms": ms, "tflops": p.flops / ms / 1e9, "peak_memory_bytes": 1})
    rows.append({**bench.Point("bf16", 64, 32768, 1, 32, False, "fwd").__dict__, "provider": "naive",
                 "flops": 0.0, "status": "oom", "ms": None, "tflops": None})
    return rows


def test_json_has_device_versions_and_ratios(tmp_path):
    path = bench.write_results(_fake_rows(), tmp_path / "out", matmul_peak_tflops=700.0,
                               args={"quick": True})
    doc = json.loads(path.read_text())
    env = doc["environment"]
    for key in ("device", "torch", "triton", "python", "transformer_workbook"):
        assert key in env
    assert env["torch"] == torch.__version__
    assert doc["matmul_peak_tflops"] == 700.0 and doc["arguments"] == {"quick": True}
    triton_row = next(r for r in doc["results"] if r["provider"] == "triton")
    assert triton_row["speedup_vs_sdpa_flash"] == 1.5 and triton_row["speedup_vs_sdpa_default"] == 2.0
    oom = [r for r in doc["results"] if r["status"] == "oom"]
    assert len(oom) == 1 and oom[0]["speedup_vs_sdpa_flash"] is None


def test_plot_from_a_fake_results_file(tmp_path):
    path = bench.write_results(_fake_rows(), tmp_path, matmul_peak_tflops=None,
                               env={"device": "Fake GPU", "torch": "x", "triton": "y"})
    png = bench.plot_results(path, tmp_path / "plot" / "attention.png")
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reference_kernel_in_the_triton_interpreter():
    """The kernel the harness times, run in fp32 by the interpreter in a fresh process."""
    pytest.importorskip("triton")
    script = textwrap.dedent("""
        import math, torch
        from workbook_instructor.reference.flash_kernel import flash_attention, flash_forward
        torch.manual_seed(0)
        for B, H, N, D, causal in [(1, 2, 37, 16, False), (2, 1, 41, 32, True), (1, 1, 18, 128, True)]:
            q, k, v = (torch.randn(B, H, N, D, requires_grad=True) for _ in range(3))
            s = q @ k.transpose(-2, -1) / math.sqrt(D)
            if causal:
                s = s.masked_fill(~torch.ones(N, N, dtype=torch.bool).tril(), float("-inf"))
            ref = torch.softmax(s, -1) @ v
            out = flash_attention(q, k, v, causal)
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
            _, lse = flash_forward(q.detach(), k.detach(), v.detach(), causal)
            torch.testing.assert_close(lse, torch.logsumexp(s, -1).detach(), atol=1e-5, rtol=1e-4)
            w = torch.randn_like(ref)
            for a, b in zip(torch.autograd.grad((out * w).sum(), (q, k, v)),
                            torch.autograd.grad((ref * w).sum(), (q, k, v))):
                torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        print("ok")
    """)
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env=env, cwd=ROOT)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]


@needs_cuda
def test_quick_point_on_cuda(tmp_path):
    p = bench.Point("bf16", 64, 1024, 2, 4, True, "fwd_bwd")
    rows = [bench.time_point(p, provider, warmup=2, rep=5) for provider in bench.PROVIDERS]
    assert all(r["status"] == "ok" and r["ms"] > 0 for r in rows), rows
    path = bench.write_results(rows, tmp_path)
    assert json.loads(path.read_text())["environment"]["device"] != "cpu (no CUDA)"


@needs_cuda
def test_reference_kernel_matches_sdpa_on_cuda():
    from workbook_instructor.reference.flash_kernel import flash_attention

    q, k, v = (torch.randn(2, 4, 1000, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    for causal in (False, True):
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        torch.testing.assert_close(flash_attention(q, k, v, causal), ref, atol=2e-2, rtol=2e-2)
