"""Issue 8, security: untrusted checkpoint folders are refused with a CheckpointError that names the
problem, pickles are never unpickled, and no code under lcoan/ or app/ can unpickle at all."""
from __future__ import annotations

import ast
import io
import json
import math
import os
import pickle
import resource
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import lcoan
from lcoan.checkpoint import CONFIG, WEIGHTS, CheckpointError, min_values

from .conftest import ROOT


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A valid tiny LCoAN checkpoint (k-means initialised by one training forward pass)."""
    torch.manual_seed(0)
    model = lcoan.create_model(lcoan.preset("tiny", scale=2)).train()
    with torch.no_grad():
        model(torch.rand(1, 3, 12, 12))
    return lcoan.save(model.eval(), tmp_path_factory.mktemp("pristine") / "ck")


@pytest.fixture
def folder(pristine, tmp_path) -> Path:
    """A fresh copy of the valid checkpoint, for each test to tamper with."""
    return Path(shutil.copytree(pristine, tmp_path / "ck"))


def tensors_and_meta(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(folder / WEIGHTS), framework="pt") as f:
        meta = f.metadata()
    return load_file(str(folder / WEIGHTS)), meta


def rewrite_weights(folder: Path, tensors=None, meta=None) -> None:
    old_t, old_m = tensors_and_meta(folder)
    save_file(tensors if tensors is not None else old_t, str(folder / WEIGHTS),
              metadata=meta if meta is not None else old_m)


def edit_config(folder: Path, **changes) -> None:
    cfg = json.loads((folder / CONFIG).read_text())
    cfg.update(changes)
    (folder / CONFIG).write_text(json.dumps(cfg))


def refused(folder: Path, *needles: str) -> str:
    with pytest.raises(CheckpointError) as info:
        lcoan.load(folder)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def test_valid_folder_loads(folder):
    assert lcoan.load(folder).cfg == lcoan.preset("tiny", scale=2)


# ----------------------------------------------------------------------------- (a) tensors
def test_tampered_tensor_shape(folder):
    t, _ = tensors_and_meta(folder)
    t["groups.1.conv.weight"] = torch.zeros(8, 8, 5, 5)
    rewrite_weights(folder, t)
    refused(folder, "does not match its config", "wrong shape or dtype", "groups.1.conv.weight", "(8, 8, 5, 5)")


def test_tampered_dtype_missing_and_extra_tensors(folder):
    t, _ = tensors_and_meta(folder)
    t["conv_first.weight"] = t["conv_first.weight"].double()
    del t["conv_last.bias"]
    t["evil.payload"] = torch.zeros(3)
    rewrite_weights(folder, t)
    refused(folder, "missing tensors: conv_last.bias", "unexpected tensors: evil.payload",
            "conv_first.weight: file (8, 3, 3, 3) torch.float64")


# ----------------------------------------------------------------------------- (b) config.json edited
def test_config_num_feat_edited(folder):
    edit_config(folder, num_feat=16)
    refused(folder, CONFIG, "disagrees with the config stored in the weights on: num_feat")


def test_config_unknown_field(folder):
    edit_config(folder, __class__="os.system")
    refused(folder, CONFIG, "unknown config field(s): __class__")


@pytest.mark.parametrize("changes, needle", [
    ({"share_pattern": "yes"}, "share_pattern must be true or false"),
    ({"attn_res_scale": "0.1"}, "attn_res_scale must be a finite number"),
    ({"group_res_scale": math.nan}, "group_res_scale must be a finite number"),
    ({"rgb_mean": 5}, "rgb_mean needs three finite numbers"),
    ({"rgb_mean": "abc"}, "rgb_mean needs three finite numbers"),
    ({"scale": 2.0}, "scale must be one of"),
    ({"num_blocks": 0}, "num_blocks must be a positive integer"),
    ({"attention": ["lsp"]}, "attention must be one of"),
    ({"kmeans_init_iters": "3"}, "kmeans_init_iters must be a non-negative integer"),
], ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_config_wrong_types(folder, changes, needle):
    edit_config(folder, **changes)
    refused(folder, CONFIG, needle)


@pytest.mark.parametrize("text, needle", [
    (b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b"\xff\xfe\x00", CONFIG),
], ids=["bad_json", "json_list", "not_utf8"])
def test_config_unreadable(folder, text, needle):
    (folder / CONFIG).write_bytes(text)
    refused(folder, needle)


def test_config_and_embedded_config_both_edited(folder):
    """A consistent lie (both configs say num_feat 4) still fails on the tensors."""
    edit_config(folder, num_feat=4)
    t, meta = tensors_and_meta(folder)
    meta["config"] = (folder / CONFIG).read_text()
    rewrite_weights(folder, t, meta)
    refused(folder, "does not match its config", "wrong shape")


def test_huge_network_claim_is_refused_before_building(folder):
    """Both configs claim a ~3e11-parameter network: building it would exhaust memory."""
    edit_config(folder, num_feat=20000, num_groups=10)
    t, meta = tensors_and_meta(folder)
    meta["config"] = (folder / CONFIG).read_text()
    rewrite_weights(folder, t, meta)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    refused(folder, "describes a network of at least", "holds only")
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: nothing allocated


@pytest.mark.parametrize("preset", sorted(lcoan.PRESETS))
@pytest.mark.parametrize("attention", ["lsp", "dense", "none"])
def test_min_values_is_a_true_lower_bound(preset, attention):
    """The bound used above never refuses a real network (checked for every preset and kind)."""
    for share in (True, False):
        cfg = lcoan.preset(preset, attention=attention, share_pattern=share)
        if preset == "paper":  # keep the test light: the paper preset is large, use its shape at x2 only
            cfg = cfg.replace(num_groups=2)
        model = lcoan.LCoAN(cfg)
        assert min_values(cfg) <= sum(v.numel() for v in model.state_dict().values())


# ----------------------------------------------------------------------------- (c) unreadable weights
@pytest.mark.parametrize("mangle", ["truncated", "garbage", "empty", "header_only"])
def test_unreadable_weights(folder, mangle):
    data = (folder / WEIGHTS).read_bytes()
    bad = {"truncated": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b"",
           "header_only": data[:8] + b"{" * 40}[mangle]
    (folder / WEIGHTS).write_bytes(bad)
    refused(folder, str(folder / WEIGHTS), "not a readable safetensors file")


def test_missing_weights(folder):
    (folder / WEIGHTS).unlink()
    refused(folder, "missing weights file")


# ----------------------------------------------------------------------------- (d) pickles
class _Payload:
    """Unpickling this creates a folder: the proof that something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_pickle_renamed_safetensors_is_never_unpickled(folder, tmp_path):
    marker = tmp_path / "UNPICKLED"
    (folder / WEIGHTS).write_bytes(pickle.dumps({"conv_first.weight": _Payload(marker)}, protocol=4))
    refused(folder, "not a readable safetensors file", "Python pickle", "only safetensors")
    assert not marker.exists()


def test_torch_save_zip_renamed_safetensors(folder):
    buf = io.BytesIO()
    torch.save(lcoan.create_model(lcoan.preset("tiny", scale=2)).state_dict(), buf)
    (folder / WEIGHTS).write_bytes(buf.getvalue())
    refused(folder, "not a readable safetensors file", "zip archive", "torch.save")


# ----------------------------------------------------------------------------- (e) non-finite weights
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_weights(folder, value):
    t, _ = tensors_and_meta(folder)
    t["groups.0.blocks.0.body.0.weight"][0, 0, 0, 0] = value
    rewrite_weights(folder, t)
    refused(folder, "non-finite values", "groups.0.blocks.0.body.0.weight")


# ----------------------------------------------------------------------------- (f) embedded config
def test_config_disagrees_with_embedded_config(folder):
    t, meta = tensors_and_meta(folder)
    embedded = json.loads(meta["config"])
    embedded.update(num_blocks=2, window=32)
    meta["config"] = json.dumps(embedded)
    rewrite_weights(folder, t, meta)
    refused(folder, "disagrees with the config stored in the weights on: num_blocks, window")


@pytest.mark.parametrize("meta_change, needle", [
    ({"format": "something/else"}, "is not an LCoAN checkpoint"),
    ({"config": "{oops"}, "embedded config is invalid"),
    ({"config": json.dumps({"evil": 1})}, "unknown config field(s): evil"),
], ids=["wrong_format", "embedded_bad_json", "embedded_unknown_field"])
def test_bad_metadata(folder, meta_change, needle):
    t, meta = tensors_and_meta(folder)
    meta.update(meta_change)
    rewrite_weights(folder, t, meta)
    refused(folder, needle)


def test_metadata_missing_entirely(folder):
    t, _ = tensors_and_meta(folder)
    save_file(t, str(folder / WEIGHTS))
    refused(folder, "is not an LCoAN checkpoint")


# ----------------------------------------------------------------------------- static check
FORBIDDEN_CALLS = {
    "torch.load": "torch.load unpickles",
    "torch.jit.load": "torch.jit.load runs serialized code",
    "torch.serialization.load": "torch.load unpickles",
    "pickle.load": "pickle", "pickle.loads": "pickle", "pickle.Unpickler": "pickle",
    "_pickle.load": "pickle", "_pickle.loads": "pickle", "cPickle.load": "pickle", "cPickle.loads": "pickle",
    "dill.load": "pickle", "dill.loads": "pickle", "joblib.load": "pickle", "marshal.loads": "marshal",
    "pandas.read_pickle": "pickle",
}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def unpickling_calls(source: str, filename: str = "<string>") -> list[str]:
    """Calls that can unpickle, with import aliases resolved (``import numpy as np``,
    ``from torch import load as tl``)."""
    tree = ast.parse(source, filename)
    alias: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                alias[a.asname or a.name] = f"{node.module}.{a.name}"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name is None:
            continue
        head, _, rest = name.partition(".")
        full = alias.get(head, head) + ("." + rest if rest else "")
        where = f"{filename}:{node.lineno}: {full}"
        if full in FORBIDDEN_CALLS:
            found.append(where)
        elif full == "numpy.load":
            kw = {k.arg: k.value for k in node.keywords}
            allow = kw.get("allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(where + "(allow_pickle=...)")
            if any(k.arg is None for k in node.keywords):  # **kwargs could carry allow_pickle
                found.append(where + "(**kwargs)")
    return found


def test_scanner_finds_what_it_should():
    snippet = """
import torch, pickle
import numpy as np
import numpy
from torch import load as tl
from pickle import loads
torch.load("x")
pickle.load(f)
loads(b"")
tl("y")
np.load("a.npy", allow_pickle=True)
numpy.load("b.npy", allow_pickle=flag)
np.load("ok.npy")
np.load("ok.npy", allow_pickle=False)
torch.jit.load("m.pt")
"""
    found = unpickling_calls(snippet)
    assert [f.split(": ", 1)[1] for f in found] == [
        "torch.load", "pickle.load", "pickle.loads", "torch.load", "numpy.load(allow_pickle=...)",
        "numpy.load(allow_pickle=...)", "torch.jit.load"]


def test_no_code_under_lcoan_or_app_can_unpickle():
    files = sorted((ROOT / "lcoan").rglob("*.py")) + sorted((ROOT / "app").rglob("*.py"))
    files += [p for p in (ROOT / "app.py",) if p.exists()]
    assert len(files) > 10
    found = []
    for path in files:
        found += unpickling_calls(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "\n".join(found)
