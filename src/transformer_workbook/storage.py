"""Where the workbook keeps files, and how it writes them.

* ``cache_dir()``: downloaded and derived assets (the review snippets, de-quantised weights);
  ``WORKBOOK_CACHE`` overrides it.
* ``data_dir()``: the learner's own records (quiz progress); ``WORKBOOK_DATA`` overrides it.
* ``package_dir(module)``: where an installed asset package lives, found without importing it.
* ``write_atomically(path, text)``: the one way this project writes a file that someone may be
  reading or that a crash must not leave half-written.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

APP = "transformer-workbook"


def _folder(variable: str, default) -> Path:
    override = os.environ.get(variable)
    path = Path(override).expanduser() if override else Path(default(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Per-user cache for downloaded and derived assets (override with ``WORKBOOK_CACHE``)."""
    from platformdirs import user_cache_dir

    return _folder("WORKBOOK_CACHE", user_cache_dir)


def data_dir() -> Path:
    """Per-user data such as quiz progress (override with ``WORKBOOK_DATA``)."""
    from platformdirs import user_data_dir

    return _folder("WORKBOOK_DATA", user_data_dir)


def package_dir(distribution_module: str) -> Path:
    """Folder of an installed module, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(distribution_module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{distribution_module} is not installed; run `make setup` (it installs the "
            "offline assets listed in requirements/assets.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def write_atomically(path: Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Write to a temporary file beside ``path``, then rename it over: never a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode(encoding) if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
