"""Adapter manifests (notebook 06): any tampering with a saved adapter must be caught."""
import json

import pytest
import torch

from transformer_workbook.adapter_files import (AdapterVerificationError, load_adapter,
                                                model_sha256, save_adapter, verify_adapter)


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    base = torch.nn.Linear(16, 8)
    state = {"layer.lora_A": torch.randn(4, 16), "layer.lora_B": torch.randn(8, 4)}
    save_adapter(tmp_path / "a", state, base_model=base, config={"r": 4, "alpha": 8},
                 train_texts=["good", "bad"], train_labels=[1, 0], metrics={"accuracy": 0.9})
    return tmp_path / "a", base, state


def test_a_clean_adapter_verifies_and_loads(saved):
    path, base, state = saved
    manifest = verify_adapter(path, base_model=base)
    assert manifest["base_model_sha256"] == model_sha256(base)
    assert manifest["n_parameters"] == 4 * 16 + 8 * 4
    loaded = load_adapter(path, base_model=base)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("where", [0, 0.5, -1])
def test_one_flipped_byte_in_the_weights_is_caught(saved, where):
    path, _, _ = saved
    weights = path / "adapter.safetensors"
    blob = bytearray(weights.read_bytes())
    index = int(where * (len(blob) - 1)) if isinstance(where, float) else where
    blob[index] ^= 0x01
    weights.write_bytes(bytes(blob))
    with pytest.raises(AdapterVerificationError):
        verify_adapter(path)


def test_an_edited_manifest_is_caught(saved):
    path, _, _ = saved
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["metrics"]["accuracy"] = 0.99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AdapterVerificationError, match="manifest was edited"):
        verify_adapter(path)


def test_a_different_base_model_is_refused(saved):
    path, _, _ = saved
    with pytest.raises(AdapterVerificationError, match="different base model"):
        verify_adapter(path, base_model=torch.nn.Linear(16, 8))


def test_a_missing_weights_file_is_caught(saved):
    path, _, _ = saved
    (path / "adapter.safetensors").unlink()
    with pytest.raises(AdapterVerificationError, match="missing"):
        verify_adapter(path)
