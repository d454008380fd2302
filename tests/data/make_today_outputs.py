"""Writes tests/data/today_outputs.pt: outputs of the whole-image path as it was before issue 25's
speed work (commit 065bae5), for tests/test_speed_path.py. Run once at that commit:

    python -m tests.data.make_today_outputs

Seeded random networks (the shipped lcoan-s-x2 config: logit scale 8, branch scale 1; plus rounds 2,
dense and none), a smooth random image; single passes, a batch of two, and tiled passes with padding.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from lcoan.config import preset
from lcoan.inference import sr_tensor
from lcoan.network import LCoAN

OUT = Path(__file__).with_name("today_outputs.pt")
CONFIGS = {
    "lsp": dict(attention="lsp", logit_scale=8.0, attn_res_scale=1.0),
    "lsp-r2": dict(attention="lsp", rounds=2, window=256),
    "lsp-noshare": dict(attention="lsp", share_pattern=False),
    "dense": dict(attention="dense"),
    "none": dict(attention="none"),
}


def image(seed: int, h: int, w: int, b: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(b, 3, h // 4 + 1, w // 4 + 1, generator=g)
    x = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return (x + 0.05 * torch.rand(b, 3, h, w, generator=g)).clamp(0, 1)


def model(name: str) -> LCoAN:
    torch.manual_seed(123)
    return LCoAN(preset("s", **CONFIGS[name])).eval()


def cases() -> dict[str, tuple]:
    """name -> (config name, input, sr_tensor keyword arguments); batch inputs go through forward."""
    return {
        "single": (image(1, 44, 40), {}),
        "batch2": (image(2, 24, 30, b=2), None),
        "tiled": (image(3, 48, 60), dict(tile=28, overlap=8, pad=8)),
        "tiled-rect": (image(4, 36, 50), dict(tile=(22, 32), overlap=6, pad=4)),
    }


def main() -> None:
    store = {}
    with torch.inference_mode():
        for name in CONFIGS:
            net = model(name)
            for case, (x, kwargs) in cases().items():
                out = net(x) if kwargs is None else sr_tensor(net, x, **kwargs)
                store[f"{name}/{case}"] = out.clone()
    torch.save(store, OUT)
    print(f"wrote {OUT} ({len(store)} outputs)")


if __name__ == "__main__":
    main()
