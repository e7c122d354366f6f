"""Kernels started ahead of their students (``workbook_grader.kernel_pool``): each is taken over
by its own student's nbgrader, once, in that student's sandbox, and one nobody takes dies."""
import os
import time
from pathlib import Path

import pytest

from conftest import COURSE
from workbook_grader import kernel_pool
from workbook_grader.execute import Settings
from workbook_grader.sandbox import factory as kernel_factory
from workbook_grader.sandbox import kernelspec as sandbox
from workbook_grader.sandbox import namespaces

WHY_NOT = namespaces.probe()
needs_sandbox = pytest.mark.skipif(WHY_NOT is not None, reason=f"no sandbox here: {WHY_NOT}")


@pytest.fixture(scope="module")
def factory():
    if WHY_NOT is not None:
        pytest.skip(f"no sandbox here: {WHY_NOT}")
    found = kernel_factory.FactoryProcess(preload=["ipykernel.kernelapp"],
                                          public=sandbox.public_paths(COURSE),
                                          never=[str(p) for p in COURSE.hidden_from_students()],
                                          env={**os.environ, "WORKBOOK_SIZE": "grade"})
    assert found.isolation, found.why
    yield found
    found.close()


def settings_in(tmp_path: Path) -> Settings:
    return Settings(course=COURSE, work=tmp_path / "work", cell_timeout=60,
                    memory_bytes=4 * 1024 ** 3)


def nbgraders_kernel(ahead, settings, factory, monkeypatch):
    """Start a kernel the way a student's nbgrader does: jupyter_client, the student's
    kernelspec (which names the kernel started ahead), the sandbox provisioner."""
    from jupyter_client.manager import KernelManager

    folders = ahead.folders
    sandbox.write_kernelspec(folders.work / "jupyter", factory=factory,
                             attach=ahead.attach, **folders.sandbox_args(settings))
    monkeypatch.setenv("JUPYTER_PATH", str(folders.work / "jupyter"))
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(folders.ipc / "k"))
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def run(kc, code: str) -> str:
    out = []
    kc.execute_interactive(code, timeout=60, output_hook=lambda msg: out.append(
        msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
    return "".join(out).strip()


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@needs_sandbox
def test_the_students_nbgrader_takes_over_the_kernel_started_for_them(factory, tmp_path,
                                                                      monkeypatch):
    settings = settings_in(tmp_path)
    ahead = kernel_pool.start(settings, factory, "01-attention", "alice")
    assert ahead.pid and ahead.attach["token"], "the factory should have started a kernel"
    km, kc = nbgraders_kernel(ahead, settings, factory, monkeypatch)
    try:
        assert km.provisioner.pid == ahead.pid, "nbgrader started a new kernel instead"
        # it is alice's kernel, in alice's sandbox
        assert run(kc, "import os; print(os.getcwd())") == str(ahead.folders.kernel)
        ahead.close()   # the grader lets go of it: the kernel now belongs to nbgrader alone
        assert run(kc, "print(6 * 7)") == "42"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert gone(ahead.pid), "the kernel outlived the nbgrader that took it over"


@needs_sandbox
def test_a_token_works_once(factory, tmp_path, monkeypatch):
    settings = settings_in(tmp_path)
    ahead = kernel_pool.start(settings, factory, "01-attention", "bob")
    first = nbgraders_kernel(ahead, settings, factory, monkeypatch)
    second = nbgraders_kernel(ahead, settings, factory, monkeypatch)   # e.g. a 2nd notebook
    try:
        assert first[0].provisioner.pid == ahead.pid
        assert second[0].provisioner.pid != ahead.pid, "one kernel served two notebooks"
        assert run(second[1], "print('fresh' if 'ahead' not in globals() else 'shared')") == "fresh"
    finally:
        for km, kc in (first, second):
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        ahead.close()


@needs_sandbox
def test_a_kernel_nobody_takes_dies_with_the_grader_letting_go(factory, tmp_path):
    ahead = kernel_pool.start(settings_in(tmp_path), factory, "01-attention", "carol")
    os.kill(ahead.pid, 0)   # up
    ahead.discard()
    assert gone(ahead.pid), "a kernel started ahead outlived the grader's connection"
    assert not ahead.folders.ipc.exists()


def test_the_pool_starts_the_next_students_kernels_in_grading_order(monkeypatch, tmp_path):
    started, discarded = [], []

    class Fake:
        def __init__(self, key):
            self.key = key

        def discard(self):
            discarded.append(self.key)

    monkeypatch.setattr(kernel_pool, "start",
                        lambda settings, factory, a, s: started.append(s) or Fake(s))
    order = [("01", f"s{i}") for i in range(6)]
    pool = kernel_pool.KernelPool(settings_in(tmp_path), object(), order, depth=2)
    assert pool.take("01", "s0").key == "s0"
    assert started == ["s0", "s1", "s2"]
    assert pool.take("01", "s2").key == "s2"       # finished out of order: s1 is still waiting
    assert started == ["s0", "s1", "s2", "s3", "s4"]
    assert pool.take("01", "s0") is None            # a kernel is taken once
    pool.close()
    assert sorted(discarded) == ["s1", "s3", "s4"]  # started and never taken: killed
    assert started.count("s0") == 1
