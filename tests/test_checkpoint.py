"""Checkpoint folders round-trip bit-exactly and load with one call."""
from __future__ import annotations

import json

import pytest
import torch

import lcoan
from lcoan.checkpoint import CheckpointError, load_info


@pytest.mark.parametrize("kind", ["lsp", "dense", "none"])
def test_round_trip_is_bit_exact(tmp_path, kind):
    model = lcoan.create_model(lcoan.preset("tiny", attention=kind, scale=3)).train()
    model(torch.rand(2, 3, 12, 12))  # k-means initialisation + an EMA step: buffers differ from init
    model.eval()
    lcoan.save(model, tmp_path / "ck", card="# card\n", info={"iterations": 1})
    loaded = lcoan.load(tmp_path / "ck")
    assert loaded.cfg == model.cfg
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert load_info(tmp_path / "ck") == {"iterations": 1}
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["attention"] == kind
    assert (tmp_path / "ck" / "README.md").read_text() == "# card\n"


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        lcoan.load(tmp_path / "nope")


def test_paper_preset_parameter_count():
    """The paper preset as LCOAN.md describes it (one shared match embedding, 1x1 assembly per group)."""
    n = lcoan.create_model(lcoan.preset("paper", scale=2)).num_parameters()
    dense = lcoan.create_model(lcoan.preset("paper", scale=2, attention="dense")).num_parameters()
    assert 14.0e6 < n < 14.6e6
    assert 15.5e6 < dense < 15.8e6  # every group with its own match embedding: the paper's ~15.7 M


def _saved(tmp_path):
    torch.manual_seed(0)
    return lcoan.save(lcoan.create_model(lcoan.preset("tiny", scale=2)), tmp_path / "ck")


def test_manifest_refuses_scaled_weights_that_are_structurally_valid(tmp_path):
    """Weights multiplied by 2 keep every name, shape and dtype: only the SHA-256 manifest tells."""
    from safetensors.torch import load_file, save_file

    from lcoan.checkpoint import MANIFEST, WEIGHTS, read_metadata

    folder = _saved(tmp_path)
    assert (folder / MANIFEST).read_text().splitlines()[0].endswith("  model.safetensors")
    tensors, meta = load_file(str(folder / WEIGHTS)), read_metadata(folder / WEIGHTS)
    save_file({k: v * 2 if v.is_floating_point() else v for k, v in tensors.items()}, str(folder / WEIGHTS),
              metadata=meta)
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        lcoan.load(folder)


def test_manifest_covers_the_config_and_is_sha256sum_compatible(tmp_path):
    import subprocess

    folder = _saved(tmp_path)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0 and "config.json: OK" in check.stdout
    cfg = folder / "config.json"
    cfg.write_text(cfg.read_text().replace("{", "{ ", 1))  # the same config, other bytes
    with pytest.raises(CheckpointError, match="config.json does not match"):
        lcoan.load(folder)


def test_missing_manifest_loads_with_a_warning(tmp_path):
    folder = _saved(tmp_path)
    (folder / "SHA256SUMS").unlink()
    with pytest.warns(UserWarning, match="no SHA256SUMS"):
        lcoan.load(folder)
