"""An in-process Gradio app with the "inside LCoA" tabs on tiny random checkpoints, for the
endpoint and browser tests."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from app.services.models import ModelService
from app.session import Shared
from app.tabs import about, attention, clusters, efficiency, kmeans, similarity, walkthrough
from app.tabs.superresolve import default_scale
from app.ui import takes_shared

INSIDE_TABS = (clusters, attention, walkthrough, kmeans, similarity, efficiency, about)


def build(service: ModelService) -> gr.Blocks:
    with gr.Blocks(title="LCoAN inside (test)") as demo:
        shared = Shared.create(default_scale(service.scales()))  # one picture and scale, as in the app
        with gr.Tabs():
            for module in INSIDE_TABS:
                with gr.Tab(module.TITLE):
                    module.build(service, shared) if takes_shared(module.build) else module.build(service)
    return demo.queue()


def launch(folder: Path) -> tuple[gr.Blocks, str, ModelService]:
    service = ModelService(folder)
    demo = build(service)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    return demo, url, service
