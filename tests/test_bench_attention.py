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


def _run_in_interpreter(script: str) -> None:
    """Run ``script`` in a fresh Python with Triton's CPU interpreter on (it is chosen when
    triton is imported, so not in this process); it must print "ok"."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env=env, cwd=ROOT)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]


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
    _run_in_interpreter(script)


def test_reference_kernel_with_unequal_tiles_in_the_interpreter():
    """On a GPU the tuner picks tiles whose two sides differ (dK/dV 32 x 128, dQ 128 x 32, ...),
    and the backward kernels split their loops into masked and unmasked tiles by those sides.
    The interpreter's fixed 16 x 16 tiles would hide an off-by-one tile there, so this runs the
    kernels with unequal tiles, ragged and round N, causal and not, against autograd."""
    pytest.importorskip("triton")
    script = textwrap.dedent("""
        import math, torch
        from workbook_instructor.reference import flash_kernel
        torch.manual_seed(0)
        for fwd, kv, dq in [((32, 16), (16, 32), (32, 16)), ((32, 16), (32, 16), (16, 32)),
                            ((64, 16), (64, 16), (16, 64))]:
            flash_kernel.INTERPRETER_TILES.update({"forward": fwd, "backward dK dV": kv, "backward dQ": dq})
            for B, H, N, causal in [(1, 2, 37, False), (2, 1, 41, True), (1, 1, 70, True),
                                    (1, 1, 64, True), (1, 1, 64, False), (1, 1, 5, True)]:
                q, k, v = (torch.randn(B, H, N, 16, requires_grad=True) for _ in range(3))
                s = q @ k.transpose(-2, -1) / 4.0
                if causal:
                    s = s.masked_fill(~torch.ones(N, N, dtype=torch.bool).tril(), float("-inf"))
                ref = torch.softmax(s, -1) @ v
                out = flash_kernel.flash_attention(q, k, v, causal)
                where = f"tiles {fwd} {kv} {dq}, N={N}, causal={causal}"
                torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4, msg=lambda m: f"out, {where}: {m}")
                w = torch.randn_like(ref)
                for name, a, b in zip(("dq", "dk", "dv"), torch.autograd.grad((out * w).sum(), (q, k, v)),
                                      torch.autograd.grad((ref * w).sum(), (q, k, v))):
                    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=lambda m: f"{name}, {where}: {m}")
        print("ok")
    """)
    _run_in_interpreter(script)


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


def test_notebook_option_is_parsed():
    assert parse().notebook is None
    assert parse("--notebook", "mine.ipynb").notebook == "mine.ipynb"


def test_notebook_kernel_is_checked_before_timing_in_the_interpreter(tmp_path):
    """`--notebook` loads a notebook 07's flash_attention the way the grader runs it and checks
    it against SDPA before anything is timed: the solution passes, a wrong kernel is refused."""
    pytest.importorskip("triton")
    import nbformat

    solution = ROOT / "solutions" / "07-flash-attention" / "07-flash-attention.ipynb"
    wrong = tmp_path / "wrong.ipynb"
    nb = nbformat.read(solution, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace("dk = dk * sm_scale", "dk = dk")
    nbformat.write(nb, wrong)
    script = textwrap.dedent(f"""
        import torch
        from workbook_instructor.bench.attention import notebook_functions
        small = dict(device="cpu", dtypes=("fp32",), seq_lens=(40,), head_dims=(16,), log=lambda m: None)
        make = notebook_functions({str(solution)!r}, **small)["notebook"]
        q = torch.randn(1, 2, 24, 16)
        ref = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
        torch.testing.assert_close(make(True)(q, q, q), ref, atol=1e-5, rtol=1e-4)
        try:
            notebook_functions({str(wrong)!r}, **small)
        except ValueError as err:
            assert "correctness checks failed" in str(err) and "dk" in str(err), err
        else:
            raise AssertionError("a notebook with a wrong dK was accepted")
        print("ok")
    """)
    _run_in_interpreter(script)


def test_reference_kernel_offsets_are_64_bit_in_the_interpreter():
    """Batch stride 2**31 - 1024 elements (batch 2 starts past 2**31) on a mapping that reserves
    no memory: a 32-bit b * stride_b would wrap around and batch 2 would come out wrong."""
    pytest.importorskip("triton")
    if not sys.platform.startswith("linux"):
        pytest.skip("maps 16 GiB of address space with MAP_NORESERVE, which needs Linux")
    script = textwrap.dedent("""
        import math, mmap, torch, triton
        from workbook_instructor.reference import flash_kernel as fk
        B, N, D, S, PAD = 3, 20, 16, 2**31 - 1024, 4096
        n = PAD + (B - 1) * S + 8 * N * D + 1024
        buf = mmap.mmap(-1, 4 * n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000)
        big = torch.frombuffer(buf, dtype=torch.float32)
        q, k, v, o, do, dq, dk, dv = (big.as_strided((B, 1, N, D), (S, N * D, D, 1), PAD + j * N * D)
                                      for j in range(8))
        for t in (q, k, v, do):
            t.copy_(torch.randn(B, 1, N, D))
        qs, ks, vs = (t.clone().requires_grad_(True) for t in (q, k, v))
        ref = torch.softmax(qs @ ks.transpose(-2, -1) / math.sqrt(D), -1) @ vs
        grads = torch.autograd.grad(ref, (qs, ks, vs), do.clone())
        lse = torch.empty(B, 1, N)
        meta = dict(H=1, D=D, CAUSAL=False, BLOCK_M=16, BLOCK_N=16, PRECISION="ieee")
        fk._fwd_kernel[(2, B)](q, k, v, o, lse, N, fk.LOG2E / math.sqrt(D), S, N * D, D, **meta)
        torch.testing.assert_close(o.clone(), ref.detach(), atol=1e-5, rtol=1e-4)
        delta = (o.clone() * do.clone()).sum(-1)
        fk._bwd_dkdv_kernel[(2, B)](q, k, v, do, lse, delta, dk, dv, N, 1 / math.sqrt(D), S, N * D, D, **meta)
        fk._bwd_dq_kernel[(2, B)](q, k, v, do, lse, delta, dq, N, 1 / math.sqrt(D), S, N * D, D, **meta)
        for got, want in zip((dq, dk, dv), grads):
            torch.testing.assert_close(got.clone(), want, atol=1e-4, rtol=1e-4)
        print("ok")
    """)
    _run_in_interpreter(script)


@needs_cuda
def test_bf16_reference_and_notebook_kernels_match_sdpa_on_cuda():
    """bf16 needs a GPU: the Triton interpreter multiplies bf16 tiles wrongly (its tl.dot on
    bf16 inputs returned errors of 1e10 on Triton 3.9), so the CPU tests use fp32."""
    from workbook_instructor.bench.notebook_code import load_solution
    from workbook_instructor.reference.flash_kernel import flash_attention

    nb = load_solution(ROOT / "solutions" / "07-flash-attention" / "07-flash-attention.ipynb",
                       require=("flash_attention",))
    for fn in (flash_attention, nb.flash_attention):
        for causal in (False, True):
            q, k, v = (torch.randn(2, 3, 1000, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                       for _ in range(3))
            ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
            out = fn(q, k, v, causal)
            torch.testing.assert_close(out, ref, atol=2e-2, rtol=2e-2)
            w = torch.randn_like(ref)
            for a, b in zip(torch.autograd.grad((out * w).sum(), (q, k, v)),
                            torch.autograd.grad((ref * w).sum(), (q, k, v))):
                torch.testing.assert_close(a, b, atol=5e-2, rtol=5e-2)


@needs_cuda
def test_offsets_past_2_to_the_31_on_cuda():
    """A real long-context batch: 33 x 16 x 32768 x 128 bf16 elements (4.4 GB per tensor), so
    batch 32 starts at element 2**31; both kernels must address it with 64-bit offsets."""
    from workbook_instructor.bench.notebook_code import load_solution
    from workbook_instructor.reference.flash_kernel import flash_forward

    if torch.cuda.get_device_properties(0).total_memory < 40 * 2**30:
        pytest.skip("needs about 25 GiB of GPU memory")
    nb = load_solution(ROOT / "solutions" / "07-flash-attention" / "07-flash-attention.ipynb",
                       require=("flash_attention_forward",))
    q = torch.randn(33, 16, 32768, 128, device="cuda", dtype=torch.bfloat16)
    assert q[32].storage_offset() >= 2**31
    ref = torch.nn.functional.scaled_dot_product_attention(q[32:], q[32:], q[32:], is_causal=True)
    for forward in (flash_forward, nb.flash_attention_forward):
        out, _ = forward(q, q, q, True)
        torch.testing.assert_close(out[32:], ref, atol=2e-2, rtol=2e-2)
        del out
