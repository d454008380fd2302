"""The one description of the machine a command runs on, for training records and measured tables.

Training records (run.json, model cards) use the short form, e.g. ``2-core x86_64 CPU, 1 torch
thread(s)`` or ``NVIDIA H100 80GB HBM3 (CUDA)``: a resumed run compares it with the machine its
earlier steps ran on, so it stays stable. Measured tables (speed, benchmarks) add the CPU model and
the torch version.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device | str = "cpu", detailed: bool = False) -> str:
    """One line naming the machine: the GPU for a CUDA device, else cores, CPU and torch threads.

    ``detailed`` adds the CPU model name (instead of the architecture) and the torch version.
    """
    device = torch.device(device)
    version = f", torch {torch.__version__}" if detailed else ""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA){version}"
    cpu = cpu_model() if detailed else platform.machine()
    return f"{os.cpu_count()}-core {cpu} CPU, {torch.get_num_threads()} torch thread(s){version}"


def load_average() -> float | None:
    """The 1-minute load average (runnable processes competing for the cores), None where unknown."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
