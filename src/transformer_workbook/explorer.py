"""An ipywidgets explorer: layer and head sliders over a model's attention weights."""
from __future__ import annotations


def _stack(attentions):
    """Accept a transformers ``outputs.attentions`` tuple or a ``[layers, heads, q, k]`` array."""
    import torch

    if isinstance(attentions, (tuple, list)):
        if not attentions or attentions[0] is None:
            raise ValueError(
                "no attention weights to explore; load the model with "
                "attn_implementation='eager' and call it with output_attentions=True"
            )
        attentions = torch.stack([a[0] if a.dim() == 4 else a for a in attentions])
    attentions = torch.as_tensor(attentions).detach().float().cpu()
    if attentions.dim() != 4:
        raise ValueError(f"expected [layers, heads, queries, keys], got {tuple(attentions.shape)}")
    return attentions


def attention_explorer(attentions, tokens: list[str], *, title: str = ""):
    """Return a widget with layer and head sliders that redraws the heatmap on change."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from .plots import attention_heatmap

    stacked = _stack(attentions)
    n_layers, n_heads = stacked.shape[:2]
    layer = widgets.IntSlider(0, min=0, max=n_layers - 1, description="layer")
    head = widgets.IntSlider(0, min=0, max=n_heads - 1, description="head")
    output = widgets.Output()

    def redraw(*_):
        with output:
            output.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6, 5))
            attention_heatmap(stacked[layer.value, head.value], tokens, ax=ax,
                              title=f"{title} layer {layer.value}, head {head.value}".strip())
            plt.show()
            plt.close(fig)

    layer.observe(redraw, names="value")
    head.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([layer, head]), output])
    box.layer_slider, box.head_slider = layer, head
    return box
