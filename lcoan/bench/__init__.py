"""Efficiency benchmark of the non-local part: LCoAN (``lsp+coa``) against the LSP-only ablation
(``lsp``) and dense non-local attention (``dense``: torch SDPA; ``dense-naive``: matmul, softmax, matmul).

    python -m lcoan.bench                  # the full run (CPU, and CUDA when present), < 10 min here
    python -m lcoan.bench --quick --out /tmp/b   # seconds: tiny sizes, for tests

What is timed ("non-local time"): the attention of ALL residual groups of a network, given the
features: for ``lsp+coa`` one pattern (match conv, k-means assignment, sort, windowed softmax
weights) and, per group, its value projection and the aggregation; for ``lsp`` that whole pattern in
every group; for the dense kinds, per group, the match / value embeddings and the attention.
Inference, batch 1, float32, under ``torch.inference_mode``. All kinds of one size are timed
interleaved (round robin, :mod:`lcoan.bench.timing`), after a warm-up, and the median is reported (7 to 2
repeats, fewer for longer calls; for a call of 5 s or more the warm-up is skipped, its kind being
warm from the smaller sizes, and the memory-profiled call counts as one of the samples; a call of 30
s or more, e.g. dense at 256x256 in the paper preset, is that one sample alone, to keep the run
under 10 minutes). Kinds whose groups repeat identical work (every kind but ``lsp+coa``) are timed
on one group and multiplied by the number of groups when all groups would take more than
``--full-limit`` seconds (``groups_timed`` in the CSV).

Peak memory: the most bytes the non-local part holds at once beyond its inputs, read from the
allocation events of ``torch.profiler`` (``profile_memory=True``: every tensor allocation and free
of the CPU allocator, summed in time order) on CPU, ``torch.cuda.max_memory_allocated`` on CUDA.
Buffers that libraries allocate outside torch (oneDNN / MKL scratch) are not seen.

Modules: :mod:`.workload` (the timed callables, also used by the app), :mod:`.plan` (sizes, repeats),
:mod:`.measure`, :mod:`.record` (the typed run record), :mod:`.report` (CSV, plot, README block), :mod:`.cli`.
"""
from __future__ import annotations

from .measure import peak_bytes
from .record import COLUMNS, Options, RunRecord
from .workload import (
    KINDS,
    NETWORK_KINDS,
    build_models,
    dense_block,
    kind_config,
    nonlocal_part,
)

__all__ = ["COLUMNS", "KINDS", "NETWORK_KINDS", "Options", "RunRecord", "build_models", "dense_block",
           "kind_config", "nonlocal_part", "peak_bytes"]
