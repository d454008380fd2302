"""The app's limits and its own clean-up (issue 8), fast: what tests/test_app_endpoints.py and
tests/test_app_service.py do not already cover.

* the LCOAN_* limits reach the queue and every event: no event runs unbounded, and all the
  super-resolution events (the tab's Run and both API endpoints) share one concurrency group;
* app.py's own start-up: launch() gets 127.0.0.1, no share link and the upload limit unless told
  otherwise (SPACE_ID -> 0.0.0.0, --host, --share), and Ctrl-C / SIGTERM close the app;
* a crafted request cannot make the server read or serve a file outside its upload folder;
* temporary files: an API call leaves nothing in Gradio's cache but the upload and the result, the
  app's result folder keeps only the newest files and is removed when the service is closed.

The concurrency test with 8 users and the shutdown of the real process are in test_app_load.py (slow).
"""
from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

import app.ui  # noqa: E402
from app.services.examples import EXAMPLES_DIR  # noqa: E402
from app.services.models import ModelService  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.tabs.superresolve import HEAVY  # noqa: E402
from app.ui import build_demo  # noqa: E402
from lcoan.imaging.io import load_image  # noqa: E402
from tests.tiny_checkpoints import make_checkpoints, textured  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Events that skip the queue: they only copy a value (an example into an input, the shared input
# panel's state between tabs) and compute nothing.
UNQUEUED_OK = {"load_example", "remember", "catch_up", "disable_run", "disable_run_keep_click", "enable_run",
               "clear_results"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_in(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app built from LCOAN_* values (as app.py does) and running, with its own Gradio cache folder."""
    mp = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("gradio-cache")
    mp.setenv("GRADIO_TEMP_DIR", str(cache))  # read when components are made and when the server starts
    before = torch.get_num_threads()
    ckpt = make_checkpoints(tmp_path_factory.mktemp("ckpt"), scales=(2,))
    settings = Settings.from_env({"LCOAN_CHECKPOINTS": str(ckpt), "LCOAN_PORT": str(free_port()),
                                  "LCOAN_CONCURRENCY": "1", "LCOAN_MAX_QUEUE": "5", "LCOAN_MAX_UPLOAD_MB": "3",
                                  "LCOAN_THREADS": "1"})
    service = ModelService.from_settings(settings)
    demo = build_demo(service)
    demo.launch(**settings.launch_kwargs(), prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{settings.port}"
    try:
        yield {"demo": demo, "service": service, "settings": settings, "url": url, "cache": cache}
    finally:
        demo.close()
        service.close()
        mp.undo()
        torch.set_num_threads(before)


def test_limits_from_the_environment_reach_the_queue_and_every_event(live):
    demo, settings = live["demo"], live["settings"]
    assert demo._queue.max_size == 5 and demo._queue.default_concurrency_limit == 1
    assert demo.max_file_size == 3 * 1024 * 1024
    assert demo.server_name == "127.0.0.1" and demo.share is False
    heavy = {}
    for fn in demo.fns.values():
        if not fn.queue:
            assert fn.name in UNQUEUED_OK, f"{fn.name} ({fn.api_name}) skips the queue and its limits"
            continue
        limit = settings.concurrency_limit if fn.concurrency_limit == "default" else fn.concurrency_limit
        assert isinstance(limit, int) and 1 <= limit <= 4, f"{fn.name} ({fn.api_name}): unbounded ({limit!r})"
        if fn.name in ("on_run", "superresolve", "compare_endpoint"):
            heavy[fn.name] = (fn.concurrency_id, fn.concurrency_limit)
    # the tab's Run and the two API endpoints: one group, LCOAN_CONCURRENCY jobs at a time in all
    heavy_names = ("on_run", "superresolve", "compare_endpoint")
    assert heavy == {name: (HEAVY, settings.concurrency_limit) for name in heavy_names}


class FakeDemo:
    """Stands in for the Blocks: records launch() and close(); ``interrupt``: the first check of
    ``is_running`` after a wait raises KeyboardInterrupt, as Ctrl-C (or SIGTERM, through app.py's
    handler) does in the main thread."""

    def __init__(self, interrupt: bool = False):
        self.launched: dict | None = None
        self.closed = False
        self.interrupt = interrupt
        self.checks = 0

    @property
    def is_running(self) -> bool:
        self.checks += 1
        if self.closed or not self.interrupt:
            return False
        if self.checks > 1:
            raise KeyboardInterrupt
        return True

    def launch(self, **kwargs):
        self.launched = kwargs

    def close(self):
        self.closed = True


def run_app_py(monkeypatch, argv: list[str], env: dict[str, str], demo: FakeDemo | None = None) -> FakeDemo:
    """Run app.py as ``python app.py ARGV`` with ``env``, build_demo replaced by a fake; its SIGTERM
    handler is put back afterwards."""
    demo = demo or FakeDemo()
    built = {}

    def fake_build_demo(service=None, settings=None):
        built["settings"] = settings
        return demo

    for name in [k for k in os.environ if k.startswith("LCOAN_") or k == "SPACE_ID"]:
        monkeypatch.delenv(name)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(app.ui, "build_demo", fake_build_demo)
    monkeypatch.setattr("sys.argv", ["app.py", *argv])
    previous = signal.getsignal(signal.SIGTERM)
    try:
        runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
        demo.sigterm = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    demo.settings = built["settings"]
    return demo


def test_app_py_binds_loopback_without_share_unless_told(monkeypatch):
    plain = run_app_py(monkeypatch, [], {})
    assert plain.launched["server_name"] == "127.0.0.1" and plain.launched["share"] is False
    assert plain.launched["max_file_size"] == Settings().max_upload_bytes and plain.launched["server_port"] == 7860
    assert plain.closed  # serve() closes the app when the server stops
    assert run_app_py(monkeypatch, [], {"SPACE_ID": "user/space"}).launched["server_name"] == "0.0.0.0"
    assert run_app_py(monkeypatch, ["--host", "127.0.0.1"], {"SPACE_ID": "u/s"}).launched["server_name"] == "127.0.0.1"
    assert run_app_py(monkeypatch, [], {"LCOAN_HOST": "10.1.2.3"}).launched["server_name"] == "10.1.2.3"
    assert run_app_py(monkeypatch, ["--share"], {}).launched["share"] is True
    assert run_app_py(monkeypatch, [], {"LCOAN_MAX_UPLOAD_MB": "7"}).launched["max_file_size"] == 7 * 1024 * 1024


def test_app_py_closes_the_app_on_sigterm_and_ctrl_c(monkeypatch):
    demo = run_app_py(monkeypatch, [], {}, FakeDemo(interrupt=True))
    assert demo.checks == 2 and demo.closed  # demo.close(): the server stops, Gradio deletes its cached files
    assert demo.launched["prevent_thread_lock"] is True  # app.py waits itself, so that it can close the app
    with pytest.raises(KeyboardInterrupt):  # app.py's SIGTERM handler turns SIGTERM into Ctrl-C
        demo.sigterm(signal.SIGTERM, None)


def _call_api(url: str, api_name: str, data: list) -> str:
    """Gradio's plain HTTP API: POST the inputs, then read the event stream; returns its text."""
    req = urllib.request.Request(f"{url}/gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        event_id = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/{api_name}/{event_id}", timeout=60) as r:
        return r.read().decode()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


OUTSIDE = ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "lcoan" / "checkpoint.py"), "../../../../etc/passwd",
           str(EXAMPLES_DIR / ".." / ".." / "app.py")]


@pytest.mark.parametrize("target", OUTSIDE)
def test_crafted_paths_are_neither_read_nor_served(live, target):
    url = live["url"]
    # an API call naming a server path instead of uploading a file
    stream = _call_api(url, "superresolve", [{"path": target, "meta": {"_type": "gradio.FileData"}}, 2, "lcoan"])
    assert "event: error" in stream and "event: complete" not in stream
    assert "root:" not in stream and "import" not in stream
    # the file route
    for quoted in (target, urllib.request.quote(target, safe="")):
        status, body = _get(f"{url}/gradio_api/file={quoted}")
        assert status in (400, 403, 404), (target, status)
        assert b"root:" not in body and b"import " not in body


def test_an_api_call_leaves_only_its_upload_and_result_and_close_removes_the_results(live, tmp_path):
    service, cache = live["service"], live["cache"]
    picture = tmp_path / "stripes.png"  # not a bundled example: its upload is a new file in the cache
    Image.fromarray(textured(40, 48)).save(picture)
    before = files_in(cache)
    client = Client(live["url"], verbose=False, download_files=str(tmp_path / "downloads"))
    path, report = client.predict(handle_file(str(picture)), 2, "bicubic", api_name="/superresolve")
    assert load_image(path).rgb.shape == (80, 96, 3) and Path(path).name == "stripes_x2_bicubic.png"
    new = files_in(cache) - before
    assert sorted(p.name for p in new) == ["stripes.png", "stripes_x2_bicubic.png"], new  # no stray temp files
    assert all(p.stat().st_size > 0 for p in new)

    # the app's own result folder: one sub-folder per result, only the newest `keep` are kept
    out = service.outputs
    assert any(out.path.rglob("stripes_x2_bicubic.png"))
    tiny = np.zeros((4, 4, 3), np.uint8)
    for i in range(out.keep + 3):
        out.save_png(f"r{i}", tiny)
    assert len(list(out.path.iterdir())) == out.keep == 64
    folder = out.path
    service.close()
    assert not folder.exists()
    # the service stays usable: the next result goes to a new private folder
    path, _ = client.predict(handle_file(str(picture)), 2, "lcoan", api_name="/superresolve")
    assert load_image(path).rgb.shape == (80, 96, 3)
    assert service.outputs.path != folder and service.outputs.path.exists()
