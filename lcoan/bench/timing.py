"""Wall time of callables on :class:`torch.utils.benchmark.Timer`: one call, or many interleaved.

The Timer synchronises the accelerator around the call, runs it with garbage collection paused and
at a fixed thread count (the caller's, not the Timer's default of one). A sample is ONE call:
``Timer.timeit`` would add two warm-up calls to every sample, which the long calls timed here
(seconds to minutes of dense attention) cannot afford, so callers warm up once themselves.
Interleaving (round robin) makes load changes on a shared machine hit every callable alike.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import torch
from torch.utils.benchmark import Timer
from torch.utils.benchmark.utils.common import set_torch_threads

T = TypeVar("T")


class CallTimer(Timer):
    """A :class:`Timer` of one callable whose :meth:`sample` times a single call (no warm-up)."""

    def __init__(self, fn: Callable[[], object], threads: int | None = None) -> None:
        self.result: list[object] = [None]
        super().__init__("_result[0] = _fn()", globals={"_fn": fn, "_result": self.result},
                         num_threads=torch.get_num_threads() if threads is None else threads)

    def sample(self) -> float:
        """Seconds of one call; its return value is left in ``self.result[0]``."""
        with set_torch_threads(self._task_spec.num_threads):
            return self._timeit(1)


def timed_call(fn: Callable[[], T]) -> tuple[T, float]:
    """Call ``fn`` once: (its result, seconds)."""
    timer = CallTimer(fn)
    seconds = timer.sample()
    return timer.result[0], seconds  # type: ignore[return-value]


def seconds_of(fn: Callable[[], object]) -> float:
    """Seconds of one call of ``fn``."""
    return CallTimer(fn).sample()


def round_robin(fns: Mapping[str, Callable[[], object]], repeats: int | Mapping[str, int],
                samples: dict[str, list[float]] | None = None, budget_s: float | None = None,
                started: float | None = None) -> dict[str, list[float]]:
    """Time callables interleaved, one call of each per round, until each has ``repeats`` samples.

    ``samples``: samples already taken (e.g. kept warm-up calls), extended in place. Once
    ``budget_s`` seconds have passed since ``started`` (default: now), only callables whose slowest
    sample is under a tenth of the budget go on; every callable keeps at least one sample.
    Returns name -> seconds of each call.
    """
    want = repeats if isinstance(repeats, Mapping) else dict.fromkeys(fns, repeats)
    samples = {} if samples is None else samples
    for name in fns:
        samples.setdefault(name, [])
    timers = {name: CallTimer(fn) for name, fn in fns.items()}
    started = time.perf_counter() if started is None else started
    while True:
        todo = [n for n in fns if len(samples[n]) < want[n]]
        if budget_s is not None and time.perf_counter() - started >= budget_s:
            todo = [n for n in todo if not samples[n] or max(samples[n]) < budget_s / 10]
        if not todo:
            return samples
        for name in todo:
            samples[name].append(timers[name].sample())


def warm_up(fns: Mapping[str, Callable[[], object]], keep_s: float = 0.5) -> dict[str, list[float]]:
    """Call each callable once (allocations, kernel choice); a call of ``keep_s`` seconds or more is
    dominated by compute and is kept as a sample. Returns name -> the kept samples (0 or 1)."""
    first = {name: seconds_of(fn) for name, fn in fns.items()}
    return {name: [s] if s >= keep_s else [] for name, s in first.items()}


def medians(samples: Mapping[str, list[float]]) -> dict[str, float]:
    """Median seconds per callable (the mean of the two middle samples for an even count)."""
    return {name: statistics.median(v) for name, v in samples.items()}
