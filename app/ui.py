"""The app's layout: a header, then one tab per module of app/tabs, then the API endpoints.

To add a tab, write ``app/tabs/<name>.py`` with ``build(service) -> None`` or
``build(service, shared) -> None`` (called inside the ``gr.Tab``) and add one line to :data:`TABS`.
``shared`` is the session's :class:`app.session.Shared`: the one picture and scale of every tab.
A tab that shows the common picture calls ``shared.link(image, scale)`` with its own components, and
they follow the picture and scale chosen in any other tab (set when the tab is selected).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

import gradio as gr

from . import api
from .services.models import ModelService
from .session import Shared
from .settings import Settings
from .tabs import about, attention, clusters, efficiency, experiments, kmeans, similarity, superresolve, walkthrough
from .tabs.superresolve import default_scale

TITLE = "LCoAN Studio"
CITATION = ("G.-Y. Chen, M. Gan, J. Su, Y. Zheng, *Efficient Learnable Collaborative Attention for Single "
            "Image Super-Resolution*, arXiv:2404.04922 (2024).")

# (tab title, build function), in display order; build(service) or build(service, shared).
TABS: list[tuple[str, Callable[..., None]]] = [
    ("Super-resolve", superresolve.build),
    *((m.TITLE, m.build) for m in (clusters, attention, walkthrough, kmeans, similarity, efficiency, experiments,
                                    about)),
]


def header(service: ModelService) -> None:
    gr.Markdown(f"# {TITLE}\nSingle-image super-resolution with LCoAN (learnable sparse pattern + collaborative "
                f"attention), compared with bicubic and a dense non-local baseline. Paper: {CITATION} "
                "This is an independent PyTorch implementation with small models trained for this project "
                "(not the paper's weights).")
    gr.Markdown(service.status(), elem_id="model-status")


def takes_shared(build: Callable[..., None]) -> bool:
    """Whether a tab's build function accepts the shared picture/scale as a second argument."""
    params = list(inspect.signature(build).parameters.values())
    return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def build_demo(service: ModelService | None = None, settings: Settings | None = None) -> gr.Blocks:
    """The whole app, queue configured (bounded), ready for ``launch(**settings.launch_kwargs())``."""
    if service is None:
        service = ModelService.from_settings(settings or Settings.from_env())
    settings = service.settings
    # delete_cache: Gradio's copies of uploads and results older than an hour go, checked hourly
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        header(service)
        shared = Shared.create(default_scale(service.scales()))
        with gr.Tabs():
            for title, build in TABS:
                with gr.Tab(title):
                    build(service, shared) if takes_shared(build) else build(service)
        api.register(service)
    demo.queue(default_concurrency_limit=settings.concurrency_limit, max_size=settings.max_queue)
    return demo
