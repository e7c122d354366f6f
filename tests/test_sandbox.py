"""The sandbox a student's kernel runs in, checked from inside a real kernel from the factory.

Each check runs code in a kernel exactly as a graded notebook would (through jupyter_client and
the workbook-sandbox provisioner) and asserts what that code can and cannot see or do.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import COURSE, ROOT
from workbook_grader.sandbox import factory as kernel_factory
from workbook_grader.sandbox import kernelspec as sandbox
from workbook_grader.sandbox import namespaces

WHY_NOT = namespaces.probe()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"no sandbox here: {WHY_NOT}")


class Kernel:
    """A sandboxed kernel for one pretend student, with a helper to run code in it."""

    def __init__(self, factory, base: Path, name: str):
        from jupyter_client.manager import KernelManager

        self.work = base / name
        self.cwd = self.work / "kernel"
        self.cwd.mkdir(parents=True)
        self.ipc = Path(tempfile.mkdtemp(prefix="wbt-"))
        sandbox.write_kernelspec(self.work / "jupyter", factory=factory, cwd=self.cwd,
                                 writable=[self.cwd, self.ipc], course=COURSE,
                                 memory_bytes=6 * 1024 ** 3, cpu_seconds=600,
                                 file_bytes=64 * 1024 ** 2, output_chars=100_000, threads=1,
                                 integrity_key="test-key")
        os.environ["JUPYTER_PATH"] = str(self.work / "jupyter")
        self.km = KernelManager(kernel_name="python3", transport="ipc", ip=str(self.ipc / "k"))
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str) -> str:
        out = []

        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                out.append(f"{content['ename']}: {content['evalue']}")
        self.kc.execute_interactive(code, output_hook=hook, timeout=60)
        return "".join(out).strip()

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def factory():
    env = {**os.environ, "WORKBOOK_SIZE": "grade"}
    found = kernel_factory.FactoryProcess(preload=["numpy", "torch", "ipykernel.kernelapp"],
                                          public=sandbox.public_paths(COURSE),
                                          never=[str(p) for p in COURSE.hidden_from_students()],
                                          env=env)
    assert found.isolation, found.why
    yield found
    found.close()


@pytest.fixture(scope="module")
def two_students(factory, tmp_path_factory):
    base = tmp_path_factory.mktemp("sandbox")
    alice, bob = Kernel(factory, base, "alice"), Kernel(factory, base, "bob")
    yield alice, bob
    alice.close()
    bob.close()


def test_sees_only_the_environment_the_course_and_its_own_folder(two_students):
    alice, bob = two_students
    assert alice.run("import torch; print(torch.ones(2).sum().item())") == "2.0"
    listing = json.loads(alice.run(f"import os, json; print(json.dumps(sorted(os.listdir({str(ROOT)!r}))))"))
    assert "solutions" not in listing and "autograder" not in listing and "tests" not in listing
    assert "course" in listing
    for module in ("workbook_instructor.reference.flash_kernel", "workbook_grader.pipeline"):
        said = alice.run(f"import {module}")   # the reference answers, the grader
        assert "ModuleNotFoundError" in said, said
    said = alice.run(f"import os; print(os.listdir({str(ROOT / 'instructor')!r}))")
    assert "workbook_instructor" not in said and "workbook_grader" not in said, said
    said = alice.run(f"open({str(ROOT / 'solutions' / '01-attention' / '01-attention.ipynb')!r})")
    assert "FileNotFoundError" in said, said
    assert "FileNotFoundError" in alice.run(f"import os; os.listdir({str(bob.cwd)!r})")
    assert alice.run("import os; print(os.getcwd())") == str(alice.cwd)


def test_writes_stay_in_its_own_folder_and_tmp_is_private(two_students):
    alice, bob = two_students
    said = alice.run(f"open({str(ROOT / 'course' / 'owned')!r}, 'w')")
    assert "Read-only file system" in said or "Permission denied" in said, said
    assert not (ROOT / "course" / "owned").exists()
    assert alice.run("open('mine.txt', 'w').write('x'); print('ok')") == "ok"
    assert (alice.cwd / "mine.txt").read_text() == "x"
    alice.run("open('/tmp/secret', 'w').write('alice')")
    assert "FileNotFoundError" in bob.run("open('/tmp/secret').read()")
    assert not Path("/tmp/secret").exists()


def test_the_graders_environment_does_not_reach_the_kernel(factory, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCTOR_API_TOKEN", "secret-123")
    student = Kernel(factory, tmp_path, "grace")
    seen = student.run("import os; print(sorted(os.environ))")
    student.close()
    assert "INSTRUCTOR_API_TOKEN" not in seen and "WORKBOOK_SIZE" in seen, seen


def test_no_network_no_other_processes_no_privileges(two_students):
    alice, _ = two_students
    said = alice.run("import socket; socket.create_connection(('1.1.1.1', 80), timeout=3)")
    assert "Network is unreachable" in said or "OSError" in said, said
    pids = alice.run("import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert pids == "[1]", f"the kernel should be alone in its PID namespace, saw {pids}"
    caps = alice.run("print([l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1])")
    assert int(caps, 16) == 0, caps
    said = alice.run("import subprocess; r = subprocess.run(['unshare', '--user', 'true'], "
                     "capture_output=True); print(r.returncode)")
    assert said != "0", f"creating a user namespace should fail, got {said}"
    said = alice.run("import ctypes; ctypes.CDLL(None)")
    assert "graded code may not use ctypes" in said, said
    host_uid = alice.run("import os; print(os.stat('mine.txt').st_uid if os.path.exists('mine.txt') "
                         "else open('mine.txt', 'w') and os.stat('mine.txt').st_uid)")
    assert host_uid == "0"  # root inside its own user namespace...
    assert (alice.cwd / "mine.txt").stat().st_uid == namespaces.sandbox_uid()  # ...nobody outside


def test_nothing_it_starts_outlives_it(factory, tmp_path):
    student = Kernel(factory, tmp_path, "carol")
    marker = f"outlive-{os.getpid()}-{time.monotonic_ns()}"
    sleeper = "import time; time.sleep(300)"
    student.run("import subprocess, sys\n"
                f"subprocess.Popen([sys.executable, '-c', {sleeper!r}, '{marker}'], "
                "start_new_session=True)\n"
                f"subprocess.Popen(['sh', '-c', 'nohup \"$0\" -c \"{sleeper}\" {marker} &', "
                "sys.executable])")
    time.sleep(0.5)
    alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert alive, "the test's background processes did not start"
    student.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive:
        time.sleep(0.2)
        alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert not alive, f"processes {alive} outlived the student's kernel"


def test_killing_the_grader_kills_every_kernel(tmp_path):
    """A grading run killed with SIGKILL (its factory included) leaves no student process."""
    lone = kernel_factory.FactoryProcess(preload=["ipykernel.kernelapp"],
                                         public=sandbox.public_paths(COURSE), never=[],
                                         env=dict(os.environ))
    student = Kernel(lone, tmp_path, "dave")
    marker = f"orphan-{os.getpid()}-{time.monotonic_ns()}"
    student.run("import subprocess, sys\n"
                f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{marker}'],"
                " start_new_session=True)")
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0
    lone._proc.kill()
    lone._proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail("a student's process outlived the grader that was killed")
    student.kc.stop_channels()


def test_a_folder_that_holds_a_secret_is_shown_without_it():
    """A checkout root on sys.path (a .pth file) is exposed entry by entry, minus the secrets."""
    shown = namespaces.environment_paths(extra=[str(ROOT)],
                                         never=[str(p) for p in COURSE.hidden_from_students()])
    assert str(ROOT) not in shown and str(ROOT / "course") in shown
    hidden = [p for p in shown for s in COURSE.hidden_from_students()
              if p == str(s) or p.startswith(str(s) + "/") or str(s).startswith(p + "/")]
    assert not hidden, hidden


def test_no_state_passes_from_one_student_to_the_next(factory, tmp_path):
    """Kernels are forked from a factory that only imported modules, and nothing flows back:
    what one student does to a preloaded module is not there for the next student."""
    first = Kernel(factory, tmp_path, "erin")
    first.run("import torch, numpy\ntorch.nn.functional.relu = lambda x: x\ntorch.leak = 'erin'\n"
              "numpy.random.seed(1)\nsecret = 42")
    first.close()
    second = Kernel(factory, tmp_path, "frank")
    said = second.run("import torch\nprint(getattr(torch, 'leak', None), "
                      "torch.nn.functional.relu.__module__, 'secret' in globals())")
    second.close()
    assert said == "None torch.nn.functional False", said


def _checked(canary, cell, printed: str) -> list[dict]:
    """The planted check ``cell`` as it printed ``printed``, followed by a test cell."""
    test = {"cell_type": "code", "source": "assert True", "outputs": [],
            "metadata": {"nbgrader": {"grade": True, "grade_id": "t1", "points": 1}}}
    return [{**cell, "outputs": [{"output_type": "stream", "name": "stdout",
                                  "text": printed + "\n"}]}, test]


def test_the_integrity_check_signs_its_verdict_and_its_key_stays_hidden(two_students):
    from workbook_grader.canaries import Canary

    alice, _ = two_students
    canary = Canary.new()
    cell = canary.cell()
    said = alice.run(cell["source"])
    assert said.startswith(f"[grader-integrity {canary.nonce}] ok #"), said
    assert canary.verdicts(_checked(canary, cell, said), "test-key") == {}
    # a line that a replaced print rewrote, or that anything but the check wrote, fails
    forged = said.replace(" ok #", " ok #0")
    for key, line in (("another-key", said), ("test-key", forged)):
        assert "did not arrive as the check wrote it" in canary.verdicts(
            _checked(canary, cell, line), key)["t1"]
    # each challenge is answered once
    assert "asked twice" in alice.run(cell["source"])
    # only from the top level of its own cell: not from a function that forwards the request
    call = canary.cell()["source"].split("\n", 1)[1]
    said = alice.run(f"def forward():\n    {call}\n\nforward()")
    assert "called from somewhere else than its cell" in said, said
    # the key was in the kernel's start-up file, which is gone once IPython has run it
    said = alice.run("import os; print(os.listdir('/tmp/ipython/profile_default/startup'))")
    assert said == "[]", said
    # ...and the request the grader wrote for the kernel (with the same file in it) is out of sight
    request = alice.work / "jupyter" / "kernels" / "python3" / "sandbox-request.json"
    assert request.exists() and "test-key" in request.read_text()
    assert "FileNotFoundError" in alice.run(f"open({str(request)!r}).read()")
