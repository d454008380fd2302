"""Headless Chromium drives the attention tab: upload a picture, click the image, and check that
the view follows the click to the LR position under the pointer. Needs Debian's chromium
(/usr/bin/chromium) and the Python package playwright; skipped otherwise.

Screenshots of each tab go to $LCOAN_SCREENSHOTS when set (docs/screenshots/ is made with real
checkpoints by scripts/screenshots.py, not by this test's random tiny ones).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from app.source import example_images
from app.views.common import display_factor
from tests.inspect_app import INSIDE_TABS, launch
from tests.tiny_checkpoints import make_checkpoints, textured

CHROMIUM = os.environ.get("LCOAN_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="Python package playwright not installed "
                                     "(pip install playwright; the browser itself comes from apt: chromium)")
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")


def natural_to_client(page, selector: str, nx: float, ny: float) -> tuple[float, float]:
    """Client coordinates of natural-pixel (nx, ny) of the <img> in ``selector``, undoing the
    'contain' fit the same way Gradio's select handler does."""
    box = page.eval_on_selector(selector + " img", """img => {
        const r = img.getBoundingClientRect();
        return {left: r.left, top: r.top, width: r.width, height: r.height,
                nw: img.naturalWidth, nh: img.naturalHeight};
    }""")
    r = min(box["width"] / box["nw"], box["height"] / box["nh"], 1)
    ox, oy = (box["width"] - box["nw"] * r) / 2, (box["height"] - box["nh"] * r) / 2
    return box["left"] + ox + nx * r, box["top"] + oy + ny * r


def query_of(page) -> tuple[int, int] | None:
    m = re.search(r"Query \(row (\d+), col (\d+)\)", page.inner_text("#attention-info"))
    return (int(m.group(1)), int(m.group(2))) if m else None


@pytest.mark.slow
def test_click_on_image_moves_the_query(tmp_path):
    folder = make_checkpoints(tmp_path / "ckpt")
    picture = tmp_path / "photo.png"
    Image.fromarray(textured(12, 14)).save(picture)
    demo, url, _ = launch(folder)
    shots = Path(os.environ["LCOAN_SCREENSHOTS"]) if os.environ.get("LCOAN_SCREENSHOTS") else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.goto(url)
            page.get_by_role("tab", name="Attention per layer").click()
            if example_images():  # a first visit shows the first example: let it land before uploading
                page.wait_for_function("() => /Query/.test(document.querySelector('#attention-info')?.innerText || '')",
                                       timeout=60_000)
            page.set_input_files("#attention-source-image input[type=file]", str(picture))
            page.wait_for_function("() => /Query \\(row 6, col 7\\)/"
                                   ".test(document.querySelector('#attention-info')?.innerText || '')",
                                   timeout=60_000)
            before = page.get_attribute("#attention-overlay img", "src")
            f = display_factor((12, 14))  # display factor of a 12 x 14 map
            for row, col in ((2, 3), (10, 12)):
                x, y = natural_to_client(page, "#attention-overlay", col * f + f / 2, row * f + f / 2)
                page.mouse.click(x, y)
                page.wait_for_function(
                    f"() => /Query \\(row {row}, col {col}\\)/"
                    ".test(document.querySelector('#attention-info').innerText)",
                    timeout=30_000)
                assert query_of(page) == (row, col)
            after = page.get_attribute("#attention-overlay img", "src")
            assert after and after != before  # the attention image itself was re-rendered
            for module in INSIDE_TABS:
                page.get_by_role("tab", name=module.TITLE).click()
                page.wait_for_timeout(1500)
                page.screenshot(path=str(shots / f"{module.__name__.rsplit('.', 1)[-1]}.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
    assert len(list(shots.glob("*.png"))) == len(INSIDE_TABS)
