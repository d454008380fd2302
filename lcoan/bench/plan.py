"""Which sizes a run measures and how often each case is timed (the full run stays under 10 minutes)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .workload import KINDS

LONG_CALL_S = 5.0  # calls at least this long: no separate warm-up, the profiled call counts as a sample
SINGLE_CALL_S = 30.0  # calls at least this long are timed once (the 10-minute budget of the full run)


@dataclass(frozen=True)
class Plan:
    """What one run measures, per preset: LR sizes (square), the largest size per kind, network-split sizes."""

    presets: tuple[str, ...]
    sizes: dict[str, tuple[int, ...]]
    max_size: dict[str, int]  # per kind; dense-naive is also capped by --naive-gib
    network_sizes: dict[str, tuple[int, ...]]
    preset_max: dict[tuple[str, str], int] = field(default_factory=dict)  # (preset, kind) overrides

    def kinds_at(self, preset_name: str, size: int) -> list[str]:
        return [k for k in KINDS if size <= self.preset_max.get((preset_name, k), self.max_size[k])]


FULL = Plan(presets=("paper", "s"),
            sizes={"paper": (32, 64, 96, 128, 256, 512), "s": (32, 64, 96, 128, 256, 512)},
            max_size={"lsp+coa": 512, "lsp": 512, "dense": 256, "dense-naive": 128},
            network_sizes={"paper": (48,), "s": (128,)},
            preset_max={("paper", "lsp"): 256})
QUICK = Plan(presets=("tiny",), sizes={"tiny": (8, 12, 16, 24)},
             max_size={"lsp+coa": 24, "lsp": 24, "dense": 16, "dense-naive": 12},
             network_sizes={"tiny": (12,)})


def repeats_for(seconds: float, quick: bool) -> int:
    """Timed repeats of a case from the duration of its warm-up call."""
    if quick:
        return 2
    if seconds >= SINGLE_CALL_S:
        return 1
    return 7 if seconds < 0.05 else 5 if seconds < 0.5 else 3 if seconds < 4 else 2


def naive_fits(n: int, gib: float) -> bool:
    """The naive block holds two N x N float32 matrices (scores and softmax)."""
    return 2 * n * n * 4 <= gib * 2**30
