"""The whole app running in-process on a free loopback port, for the endpoint and browser tests."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import torch

from app.services.models import ModelService
from app.settings import Settings
from app.ui import build_demo
from tests.tiny_checkpoints import KINDS, make_checkpoints


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_kinds(folder: Path) -> Path:
    """Tiny LCoAN, dense and no-attention checkpoints at x2 and x4 in ``folder``."""
    return make_checkpoints(folder, scales=(2, 4), kinds=(*KINDS, ("none", "none")))


@contextmanager
def live_app(checkpoints: Path, **settings: object) -> Iterator[tuple[gr.Blocks, str, ModelService]]:
    """(demo, url, service) of the app on 127.0.0.1 with these checkpoints and settings (1 thread);
    closed, and PyTorch's thread count restored, on exit."""
    before = torch.get_num_threads()
    config = Settings(checkpoints=checkpoints, port=free_port(), threads=1).replace(**settings)
    service = ModelService.from_settings(config)
    demo = build_demo(service)
    demo.launch(**config.launch_kwargs(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo, f"http://127.0.0.1:{config.port}", service
    finally:
        demo.close()
        service.close()
        torch.set_num_threads(before)
