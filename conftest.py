"""Repository-wide pytest setup (it must sit at the root so it also covers nbval's notebooks).

* Solution notebooks run under nbval at the CI size, with progress bars off.
* stderr is not compared: warnings and progress bars go there, and they vary between runs.
"""
import os

import pytest

os.environ["WORKBOOK_SIZE"] = "ci"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

try:
    import nbval.plugin as _nbval
except ImportError:  # nbval is a dev dependency; plain unit tests do not need it
    _nbval = None

if _nbval is not None:
    _compare_streams = _nbval.transform_streams_for_comparison

    def _without_stderr(outputs):
        kept = [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        return _compare_streams(kept)

    _nbval.transform_streams_for_comparison = _without_stderr


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under `--dist loadgroup`, tests with no xdist_group of their own stay together by file
    (like `--dist loadfile`): a notebook's nbval cells share one kernel, and module fixtures
    (a graded class) are built once."""
    for item in items:
        if not any(True for _ in item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
