"""Trace files (lcoan.introspect.trace_files): a round trip reproduces the trace's attention rows."""
from __future__ import annotations

import zipfile

import pytest
import torch

import lcoan
from lcoan.inference import to_tensor
from lcoan.introspect.trace_files import TraceFileError, load_trace, read_trace, save_trace
from tests.tiny_checkpoints import textured


def traced(attention: str, **kw):
    torch.manual_seed(0)
    model = lcoan.create_model(lcoan.preset("tiny", attention=attention, **kw)).eval()
    with torch.no_grad():
        return model.forward_with_trace(to_tensor(textured(9, 11)))[1]


@pytest.mark.parametrize("attention,kw", [("lsp", {}), ("lsp", {"rounds": 2}), ("lsp", {"share_pattern": False}),
                                          ("dense", {})])
def test_round_trip_reproduces_attention_rows(tmp_path, attention, kw):
    trace = traced(attention, **kw)
    path = save_trace(trace, tmp_path / "trace.zip", metadata={"image": "textured", "scale": 2})
    back, meta = read_trace(path)
    assert meta == {"image": "textured", "scale": 2}
    assert (back.kind, back.lr_size, back.attn_res_scale) == (trace.kind, trace.lr_size, trace.attn_res_scale)
    assert len(back.groups) == len(trace.groups) and len(back.patterns) == len(trace.patterns)
    for g in range(len(trace.groups)):
        for pos in (0, 17, trace.n - 1):
            assert torch.equal(back.attention_row(g, pos), trace.attention_row(g, pos))
        assert torch.equal(back.groups[g].attention_out, trace.groups[g].attention_out)
    for a, b in zip(trace.patterns, back.patterns):
        assert torch.equal(a.codes, b.codes) and torch.equal(a.order, b.order) and torch.equal(a.centroids, b.centroids)
        assert a.window == b.window and a.group == b.group
    assert torch.equal(load_trace(path.read_bytes()).groups[0].value, trace.groups[0].value)


def test_bad_files_are_refused_with_a_clear_message(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(TraceFileError, match="not a trace file"):
        load_trace(junk)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("trace.json", "{}")
    with pytest.raises(TraceFileError, match="missing"):
        load_trace(empty)
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as z:
        z.writestr("trace.json", '{"format": "other"}')
        z.writestr("trace.safetensors", b"xx")
    with pytest.raises(TraceFileError):
        load_trace(wrong)
