"""The shipped checkpoints: they load, stay small, carry a card, and reproduce their evaluation."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import lcoan
from lcoan.checkpoint import load_info, read_config
from lcoan.evaluate import evaluate, find_samples

from .conftest import DATA, SHIPPED, needs_data

NAMES = [p.name for p in SHIPPED]
FAST = [p for p in SHIPPED if read_config(p).attention != "dense"]  # dense NLA on a whole image takes a while


def test_there_are_shipped_checkpoints():
    assert SHIPPED, "checkpoints/ holds no model"


@pytest.mark.parametrize("folder", SHIPPED, ids=NAMES)
def test_loads_small_with_card_and_matching_config(folder: Path):
    model = lcoan.load(folder)
    assert read_config(folder) == model.cfg  # the JSON next to the weights says what is inside
    assert sum(f.stat().st_size for f in folder.iterdir()) < 25 * 2**20
    info = load_info(folder)
    assert info.get("iterations", 0) > 0 and info.get("command", "").startswith("python -m lcoan.train")
    card = (folder / "README.md").read_text()
    assert card.startswith(f"# {folder.name}") and info["command"] in card
    if (folder / "eval.json").exists():  # the card's table is the stored evaluation
        for name, result in json.loads((folder / "eval.json").read_text()).items():
            m = result["mean"]
            assert f"{m['psnr']:.2f} / {m['ssim']:.4f}" in card, name


@pytest.mark.parametrize("folder", SHIPPED, ids=NAMES)
def test_ships_a_manifest_that_matches_its_files(folder: Path):
    """SHA256SUMS covers the weights and the config, and load() checks it (no 'no manifest' warning)."""
    from lcoan.checkpoint import check_manifest

    assert check_manifest(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lcoan.load(folder)


def reproduce(folder: Path, bench: str, images: int | None) -> None:
    stored = json.loads((folder / "eval.json").read_text())
    if bench not in stored:
        pytest.skip(f"{folder.name} has no stored {bench} evaluation")
    model = lcoan.load(folder)
    samples = find_samples(DATA / "benchmark" / bench / f"x{model.cfg.scale}")
    expected = {row["name"]: row for row in stored[bench]["images"]}
    if images is not None:  # the smallest images: a quick check of the same code path
        samples = sorted(samples, key=lambda s: expected[s.name]["lr_size"][0] * expected[s.name]["lr_size"][1])
        samples = samples[:images]
    for score in evaluate(model, samples, model.cfg.scale, progress=False):
        assert score.psnr == pytest.approx(expected[score.name]["psnr"], abs=1e-4), score.name
        assert score.ssim == pytest.approx(expected[score.name]["ssim"], abs=1e-5), score.name


@needs_data
@pytest.mark.parametrize("folder", FAST, ids=[p.name for p in FAST])
def test_reproduces_its_card_on_the_smallest_set5_image(folder: Path):
    reproduce(folder, "Set5", images=1)


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("bench", ["Set5", "Set14"])
@pytest.mark.parametrize("folder", SHIPPED, ids=NAMES)
def test_reproduces_its_card_on_whole_sets(folder: Path, bench: str):
    reproduce(folder, bench, images=None)
