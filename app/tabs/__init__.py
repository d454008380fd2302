"""The app's tabs: one module per tab, each with build(service) called inside the tab."""
from __future__ import annotations

import functools
from typing import Any, Callable

import gradio as gr

from app.service import ServiceError


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Service errors (bad input, missing checkpoint, size policy) become gr.Error messages."""
    @functools.wraps(fn)  # keeps the signature: Gradio reads it for gr.Progress / gr.SelectData
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ServiceError as exc:
            raise gr.Error(str(exc)) from None
        except MemoryError:
            raise gr.Error("The server ran out of memory for this image; try a smaller one.") from None
    return wrapper
