"""FLOP counts of attention (the answer to notebook 07's FLOP exercise; used by the benchmark)."""
from __future__ import annotations

FLOP_CONVENTION = ("fwd = 4*B*H*N^2*d (the matmuls QK^T and PV, 2 FLOPs per multiply-add); "
                   "causal halves it; bwd = 2.5 x fwd; fwd_bwd = 3.5 x fwd")


def attention_flops(B: int, H: int, N: int, d: int, causal: bool, mode: str) -> float:
    """FLOPs of attention, FlashAttention convention (matmuls only)."""
    fwd = 4.0 * B * H * N * N * d
    if causal:
        fwd /= 2
    factors = {"fwd": 1.0, "bwd": 2.5, "fwd_bwd": 3.5}
    if mode not in factors:
        raise ValueError(f"mode must be one of {sorted(factors)}, got {mode!r}")
    return fwd * factors[mode]
