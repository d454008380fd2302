"""Looking inside a trained network: what it attends to and what that costs.

- :mod:`.trace`: the :class:`~.trace.Trace` of one forward pass (codes, centroids, sparse weights);
- :mod:`.trace_files`: a trace saved to / read from one file;
- :mod:`.stats`: entropy of attention rows, sampled query positions, layer redundancy;
- :mod:`.knobs`: the inference-time knobs (window, k-means rounds, attention branch off);
- :mod:`.lam`: local attribution maps;
- :mod:`.report`: the held-out attention report (``python -m lcoan.introspect.report``).

Nothing is imported here, so ``lcoan.network`` can import :mod:`.trace` without a cycle.
"""
