"""The app's tabs: one module per tab, each with ``build(service)`` or ``build(service, shared)`` called
inside its ``gr.Tab`` (see :mod:`app.ui` for the registry and :class:`app.session.Shared`).

Two ways a tab reports a refused request, both a message rather than a traceback:

* :func:`guarded` (API endpoints): the error becomes a ``gr.Error`` (gradio_client raises it as
  ``AppError`` with the same text);
* :func:`reported` (UI events): one message in the tab's status line plus a toast, the other outputs
  left as they were, so no "Error" badge appears on every output.

:func:`gpu` wraps the heavy functions with ``spaces.GPU`` when the ``spaces`` package (Hugging Face
ZeroGPU) is importable, and leaves them as they are otherwise (CPU).
"""
from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from app.services.models import ServiceError

log = logging.getLogger("lcoan.app")
MEMORY = "The server ran out of memory for this image; try a smaller one or the 'downscale first' option."

try:  # Hugging Face ZeroGPU: a GPU is attached while a decorated function runs
    import spaces  # type: ignore[import-not-found]
except ImportError:  # the usual case: CPU
    spaces = None


def gpu(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``spaces.GPU(fn)`` on a ZeroGPU Space (``spaces`` importable), else ``fn`` unchanged."""
    return spaces.GPU(fn) if spaces is not None else fn


def message(exc: BaseException) -> str:
    """The user-facing text of a failure: a ServiceError's own words, else a short generic line."""
    if isinstance(exc, ServiceError):
        return str(exc)
    if isinstance(exc, gr.Error):
        return str(exc.message)
    if isinstance(exc, MemoryError):
        return MEMORY
    log.exception("unexpected error in an event")
    return f"Something went wrong on the server ({type(exc).__name__}); the rest of the app still works."


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Service errors (bad input, missing checkpoint, size policy) become gr.Error messages."""
    @functools.wraps(fn)  # keeps the signature: Gradio reads it for gr.Progress / gr.SelectData
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ServiceError, MemoryError) as exc:
            raise gr.Error(message(exc)) from None
    return wrapper


def status_text(text: str) -> str:
    """How a refusal reads in a status line."""
    return f"⚠️ **{text}**"


def reported(outputs: int, status: int | None = 0) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for UI events with ``outputs`` outputs, ``status`` the index of the status Markdown
    (None: the event has none, the toast alone says it): a failure shows its message there and as a
    toast and skips every other output. Works for plain functions and generators (streaming
    events; Gradio tells them apart by the wrapper's kind). API clients of such an endpoint get the
    message in that status output."""
    def failed(exc: BaseException) -> Any:
        text = message(exc)
        gr.Warning(text)
        values = [gr.skip()] * outputs
        if status is not None:
            values[status] = status_text(text)
        return values[0] if outputs == 1 else tuple(values)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def stream(*args, **kwargs):
                try:
                    yield from fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                    yield failed(exc)
            return stream

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                return failed(exc)
        return wrapper
    return decorate
