"""Repository-wide pytest setup (it must sit at the root so it also covers nbval's notebooks).

* Solution notebooks run under nbval at the CI size, with progress bars off.
* Each test process and each kernel it starts gets an equal share of the cores as its thread
  count (one thread each for `-n 2` on 2 cores). Two OpenMP pools of 2 threads on 2 cores spin
  while they wait for each other and ran notebook 06 nine times slower than alone.
  Stored outputs do not depend on the thread count (tests/test_notebook_outputs.py).
* stderr is not compared: warnings and progress bars go there, and they vary between runs.
"""
import json
import os
from pathlib import Path

import pytest

os.environ["WORKBOOK_SIZE"] = "ci"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def pytest_configure(config):
    """Runs in the controller before xdist starts its workers, which inherit the variables
    (torch reads them when it is first imported). An explicit OMP_NUM_THREADS wins."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = getattr(config.option, "numprocesses", None)
    workers = workers if isinstance(workers, int) and workers > 0 else 1
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (cores or 1) // workers))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads


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


DURATIONS = Path(__file__).with_name("tests") / "durations.json"


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true",
                     help="write each xdist group's measured seconds to tests/durations.json "
                          "(the order in which `make test` starts the groups)")


def _group(item) -> str:
    marker = item.get_closest_marker("xdist_group")
    return marker.args[0] if marker and marker.args else marker.kwargs.get("name", "")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under `--dist loadgroup`, tests with no xdist_group of their own stay together by file
    (like `--dist loadfile`): a notebook's nbval cells share one kernel, and module fixtures
    (a graded class) are built once.

    Groups then start longest first (their seconds in tests/durations.json; a group not listed
    there, such as a new notebook, counts as the longest), so the two workers finish together
    instead of one running a long group alone at the end. `make test` passes
    `--no-loadscope-reorder` so that xdist keeps this order."""
    for item in items:
        if not any(True for _ in item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    longest = max(seconds.values(), default=0.0) + 1.0
    position = {}
    for index, item in enumerate(items):
        position.setdefault(_group(item), index)
    items.sort(key=lambda it: (-seconds.get(_group(it), longest), position[_group(it)]))


_measured: dict[str, float] = {}


def pytest_runtest_logreport(report):
    group = report.nodeid.rpartition("@")[2] if "@" in report.nodeid else None
    if group:
        _measured[group] = _measured.get(group, 0.0) + report.duration


def pytest_sessionfinish(session):
    if session.config.getoption("store_durations") and _measured \
            and not os.environ.get("PYTEST_XDIST_WORKER"):
        DURATIONS.write_text(json.dumps({g: round(s, 1) for g, s in sorted(_measured.items())},
                                        indent=1) + "\n")
