"""Screenshots of the inside-LCoA tabs of the full app, for the README:

    python -m scripts.screenshots [--checkpoints DIR] [--out docs/screenshots] [--example astronaut_patch.png]

Needs Debian's chromium (/usr/bin/chromium) and the Python package playwright. Opens the app
headless, picks a bundled example in the Clusters tab (the other tabs follow it), clicks a query in
the Attention tab, zooms the band in the Shared-similarity tab, runs the Efficiency measurement,
and saves one full-page PNG per tab.
"""
from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def wait_text(page, selector: str, pattern: str, timeout: int = 180_000) -> None:
    page.wait_for_function(
        f"() => new RegExp({pattern!r}).test(document.querySelector({selector!r})?.innerText || '')", timeout=timeout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--example", default="astronaut_patch.png")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()

    from playwright.sync_api import sync_playwright

    from app.examples import EXAMPLES
    from app.settings import Settings
    from app.ui import build_demo

    title = next(e.title for e in EXAMPLES if e.file == args.example)
    settings = Settings.from_env().replace(checkpoints=args.checkpoints)
    demo = build_demo(settings=settings)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)

            def tab(name: str) -> None:
                page.get_by_role("tab", name=name).click()

            def shot(name: str) -> None:
                page.wait_for_timeout(2500)  # plots finish drawing
                page.screenshot(path=str(args.out / f"{name}.png"), full_page=True)
                print("saved", args.out / f"{name}.png", flush=True)

            tab("Clusters (LSP)")
            wait_text(page, "#clusters-info", "K = ")
            page.locator("#tabs, body").get_by_text(title, exact=True).first.click()
            wait_text(page, "#clusters-info", "K = .*")
            page.wait_for_timeout(8000)  # members, projection
            shot("clusters")

            tab("Attention per layer")
            wait_text(page, "#attention-info", "Query")
            box = page.locator("#attention-overlay img").bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.38)
            page.wait_for_timeout(6000)
            shot("attention")

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
