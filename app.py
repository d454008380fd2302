"""LCoAN Studio: ``python app.py`` serves the Gradio app on http://127.0.0.1:7860.

    python app.py [--host HOST] [--port PORT] [--checkpoints DIR] [--threads N] [--share]

Settings (limits, bind address, checkpoint folder) come from app/settings.py and LCOAN_* environment
variables (Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured after LCOAN_HOST / LCOAN_PORT);
the flags override them. On a Hugging Face Space (SPACE_ID set) the app binds 0.0.0.0, and with the
``spaces`` package installed (ZeroGPU) the heavy functions run under ``spaces.GPU``.
A public share link is made only with --share. SIGTERM (``kill``, a service manager) stops the app
like Ctrl-C: the server closes and the temporary result files and Gradio's cached copies are removed.
"""
from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

import gradio as gr

from app.settings import Settings
from app.ui import build_demo
from lcoan.inference import reuse_freed_memory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="LCoAN Studio (Gradio app)")
    p.add_argument("--host", help="bind address (default 127.0.0.1; 0.0.0.0 on a Space)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--checkpoints", type=Path, help="folder of checkpoint folders (default checkpoints/)")
    p.add_argument("--threads", type=int, help="PyTorch threads (default: the idle cores)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    s = base or Settings.from_env()
    changes = {k: v for k, v in (("host", args.host), ("port", args.port), ("checkpoints", args.checkpoints),
                                 ("threads", args.threads)) if v is not None}
    return s.replace(share=bool(args.share), **changes)


def stop_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread, as Ctrl-C does: :func:`serve` then closes
    the app (Gradio deletes its cache) and the interpreter exits normally (the result folder is removed)."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def serve(demo: gr.Blocks, settings: Settings) -> None:
    """Launch and wait for Ctrl-C or SIGTERM, then close the app itself: ``demo.close()`` also ends the
    open event streams, so the server shuts down fully and deletes Gradio's cached files."""
    demo.launch(**settings.launch_kwargs(), prevent_thread_lock=True)
    try:
        while demo.is_running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("Stopping: closing the server and removing temporary files.")
    finally:
        demo.close()


if __name__ == "__main__":
    settings = settings_from(parse_args())
    stop_on_sigterm()
    reuse_freed_memory(2**30)  # a job's large buffers are reused by the next tile and job (lcoan.inference)
    serve(build_demo(settings=settings), settings)
