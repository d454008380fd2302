"""Shared fixtures: tiny models and the location of the optional ../shared data."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present (benchmark and training images are not shipped with the repo)")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
