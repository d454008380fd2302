"""Ready for a Hugging Face Space: ``python app.py`` started as a Space starts it (``SPACE_ID`` set,
Gradio's ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` honoured), serves the page and stops on
SIGTERM; ``spaces.GPU`` wraps the heavy functions only when the ``spaces`` package is importable."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app.settings import Settings
from tests.tiny_checkpoints import make_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gradio_server_variables_are_honoured_after_the_app_s_own():
    env = {"GRADIO_SERVER_NAME": "127.0.0.2", "GRADIO_SERVER_PORT": "7999", "SPACE_ID": "user/space"}
    s = Settings.from_env(env)
    assert (s.host, s.port) == ("127.0.0.2", 7999)
    assert Settings.from_env({"SPACE_ID": "user/space"}).host == "0.0.0.0"
    both = Settings.from_env({**env, "LCOAN_HOST": "127.0.0.3", "LCOAN_PORT": "8001"})
    assert (both.host, both.port) == ("127.0.0.3", 8001)
    with pytest.raises(ValueError, match="GRADIO_SERVER_PORT must be an integer"):
        Settings.from_env({"GRADIO_SERVER_PORT": "http"})


def test_gpu_decorator_is_a_no_op_without_spaces(monkeypatch):
    import app.errors as errors

    def heavy(x):
        return x + 1
    monkeypatch.setattr(errors, "spaces", None)
    assert errors.gpu(heavy) is heavy

    class FakeSpaces:  # what ZeroGPU's package does: wrap the function
        @staticmethod
        def GPU(fn):
            fn.on_gpu = True
            return fn
    monkeypatch.setattr(errors, "spaces", FakeSpaces)
    assert errors.gpu(heavy).on_gpu is True


@pytest.mark.slow  # a real process: imports torch and gradio (~50 s on the loaded 2-core machine)
def test_app_py_starts_as_on_a_space_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "SPACE_ID": "user/lcoan-studio", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "LCOAN_CHECKPOINTS": str(make_checkpoints(tmp_path / "ckpt")),
           "LCOAN_THREADS": "1"}
    env.pop("LCOAN_HOST", None)
    env.pop("LCOAN_PORT", None)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 240, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    page = r.read().decode()
                break
            except OSError:
                time.sleep(1)
        log = proc.stdout.read() if proc.poll() is not None else ""
        assert page is not None, f"app.py did not serve on 127.0.0.1:{port}: {log}"
        assert "LCoAN Studio" in page and str(tmp_path) not in page  # no server folder in the page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=30) as r:
            assert b"/superresolve" in r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Stopping" in out, (proc.returncode, out[-2000:])
