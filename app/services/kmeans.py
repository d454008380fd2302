"""k-means live on the user's image: the match embeddings of the traced LCoAN pass, clustered step by
step with the training update (:func:`lcoan.introspect.kmeans_live.kmeans_live`). Plain Python, no Gradio."""
from __future__ import annotations

from typing import Any

from lcoan.introspect.kmeans_live import STARTS, KMeansRun, kmeans_live

from .inspection import Inspection, InspectService
from .models import ServiceError

MAX_STEPS = 40
MAX_BATCH = 65536


def check(start: Any, steps: Any, decay: Any, batch: Any) -> tuple[str, int, float, int]:
    """The settings as numbers, or a ServiceError that says which one is wrong."""
    if start not in STARTS:
        raise ServiceError(f"start must be one of {STARTS}, got {start!r}")
    try:
        steps, decay, batch = int(steps), float(decay), int(batch)
    except (TypeError, ValueError):
        raise ServiceError("steps and batch must be whole numbers, decay a number in [0, 1)") from None
    if not 0 <= steps <= MAX_STEPS:
        raise ServiceError(f"steps must be between 0 and {MAX_STEPS}, got {steps}")
    if not 0.0 <= decay < 1.0:
        raise ServiceError(f"decay must be in [0, 1) (training uses 0.999), got {decay}")
    if not 1 <= batch <= MAX_BATCH:
        raise ServiceError(f"batch must be between 1 and {MAX_BATCH:,} positions, got {batch}")
    return start, steps, decay, batch


def run(inspector: InspectService, image: Any, scale: Any, region: str = "downscale", start: str = "trained",
        steps: Any = 12, decay: Any = 0.9, batch: Any = 4096, reseed_dead: bool | None = None,
        seed: int = 0) -> tuple[Inspection, KMeansRun]:
    """The run on ``image``: trained or fresh centroids, ``steps`` EMA steps of ``batch`` positions.
    ``reseed_dead`` None: as the checkpoint was trained."""
    start, steps, decay, batch = check(start, steps, decay, batch)
    insp = inspector.inspect(image, scale, region or "downscale")
    p = insp.lcoan.patterns[0]
    cfg = inspector.models.get("lcoan", insp.scale).model.cfg
    reseed = cfg.reseed_dead if reseed_dead is None else bool(reseed_dead)
    key = ("kmeans", start, steps, decay, batch, reseed, seed)
    result = insp.memo(key, lambda: kmeans_live(p.key, insp.size, p.centroids[0], start, steps=steps, batch=batch,
                                                decay=decay, init_iters=cfg.kmeans_init_iters,
                                                reseed_dead=reseed, seed=seed))
    return insp, result


def payload(insp: Inspection, result: KMeansRun, training_decay: float) -> dict:
    """The JSON the /kmeans_live endpoint returns: settings and per-frame numbers."""
    return {**result.summary(), "training_decay": training_decay, "lr_size": list(insp.size),
            "region": insp.region.note}
