# ruff: noqa
# (Gradio writes a .pyi stub beside any module that defines a component class, copying this file's lines:
# app/picture.pyi is committed as Gradio makes it, and this line keeps the linter off the stub.)
"""The picture upload of every tab (:class:`PictureInput`)."""
from __future__ import annotations

from typing import Any

import gradio as gr


class PictureInput(gr.Image):
    """A ``gr.Image`` (make it with ``type="filepath"``) whose preprocessing never raises.

    Gradio's own opens the file with PIL and, for a file that is not an image (a text file named .png),
    left an ``UnidentifiedImageError`` traceback in the server log from every handler that takes the
    picture, the shared-picture ones included. This one passes such a file's path on, so the project's
    loader names the problem in each tab's status line, and the shared picture follows it (the other tabs
    say the same instead of silently keeping the old picture). ``is_template``: the page and the API
    description see a plain Image. A class, not an instance attribute: Gradio re-creates components
    from their class during a session.
    """

    is_template = True  # no __init__ of its own: Gradio reads the component's props from Image.__init__

    def preprocess(self, payload: Any) -> Any:
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError):  # PIL.UnidentifiedImageError is an OSError
            path = getattr(payload, "path", None)
            return str(path) if path else None
