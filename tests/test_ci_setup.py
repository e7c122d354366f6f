"""The test run itself must be set up the way the notebooks need it."""
import os

import pytest


def test_loadgroup_tags_reach_the_scheduler(request):
    """`make test` runs `--dist loadgroup` so that a notebook's nbval cells share one worker (and
    one kernel). pytest-xdist does that by appending `@group` to each node id; if a pytest or
    pytest-xdist upgrade drops the tag, cells land on both workers and fail with NameErrors."""
    on_loadgroup_worker = (os.environ.get("PYTEST_XDIST_WORKER") is not None
                           and getattr(request.config.option, "loadgroup", False))
    if not on_loadgroup_worker:
        pytest.skip("only meaningful under `pytest -n N --dist loadgroup` (the README's test command)")
    assert "@" in request.node.nodeid, (
        f"node id {request.node.nodeid!r} carries no xdist group: a notebook's cells would be "
        "split across workers. Check the pytest and pytest-xdist pins in requirements/cpu.txt.")
