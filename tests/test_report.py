"""scripts/report.py: model cards and the README table describe every training stage of a checkpoint."""
from __future__ import annotations

import importlib.util

import lcoan
from lcoan.checkpoint import training_stages

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("report", ROOT / "scripts" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)

STAGE1 = {"iterations": 5000, "train_seconds": 7200, "command": "python -m lcoan.train stage1",
          "config": {"scale": 2}}
STAGE2 = {"iterations": 3000, "train_seconds": 3600, "command": "python -m lcoan.train stage2",
          "config": {"scale": 2}, "init_from": dict(STAGE1, folder="checkpoints/x", scale=2)}
X4 = {"iterations": 2500, "train_seconds": 1800, "command": "python -m lcoan.train x4", "config": {"scale": 4},
      "init_from": dict(STAGE1, folder="checkpoints/x", scale=2)}


def test_stages_are_listed_oldest_first():
    assert [s["command"][-6:] for s in training_stages(STAGE2)] == ["stage1", "stage2"]
    assert training_stages({}) == []


def test_iterations_text_names_scales_only_when_they_change():
    assert report.iterations_text(STAGE1) == "5000"
    assert report.iterations_text(STAGE2) == "5000 + 3000"
    assert report.iterations_text(X4) == "5000 (x2) + 2500 (x4)"
    assert report.iterations_text(dict(STAGE1, snapshot=True)) == "5000 (snapshot)"


def test_card_sums_time_and_lists_every_command():
    cfg = lcoan.preset("tiny", scale=2)
    text = report.card("lcoan-tiny-x2", STAGE2, cfg, 1234, {}, {})
    assert "5000 + 3000 = 8000 iterations" in text
    assert "3.00 h" in text  # 2 h + 1 h, all stages
    assert "stage1`" in text and "stage2`" in text
