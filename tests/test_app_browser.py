"""Headless Chromium drives the real page: upload a photo, Run, wait for the streamed comparison, move
the region, check an error message, and save docs/screenshots/superresolve.png.

Needs the Debian ``chromium`` package (/usr/bin/chromium) and the ``playwright`` Python package
(requirements.txt); skips with the reason when either is missing. Uses the checkpoints in
LCOAN_CHECKPOINTS or checkpoints/ when they hold LCoAN models, else tiny random ones. The screenshot
goes to the test's temporary folder: the committed ones are made on a real photo by
scripts/screenshots.py.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "screenshots" / "superresolve.png"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                                     "(pip install -r requirements.txt)")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} "
                       "(Debian: apt-get install -y chromium; or set CHROMIUM=/path/to/chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkpoint_folder(tmp_path_factory) -> tuple[Path, bool]:
    """(folder, real): trained checkpoints when there are some, else tiny random ones."""
    for folder in (os.environ.get("LCOAN_CHECKPOINTS"), ROOT / "checkpoints"):
        if folder and any(Path(folder).glob("lcoan-*-x[234]")):
            return Path(folder), True
    from tests.tiny_checkpoints import make_checkpoints
    return make_checkpoints(tmp_path_factory.mktemp("ckpt"), scales=(2, 4)), False


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    from app.services.models import ModelService
    from app.settings import Settings
    from app.ui import build_demo

    before = torch.get_num_threads()
    folder, real = checkpoint_folder(tmp_path_factory)
    settings = Settings(checkpoints=folder, port=free_port(), threads=1)
    service = ModelService.from_settings(settings)
    demo = build_demo(service)
    demo.launch(**settings.launch_kwargs(), prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{settings.port}", real
    demo.close()
    service.close()
    torch.set_num_threads(before)


def test_upload_run_zoom_and_screenshot(url, tmp_path):
    url, real = url
    # docs/screenshots/ is made on a real photo by scripts/screenshots.py; this one stays in the test's folder
    screenshot = tmp_path / SCREENSHOT.name
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#sr-run", timeout=60_000)
            page.locator("#sr-input input[type=file]").set_input_files(
                str(ROOT / "assets" / "examples" / "rocket_tower.png"))
            page.wait_for_selector("#sr-input img", timeout=30_000)
            page.locator("#sr-run").click()
            status = page.locator("#sr-status")
            # the run's end, not a step: the region methods come first, so "Bicubic ... Dense NLA" is already
            # in the Time line while LCoAN still runs (4 crops); the download comes with the last output
            page.wait_for_function("() => { const t = document.querySelector('#sr-status')?.innerText || '';"
                                   " return /Time: Bicubic[^\\n]*LCoAN[^\\n]*Dense NLA/.test(t)"
                                   " && !/Still running|Writing the lossless PNG/.test(t); }", timeout=180_000)
            page.wait_for_function("() => /rocket_tower_x/.test((document.querySelector('#sr-download')?.innerText"
                                   " || '').replace(/\\s/g, ''))", timeout=60_000)
            text = status.inner_text()
            assert re.search(r"x2, upscale", text) and "output 384x384" in text  # the defaults: Upscale, x2
            table = page.locator("#sr-metrics").inner_text()
            for label in ("Bicubic", "LCoAN", "No attention", "Dense NLA", "whole image", "region"):
                assert label in table
            assert page.locator("#sr-crops img").count() >= 5  # input and 4 methods
            assert page.locator("#sr-slider img").count() >= 2
            assert "rocket_tower_x" in "".join(page.locator("#sr-download").inner_text().split())

            # click the full result: the zoom region moves, the slider shows other pixels
            before = page.locator("#sr-slider img").first.get_attribute("src")
            full = page.locator("#sr-full img").first
            box = full.bounding_box()
            # near the centre: the picture may be letterboxed inside the element
            full.click(position={"x": box["width"] * 0.42, "y": box["height"] * 0.4})
            page.wait_for_function(
                "(old) => { const i = document.querySelector('#sr-slider img'); return i && i.src !== old; }",
                arg=before, timeout=30_000)
            page.wait_for_function("() => { const t = document.querySelector('#sr-status')?.innerText || '';"
                                   " return /Region compared/.test(t) && !/Still running/.test(t); }", timeout=60_000)
            page.wait_for_timeout(1000)

            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)

            # an unreadable upload gives the loader's message, not a stack trace
            bad = tmp_path / "notes.png"
            bad.write_text("not a picture\n")
            page.locator("#sr-input button[aria-label='Remove Image']").click()
            page.locator("#sr-input input[type=file]").set_input_files(str(bad))
            page.locator("#sr-run").click()
            page.wait_for_function("() => /not an image/.test(document.querySelector('#sr-status')?.innerText || '')",
                                   timeout=30_000)
            assert page.get_by_text("Error", exact=True).count() == 0  # a message, no badge on every output
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
