"""What a training run records besides its weights: the CSV log, its curve plot, and which machine
(and which command) ran which steps.

- ``segments``: contiguous steps on one machine, merged across resumes on the same machine; each
  carries the last command that ran it. Model cards list them.
- ``sessions``: one entry per training process (host, machine, steps, start and end time, UTC
  seconds), never merged: the record from which a report can tell whether runs shared a machine.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from .. import checkpoint

LOG_FIELDS = ["step", "loss", "lr", "val_psnr", "elapsed_s", "s_per_it"]


def read_log(path: Path, upto: int) -> list[dict[str, str]]:
    """Rows of the CSV log up to step ``upto`` (later rows belong to work lost in a crash)."""
    if not path.exists():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= upto]


def write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the whole log atomically (temporary file + rename, like the resume state)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    checkpoint.atomic_write_bytes(path, buf.getvalue().encode())


def plot_log(rows: list[dict[str, str]], path: Path, title: str) -> None:
    """Training loss (log scale) and held-out validation PSNR against the iteration, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [r for r in rows if r.get("loss")]
    steps = [int(r["step"]) for r in trained]
    loss = [float(r["loss"]) for r in trained]
    val = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r.get("val_psnr")]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(steps, loss)
    ax[0].set(xlabel="iteration", ylabel="L1 loss", title="training loss", yscale="log")
    if val:
        ax[1].plot(*zip(*val), marker="o")
    ax[1].set(xlabel="iteration", ylabel="Y-PSNR (dB)", title="held-out validation")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def machine_segments(previous: list[dict], machine: str, first_step: int, step: int, seconds: float,
                     command: str | None = None) -> list[dict]:
    """Which machine ran which steps: ``previous`` plus this process's span, merged when the machine
    is the same; ``command`` (this process's) is kept per segment, the latest one on a merge."""
    out = [dict(seg) for seg in previous]
    if step <= first_step:
        return out
    extra = {"command": command} if command else {}
    if out and out[-1]["machine"] == machine and out[-1]["last_step"] == first_step:
        out[-1].update(last_step=step, seconds=round(out[-1]["seconds"] + seconds), **extra)
    else:
        out.append({"machine": machine, "first_step": first_step, "last_step": step, "seconds": round(seconds),
                    **extra})
    return out


def describe_machines(segments: list[dict], fallback: str) -> str:
    """One line for a card: the machine, or each machine with the steps it ran when there were several."""
    names = {seg["machine"] for seg in segments}
    if len(names) <= 1:
        return segments[0]["machine"] if segments else fallback
    return "; ".join(f"{seg['machine']} (steps {seg['first_step']}-{seg['last_step']}, {seg['seconds'] / 3600:.2f} h)"
                     for seg in segments)


def overlapping(session: dict[str, Any], others: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sessions of ``others`` on the same host and machine as ``session`` whose time spans overlap it."""
    if "started" not in session:
        return []
    return [o for o in others if o is not session and "started" in o and o.get("host") == session.get("host")
            and o.get("machine") == session.get("machine")
            and o["started"] < session["ended"] and session["started"] < o["ended"]]
