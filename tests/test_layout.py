"""Issue 26, layout bars: app/ in three parallel layers (tabs/ wiring, views/ figures, services/ work), a
file name repeated only as the mirror tabs/X.py, views/X.py, services/X.py, services import no Gradio;
lcoan/ with at most 8 top-level modules; modules under 450 lines; no import cycles; every
``python -m lcoan...`` command of the README answers --help; no export and at most three resume states
tracked under runs/."""
from __future__ import annotations

import ast
import re
import runpy
import subprocess
import sys
from collections import defaultdict

import pytest

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


# ------------------------------------------------------------------------------------------ lcoan/

LCOAN = ROOT / "lcoan"
MAX_TOP_MODULES = 8  # the public API (config, network, checkpoint, inference), __init__ and three command lines
MAX_LINES = 450


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_files() -> dict[str, object]:
    return {module_name(p): p for top in ("lcoan", "app") for p in (ROOT / top).rglob("*.py")}


def top_level_imports(path, name: str, modules: set[str]) -> set[str]:
    """Modules of ours that ``path`` imports when it is imported (module-level statements only)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names} & modules
            found |= subs or ({target} & modules)
    return found


def test_lcoan_top_level_is_the_public_api_and_the_command_lines():
    top = sorted(p.name for p in LCOAN.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
    assert {"__init__.py", "config.py", "network.py", "checkpoint.py", "inference.py",
            "infer.py", "train.py", "evaluate.py"} >= set(top), top
    subpackages = {p.name for p in LCOAN.iterdir() if (p / "__init__.py").exists()}
    assert subpackages == {"attention", "introspect", "imaging", "training", "bench"}, subpackages


def test_modules_are_under_450_lines():
    long = {name: n for name, path in module_files().items()
            if (n := len(path.read_text().splitlines())) >= MAX_LINES}
    assert not long, long


def test_no_import_cycles():
    files = module_files()
    graph = {name: top_level_imports(path, name, set(files)) - {name} for name, path in files.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


# ------------------------------------------------------------------------------------------ README

def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return sorted(set(re.findall(r"python -m (lcoan(?:\.\w+)*)", text)))


def test_the_readme_shows_the_command_lines():
    assert {"lcoan.train", "lcoan.infer", "lcoan.evaluate"} <= set(readme_commands())


@pytest.mark.parametrize("module", readme_commands())
def test_every_lcoan_command_in_the_readme_answers_help(module, capsys, monkeypatch):
    """In-process (runpy, as ``python -m``), so the check costs no interpreter start per command."""
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    assert exit_.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out


def test_python_m_lcoan_train_help_in_a_real_process():
    """What the background queue and the external check run."""
    out = subprocess.run([sys.executable, "-m", "lcoan.train", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "--preset" in out.stdout, out.stderr


# ------------------------------------------------------------------------------------------ runs/

def tracked(pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return out.stdout.split()


def test_no_export_and_at_most_three_resume_states_tracked_under_runs():
    exports = [p for p in tracked("runs") if "/model/" in p]
    assert not exports, exports
    states = [p for p in tracked("runs") if p.endswith("resume/state.safetensors")]
    assert len(states) <= 3, states
