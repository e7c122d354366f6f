"""Where things live: the repository checkout and the per-user cache."""
import os
from pathlib import Path


def cache_dir() -> Path:
    """Per-user cache for downloaded assets (override with ``WORKBOOK_CACHE``)."""
    override = os.environ.get("WORKBOOK_CACHE")
    if override:
        path = Path(override)
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("transformer-workbook"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Per-user data folder (quiz progress and the like; override with ``WORKBOOK_DATA``)."""
    override = os.environ.get("WORKBOOK_DATA")
    if override:
        path = Path(override)
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("transformer-workbook"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_root(start: Path | None = None) -> Path:
    """The workbook checkout: the nearest folder upwards holding ``nbgrader_config.py``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / "solutions").is_dir():
            return folder
    source_checkout = Path(__file__).resolve().parents[2]
    if (source_checkout / "nbgrader_config.py").is_file():
        return source_checkout
    raise FileNotFoundError(
        "could not find the workbook checkout (a folder with nbgrader_config.py and "
        "solutions/); run this command from inside the repository"
    )


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
