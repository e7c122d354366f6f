"""Seed every random number generator a notebook touches, so outputs are repeatable."""
import os
import random


def seed_everything(seed: int = 0, threads: int | None = None) -> None:
    """Seed Python, NumPy and PyTorch; make PyTorch pick deterministic kernels.

    ``threads`` fixes the number of intra-op threads, which also fixes the order of
    floating-point reductions on CPU.
    """
    import numpy as np
    import torch

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
