"""Headless Chromium walks every tab of the whole app on an uploaded picture (tiny random checkpoints,
x2 and x4) with no error in the browser console or the server log; and the UI items of issue 27:

* Attention: the self-weight stated, the far-reaching query button, the query kept across a scale change;
* LSP step by step: eight steps with Next / Previous; k-means live: frames and the occupancy;
* Clusters: a typed opacity re-draws the map and keeps the chosen cluster; the legend lists every cluster;
* Efficiency: its line says it times a centre crop; About lists Experiments;
* a text file uploaded as the picture: a message in that tab and in the next one, no traceback.

Needs Debian's chromium (/usr/bin/chromium) and the Python package playwright; skipped otherwise.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tests.browser_helpers import ARGS, CHROMIUM, wait_text
from tests.tiny_checkpoints import textured

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"),
]


def query_of(text: str) -> tuple[int, int]:
    m = re.search(r"Query \(row (\d+), col (\d+)\)", text)
    assert m, text[:200]
    return int(m.group(1)), int(m.group(2))


def test_every_tab_on_an_uploaded_picture(tmp_path, capfd):
    from app.ui import TABS
    from tests.live_app import all_kinds, live_app

    picture = tmp_path / "facade.png"
    Image.fromarray(textured(124, 136)).save(picture)  # 16,864 LR positions: traced on a downscale
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture\n")
    console: list[str] = []
    with live_app(all_kinds(tmp_path / "ckpt"), lcoan_tile=128) as (demo, url, _), \
            playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(str(e)))
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#sr-run", timeout=60_000)
            page.locator("#sr-input input[type=file]").set_input_files(str(picture))
            page.wait_for_selector("#sr-input img", timeout=30_000)

            def tab(name: str) -> None:
                page.get_by_role("tab", name=name).click()

            # Clusters: the map, then a typed opacity keeps the chosen cluster (its legend ring)
            tab("Clusters (LSP)")
            wait_text(page, "#clusters-inspecting", "inspecting: facade.png")
            wait_text(page, "#clusters-info", r"K = 8 clusters")
            wait_text(page, "#clusters-legend", r"occupied")
            assert "outline:3px" in page.inner_html("#clusters-legend")  # the chosen (largest) cluster
            before = page.get_attribute("#clusters-overlay img", "src")
            box = page.locator("#clusters-opacity input[type=number]")
            box.fill("0.3")
            box.press("Enter")
            page.wait_for_function("(old) => document.querySelector('#clusters-overlay img')?.src !== old",
                                   arg=before, timeout=30_000)
            page.wait_for_timeout(500)
            assert "outline:3px" in page.inner_html("#clusters-legend")

            # Attention: self-weight, far-reaching query, the query kept across a scale change
            tab("Attention per layer")
            centre = query_of(wait_text(page, "#attention-info", r"Self-weight \d"))
            page.locator("#attention-far").click()
            far = wait_text(page, "#attention-info", rf"Query \(row (?!{centre[0]}, col {centre[1]}\))")
            q = query_of(far)
            assert "beyond it" in far
            page.locator("#attention-source-scale").get_by_text("x4").click()
            wait_text(page, "#attention-info", rf"Query \(row {q[0]}, col {q[1]}\)")
            page.locator("#attention-source-scale").get_by_text("x2").click()
            wait_text(page, "#attention-info", rf"Query \(row {q[0]}, col {q[1]}\)")

            # LSP step by step: eight steps, next and previous
            tab("LSP step by step")
            wait_text(page, "#walkthrough-caption", r"Step 1 of 8")
            page.locator("#walkthrough-next").click()
            wait_text(page, "#walkthrough-caption", r"Step 2 of 8 · Nearest centroid")
            page.locator("#walkthrough-next").click()
            wait_text(page, "#walkthrough-caption", r"Step 3 of 8")
            page.locator("#walkthrough-prev").click()
            wait_text(page, "#walkthrough-caption", r"Step 2 of 8")
            assert page.locator("#walkthrough-gallery img").count() == 8

            # k-means live
            tab("k-means live")
            wait_text(page, "#kmeans-status", r"clusters used \d+ → \d+")
            wait_text(page, "#kmeans-caption", r"frame 12 \(EMA step\)")

            tab("Shared similarity")
            wait_text(page, "#similarity-inspecting", "inspecting: facade.png")
            page.wait_for_timeout(3000)

            tab("Efficiency")
            wait_text(page, "#efficiency-inspecting", r"timed at \d+x\d+ LR, centre crop")

            tab("Experiments")
            wait_text(page, "#experiments-inspecting", "inspecting: facade.png")

            tab("About LCoA")
            about = page.locator("body").inner_text()
            assert all(title in about for title, _ in TABS)

            # a text file as the picture: the tab says why, and so does the next one (no stale picture)
            tab("Clusters (LSP)")
            page.locator("#clusters-source-image button[aria-label='Remove Image']").click()
            page.locator("#clusters-source-image input[type=file]").set_input_files(str(bad))
            wait_text(page, "#clusters-info", r"not an image|cannot|could not|unreadable|identify", timeout=60_000)
            tab("Attention per layer")
            wait_text(page, "#attention-info", r"not an image|cannot|could not|unreadable|identify", timeout=60_000)
            page.wait_for_timeout(1000)
        finally:
            browser.close()
    out, err = capfd.readouterr()
    log = out + err
    assert "Traceback" not in log and "UnidentifiedImageError" not in log, log[-3000:]
    assert not [c for c in console if "favicon" not in c], console
