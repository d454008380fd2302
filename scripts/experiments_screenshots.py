"""Drive the Experiments tab in headless Chromium and save screenshots of each experiment:

    python -m scripts.experiments_screenshots [--checkpoints DIR] [--picture assets/examples/brick_wall.png]
                                              [--out docs/screenshots]

Uploads the picture in the Experiments tab, runs the window sweep, the ablation, the attribution
maps and the trace download in turn, waits for each result and saves ``experiments-*.png``.
:func:`drive` is also the slow browser test's body (tests/test_experiments_browser.py).
Needs Debian's chromium (/usr/bin/chromium) and the Python package playwright.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.screenshots import ARGS, ROOT
from scripts.screenshots import wait_text as wait_for

__all__ = ["ARGS", "drive"]


def wait_text(page, selector: str, pattern: str, timeout: int = 600_000) -> str:
    """Wait until the element's text matches ``pattern`` (a JS regex); returns the text."""
    wait_for(page, selector, pattern, timeout)
    return page.inner_text(selector)


def drive(page, url: str, picture: Path, shots: Path | None = None, steps: int | None = None) -> dict[str, str]:
    """Open the app, upload ``picture`` in the Experiments tab, run every experiment; returns the
    texts shown (knobs, ablation, lam, trace) and saves screenshots into ``shots`` when given."""
    def shot(name: str, selector: str) -> None:
        if shots is None:
            return
        page.wait_for_timeout(2000)  # plots finish drawing
        page.locator(selector).screenshot(path=str(shots / f"experiments-{name}.png"))
        print("saved", shots / f"experiments-{name}.png", flush=True)

    page.goto(url)
    page.get_by_role("tab", name="Experiments").click()
    page.set_input_files("#experiments-source-image input[type=file]", str(picture))
    wait_text(page, "#experiments-inspecting", "inspecting: ", 60_000)
    texts = {}
    page.click("#experiments-knobs-run")
    texts["knobs"] = wait_text(page, "#experiments-knobs-info", "Recall: share")
    shot("knobs", "#experiments-knobs-block")
    page.click("#experiments-ablation-run")
    texts["ablation"] = wait_text(page, "#experiments-ablation-info", "attention branch off, PSNR")
    shot("ablation", "#experiments-ablation-block")
    if steps is not None:
        page.fill("#experiments-lam-steps input[type=number]", str(steps))
        page.press("#experiments-lam-steps input[type=number]", "Enter")
    page.click("#experiments-lam-run")
    texts["lam"] = wait_text(page, "#experiments-lam-info", "No attention.{0,20}diffusion index")
    shot("attribution", "#experiments-lam-block")
    page.click("#experiments-trace-run")
    page.wait_for_selector("#experiments-trace-file a", timeout=300_000)
    texts["trace"] = page.inner_text("#experiments-trace-file")
    if shots is not None:
        page.screenshot(path=str(shots / "experiments.png"), full_page=True)
        print("saved", shots / "experiments.png", flush=True)
    return texts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    p.add_argument("--picture", type=Path, default=ROOT / "assets" / "examples" / "brick_wall.png")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    from app.settings import Settings
    from app.ui import build_demo

    settings = Settings.from_env().replace(checkpoints=args.checkpoints)
    demo = build_demo(settings=settings)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name, text in drive(page, url, args.picture, args.out).items():
                print(f"--- {name}\n{text}\n", flush=True)
            browser.close()
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
