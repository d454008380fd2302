"""Headless Chromium drives the Experiments tab of the whole app on an uploaded photo (tiny random
checkpoints): window sweep, ablation, attribution maps, trace download. The steps are those of
scripts/experiments_screenshots.py, which makes docs/screenshots/experiments*.png with the real models."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app.services.models import ModelService
from app.settings import Settings
from app.ui import build_demo
from scripts.experiments_screenshots import ARGS, drive
from tests.test_experiments_endpoints import PHOTO, free_port
from tests.test_experiments_service import with_none

CHROMIUM = os.environ.get("LCOAN_CHROMIUM", "/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api", reason="Python package playwright not installed")
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")


@pytest.mark.slow
def test_experiments_tab_in_a_browser(tmp_path):
    shots = Path(os.environ["LCOAN_SCREENSHOTS"]) if os.environ.get("LCOAN_SCREENSHOTS") else tmp_path
    settings = Settings(checkpoints=with_none(tmp_path / "ckpt"), port=free_port(), threads=1)
    service = ModelService.from_settings(settings)
    demo = build_demo(service)
    demo.launch(**settings.launch_kwargs(), prevent_thread_lock=True, quiet=True)
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            texts = drive(page, f"http://127.0.0.1:{settings.port}", PHOTO, shots, steps=4)
            browser.close()
    finally:
        demo.close()
        service.close()
    assert "Trained setting (W = 16)" in texts["knobs"] and "W >= N" in texts["knobs"]
    assert "LCoAN" in texts["ablation"] and "Dense NLA" in texts["ablation"]
    for name in ("LCoAN", "Dense NLA", "No attention"):
        assert f"{name}**" not in texts["lam"] and name in texts["lam"]
    assert "diffusion index" in texts["lam"]
    assert "_lcoan_trace" in texts["trace"] and ".zip" in texts["trace"]
    for shot in ("knobs", "ablation", "attribution"):
        assert (shots / f"experiments-{shot}.png").stat().st_size > 10_000
