"""What one benchmark run was asked to do and what it measured: typed, written out by :mod:`.report`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..training.machine import describe
from ..training.machine import load_average as machine_load

COLUMNS: tuple[str, ...] = ("measure", "device", "threads", "preset", "kind", "height", "width", "positions",
                            "groups", "groups_timed", "repeats", "time_ms", "min_ms", "max_ms",
                            "nonlocal_ms", "rest_ms", "peak_mib")


@dataclass(frozen=True)
class Options:
    """The command line of a run (see ``python -m lcoan.bench --help``)."""

    quick: bool = False
    out: Path = Path("benchmarks")
    readme: Path | None = None  # default: out / README.md
    devices: tuple[str, ...] = ()  # default: cpu (+ cuda when present)
    presets: tuple[str, ...] = ()  # default: the plan's
    threads: int = 1
    full_limit: float = 1.0
    naive_gib: float = 4.0
    sizes: tuple[int, ...] = ()  # default: the plan's (and then no whole-network split)
    silent: bool = False
    argv: tuple[str, ...] = ()


@dataclass
class RunRecord:
    """One run: its options, the machine per device, the load around it, its rows (one per
    measurement, keys :data:`COLUMNS`) and how long it took."""

    options: Options
    machines: dict[str, str] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    load_start: str = "n/a"
    load_end: str = "n/a"
    wall_s: float = 0.0

    @property
    def command(self) -> str:
        return " ".join(("python -m lcoan.bench",) + self.options.argv)


def machine_line(device: torch.device) -> str:
    """The machine of one device, in the measured-table form of :func:`lcoan.training.machine.describe`."""
    return describe(device, detailed=True)


def load_average() -> str:
    """1-minute load average (other processes competing for the cores), as text."""
    load = machine_load()
    return "n/a" if load is None else f"{load:.1f}"
