"""Attention heatmaps with token labels."""
from __future__ import annotations


def _as_numpy(weights):
    if hasattr(weights, "detach"):
        weights = weights.detach().float().cpu().numpy()
    import numpy as np

    weights = np.asarray(weights)
    if weights.ndim != 2:
        raise ValueError(
            f"attention_heatmap wants one [queries, keys] matrix, got shape {weights.shape}; "
            "index a single batch element and head first, e.g. weights[0, head]"
        )
    return weights


def attention_heatmap(weights, keys: list[str], queries: list[str] | None = None, *, ax=None,
                      title: str | None = None, cmap: str = "viridis", annotate: bool = False):
    """Draw a ``[queries, keys]`` attention matrix; rows are queries, columns are keys."""
    import matplotlib.pyplot as plt

    weights = _as_numpy(weights)
    queries = keys if queries is None else queries
    if weights.shape != (len(queries), len(keys)):
        raise ValueError(
            f"weights have shape {weights.shape} but there are {len(queries)} query and "
            f"{len(keys)} key labels"
        )
    if ax is None:
        side = max(3.0, 0.35 * max(weights.shape) + 1.5)
        _, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(weights, cmap=cmap, vmin=0.0, aspect="auto")
    ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=8)
    ax.set_yticks(range(len(queries)), queries, fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if annotate:
        for i in range(weights.shape[0]):
            for j in range(weights.shape[1]):
                ax.text(j, i, f"{weights[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if weights[i, j] < weights.max() / 2 else "black")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax
