"""The pre-started nbgrader: each run behaves like a freshly started nbgrader process."""
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import COURSE
from workbook_grader import nbgrader_server as prewarmed_nbgrader

nbgrader_env = COURSE.nbgrader_env

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the fork server is Linux-only")

# nbgrader executes nbgrader_config.py from its working folder, so the config can report what
# the process sees and misbehave on request.
CONFIG = '''
import os, subprocess, sys, time
print("cwd", os.getcwd(), "X", os.environ.get("X"), "Y", os.environ.get("Y"))
mode = os.environ.get("MODE")
if mode == "exit":
    sys.stdout.flush()
    os._exit(3)
if mode == "hang":
    child = subprocess.Popen(["sleep", "120"])
    open("grandchild.pid", "w").write(str(child.pid))
    time.sleep(120)
'''


@pytest.fixture
def server(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(CONFIG)
    client = prewarmed_nbgrader.PrewarmedNbgrader(str(tmp_path), nbgrader_env())
    yield client
    client.close()


def _gone(pid: int, wait: float = 10.0) -> bool:
    """True once ``pid`` has exited (a zombie waiting for init to reap it counts as exited)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def test_server_is_single_threaded(server):
    assert server.server_threads == 1, (
        "importing nbgrader started a thread in the server; forking it would be unsafe")


def test_each_run_gets_its_own_folder_and_environment(server, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "nbgrader_config.py").write_text(CONFIG)
    first = server.run(["list"], cwd=str(tmp_path), env={**nbgrader_env(), "X": "one", "Y": "y"},
                       timeout=60)
    second = server.run(["list"], cwd=str(other), env={**nbgrader_env(), "X": "two"}, timeout=60)
    assert f"cwd {tmp_path} X one Y y" in first[1], first[1]
    assert f"cwd {other} X two Y None" in second[1], (
        "a run saw another run's folder or environment:\n" + second[1])


def test_exit_code_comes_back(server, tmp_path):
    code, log, _ = server.run(["list"], cwd=str(tmp_path), env={**nbgrader_env(), "MODE": "exit"},
                              timeout=60)
    assert code == 3, log


def test_timeout_kills_the_whole_process_tree(server, tmp_path):
    start = time.monotonic()
    code, _, seconds = server.run(["list"], cwd=str(tmp_path),
                                  env={**nbgrader_env(), "MODE": "hang"}, timeout=3)
    assert code is None, "a run past its timeout must come back as killed (None)"
    assert 3 <= seconds < 20 and time.monotonic() - start < 20
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert _gone(grandchild), "a process started by the timed-out run is still alive"


def test_closing_the_client_stops_running_children(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(CONFIG)
    client = prewarmed_nbgrader.PrewarmedNbgrader(str(tmp_path), nbgrader_env())
    outcome = []

    def grade():
        try:
            outcome.append(client.run(["list"], cwd=str(tmp_path),
                                      env={**nbgrader_env(), "MODE": "hang"}, timeout=300))
        except RuntimeError as err:
            outcome.append(err)

    worker = threading.Thread(target=grade, daemon=True)
    worker.start()
    pid_file = tmp_path / "grandchild.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    client.close()
    assert _gone(int(pid_file.read_text())), "the server left a child running after it closed"
    worker.join(timeout=10)
    assert not worker.is_alive(), "a waiting run was not woken when the server stopped"
    cut_short = isinstance(outcome[0], RuntimeError) or outcome[0][0] != 0
    assert cut_short, f"a run cut short by the server must not look successful: {outcome[0]}"


def test_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("WORKBOOK_PREWARM", "0")
    assert prewarmed_nbgrader.shared(os.getcwd(), nbgrader_env()) is None
