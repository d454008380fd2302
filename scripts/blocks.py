"""Generated blocks inside hand-written markdown: ``<!-- NAME:start -->`` ... ``<!-- NAME:end -->``.

Every generator (parameter table, training speed, results, benchmark, attention report) writes its
block through :func:`splice`, so the rest of README.md / a model card is never touched.
"""
from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The start and end marker lines of block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def splice_text(text: str, name: str, content: str, append: bool = True) -> str:
    """``text`` with block ``name`` replaced by ``content`` (markers included); appended at the end
    when the block is absent and ``append``, else ``ValueError``."""
    start, end = markers(name)
    block = f"{start}\n{content.strip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    if not append:
        raise ValueError(f"no '{start}' ... '{end}' block")
    return text.rstrip("\n") + "\n\n" + block + "\n"


def splice(path: str | Path, name: str, content: str, append: bool = True) -> bool:
    """Rewrite block ``name`` of the file at ``path``; returns whether the file changed."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    new = splice_text(old, name, content, append)
    if new != old:
        path.write_text(new)
    return new != old
