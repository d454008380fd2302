"""The app's tabs, wiring only: one module per tab, each with ``build(service)`` or
``build(service, shared)`` called inside its ``gr.Tab`` (see :mod:`app.ui` for the registry and
:class:`app.session.Shared`). The figures are in :mod:`app.views`, the work in :mod:`app.services`,
the error policy in :mod:`app.errors`."""
