"""The bundled example images (assets/examples/, sources and licences in assets/README.md).

Only files listed here are offered, and :func:`example_path` refuses any name that would leave the
examples folder (``..``, absolute paths, separators, links pointing elsewhere).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .models import ServiceError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "assets" / "examples"


@dataclass(frozen=True)
class Example:
    file: str
    title: str
    licence: str


EXAMPLES = (
    Example("rocket_tower.png", "Launch tower lattice (rocket)", "public domain (SpaceX)"),
    Example("brick_wall.png", "Brick wall (grey)", "CC0"),
    Example("text_page.png", "Handwritten formulas (grey)", "public domain"),
    Example("astronaut_patch.png", "Mission patch with lettering (astronaut)", "public domain (NASA)"),
    Example("chelsea_fur.png", "Cat's eye and fur (chelsea)", "CC0"),
    Example("coffee_wood.png", "Wood grain and saucer (coffee)", "CC0"),
)


def example_path(name: str, folder: Path = EXAMPLES_DIR) -> Path:
    """The path of a listed example, or ServiceError; never a path outside ``folder``."""
    listed = {e.file for e in EXAMPLES}
    if not isinstance(name, str) or name not in listed or Path(name).name != name:
        raise ServiceError(f"unknown example {name!r}; choose from {', '.join(sorted(listed))}")
    base = folder.resolve()
    path = (base / name).resolve()
    if path.parent != base or not path.is_file():
        raise ServiceError(f"example {name!r} is not available in {folder}")
    return path


def available(folder: Path = EXAMPLES_DIR) -> list[tuple[Example, Path]]:
    """The listed examples that are present (and safe) in ``folder``."""
    out = []
    for e in EXAMPLES:
        try:
            out.append((e, example_path(e.file, folder)))
        except ServiceError:
            continue
    return out
