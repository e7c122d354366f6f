"""Tests of ``workbook bench compile`` (issue 25): the flash-attention kernels compiled for
Hopper (sm_90) on this CPU machine, with the ptxas that the Triton wheel ships, so that a
kernel that does not compile, or a tile that spills, is found before a GPU is lent."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import triton

from conftest import ROOT
from workbook_instructor.bench import hopper_compile
from workbook_instructor.reference import flash_kernel

PTXAS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
needs_ptxas = pytest.mark.skipif(not PTXAS.exists(), reason=f"this Triton wheel ships no ptxas "
                                 f"({PTXAS}), so it cannot compile for a GPU here")


def _run(*args, **env):
    # the same Triton as this process (PYTHONPATH kept), compiling rather than interpreting
    environ = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    workbook = Path(sys.executable).with_name("workbook")
    return subprocess.run([str(workbook), "bench", "compile", *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env={**environ, **env})


@needs_ptxas
def test_kept_tiles_compile_for_hopper_and_a_spill_is_seen(tmp_path):
    """The quick check compiles each kernel's first tile (reference and notebook 07), bf16,
    causal, head dims 64 and 128: every kept tile compiles, uses wgmma and spills nothing, and
    the tiles pruned at head dim 128 for spilling are seen to spill (the detector reads the
    real compiler output)."""
    done = _run("--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "compile.json").read_text())
    rows = doc["rows"]
    assert doc["target"] == "cuda sm_90" and doc["versions"]["triton"] == triton.__version__
    assert {r["kernel"] for r in rows} == {f"{s} {k}" for s in ("reference", "notebook")
                                           for k in ("forward", "backward dK dV", "backward dQ")}
    assert {(r["D"], r["dtype"], r["causal"]) for r in rows} == {(64, "bf16", True), (128, "bf16", True)}
    assert all("error" not in r and r["wgmma"] and 0 < r["registers"] <= 255 for r in rows), rows
    assert all(r["ptx_counts"]["wgmma.mma_async"] > 0 and r["ptx_counts"]["ex2"] > 0
               and r["ptx_instructions"] > sum(r["ptx_counts"].values()) for r in rows), rows
    assert all(r["spill_bytes"] == 0 for r in rows if r["kept"] and r["source"] == "reference")
    assert any(r["spill_bytes"] > 0 for r in rows if not r["kept"]), \
        "the tiles pruned at head dim 128 spill registers; the report shows none"
    page = (tmp_path / "compile.md").read_text()
    assert "| reference forward | 128 x 64, 4, 3 | 128 | no |" in page
    assert "Every tile the autotuner keeps compiles for sm_90" in page


def test_the_interpreter_is_refused_with_the_reason(tmp_path):
    done = _run("--quick", TRITON_INTERPRET="1")
    assert done.returncode != 0
    assert "TRITON_INTERPRET=1" in done.stderr and "without it" in done.stderr


def _row(**fields):
    row = {"kernel": "reference forward", "source": "reference", "kept": True, "registers": 200,
           "spill_bytes": 0, "shared_bytes": 64 * 1024, "wgmma": True}
    return {**row, **fields}


def test_problems_say_what_is_wrong_and_only_kept_reference_tiles_fail_on_a_spill():
    assert hopper_compile.problems(_row()) == []
    assert hopper_compile.problems(_row(spill_bytes=96)) == ["spills 96 bytes to local memory"]
    assert hopper_compile.problems(_row(shared_bytes=240_000)) == [
        "needs 240000 bytes of shared memory (sm_90 allows 232448)"]
    assert hopper_compile.problems(_row(wgmma=False)) == ["its matrix products do not use wgmma"]
    unread = {k: v for k, v in _row().items() if k not in ("registers", "spill_bytes")}
    assert hopper_compile.problems(unread) == [
        "registers and spills not read (no cuobjdump beside Triton's ptxas or on PATH)"]
    assert hopper_compile.fails(unread)
    assert hopper_compile.problems({"error": "CompilationError: at 12:4"}) == [
        "does not compile (CompilationError: at 12:4)"]
    assert hopper_compile.fails(_row(spill_bytes=96))
    assert not hopper_compile.fails(_row(spill_bytes=96, kept=False))       # pruned: reported only
    assert not hopper_compile.fails(_row(spill_bytes=96, source="notebook"))
    assert hopper_compile.fails(_row(shared_bytes=240_000, source="notebook"))
    assert hopper_compile.fails({"source": "notebook", "kept": True, "error": "CompilationError"})


def test_every_argument_gets_a_type_or_a_pointed_error():
    kernel = flash_kernel._fwd_kernel
    constants = {"H": 1, "D": 64, "CAUSAL": True, "BLOCK_M": 64, "BLOCK_N": 64, "PRECISION": "tf32"}
    sig = hopper_compile.signature(kernel, "bf16", constants)
    assert sig["Q"] == sig["O"] == "*bf16" and sig["LSE"] == "*fp32"
    assert sig["N"] == sig["stride_n"] == "i32" and sig["qk_scale"] == "fp32"
    assert all(sig[name] == "constexpr" for name in constants)

    class Renamed:
        __name__ = "_kernel"
        arg_names = ["Q", "seq_len"]
    with pytest.raises(ValueError, match="'seq_len'.*add it to bench/hopper_compile.py"):
        hopper_compile.signature(Renamed, "bf16", {})


def test_the_tuner_skips_tiles_above_their_head_dim():
    for name, (_, tiles, prune) in flash_kernel.TUNING.items():
        configs = flash_kernel._configs(tiles)
        for d in (64, 128):
            kept = prune(configs, {"D": d})
            want = [t[:4] for t in tiles if t[4] >= d]
            assert [(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_warps, c.num_stages)
                    for c in kept] == want, (name, d)
        assert len(prune(configs, {"D": 128})) >= 3, f"{name}: too few tiles left to tune at D=128"


def test_the_page_says_when_registers_were_not_read():
    tile = {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3, "D": 64,
            "dtype": "bf16", "causal": True, "ptx_instructions": 900}
    unread = {k: v for k, v in _row(**tile).items() if k not in ("registers", "spill_bytes")}
    versions = {"triton": "3.6.0", "torch": "2.11", "python": "3.12", "machine": "a CPU, 2 cores"}
    page = hopper_compile.report([unread], versions, "workbook bench compile", 1.0)
    assert ("| reference forward | 128 x 64, 8, 3 | 64 | yes | - | - | 64 | yes | 900 | "
            "registers and spills not read") in page
    assert "**1 compile(s) fail the check.**" in page
