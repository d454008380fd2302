"""Issue 26, layout: app/ in three parallel layers (tabs/ wiring, views/ figures, services/ work),
a file name repeated only as the mirror tabs/X.py, views/X.py, services/X.py; services import no Gradio."""
from __future__ import annotations

import ast
from collections import defaultdict

from .conftest import ROOT

APP = ROOT / "app"
LAYERS = ("tabs", "views", "services")


def imported_modules(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_app_names_repeat_only_as_the_tab_view_service_mirror():
    places = defaultdict(list)
    for path in APP.rglob("*.py"):
        if path.name != "__init__.py":
            places[path.name].append(path.parent.relative_to(APP).as_posix())
    repeated = {name: where for name, where in places.items() if len(where) > 1}
    bad = {name: where for name, where in repeated.items() if not set(where) <= set(LAYERS)}
    assert not bad, bad
    assert {p.name for p in APP.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(LAYERS)


def test_services_and_views_do_not_import_gradio():
    for layer in ("services", "views"):
        for path in (APP / layer).rglob("*.py"):
            assert not {m for m in imported_modules(path) if m.split(".")[0] == "gradio"}, path
