"""Headless Chromium on the whole app (tiny random checkpoints x2 and x4): the flows of issue 15.

* the Shared-similarity tab after x4 was picked in another tab (it used to spin forever);
* one picture across tabs, with the "inspecting: NAME" line;
* errors as one message (status line / toast), no "Error" badge on the outputs;
* a real-size photo (1280x1024) in Upscale: the whole LCoAN result, then the region comparison.

Needs Debian's chromium (/usr/bin/chromium) and the Python package playwright; skipped otherwise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser_helpers import ARGS, CHROMIUM, wait_text

ROOT = Path(__file__).resolve().parents[1]

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"),
]


def text_of(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from tests.live_app import all_kinds, live_app

    with live_app(all_kinds(tmp_path_factory.mktemp("ckpt")), lcoan_tile=128) as (_, url, _):
        yield url


@pytest.fixture()
def page():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1400})
        finally:
            browser.close()


def photo(tmp_path: Path, w: int, h: int, name: str = "photo.png") -> Path:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([127 + 100 * np.sin(x / 3.0), 255 * y / (h - 1), 127 + 100 * np.cos((x + y) / 7.0)], -1)
    path = tmp_path / name
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def test_shared_similarity_after_x4_in_another_tab(app_url, page, tmp_path):
    """Issue 15, item 5: x4 picked in the Clusters tab, then Shared similarity must finish."""
    page.goto(app_url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Clusters (LSP)").click()
    wait_text(page, "#clusters-info", r"N = ")  # a first visit shows the first example: let it land
    page.locator("#clusters-source-image input[type=file]").set_input_files(str(photo(tmp_path, 24, 20)))
    wait_text(page, "#clusters-info", r"N = 480")
    before = text_of(page, "#clusters-info")
    page.locator("#clusters-source-scale").get_by_text("x4").click()
    page.wait_for_function("(old) => (document.querySelector('#clusters-info')?.innerText || old) !== old",
                           arg=before, timeout=90_000)
    page.get_by_role("tab", name="Shared similarity").click()
    wait_text(page, "#similarity-band-info", r"N = 480", timeout=90_000)
    wait_text(page, "#similarity-layers-info", r"Jensen-Shannon", timeout=90_000)
    assert page.locator("#similarity-source-scale input:checked").first.input_value() == "4"
    # nothing re-runs by itself: the views settle (the bug was an endless re-run, a spinner that never ended)
    page.wait_for_timeout(3000)
    settled = text_of(page, "#similarity-band-info")
    pending = ("() => document.querySelectorAll("
               "'#similarity-band-info .eta-bar, #similarity-layers-info .eta-bar').length")
    samples = []
    for _ in range(6):
        page.wait_for_timeout(1000)
        samples.append(page.evaluate(pending))
    assert samples == [0] * 6, f"the similarity views keep re-running: {samples}"
    assert text_of(page, "#similarity-band-info") == settled


def test_one_picture_across_tabs_and_errors_as_one_message(app_url, page, tmp_path):
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#sr-input input[type=file]").set_input_files(str(photo(tmp_path, 40, 30, "holiday.png")))
    page.wait_for_selector("#sr-input img", timeout=30_000)
    for tab, prefix in (("Attention per layer", "attention"), ("Clusters (LSP)", "clusters")):
        page.get_by_role("tab", name=tab).click()
        wait_text(page, f"#{prefix}-inspecting", r"inspecting: holiday\.png \(40x30, x2, traced at 40x30")
    assert "/tmp" not in page.locator("body").inner_text()  # no server folder anywhere in the page
    # an out-of-range query: one message in the info line, no error badge on the outputs
    page.get_by_role("tab", name="Attention per layer").click()
    wait_text(page, "#attention-info", r"Query \(row")
    page.get_by_label("query row (LR)").fill("9999")
    page.get_by_label("query row (LR)").press("Enter")
    wait_text(page, "#attention-info", r"outside the traced LR map: rows 0\.\.29")
    assert page.get_by_text("Error", exact=True).count() == 0
    # an unreadable upload in Super-resolve: the loader's message in the status line, no badges
    page.get_by_role("tab", name="Super-resolve").click()
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture\n")
    page.locator("#sr-input button[aria-label='Remove Image']").click()
    page.locator("#sr-input input[type=file]").set_input_files(str(bad))
    page.locator("#sr-run").click()
    wait_text(page, "#sr-status", r"not an image", timeout=60_000)
    assert page.get_by_text("Error", exact=True).count() == 0


def test_real_size_photo_upscale_and_region_compare(app_url, page, tmp_path):
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#sr-input input[type=file]").set_input_files(str(photo(tmp_path, 1280, 1024, "big.png")))
    page.wait_for_selector("#sr-input img", timeout=30_000)
    page.locator("#sr-run").click()
    wait_text(page, "#sr-status", r"output \*?\*?2560x2048", timeout=300_000)
    wait_text(page, "#sr-status", r"Time: Bicubic[^\n]*LCoAN[^\n]*Dense NLA", timeout=300_000)  # all four done
    wait_text(page, "#sr-download", r"big_x2_lcoan", timeout=30_000)
    table = text_of(page, "#sr-metrics")
    assert "whole image" in table and "No attention" in table
    assert "big_x2_lcoan.png" in "".join(text_of(page, "#sr-download").split())
    before = text_of(page, "#sr-status")
    # click the input near its top-left corner: the region moves there, only the region methods rerun
    img = page.locator("#sr-input img").first
    box = img.bounding_box()
    img.click(position={"x": box["width"] * 0.1, "y": box["height"] * 0.1})
    page.wait_for_function("(old) => { const t = document.querySelector('#sr-status')?.innerText || '';"
                           " return t !== old && !/Still running/.test(t) && /Region compared/.test(t); }",
                           arg=before, timeout=120_000)
    assert "at (0, 0)" not in before and "Region compared" in text_of(page, "#sr-status")
