"""Labelled review snippets: offline from the vaderSentiment 3.3.2 source distribution.

The sdist ships ``additional_resources/hutto_ICWSM_2014.tar.gz`` with 10,605 movie-review and
3,708 product-review snippets, each with the mean of human sentiment ratings (MIT licence).
We fetch it with ``pip download`` once, cache it, and binarise by the sign of the mean score
(snippets scored exactly 0 are dropped). Online users can pass a hub dataset id instead.
"""
from __future__ import annotations

import io
import random
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..storage import cache_dir

SDIST = "vaderSentiment-3.3.2.tar.gz"
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
LEXICON = "vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt"
FILES = {
    "movie": "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
    "product": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
}
SPLITS = ("train", "test", "all")


@dataclass(frozen=True)
class Reviews:
    """Texts with binary labels (1 = positive) and the mean human score they came from."""

    texts: list[str]
    labels: list[int]
    scores: list[float]
    name: str

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int) -> "Reviews":
        """The first ``n`` examples (the order is already a seeded shuffle)."""
        return Reviews(self.texts[:n], self.labels[:n], self.scores[:n], self.name)

    def positive_fraction(self) -> float:
        return sum(self.labels) / max(1, len(self.labels))


def fetch_sdist(quiet: bool = True) -> Path:
    """Download the vaderSentiment 3.3.2 sdist into the cache (once) and return its path."""
    target = cache_dir() / "vader"
    path = target / SDIST
    if path.is_file():
        return path
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "vadersentiment==3.3.2", "-d", str(target)]
    if quiet:
        cmd.append("--quiet")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not path.is_file():
        raise RuntimeError(
            "could not download the vaderSentiment 3.3.2 source distribution with pip "
            f"(is PyPI reachable?):\n{done.stderr.strip()[-2000:]}"
        )
    return path


@lru_cache(maxsize=None)
def _read_member(inner: str | None, member: str) -> str:
    with tarfile.open(fetch_sdist(), "r:gz") as sdist:
        if inner is None:
            return sdist.extractfile(member).read().decode("utf-8", errors="replace")
        blob = sdist.extractfile(inner).read()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as resources:
        return resources.extractfile(member).read().decode("utf-8", errors="replace")


def _parse_ground_truth(text: str) -> list[tuple[str, float]]:
    rows = []
    for line in text.splitlines():
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 3:
            continue
        rows.append((parts[2].strip(), float(parts[1])))
    return rows


def _split(rows: list, split: str, test_fraction: float, seed: int) -> list:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = round(len(rows) * test_fraction)
    chosen = {"test": order[:n_test], "train": order[n_test:], "all": order}[split]
    return [rows[i] for i in chosen]


def load_reviews(domain: str = "movie", split: str = "train", *, source: str | None = None,
                 test_fraction: float = 0.2, seed: int = 0, limit: int | None = None) -> Reviews:
    """Binary sentiment snippets.

    ``domain`` is ``"movie"`` or ``"product"``; ``split`` is ``"train"``, ``"test"`` or
    ``"all"``. The held-out split is fixed by ``seed`` and never overlaps the training split.
    With ``source`` set to a hub dataset id (e.g. ``"stanfordnlp/sst2"``) the data come from
    the Hugging Face Hub instead (needs network and the ``datasets`` package).
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; use one of {SPLITS}")
    if source is not None:
        return _load_hub(source, split, limit)
    if domain not in FILES:
        raise ValueError(f"domain={domain!r}; use one of {tuple(FILES)}")
    rows = [(t, s) for t, s in _parse_ground_truth(_read_member(INNER, FILES[domain])) if s != 0]
    rows = _split(rows, split, test_fraction, seed)
    if limit is not None:
        rows = rows[:limit]
    return Reviews([t for t, _ in rows], [int(s > 0) for _, s in rows],
                   [s for _, s in rows], f"{domain}/{split}")


def _load_hub(source: str, split: str, limit: int | None) -> Reviews:
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - online path
        raise ImportError("loading a hub dataset needs `pip install datasets`") from err
    hub_split = {"train": "train", "test": "validation", "all": "train"}[split]
    table = datasets.load_dataset(source, split=hub_split)
    text_key = "sentence" if "sentence" in table.column_names else "text"
    if limit is not None:
        table = table.select(range(min(limit, len(table))))
    labels = [int(x) for x in table["label"]]
    return Reviews(list(table[text_key]), labels, [float(x) for x in labels], f"{source}/{hub_split}")


def load_lexicon() -> dict[str, float]:
    """The VADER sentiment lexicon shipped in the same sdist: token -> mean valence."""
    lexicon = {}
    for line in _read_member(None, LEXICON).splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            try:
                lexicon[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return lexicon
