"""The About tab's "do these networks use their attention?" table is read from each checkpoint's
attention.json: the rows show its numbers, a broken file is named instead of crashing the tab,
and a checkpoint without one is left out."""
from __future__ import annotations

import json
from pathlib import Path

from app.services.models import ModelService
from app.settings import Settings
from app.tabs.about import attention_table
from lcoan.config import LCoANConfig
from tests.tiny_checkpoints import make_checkpoints


def service(folder: Path) -> ModelService:
    return ModelService(folder, settings=Settings(checkpoints=folder, threads=1))


def test_attention_table_reads_the_reports(tmp_path: Path) -> None:
    ckpt = make_checkpoints(tmp_path / "ckpt")
    assert attention_table(service(ckpt)) == ""  # no attention.json anywhere: no table
    summary = {"drop": 0.123, "entropy": 0.61, "recall": 0.5, "flat_recall": 0.07, "clusters_used": 0.9}
    (ckpt / "lcoan-tiny-x2" / "attention.json").write_text(json.dumps([{"data": "bsds", "summary": summary}]))
    (ckpt / "dense-tiny-x2" / "attention.json").write_text("{not json")
    text = attention_table(service(ckpt))
    assert "| `lcoan-tiny-x2` | none | bsds | +0.123 | – | - / - | 0.61 | 0.50 (flat 0.07) | 90% |" in text
    assert "| `dense-tiny-x2` | none | unreadable attention.json |" in text
    # a tiled report: the drop and the gain with their intervals, and where the mass goes
    summary.update(drop_ci={"mean": 0.123, "lo": 0.05, "hi": 0.2}, gain_ci={"mean": 0.08, "lo": -0.01, "hi": 0.17},
                   mass_self=0.15, mass_beyond_rf=0.41)
    (ckpt / "lcoan-tiny-x2" / "attention.json").write_text(json.dumps([{"data": "repeat", "summary": summary}]))
    assert ("| `lcoan-tiny-x2` | none | repeat | +0.123 [+0.050, +0.200] | +0.080 [-0.010, +0.170] | 0.15 / 0.41 | "
            "0.61 |") in attention_table(service(ckpt))


def test_departures_name_only_flags_that_act() -> None:
    assert LCoANConfig(attention="lsp").departures() == []
    assert LCoANConfig(attention="none", logit_scale=8.0, attn_res_scale=1.0).departures() == []
    assert LCoANConfig(attention="dense", logit_scale=8.0, reseed_dead=True).departures(short=True) == [
        "logit scale (init 8)"]
    assert LCoANConfig(attention="lsp", logit_scale=8.0, attn_res_scale=1.0, reseed_dead=True).departures(
        short=True) == ["logit scale (init 8)", "branch x1", "re-seeding"]


def test_diagram_names_the_branch_scale_of_the_checkpoints_on_show() -> None:
    from app.views.diagram import diagram_svg
    assert "0.1 in the paper</text>" in diagram_svg()
    svg = diagram_svg((1.0, 0.1, 1.0))
    assert "0.1 in the paper; 0.1, 1 in the checkpoints here" in svg and "+ a x" in svg


def test_the_about_tab_lists_every_tab() -> None:
    from app.tabs import about
    from app.ui import TABS
    titles = [title for title, _ in TABS if title != about.TITLE]
    missing = [t for t in titles if f"**{t}**" not in about.EXPLANATION]
    assert not missing, missing  # e.g. issue 27: Experiments was left out
