"""Screenshots of the app on a real photograph, for the README:

    python -m scripts.screenshots [--checkpoints DIR] [--out docs/screenshots] [--photo PATH]

Needs Debian's chromium (/usr/bin/chromium) and the Python package playwright. Opens the app
headless and uploads a real photo (default: scikit-image's ``coffee``, 600x400, CC0) in the
Super-resolve tab: Upscale x2 (the default), a region picked by clicking the input, then Degrade
then restore (PSNR/SSIM table). The inspection tabs follow the same picture (one picture across
tabs); the script asks the Attention tab for the far-reaching query, steps the LSP walkthrough to its
softmax weights, runs k-means live from a fresh start, runs the Efficiency measurement, and saves
one full-page PNG per view.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def wait_text(page, selector: str, pattern: str, timeout: int = 300_000) -> None:
    """Poll the element's text until it matches ``pattern`` (regular expression)."""
    import re
    import time

    deadline = time.monotonic() + timeout / 1000
    while time.monotonic() < deadline:
        loc = page.locator(selector).first
        if loc.count() and re.search(pattern, loc.inner_text()):
            return
        page.wait_for_timeout(300)
    raise TimeoutError(f"{selector} never matched {pattern!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--photo", type=Path, help="a photograph (default: scikit-image's coffee, 600x400)")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()

    from playwright.sync_api import sync_playwright

    from app.settings import Settings
    from app.ui import build_demo

    photo = args.photo
    if photo is None:
        import tempfile

        import skimage.data
        from PIL import Image
        photo = Path(tempfile.mkdtemp()) / "coffee.png"
        Image.fromarray(skimage.data.coffee()).save(photo)
    settings = Settings.from_env().replace(checkpoints=args.checkpoints)
    demo = build_demo(settings=settings)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)

            def tab(name: str) -> None:
                page.get_by_role("tab", name=name).click()

            def shot(name: str) -> None:
                page.wait_for_function("() => !/processing \\|/.test(document.body.innerText)", timeout=300_000)
                page.wait_for_timeout(2500)  # plots finish drawing
                page.screenshot(path=str(args.out / f"{name}.png"), full_page=True)
                print("saved", args.out / f"{name}.png", flush=True)

            done = "Region compared(?![\\s\\S]*Still running)"
            page.locator("#sr-input input[type=file]").set_input_files(str(photo))
            page.wait_for_selector("#sr-input img", timeout=60_000)
            page.locator("#sr-run").click()
            wait_text(page, "#sr-status", "Time: Bicubic.*Dense NLA")
            img = page.locator("#sr-input img").first
            box = img.bounding_box()
            img.click(position={"x": box["width"] * 0.55, "y": box["height"] * 0.35})  # pick a region
            wait_text(page, "#sr-status", "at \\((?!.*Still running)")
            wait_text(page, "#sr-status", done)
            shot("superresolve")
            page.locator("#sr-mode").get_by_text("Degrade then restore").click()
            page.locator("#sr-run").click()
            wait_text(page, "#sr-status", "degrade then restore[\\s\\S]*Time: Bicubic.*Dense NLA")
            shot("superresolve-degrade")

            tab("Clusters (LSP)")
            wait_text(page, "#clusters-inspecting", "inspecting: coffee|inspecting: " + photo.name)
            wait_text(page, "#clusters-info", "K = ")
            page.wait_for_timeout(8000)  # members, projection
            strip = page.locator("#clusters-strip img").first  # below the fold: make sure it has loaded
            strip.scroll_into_view_if_needed()
            strip.wait_for(timeout=60_000)
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=strip.element_handle(),
                                   timeout=60_000)
            shot("clusters")

            tab("Attention per layer")
            wait_text(page, "#attention-info", "Self-weight")
            first = page.locator("#attention-info").inner_text()
            page.locator("#attention-far").click()  # the query whose attention reaches farthest
            centre = re.search(r"Query \(row \d+, col \d+\)", first).group(0)
            page.wait_for_function("(old) => { const t = document.querySelector('#attention-info')?.innerText || '';"
                                   " return /Query \\(row/.test(t) && !t.includes(old); }", arg=centre, timeout=300_000)
            shot("attention")

            tab("LSP step by step")
            wait_text(page, "#walkthrough-caption", "Step 1 of 8")
            for _ in range(5):  # step 6: the query's softmax weights
                page.locator("#walkthrough-next").click()
            wait_text(page, "#walkthrough-caption", "Step 6 of 8")
            shot("walkthrough")

            tab("k-means live")
            wait_text(page, "#kmeans-status", "clusters used")
            page.locator("#kmeans-start").get_by_text("fresh").click()
            before = page.locator("#kmeans-status").inner_text()
            page.locator("#kmeans-run").click()
            page.wait_for_function("(old) => document.querySelector('#kmeans-status')?.innerText !== old",
                                   arg=before, timeout=120_000)
            wait_text(page, "#kmeans-caption", "EMA step")
            shot("kmeans")

            tab("Shared similarity")
            page.wait_for_timeout(12000)
            shot("similarity")

            tab("Efficiency")
            page.get_by_role("button", name="Measure on this input").click()
            wait_text(page, "body", "LCoA needs|saves", timeout=300_000)
            shot("efficiency")

            tab("About LCoA")
            shot("about")
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
