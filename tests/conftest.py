"""Shared fixtures: tiny models and the location of the optional ../shared data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BENCH = DATA / "benchmark"
# the checkpoint folders the repo ships (tests/test_shipped.py, tests/test_cuda.py)
SHIPPED = sorted(p for p in (ROOT / "checkpoints").glob("*-x[234]") if (p / "model.safetensors").exists())
needs_data = pytest.mark.skipif(
    not DATA.exists(),
    reason="../shared/data not present (benchmark and training images are not shipped with the repo)")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One PyTorch thread for the whole suite: the tests run tiny models, and on a 2-core machine
    shared with training runs two threads mostly wait for each other (10-30x slower passes)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_benchmark(path: Path) -> np.ndarray:
    """A benchmark PNG as stored: HxWx3 for RGB, HxW for the grayscale (mode L) Set14 image."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        return np.array(im)
