"""The held-out folders: the BSDS photos training holds out (and their grayscale copies), plus the
structure photos from scikit-image with their licences; no download, nothing from training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lcoan.training.data import list_images, split
from scripts.heldout_data import install


def test_install_copies_the_held_out_split_and_gray_copies(tmp_path: Path) -> None:
    bsds = tmp_path / "bsds"
    bsds.mkdir()
    rng = np.random.default_rng(0)
    for i in range(80):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(bsds / f"{i:03d}.png")
    written = install(bsds, tmp_path / "out")
    held = split(list_images(bsds), 40)[1]
    assert sorted(p.name for p in written["bsds"]) == sorted(p.name for p in held) and len(held) == 2
    for path in written["bsds-gray"]:
        rgb = np.asarray(Image.open(path))
        assert rgb.shape == (12, 10, 3) and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert len(written["structure"]) == 5
    assert "CC0" in (tmp_path / "out" / "structure" / "LICENSES.md").read_text()
