"""Load test (slow): the real ``python app.py`` in a subprocess, tiny random checkpoints, real photos
(assets/examples), 8 concurrent gradio_client calls from 8 threads (8 users), loopback only.

The server runs with one heavy job at a time (LCOAN_CONCURRENCY=1) and at most MAX_QUEUE waiting
(LCOAN_MAX_QUEUE), so of 8 simultaneous calls some are served and the rest are told the queue is
full. Checked: every call gets a correct result or that message, the server answers afterwards,
its peak RSS (VmHWM) stays bounded, it listens on 127.0.0.1 only, and SIGTERM shuts it down with
its temporary files removed. The fast checks of the same limits are in test_app_limits.py.

    python -m pytest -m slow tests/test_app_load.py -s     # -s prints the measured times and memory
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from app.services.examples import EXAMPLES_DIR  # noqa: E402
from lcoan.imaging.io import load_image  # noqa: E402
from tests.tiny_checkpoints import make_checkpoints  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_CALLS = 8
MAX_QUEUE = 2  # LCOAN_MAX_QUEUE for this server: 1 running + 2 waiting, the others are refused
START_TIMEOUT = 300  # s: importing torch + gradio on a loaded 2-core machine takes 15-60 s
CALL_TIMEOUT = 300  # s per call: a stuck call fails the test instead of hanging it
BUSY = re.compile(r"queue is full|busy|try again", re.I)
MB = 1024 * 1024
# Peak RSS bound (see the test): 8 callers may cost at most JOBS_ALLOWED times what the heaviest call
# alone added to the idle server, plus SLACK (allocator growth: each job may run on another worker
# thread). Measured on the 2-core development machine: idle 390 MB, one call +100-112 MB, so the bound
# is ~730 MB; 8 callers peaked at 503-611 MB (3 runs) with LCOAN_CONCURRENCY=1, and at 854 MB with
# LCOAN_CONCURRENCY=8 (all 8 jobs at once), which this bound fails.
JOBS_ALLOWED = 2
SLACK = 128 * MB
ABSOLUTE_CAP = 2 * 1024 * MB  # whatever the per-job figure: a server with tiny models stays under 2 GB

MODE = "upscale"  # the input is the LR image: x4 gives 768x768 results, dense NLA on 9 tiles
# 8 distinct (example, scale) pairs, so that no call is answered from the result cache
CALLS = [(name, scale) for scale in (2, 4) for name in ("rocket_tower.png", "chelsea_fur.png", "coffee_wood.png",
                                                         "astronaut_patch.png")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes, from /proc/<pid>/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] != "0A" or int(hex_port, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # per 32-bit word, host order
            found.add(socket.inet_ntop(family, raw))
    return found


def server_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LCOAN_", "GRADIO_")) and k != "SPACE_ID"}
    env.update(LCOAN_MAX_QUEUE=str(MAX_QUEUE), LCOAN_CONCURRENCY="1", LCOAN_THREADS="1", LCOAN_MAX_UPLOAD_MB="2",
               TMPDIR=str(tmp / "tmp"), GRADIO_TEMP_DIR=str(tmp / "gradio"), GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return env


def wait_until_up(proc: subprocess.Popen, url: str, log: Path) -> float:
    start = time.monotonic()
    while time.monotonic() - start < START_TIMEOUT:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    pytest.fail(f"app.py did not answer within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load")
    (tmp / "tmp").mkdir()
    (tmp / "gradio").mkdir()
    ckpt = make_checkpoints(tmp / "ckpt", scales=(2, 4))
    port = free_port()
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--checkpoints", str(ckpt)],
                                cwd=ROOT, env=server_env(tmp), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        started = wait_until_up(proc, url + "/", log)
        idle = memory(proc.pid)
        print(f"\napp.py answered after {started:.1f} s; idle RSS {idle['VmRSS'] / MB:.0f} MB "
              f"(peak so far {idle['VmHWM'] / MB:.0f} MB)")
        static = {p for p in (tmp / "gradio").rglob("*") if p.is_file()}  # copies made at start-up
        yield {"proc": proc, "port": port, "url": url, "tmp": tmp, "log": log, "idle": idle, "static": static}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def client(url: str, folder: Path) -> Client:
    return Client(url, verbose=False, download_files=str(folder))


def check_result(result, name: str, scale: int) -> None:
    """Three lossless PNGs of the input upscaled ``scale`` times, and the report saying so."""
    *pngs, report = result
    h, w = load_image(EXAMPLES_DIR / name).rgb.shape[:2]
    h, w = h * scale, w * scale
    assert report["mode"] == MODE and report["output_size"] == [w, h] and set(report["methods"]) == {
        "bicubic", "lcoan", "dense"}
    region = report["region_lr"]
    for method, path in zip(("bicubic", "lcoan", "none", "dense"), pngs):  # the endpoint's METHODS order
        if path is None:  # a method without a checkpoint here (the tiny set has no no-attention model)
            continue
        assert Path(path).read_bytes()[:8] == PNG_MAGIC
        rgb = load_image(path).rgb
        shape = (h, w) if report["methods"][method]["ran_on"] == "whole" else (
            region["height"] * scale, region["width"] * scale)  # the region methods' PNG holds their region
        assert rgb.shape == (*shape, 3) and rgb.dtype == np.uint8


def test_eight_concurrent_calls_get_a_result_or_queue_full_and_memory_stays_bounded(server, tmp_path):
    url, pid = server["url"], server["proc"].pid
    assert listening_addresses(server["port"]) == {"127.0.0.1"}  # loopback only: nothing on 0.0.0.0 / ::

    # the heaviest call first (224x172 -> 896x688, dense NLA on 96x96 LR tiles): what it adds to the
    # idle server's peak is one job's working set (upload, three methods, PNGs, cached results) plus
    # one-time allocations
    first = client(url, tmp_path / "first")
    t = time.monotonic()
    result = first.submit(handle_file(str(EXAMPLES_DIR / "text_page.png")), 4, MODE, True,
                          api_name="/compare").result(timeout=CALL_TIMEOUT)
    single = time.monotonic() - t
    check_result(result, "text_page.png", 4)
    after_one = memory(pid)

    clients = [client(url, tmp_path / f"c{i}") for i in range(N_CALLS)]
    barrier = threading.Barrier(N_CALLS)

    def call(i: int):
        name, scale = CALLS[i]
        barrier.wait(timeout=60)
        start = time.monotonic()
        try:
            out = clients[i].submit(handle_file(str(EXAMPLES_DIR / name)), scale, MODE, True,
                                    api_name="/compare").result(timeout=CALL_TIMEOUT)
            return "ok", out, time.monotonic() - start
        except Exception as exc:  # noqa: BLE001 - classified below
            return "error", exc, time.monotonic() - start

    t = time.monotonic()
    with ThreadPoolExecutor(N_CALLS) as pool:
        outcomes = list(pool.map(call, range(N_CALLS)))
    wall = time.monotonic() - t
    peak = memory(pid)

    served, busy = [], []
    for i, (kind, value, seconds) in enumerate(outcomes):
        name, scale = CALLS[i]
        if kind == "ok":
            check_result(value, name, scale)
            served.append(seconds)
        else:
            assert BUSY.search(str(value)), f"call {i} ({name} x{scale}) failed without a busy message: {value!r}"
            assert "Traceback" not in str(value)
            busy.append(seconds)
    print(f"one call alone: {single:.1f} s; {N_CALLS} at once: {len(served)} served "
          f"({', '.join(f'{s:.1f}' for s in sorted(served))} s), {len(busy)} refused as queue full "
          f"({', '.join(f'{s:.2f}' for s in sorted(busy))} s), all done in {wall:.1f} s")
    print(f"RSS after one call {after_one['VmRSS'] / MB:.0f} MB (peak {after_one['VmHWM'] / MB:.0f} MB); "
          f"peak after {N_CALLS} concurrent calls {peak['VmHWM'] / MB:.0f} MB")
    assert busy, f"expected some calls refused: 1 running + {MAX_QUEUE} waiting < {N_CALLS}"
    assert len(served) >= 1 + MAX_QUEUE  # the first arrivals are queued and served, none dropped

    # Memory: one heavy job at a time, so 8 callers cost about one job (the running one) plus what
    # the queue holds (uploads, cached results); 8 jobs at once would cost about 8 jobs' working sets.
    one_job = max(after_one["VmHWM"] - server["idle"]["VmRSS"], 0)
    bound = server["idle"]["VmRSS"] + JOBS_ALLOWED * one_job + SLACK
    print(f"one call added {one_job / MB:.0f} MB to the idle RSS; bound {bound / MB:.0f} MB")
    assert peak["VmHWM"] <= bound, (server["idle"], after_one, peak)
    assert peak["VmHWM"] <= ABSOLUTE_CAP

    # still responsive: a fresh call (not cached) succeeds
    t = time.monotonic()
    path, report = client(url, tmp_path / "after").submit(
        handle_file(str(EXAMPLES_DIR / "brick_wall.png")), 4, "lcoan", api_name="/superresolve").result(
        timeout=CALL_TIMEOUT)
    print(f"a call afterwards: {time.monotonic() - t:.1f} s")
    assert Path(path).read_bytes()[:8] == PNG_MAGIC and load_image(path).rgb.shape == (768, 768, 3)
    assert report["cached"] is False and report["output_size"] == [768, 768]


def test_sigterm_shuts_down_and_removes_temporary_files(server):
    proc, tmp = server["proc"], server["tmp"]
    outputs = list((tmp / "tmp").glob("lcoan-app-*"))
    assert outputs and any(outputs[0].rglob("*.png")), "the calls above should have written result files"
    assert any(p.is_file() for p in (tmp / "gradio").rglob("*")), "Gradio should hold uploads and results"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail("app.py did not stop within 60 s of SIGTERM")
    assert proc.returncode == 0, server["log"].read_text()[-3000:]  # a clean exit, as after Ctrl-C
    left = list((tmp / "tmp").glob("lcoan-app-*"))
    assert not left, f"result folder left behind: {left}"
    # Gradio's cache: the result copies and uploads are deleted when the server closes; Gradio keeps
    # only the copies it made at start-up (examples, figures of the page: a fixed set, kept by design)
    kept = {p for p in (tmp / "gradio").rglob("*") if p.is_file()}
    assert kept <= server["static"], sorted(p.name for p in kept - server["static"])
