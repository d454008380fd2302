"""Every limit and server setting of the app in one place, read from the environment.

=========================  ======================  ===========================================
Setting                    Environment variable    Default
=========================  ======================  ===========================================
checkpoints                LCOAN_CHECKPOINTS       ``checkpoints/`` of the repository
host                       LCOAN_HOST, then        127.0.0.1 (0.0.0.0 on a Hugging Face Space,
                           GRADIO_SERVER_NAME      recognised by ``SPACE_ID``)
port                       LCOAN_PORT, then        7860
                           GRADIO_SERVER_PORT
max_upload_mb              LCOAN_MAX_UPLOAD_MB     20 (refused by the server above it)
max_output_pixels          LCOAN_MAX_OUTPUT_PIXELS 40,000,000 super-resolved pixels (memory); a
                                                   larger result is avoided by downscaling the
                                                   input first, and the page says so
lcoan_tile                 LCOAN_TILE              384 (LR tile side of the whole-image LCoAN pass;
                                                   about 1.1 GiB peak for the S model, fewer
                                                   overlapping pixels than 256: 12 tiles for
                                                   1280x1024 instead of 30)
dense_tile                 LCOAN_DENSE_TILE        96 (largest region side, LR pixels, on which
                                                   no-attention and dense NLA run)
tile_overlap               -                       16 LR pixels
concurrency_limit          LCOAN_CONCURRENCY       1 job at a time (CPU-bound)
max_queue                  LCOAN_MAX_QUEUE         16 waiting requests, then "queue full"
cache_mb                   LCOAN_CACHE_MB          512 MB of cached results
threads                    LCOAN_THREADS           auto: free cores (cores minus those busy over
                                                   a 0.2 s sample), at least 1, at most 8
=========================  ======================  ===========================================

The command-line flags of ``app.py`` override all of these.

Why ``threads`` looks at the load: on a shared CPU, asking PyTorch for more threads than there are
idle cores makes inference several times *slower* (measured here: a 64 x 64 x4 pass took 0.35 s
with 1 thread and 2-7 s with 2 threads while two training runs used both cores).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def auto_threads() -> int:
    """Cores not busy right now (:func:`lcoan.inference.idle_cores`), between 1 and 8."""
    from lcoan.inference import idle_cores  # torch comes with it: imported only when a setting is made

    return min(8, idle_cores())


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    checkpoints: Path = ROOT / "checkpoints"
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    max_upload_mb: int = 20
    max_output_pixels: int = 40_000_000
    lcoan_tile: int = 384
    dense_tile: int = 96
    tile_overlap: int = 16
    concurrency_limit: int = 1
    max_queue: int = 16
    cache_mb: int = 512
    threads: int = field(default_factory=auto_threads)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        host = (env.get("LCOAN_HOST") or env.get("GRADIO_SERVER_NAME")
                or ("0.0.0.0" if env.get("SPACE_ID") else d.host))
        port_var = "LCOAN_PORT" if (env.get("LCOAN_PORT") or "").strip() else "GRADIO_SERVER_PORT"
        return cls(
            checkpoints=Path(env["LCOAN_CHECKPOINTS"]) if env.get("LCOAN_CHECKPOINTS") else d.checkpoints,
            host=host,
            port=_int(env, port_var, d.port),
            max_upload_mb=_int(env, "LCOAN_MAX_UPLOAD_MB", d.max_upload_mb),
            max_output_pixels=_int(env, "LCOAN_MAX_OUTPUT_PIXELS", d.max_output_pixels),
            lcoan_tile=_int(env, "LCOAN_TILE", d.lcoan_tile, minimum=32),
            dense_tile=_int(env, "LCOAN_DENSE_TILE", d.dense_tile, minimum=16),
            concurrency_limit=_int(env, "LCOAN_CONCURRENCY", d.concurrency_limit),
            max_queue=_int(env, "LCOAN_MAX_QUEUE", d.max_queue),
            cache_mb=_int(env, "LCOAN_CACHE_MB", d.cache_mb),
            threads=_int(env, "LCOAN_THREADS", d.threads),
        )

    def replace(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def size_policy(self) -> str:
        """The size policy in words, shown in the UI and the API docs."""
        return (f"Uploads up to {self.max_upload_mb} MB, any size the image loader accepts. Bicubic and LCoAN run on "
                f"the whole image (LCoAN in overlapping {self.lcoan_tile}x{self.lcoan_tile} LR tiles, with progress); "
                f"a result above {self.max_output_pixels:,} pixels is avoided by downscaling the input first (said "
                f"on screen). No attention and the dense NLA baseline run on the region you pick (at most "
                f"{self.dense_tile}x{self.dense_tile} LR pixels): dense NLA is quadratic in the number of pixels, "
                "so it never runs on a whole photo.")

    def launch_kwargs(self) -> dict:
        """Keyword arguments for ``demo.launch``: bind address, no share link, upload limit."""
        return {"server_name": self.host, "server_port": self.port, "share": self.share,
                "max_file_size": self.max_upload_bytes, "show_error": False}
