"""The running app: launched in-process on a free port, called through gradio_client on real
photographs (assets/examples), tiny random checkpoints."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from app.services.examples import EXAMPLES_DIR  # noqa: E402
from app.services.models import ModelService  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.ui import TABS, build_demo  # noqa: E402
from lcoan.imaging.io import load_image  # noqa: E402
from lcoan.imaging.metrics import psnr_y, ssim_y  # noqa: E402
from tests.live_app import all_kinds, live_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with live_app(all_kinds(tmp_path_factory.mktemp("ckpt")), max_upload_mb=2) as (demo, url, service):
        yield demo, Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads"))), service


def read_png(path: str) -> np.ndarray:
    assert Path(path).read_bytes()[:8] == PNG_MAGIC
    return load_image(path).rgb


def test_compare_degrade_returns_pngs_and_the_metrics_of_lcoan_metrics(app):
    _, client, _ = app
    hr = load_image(EXAMPLES_DIR / "rocket_tower.png").rgb  # 192x192, a multiple of 2
    *pngs, report = client.predict(handle_file(str(EXAMPLES_DIR / "rocket_tower.png")), 2, "degrade", True,
                                   0.25, 0.75, 32, 0, api_name="/compare")
    assert report["mode"] == "degrade" and report["lr_size"] == [96, 96] and report["output_size"] == [192, 192]
    region = report["region_lr"]
    assert region == {"x": 8, "y": 56, "width": 32, "height": 32}
    x0, y0 = region["x"] * 2, region["y"] * 2
    for method, path in zip(("bicubic", "lcoan", "none", "dense"), pngs):
        sr = read_png(path)
        scores = report["methods"][method]
        if method in ("bicubic", "lcoan"):
            assert sr.shape == hr.shape and sr.dtype == np.uint8 and scores["ran_on"] == "whole"
            assert scores["psnr"] == pytest.approx(psnr_y(sr, hr, 2), abs=1e-9)
            assert scores["ssim"] == pytest.approx(ssim_y(sr, hr, 2), abs=1e-12)
            sr = sr[y0:y0 + 64, x0:x0 + 64]
        else:
            assert sr.shape == (64, 64, 3) and scores["ran_on"] == "region" and scores["psnr"] is None
        assert scores["region_psnr"] == pytest.approx(psnr_y(sr, hr[y0:y0 + 64, x0:x0 + 64], 2), abs=1e-9)
        assert scores["seconds"] >= 0
    assert Path(pngs[1]).name == "rocket_tower_x2_lcoan.png"
    assert Path(pngs[3]).name == "rocket_tower_x2_dense_region.png"
    again = client.predict(handle_file(str(EXAMPLES_DIR / "rocket_tower.png")), 2, "degrade", True,
                           0.25, 0.75, 32, 0, api_name="/compare")
    assert again[-1]["cached"] is True


def test_compare_upscale_without_baselines(app):
    _, client, _ = app
    bic, lc, none, dense, report = client.predict(handle_file(str(EXAMPLES_DIR / "text_page.png")), 4, "upscale",
                                                  False, 0.5, 0.5, 96, 0, api_name="/compare")
    assert none is None and dense is None and set(report["methods"]) == {"bicubic", "lcoan"}
    assert read_png(lc).shape == (172 * 4, 224 * 4, 3) and report["grayscale"] is True
    assert Image.open(lc).mode == "L"  # a grey input gives a grey PNG


def test_superresolve_endpoint(app):
    _, client, _ = app
    path, report = client.predict(handle_file(str(EXAMPLES_DIR / "chelsea_fur.png")), 2, "lcoan",
                                  api_name="/superresolve")
    assert read_png(path).shape == (384, 384, 3)
    assert report["mode"] == "upscale" and list(report["methods"]) == ["lcoan"]
    path, report = client.predict(handle_file(str(EXAMPLES_DIR / "chelsea_fur.png")), 2, "bicubic",
                                  api_name="/superresolve")
    assert Path(path).name == "chelsea_fur_x2_bicubic.png"


def test_errors_are_messages_not_tracebacks(app, tmp_path):
    _, client, _ = app
    text = tmp_path / "notes.png"
    text.write_text("hello, I am not a picture\n")
    with pytest.raises(Exception, match="not an image") as info:
        client.predict(handle_file(str(text)), 2, "lcoan", api_name="/superresolve")
    assert "Traceback" not in str(info.value)
    with pytest.raises(Exception, match="No LCoAN checkpoint for x3"):
        client.predict(handle_file(str(EXAMPLES_DIR / "brick_wall.png")), 3, "lcoan", api_name="/superresolve")
    with pytest.raises(Exception, match="at least"):  # too small to score at x4
        tiny = tmp_path / "tiny.png"
        Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tiny)
        client.predict(handle_file(str(tiny)), 4, "degrade", True, 0.5, 0.5, 96, 0, api_name="/compare")
    with pytest.raises(Exception, match="runs on a region only"):
        client.predict(handle_file(str(EXAMPLES_DIR / "brick_wall.png")), 2, "dense", api_name="/superresolve")


def test_server_settings_and_api_surface(app):
    demo, client, service = app
    assert demo.server_name == "127.0.0.1" and demo.share is False
    assert demo.max_file_size == 2 * 1024 * 1024
    assert demo._queue.max_size == service.settings.max_queue
    assert demo._queue.default_concurrency_limit == service.settings.concurrency_limit
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/superresolve", "/compare"} <= set(api)  # other tabs add their own endpoints
    assert [p["parameter_name"] for p in api["/compare"]["parameters"]] == [
        "image", "scale", "mode", "include_baselines", "region_x", "region_y", "region_side", "downscale_to"]
    assert [p["parameter_name"] for p in api["/superresolve"]["parameters"]] == ["image", "scale", "method"]
    assert TABS[0][0] == "Super-resolve"


def test_app_starts_without_checkpoints_and_says_so(tmp_path):
    service = ModelService(tmp_path / "none", settings=Settings(checkpoints=tmp_path / "none", threads=1))
    demo = build_demo(service)
    text = " ".join(str(b.value) for b in demo.blocks.values() if type(b).__name__ == "Markdown")
    assert "Missing: `lcoan-*-x2`" in text and "No LCoAN checkpoint is loaded" in text
    assert str(tmp_path) not in text  # no server folder in the page


def test_app_py_flags():
    spec = importlib.util.spec_from_file_location("app_main", ROOT / "app.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    base = Settings.from_env({})
    flags = main.settings_from(main.parse_args(["--port", "8000", "--host", "0.0.0.0"]), base)
    assert flags.port == 8000 and flags.host == "0.0.0.0" and not flags.share
    assert not main.settings_from(main.parse_args([]), base).share
    assert main.settings_from(main.parse_args(["--share"]), base).share


def test_uploads_over_the_limit_are_refused_by_the_server(app, tmp_path):
    _, client, _ = app  # launched with max_upload_mb=2
    big = tmp_path / "big.png"
    big.write_bytes(PNG_MAGIC + bytes(3 * 1024 * 1024))
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        client.predict(handle_file(str(big)), 2, "lcoan", api_name="/superresolve")
