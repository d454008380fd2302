"""Pure view functions: a :class:`lcoan.introspect.trace.Trace` (and the traced LR image) -> plotly figures or
PIL images. No Gradio, no model calls, no caching: the tabs pass in what the inspection service
computed, and tests call these directly."""
