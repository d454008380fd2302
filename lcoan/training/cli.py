"""The flags of ``python -m lcoan.train`` (:func:`parse_args`); the loop is :mod:`lcoan.training.train`."""
from __future__ import annotations

import argparse

from ..config import ATTENTION_KINDS, PRESETS, SCALES

DESCRIPTION = "Train an LCoAN-family network; resumable, with held-out validation, CSV log and a curve plot."


def _share(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lcoan.train", description=DESCRIPTION)
    p.add_argument("--preset", default="s", choices=sorted(PRESETS))
    p.add_argument("--scale", type=int, default=2, choices=SCALES)
    p.add_argument("--attention", default="lsp", choices=ATTENTION_KINDS)
    p.add_argument("--no-share", action="store_true", help="LSP-only ablation: no CoA sharing")
    p.add_argument("--freeze-centroids", action="store_true", help="reference-code behaviour: no EMA")
    p.add_argument("--logit-scale", type=float, default=None,
                   help="learnable score scale, initialised at this value (not in the paper; default: none)")
    p.add_argument("--reseed-dead", action="store_true", help="re-seed dead k-means centroids (not in the paper)")
    p.add_argument("--attn-res-scale", type=float, default=None,
                   help="scale of the attention branch (default: the preset's, 0.1 as in the paper)")
    p.add_argument("--data", required=True, help="folder of HR training images")
    p.add_argument("--out", required=True, help="run folder (log, curve, resume state)")
    p.add_argument("--iters", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48, help="LR patch size")
    p.add_argument("--periodic", type=_share, default=0.0,
                   help="share of training patches that tile one motif of the photo with a random period, "
                        "for long-range repetition (not in the paper; default 0)")
    p.add_argument("--mine", type=_share, default=0.0,
                   help="share of training patches drawn from the crops of the photos that repeat most beyond "
                        "the receptive field (lcoan.training.data.MinedCrops; not in the paper; default 0)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--min-lr", type=float, default=5e-6)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--val-hr-size", type=int, default=192, help="HR side of the validation centre crops")
    p.add_argument("--val-split", type=int, default=40, help="hold out every N-th image (by name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: CUDA when torch sees a GPU, else CPU (CPU runs are bit-reproducible, CUDA runs are not)")
    p.add_argument("--init-from", help="checkpoint folder to start from (matching tensors only)")
    p.add_argument("--export", help="checkpoint folder to write at the end")
    p.add_argument("--stop-after", type=int, default=0, help="stop (resumably) after this many steps in this process")
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="stop (resumably) once this process has trained this many seconds (0: no limit)")
    p.add_argument("--export-partial", action="store_true",
                   help="with --export: also export when stopping before the last step (the card states the step)")
    return p.parse_args(argv)
