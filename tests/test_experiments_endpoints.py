"""The Experiments endpoints (/knobs, /ablation, /attribution, /trace) of the whole app, launched
in-process and called through gradio_client with their defaults on a real photograph (tiny random
checkpoints)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from app.services.models import ModelService  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.ui import build_demo  # noqa: E402
from lcoan.introspect.trace_files import load_trace  # noqa: E402
from tests.live_app import free_port  # noqa: E402
from tests.test_experiments_service import with_none  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "assets" / "examples" / "brick_wall.png"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    before = torch.get_num_threads()
    settings = Settings(checkpoints=with_none(tmp_path_factory.mktemp("ckpt")), port=free_port(), threads=1)
    service = ModelService.from_settings(settings)
    demo = build_demo(service)
    demo.launch(**settings.launch_kwargs(), prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{settings.port}", verbose=False,
                    download_files=str(tmp_path_factory.mktemp("downloads")))
    yield client
    demo.close()
    service.close()
    torch.set_num_threads(before)


def test_endpoints_are_named_and_described(app):
    api = app.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/knobs", "/ablation", "/attribution", "/trace"} <= set(api)


def test_knobs_with_defaults(app):
    report = app.predict(image=handle_file(str(PHOTO)), api_name="/knobs")
    windows = [p["window"] for p in report["points"]]
    assert windows[-1] == "W >= N" and report["rounds"] == 1 and report["trained_model"]
    assert windows[:-1] == sorted(windows[:-1]) and all(w < report["positions"] for w in windows[:-1])
    assert sum(p["trained"] for p in report["points"]) == 1
    assert all(0 <= p["recall"] <= 1.0001 and p["nonlocal_ms"] > 0 for p in report["points"])


def test_ablation_with_defaults(app):
    lcoan_png, dense_png, report = app.predict(image=handle_file(str(PHOTO)), api_name="/ablation")
    w, h = report["output_size"]
    assert Image.open(lcoan_png).size == (w, h) and Image.open(dense_png).size == (w, h)
    assert set(report["models"]) == {"lcoan", "dense"}


def test_attribution_with_defaults(app):
    *pngs, report = app.predict(image=handle_file(str(PHOTO)), api_name="/attribution")
    assert set(report["models"]) == {"lcoan", "dense", "none"}
    assert all(Image.open(p).size == tuple(report["lr_size"]) for p in pngs)
    assert all(0 <= m["diffusion_index"] <= 100 for m in report["models"].values())
    assert report["models"]["none"]["beyond_conv_reach"] == 0.0  # no attention: nothing beyond the convs' reach


def test_trace_with_defaults(app):
    path, report = app.predict(image=handle_file(str(PHOTO)), api_name="/trace")
    trace = load_trace(path)
    assert trace.kind == "lsp" and list(trace.lr_size) == report["lr_size"]
    assert trace.attention_row(0, 0).sum() == pytest.approx(1.0, abs=1e-4)


def test_bad_input_is_a_message(app, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"no picture here")
    with pytest.raises(Exception, match="(?i)image|picture|read"):
        app.predict(image=handle_file(str(junk)), api_name="/knobs")
    with pytest.raises(Exception, match="rounds"):
        app.predict(image=handle_file(str(PHOTO)), rounds=9, api_name="/knobs")
