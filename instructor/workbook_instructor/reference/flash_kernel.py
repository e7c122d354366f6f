"""Reference tiled (flash-style) attention in Triton, timed by ``workbook bench attention``.

Forward: one program per (query tile, batch*head); online softmax in base 2 with fp32
accumulation; the logsumexp (natural log) is saved for the backward pass. Causal attention
walks the tiles strictly below the diagonal without any mask, then the diagonal tile with the
mask; tiles above the diagonal are never visited. Backward: one kernel per key tile for dK and
dV, one per query tile for dQ, both rebuilding P from the logsumexp. On CUDA all three kernels
are autotuned (tile sizes, warps, pipeline stages) per sequence length, head dim and causality;
the interpreter runs fixed tiles (``INTERPRETER_TILES``). The backward kernels, like the
forward, mask only the tiles that need it: those on the diagonal, and dQ's last partial key
tile. Plain pointer arithmetic
only (no ``tl.make_block_ptr``), so it runs on Triton 3.6 and later and in the interpreter
(``TRITON_INTERPRET=1``, fp32, used by the package tests).
"""
from __future__ import annotations

import inspect
import math

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _attend_tiles(acc, l_i, m_i, q, k_base, v_base, stride_n, start, end, rows, offs_n, offs_d, N,
                  qk_scale, MASK_CAUSAL: tl.constexpr, MASK_COLS: tl.constexpr,
                  BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    for start_n in range(start, end, BLOCK_N):
        cols = start_n + offs_n
        ptrs = cols[:, None] * stride_n + offs_d[None, :]
        if MASK_COLS:
            k = tl.load(k_base + ptrs, mask=(cols < N)[:, None], other=0.0)
            v = tl.load(v_base + ptrs, mask=(cols < N)[:, None], other=0.0)
        else:
            k = tl.load(k_base + ptrs)
            v = tl.load(v_base + ptrs)
        # Raw scores; the scale (log2(e) / sqrt(d), positive) is applied to each row's max and
        # inside the exponent, where it fuses with the subtraction into one FMA per score.
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        if MASK_COLS:
            keep = (cols < N)[None, :]
            if MASK_CAUSAL:
                keep = keep & (rows[:, None] >= cols[None, :])
            s = tl.where(keep, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1) * qk_scale)
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s * qk_scale - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        acc += tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _fwd_kernel(Q, K, V, O, LSE, N, qk_scale, stride_b, stride_h, stride_n,
                H: tl.constexpr, D: tl.constexpr, CAUSAL: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    base = (pid_bh // H).to(tl.int64) * stride_b + (pid_bh % H).to(tl.int64) * stride_h
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    row_ok = rows < N
    q = tl.load(Q + base + rows[:, None] * stride_n + offs_d[None, :], mask=row_ok[:, None], other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)
    if CAUSAL:
        # Tiles left of the diagonal block need no mask (BLOCK_M is a multiple of BLOCK_N).
        acc, l_i, m_i = _attend_tiles(acc, l_i, m_i, q, K + base, V + base, stride_n, 0, pid_m * BLOCK_M,
                                      rows, offs_n, offs_d, N, qk_scale, False, False, BLOCK_N, PRECISION)
        acc, l_i, m_i = _attend_tiles(acc, l_i, m_i, q, K + base, V + base, stride_n, pid_m * BLOCK_M,
                                      tl.minimum(N, (pid_m + 1) * BLOCK_M), rows, offs_n, offs_d, N,
                                      qk_scale, True, True, BLOCK_N, PRECISION)
    else:
        full = (N // BLOCK_N) * BLOCK_N
        acc, l_i, m_i = _attend_tiles(acc, l_i, m_i, q, K + base, V + base, stride_n, 0, full,
                                      rows, offs_n, offs_d, N, qk_scale, False, False, BLOCK_N, PRECISION)
        acc, l_i, m_i = _attend_tiles(acc, l_i, m_i, q, K + base, V + base, stride_n, full, N,
                                      rows, offs_n, offs_d, N, qk_scale, False, True, BLOCK_N, PRECISION)
    acc = acc / l_i[:, None]
    tl.store(O + base + rows[:, None] * stride_n + offs_d[None, :], acc.to(O.dtype.element_ty),
             mask=row_ok[:, None])
    # Natural-log logsumexp of the unscaled-by-log2e scores: (m + log2 l) / log2(e).
    tl.store(LSE + pid_bh.to(tl.int64) * N + rows, (m_i + tl.math.log2(l_i)) * 0.6931471805599453,
             mask=row_ok)


@triton.jit
def _probs_and_dscores(q, k, v, do, lse, delta, rows, cols, scale2, MASK_CAUSAL: tl.constexpr,
                       MASK_COLS: tl.constexpr, N, PRECISION: tl.constexpr):
    """One [BLOCK_M, BLOCK_N] tile of the backward pass, shared by both backward kernels: the
    probabilities P recomputed from the saved log-sum-exp (``lse`` in base 2), and the scores'
    gradient dS = P * (dO V^T - delta). Only the tiles that need a mask pay for one: those on
    the diagonal (``MASK_CAUSAL``) and, for dQ, the last, partial key tile (``MASK_COLS``).
    Rows past N are loaded as zeros and so add exactly zero to dK and dV; keys past N only
    touch rows of dK and dV that are never stored."""
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale2
    p = tl.math.exp2(s - lse[:, None])
    if MASK_CAUSAL or MASK_COLS:
        keep = cols[None, :] < N
        if MASK_CAUSAL:
            keep = keep & (rows[:, None] >= cols[None, :])
        p = tl.where(keep, p, 0.0)
    dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
    return p, p * (dp - delta[:, None])


@triton.jit
def _query_rows(Q, DO, LSE, DELTA, base, row_base, stride_n, rows, offs_d, N):
    """What both backward kernels read for a tile of query rows: Q, dO, the log-sum-exp in base
    2 and delta; rows past N read as zeros."""
    row_ok = rows < N
    ptrs = rows[:, None] * stride_n + offs_d[None, :]
    q = tl.load(Q + base + ptrs, mask=row_ok[:, None], other=0.0)
    do = tl.load(DO + base + ptrs, mask=row_ok[:, None], other=0.0)
    lse = tl.load(LSE + row_base + rows, mask=row_ok, other=0.0) * 1.4426950408889634
    delta = tl.load(DELTA + row_base + rows, mask=row_ok, other=0.0)
    return q, do, lse, delta


@triton.jit
def _dkdv_tiles(dk, dv, k, v, Q, DO, LSE, DELTA, base, row_base, stride_n, start, end, cols,
                offs_m, offs_d, N, scale2, MASK_CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
                PRECISION: tl.constexpr):
    for start_m in range(start, end, BLOCK_M):
        rows = start_m + offs_m
        q, do, lse, delta = _query_rows(Q, DO, LSE, DELTA, base, row_base, stride_n, rows, offs_d, N)
        p, ds = _probs_and_dscores(q, k, v, do, lse, delta, rows, cols, scale2, MASK_CAUSAL,
                                   False, N, PRECISION)
        dv += tl.dot(tl.trans(p).to(do.dtype), do, input_precision=PRECISION)
        dk += tl.dot(tl.trans(ds).to(q.dtype), q, input_precision=PRECISION)
    return dk, dv


@triton.jit
def _bwd_dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, N, sm_scale, stride_b, stride_h, stride_n,
                     H: tl.constexpr, D: tl.constexpr, CAUSAL: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    base = (pid_bh // H).to(tl.int64) * stride_b + (pid_bh % H).to(tl.int64) * stride_h
    row_base = pid_bh.to(tl.int64) * N
    first = pid_n * BLOCK_N
    cols = first + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D)
    col_ok = cols < N
    kv_ptrs = cols[:, None] * stride_n + offs_d[None, :]
    k = tl.load(K + base + kv_ptrs, mask=col_ok[:, None], other=0.0)
    v = tl.load(V + base + kv_ptrs, mask=col_ok[:, None], other=0.0)
    dk = tl.zeros([BLOCK_N, D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, D], dtype=tl.float32)
    scale2 = sm_scale * 1.4426950408889634
    if CAUSAL:
        # Query tiles above this key tile see none of it and are skipped; those that start at or
        # after its last key see all of it, so only the ones in between need the causal mask.
        lo = (first // BLOCK_M) * BLOCK_M
        split = lo + ((first + BLOCK_N - 1 - lo + BLOCK_M - 1) // BLOCK_M) * BLOCK_M
        dk, dv = _dkdv_tiles(dk, dv, k, v, Q, DO, LSE, DELTA, base, row_base, stride_n, lo,
                             tl.minimum(split, N), cols, offs_m, offs_d, N, scale2, True,
                             BLOCK_M, PRECISION)
        dk, dv = _dkdv_tiles(dk, dv, k, v, Q, DO, LSE, DELTA, base, row_base, stride_n, split, N,
                             cols, offs_m, offs_d, N, scale2, False, BLOCK_M, PRECISION)
    else:
        dk, dv = _dkdv_tiles(dk, dv, k, v, Q, DO, LSE, DELTA, base, row_base, stride_n, 0, N,
                             cols, offs_m, offs_d, N, scale2, False, BLOCK_M, PRECISION)
    tl.store(DK + base + kv_ptrs, (dk * sm_scale).to(DK.dtype.element_ty), mask=col_ok[:, None])
    tl.store(DV + base + kv_ptrs, dv.to(DV.dtype.element_ty), mask=col_ok[:, None])


@triton.jit
def _dq_tiles(dq, q, do, lse, delta, K, V, base, stride_n, start, end, rows, offs_n, offs_d, N,
              scale2, MASK_CAUSAL: tl.constexpr, MASK_COLS: tl.constexpr, BLOCK_N: tl.constexpr,
              PRECISION: tl.constexpr):
    for start_n in range(start, end, BLOCK_N):
        cols = start_n + offs_n
        kv_ptrs = cols[:, None] * stride_n + offs_d[None, :]
        if MASK_COLS:
            k = tl.load(K + base + kv_ptrs, mask=(cols < N)[:, None], other=0.0)
            v = tl.load(V + base + kv_ptrs, mask=(cols < N)[:, None], other=0.0)
        else:
            k = tl.load(K + base + kv_ptrs)
            v = tl.load(V + base + kv_ptrs)
        _, ds = _probs_and_dscores(q, k, v, do, lse, delta, rows, cols, scale2, MASK_CAUSAL,
                                   MASK_COLS, N, PRECISION)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
    return dq


@triton.jit
def _bwd_dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, N, sm_scale, stride_b, stride_h, stride_n,
                   H: tl.constexpr, D: tl.constexpr, CAUSAL: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    base = (pid_bh // H).to(tl.int64) * stride_b + (pid_bh % H).to(tl.int64) * stride_h
    row_base = pid_bh.to(tl.int64) * N
    first = pid_m * BLOCK_M
    rows = first + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    q, do, lse, delta = _query_rows(Q, DO, LSE, DELTA, base, row_base, stride_n, rows, offs_d, N)
    dq = tl.zeros([BLOCK_M, D], dtype=tl.float32)
    scale2 = sm_scale * 1.4426950408889634
    if CAUSAL:
        # Key tiles that end at or before this tile's first query need no mask; the rest up to
        # the diagonal do (they also hold the keys past N, if any).
        split = ((first + 1) // BLOCK_N) * BLOCK_N
        dq = _dq_tiles(dq, q, do, lse, delta, K, V, base, stride_n, 0, split, rows, offs_n,
                       offs_d, N, scale2, False, False, BLOCK_N, PRECISION)
        dq = _dq_tiles(dq, q, do, lse, delta, K, V, base, stride_n, split,
                       tl.minimum(N, first + BLOCK_M), rows, offs_n, offs_d, N, scale2, True,
                       True, BLOCK_N, PRECISION)
    else:
        full = (N // BLOCK_N) * BLOCK_N
        dq = _dq_tiles(dq, q, do, lse, delta, K, V, base, stride_n, 0, full, rows, offs_n,
                       offs_d, N, scale2, False, False, BLOCK_N, PRECISION)
        dq = _dq_tiles(dq, q, do, lse, delta, K, V, base, stride_n, full, N, rows, offs_n,
                       offs_d, N, scale2, False, True, BLOCK_N, PRECISION)
    tl.store(DQ + base + rows[:, None] * stride_n + offs_d[None, :],
             (dq * sm_scale).to(DQ.dtype.element_ty), mask=(rows < N)[:, None])


# Autotuning (CUDA only; the interpreter runs INTERPRETER_TILES, below, and never autotunes).
# A short list aimed at Hopper (H100/H200), keyed on N, the head dim and causality: every config
# is compiled once per (D, CAUSAL, dtype) and benchmarked once per key, so the list is kept short
# (compiling and tuning count against the GPU proof's 8-minute budget).
# (BLOCK_M, BLOCK_N, num_warps, num_stages, largest head dim); forward BLOCK_M must be a multiple
# of BLOCK_N. The largest head dim is the largest at which the tile compiled for sm_90 without
# spilling registers to local memory with Triton 3.6 (the GPU image's) and 3.9 (pinned here), by
# `workbook bench compile` (docs/results/gpu/sm90-compile-triton-*/): above it the tuner skips the
# tile instead of compiling and timing a kernel that spills.
_FWD_TILES = ((128, 64, 4, 3, 64), (128, 64, 8, 3, 128), (128, 128, 8, 3, 128), (64, 64, 4, 4, 128),
              (128, 32, 4, 4, 64), (128, 64, 8, 4, 128))
# dK/dV: one program per BLOCK_N keys, stepping BLOCK_M queries; dQ: the reverse.
_BWD_KV_TILES = ((64, 64, 4, 2, 64), (32, 64, 4, 3, 128), (32, 128, 8, 3, 128), (128, 32, 8, 2, 128),
                 (64, 32, 4, 3, 64))
_BWD_Q_TILES = ((64, 64, 4, 2, 128), (64, 32, 4, 3, 128), (128, 64, 8, 2, 128), (128, 32, 8, 3, 128),
                (128, 128, 8, 2, 64))


def _configs(tiles):
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
            for bm, bn, w, s, _ in tiles]


def _prune(tiles):
    """Keep the tiles whose largest head dim is at least this call's: the others spill
    registers on Hopper, so compiling and timing them only costs the tuner time."""
    largest = {tile[:4]: tile[4] for tile in tiles}

    def prune(configs, named_args, **kwargs):
        d = named_args.get("D", kwargs.get("D", 64))
        kept = [c for c in configs if largest[(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"],
                                               c.num_warps, c.num_stages)] >= d]
        return kept or configs[:1]
    return prune


def _bench_briefly(fn, quantiles=None, **_):
    """The autotuner's timer: 5 ms warm-up and 25 ms of repeats per config instead of Triton's
    25/100, which is plenty to rank tiles and keeps a sweep's tuning to seconds."""
    from triton.testing import do_bench

    return do_bench(fn, warmup=5, rep=25, quantiles=quantiles)


# Each kernel with its tiles and the rule that drops some of them before tuning. The autotuner
# below and `workbook bench compile` (every kept tile compiled for Hopper, no GPU needed) read it.
TUNING = {
    "forward": (_fwd_kernel, _FWD_TILES, _prune(_FWD_TILES)),
    "backward dK dV": (_bwd_dkdv_kernel, _BWD_KV_TILES, _prune(_BWD_KV_TILES)),
    "backward dQ": (_bwd_dq_kernel, _BWD_Q_TILES, _prune(_BWD_Q_TILES)),
}


def _autotune(name):
    kernel, tiles, prune = TUNING[name]
    options = {"prune_configs_by": {"early_config_prune": prune}}
    if "do_bench" in inspect.signature(triton.autotune).parameters:  # Triton >= 3.2
        options["do_bench"] = _bench_briefly
    return triton.autotune(configs=_configs(tiles), key=["N", "D", "CAUSAL"], **options)(kernel)


_fwd_tuned = _autotune("forward")
_bwd_dkdv_tuned = _autotune("backward dK dV")
_bwd_dq_tuned = _autotune("backward dQ")


# Tiles (BLOCK_M, BLOCK_N) in Triton's CPU interpreter, which does not autotune: small, to keep
# it quick. Tests set unequal ones to check the tile arithmetic that the GPU's tiles rely on.
INTERPRETER_TILES = {"forward": (16, 16), "backward dK dV": (16, 16), "backward dQ": (16, 16)}


def _check_inputs(q, k, v):
    if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must share one [B, H, N, D] shape, got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] not in (16, 32, 64, 128):
        raise ValueError(f"head dimension {q.shape[-1]} is not one of 16, 32, 64, 128")


def _precision(dtype):
    return "ieee" if dtype == torch.float32 else "tf32"


def flash_forward(q, k, v, causal=False):
    """Return (out, lse): out like q, lse [B, H, N] fp32 (natural log)."""
    _check_inputs(q, k, v)
    B, H, N, D = q.shape
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    lse = torch.empty((B, H, N), device=q.device, dtype=torch.float32)
    args = (q, k, v, out, lse, N, LOG2E / math.sqrt(D), q.stride(0), q.stride(1), q.stride(2))
    if q.is_cuda:
        grid = lambda meta: (triton.cdiv(N, meta["BLOCK_M"]), B * H)  # noqa: E731
        _fwd_tuned[grid](*args, H=H, D=D, CAUSAL=causal, PRECISION=_precision(q.dtype))
    else:  # the interpreter: small fixed tiles
        bm, bn = INTERPRETER_TILES["forward"]
        _fwd_kernel[(triton.cdiv(N, bm), B * H)](*args, H=H, D=D, CAUSAL=causal, BLOCK_M=bm,
                                                 BLOCK_N=bn, PRECISION=_precision(q.dtype))
    return out, lse


def flash_backward(q, k, v, out, lse, dout, causal=False):
    """Return (dq, dk, dv) given the forward's out and lse."""
    B, H, N, D = q.shape
    q, k, v, dout = q.contiguous(), k.contiguous(), v.contiguous(), dout.contiguous()
    delta = (out.float() * dout.float()).sum(-1)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    common = (N, 1.0 / math.sqrt(D), q.stride(0), q.stride(1), q.stride(2))
    meta = dict(H=H, D=D, CAUSAL=causal, PRECISION=_precision(q.dtype))
    if q.is_cuda:
        _bwd_dkdv_tuned[lambda m: (triton.cdiv(N, m["BLOCK_N"]), B * H)](
            q, k, v, dout, lse, delta, dk, dv, *common, **meta)
        _bwd_dq_tuned[lambda m: (triton.cdiv(N, m["BLOCK_M"]), B * H)](
            q, k, v, dout, lse, delta, dq, *common, **meta)
    else:  # the interpreter: small fixed tiles
        bm, bn = INTERPRETER_TILES["backward dK dV"]
        _bwd_dkdv_kernel[(triton.cdiv(N, bn), B * H)](q, k, v, dout, lse, delta, dk, dv, *common,
                                                      BLOCK_M=bm, BLOCK_N=bn, **meta)
        bm, bn = INTERPRETER_TILES["backward dQ"]
        _bwd_dq_kernel[(triton.cdiv(N, bm), B * H)](q, k, v, dout, lse, delta, dq, *common,
                                                    BLOCK_M=bm, BLOCK_N=bn, **meta)
    return dq, dk, dv


class FlashAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal):
        out, lse = flash_forward(q, k, v, causal)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.causal = causal
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = flash_backward(q, k, v, out, lse, dout, ctx.causal)
        return dq, dk, dv, None


def flash_attention(q, k, v, causal=False):
    """Tiled attention over [B, H, N, D] tensors with a Triton forward and backward."""
    return FlashAttention.apply(q, k, v, causal)
