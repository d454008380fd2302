"""Time the app's three-way comparison end to end on a 256x256 photo (issue 9's target: under 10 s at x4).

    python -m scripts.app_timing --checkpoints checkpoints [--scale 4] [--browser]

Starts the app in-process on a free port, then times, through gradio_client, ``/compare`` in both
modes (cold, then cached), and with ``--browser`` also the page itself in headless Chromium (upload,
Run, until the table shows). The photo is the centre 256x256 crop of scikit-image's astronaut
(public domain). Prints the machine's load average: on a shared CPU the numbers move with it.
"""
from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--threads", type=int, help="PyTorch threads (default: the app's automatic choice)")
    p.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    args = p.parse_args()

    import numpy as np
    import skimage.data
    from gradio_client import Client, handle_file
    from PIL import Image

    from app.service import ModelService
    from app.settings import Settings
    from app.ui import build_demo

    photo = Path(tempfile.mkdtemp()) / "astronaut_256.png"
    Image.fromarray(np.ascontiguousarray(skimage.data.astronaut()[128:384, 128:384])).save(photo)
    settings = Settings(checkpoints=args.checkpoints, port=free_port())
    if args.threads:
        settings = settings.replace(threads=args.threads)
    service = ModelService.from_settings(settings)
    demo = build_demo(service)
    demo.launch(**settings.launch_kwargs(), prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{settings.port}"
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch threads {settings.threads}; "
          f"models: {service.status()}")
    client = Client(url, verbose=False, download_files=tempfile.mkdtemp())
    try:
        for mode in ("degrade", "upscale"):
            for run in ("cold", "cached"):
                start = time.perf_counter()
                *_, report = client.predict(handle_file(str(photo)), args.scale, mode, True, api_name="/compare")
                wall = time.perf_counter() - start
                per = ", ".join(f"{m} {r['seconds']:.2f} s" + (f" ({r['tiles']} tiles)" if r["tiles"] > 1 else "")
                                + (f" {r['psnr']:.2f} dB" if r["psnr"] is not None else "")
                                for m, r in report["methods"].items())
                print(f"x{args.scale} {mode:8s} {run:6s}: {wall:6.2f} s end to end; LR {report['lr_size']}; {per}")
        if args.browser:
            from playwright.sync_api import sync_playwright
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page()
                page.goto(url)
                page.wait_for_selector("#sr-run")
                other = photo.with_name("astronaut_256_mirrored.png")  # new pixels, so nothing is cached
                Image.open(photo).transpose(Image.FLIP_LEFT_RIGHT).save(other)
                page.locator("#sr-input input[type=file]").set_input_files(str(other))
                page.wait_for_selector("#sr-input img")
                page.locator("#sr-scale").get_by_text(f"x{args.scale}").click()
                start = time.perf_counter()
                page.locator("#sr-run").click()
                page.locator("#sr-status").get_by_text("Time per method").wait_for(timeout=600_000)
                print(f"x{args.scale} degrade  page  : {time.perf_counter() - start:6.2f} s from Run to the table "
                      "(upload excluded)")
                browser.close()
    finally:
        demo.close()
        service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
