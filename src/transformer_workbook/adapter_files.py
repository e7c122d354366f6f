"""Adapter files you can audit: save a LoRA adapter beside a manifest, verify it before loading.

The manifest pins what the adapter is: the sha256 of its weights file and tensors, of the base
model's weights, of the training data, the config and the metrics, and a hash of the manifest
itself. ``verify_adapter`` refuses a changed byte, an edited manifest or the wrong base model.
Notebook 06 builds the LoRA layers themselves; this module only handles the files.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "manifest.json"
WEIGHTS = "adapter.safetensors"
FORMAT = "transformer-workbook-adapter/1"


class AdapterVerificationError(Exception):
    """An adapter folder does not match its manifest (tampered, truncated or mismatched)."""


# --------------------------------------------------------------------------------- hashing
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_sha256(state_dict) -> str:
    """A hash of tensors that depends on names, dtypes, shapes and values, not on file format."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_sha256(model) -> str:
    """The hash of a model's weights (parameters and buffers)."""
    return state_dict_sha256(model.state_dict())


def data_sha256(texts, labels=None) -> str:
    """The hash of a training set: every text (and label) in order."""
    payload = {"texts": list(texts), "labels": None if labels is None else [int(y) for y in labels]}
    return sha256_bytes(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


# ------------------------------------------------------------------------------- manifests
def save_adapter(directory, adapter_state: dict, *, base_model, config: dict, train_texts,
                 train_labels=None, metrics: dict | None = None) -> dict:
    """Write ``adapter.safetensors`` and ``manifest.json`` into ``directory``; return the manifest.

    ``base_model`` is the model the adapter was trained on (or its hash as a string).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in adapter_state.items()}
    save_file(tensors, str(directory / WEIGHTS))
    base_hash = base_model if isinstance(base_model, str) else model_sha256(base_model)
    manifest = {
        "format": FORMAT,
        "weights_file": WEIGHTS,
        "weights_sha256": sha256_file(directory / WEIGHTS),
        "tensors_sha256": state_dict_sha256(tensors),
        "n_parameters": int(sum(t.numel() for t in tensors.values())),
        "base_model_sha256": base_hash,
        "config": config,
        "training_data_sha256": data_sha256(train_texts, train_labels),
        "n_training_examples": len(list(train_texts)),
        "metrics": metrics or {},
    }
    manifest["manifest_sha256"] = sha256_bytes(_canonical(manifest))
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def verify_adapter(path, base_model=None) -> dict:
    """Check an adapter folder against its manifest; return the manifest or raise.

    Detects: a changed or truncated weights file (any flipped byte), a manifest whose fields
    were edited without updating its own hash, and (when ``base_model`` is given) an adapter
    being loaded onto a different base. A forger who rewrites every hash is only caught by a
    signature over the manifest, which is out of scope here.
    """
    from safetensors.torch import load_file

    directory = Path(path)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise AdapterVerificationError(f"cannot read {directory / MANIFEST}: {error}") from error
    claimed = manifest.pop("manifest_sha256", None)
    if claimed != sha256_bytes(_canonical(manifest)):
        raise AdapterVerificationError("the manifest was edited: its own sha256 does not match")
    manifest["manifest_sha256"] = claimed
    weights = directory / manifest.get("weights_file", WEIGHTS)
    if not weights.is_file():
        raise AdapterVerificationError(f"the weights file {weights.name} is missing")
    actual = sha256_file(weights)
    if actual != manifest["weights_sha256"]:
        raise AdapterVerificationError(
            f"{weights.name} was modified: sha256 {actual[:12]}... but the manifest says "
            f"{manifest['weights_sha256'][:12]}..."
        )
    try:
        tensors = load_file(str(weights))
    except Exception as error:  # a corrupt file that somehow kept its hash is still refused
        raise AdapterVerificationError(f"{weights.name} cannot be parsed: {error}") from error
    if state_dict_sha256(tensors) != manifest["tensors_sha256"]:
        raise AdapterVerificationError("the tensors do not match the manifest's tensor hash")
    if base_model is not None:
        base_hash = base_model if isinstance(base_model, str) else model_sha256(base_model)
        if base_hash != manifest["base_model_sha256"]:
            raise AdapterVerificationError(
                "this adapter was trained on a different base model "
                f"({manifest['base_model_sha256'][:12]}... vs {base_hash[:12]}...)"
            )
    return manifest


def load_adapter(path, base_model=None) -> dict:
    """Verify, then return the adapter's tensors."""
    from safetensors.torch import load_file

    manifest = verify_adapter(path, base_model)
    return load_file(str(Path(path) / manifest["weights_file"]))
