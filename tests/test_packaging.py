"""Issue 17, packaging: pyproject metadata and extras, requirements split by when they are needed,
CI runs exactly the README's test command plus ruff, scripts run as modules (no sys.path edits)."""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

from .conftest import ROOT

TEST_TOOLS = {"pytest", "playwright", "ruff", "gradio-client"}
OPTIONAL = {"spaces"}  # imported only when present: Hugging Face's ZeroGPU package, installed by the Space itself


def pins(path: Path) -> dict[str, str]:
    """name (normalised) -> version of every ``name==version`` line."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def third_party_imports(folders: list[Path]) -> set[str]:
    """Top-level modules imported by the .py files under ``folders`` that are neither stdlib nor ours."""
    found = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in {"lcoan", "app", "scripts", "tests"}}


def test_run_time_requirements_cover_every_import_of_the_library_and_app():
    run_time, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    dists = packages_distributions()
    missing = []
    for module in sorted(third_party_imports([ROOT / "lcoan", ROOT / "app"]) - OPTIONAL):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & set(run_time):
            missing.append((module, names))
    assert not missing, missing
    assert not TEST_TOOLS & set(run_time)  # test tools are not what a Space installs
    assert TEST_TOOLS <= set(dev)
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_pyproject_metadata_extras_and_pins_agree():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["name"] == "lcoan-studio"
    assert meta["tool"]["setuptools"]["packages"]["find"]["include"] == ["lcoan", "lcoan.*", "app", "app.*"]
    assert {"app", "dev"} <= set(project["optional-dependencies"])
    assert "select" in meta["tool"]["ruff"]["lint"]
    pinned = pins(ROOT / "requirements.txt") | pins(ROOT / "requirements-dev.txt")
    for req in project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]:
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*(==|>=)\s*(\S+)$", req)
        if m is None:
            assert req.startswith("lcoan-studio["), req  # an extra that includes another
            continue
        name = m.group(1).lower().replace("_", "-")
        assert pinned.get(name) == m.group(3), (req, pinned.get(name))  # bounds are the tested pins


def test_every_package_folder_is_found_by_setuptools():
    """packages.find only finds folders with an __init__.py: a folder of modules without one would
    be left out of the wheel."""
    for top in ("lcoan", "app"):
        for path in (ROOT / top).rglob("*.py"):
            assert (path.parent / "__init__.py").exists(), path.parent


def test_ci_runs_exactly_the_readme_test_command_and_ruff():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(line.split("#")[0].strip() for line in readme.splitlines() if "python -m pytest" in line
                    and line.startswith("pip install"))
    assert test_cmd == "pip install -r requirements-dev.txt && python -m pytest -q"
    assert test_cmd in ci.splitlines()
    assert "ruff check" in ci and 'if [ "$rc" -eq 5 ]' in ci


def test_scripts_do_not_edit_sys_path_and_docs_run_them_as_modules():
    edits = [p.name for p in (ROOT / "scripts").glob("*.py") if "sys.path.insert" in p.read_text()]
    assert not edits, edits
    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "scripts").glob("*.py")]
    stale = [(p.name, m) for p in docs for m in re.findall(r"python3? scripts/\w+\.py", p.read_text())]
    assert not stale, stale
