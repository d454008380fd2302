"""The app's work, plain Python (no Gradio): the tabs call it, tests call it directly.

- :mod:`.models`: :class:`~.models.ModelService`, the shipped checkpoints loaded once, the LRU
  result cache and the one registry of per-service helpers (:meth:`~.models.ModelService.helper`);
- :mod:`.superresolve`: bicubic / LCoAN / no attention / dense NLA, compared (the Super-resolve tab
  and the API endpoints);
- :mod:`.inspection`: traced passes per (image, scale, region) for the "inside LCoA" tabs, and
  what they derive from them; :mod:`.region` (which part of a large input), :mod:`.memo`
  (compute once), :mod:`.projection` (PCA / UMAP of the match embeddings);
- :mod:`.efficiency`: the Efficiency tab's non-local timing;
- :mod:`.experiments`: the Experiments tab (knobs, ablation, attribution, trace files);
- :mod:`.examples` (the bundled pictures) and :mod:`.outputs` (result files for download).

Each tab's wiring, figures and work mirror one another by name: ``tabs/X.py``, ``views/X.py``,
``services/X.py``.
"""
