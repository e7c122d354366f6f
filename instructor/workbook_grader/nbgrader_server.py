"""A pre-started nbgrader: import it once, then fork one fresh process per student.

Starting nbgrader costs about 1.5 s of CPU (importing nbconvert, jupyter_client, SQLAlchemy and
nbgrader itself), and the grader starts it once per student so that students stay isolated.
This module keeps that isolation and pays the import once per grading run: a small server
process imports nbgrader and then, for each request, forks a child that runs stock nbgrader's
command line. The child is a new process (a copy of the server taken before nbgrader ever ran),
with its own session, working folder, environment and log file, exactly as a newly started
``nbgrader`` would have.

Protocol (JSON lines): the client writes ``{"id", "argv", "cwd", "env", "log"}`` to the server's
stdin; the server answers ``{"id", "pid"}`` when the child starts and ``{"id", "returncode"}``
when it ends. The server exits, killing any children left, when its stdin closes.

Linux only (it relies on ``fork`` and ``prctl``); elsewhere, or with ``WORKBOOK_PREWARM=0``, the
grader starts nbgrader as a plain subprocess per student.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from .sandbox.namespaces import die_with_parent


def enabled() -> bool:
    return sys.platform == "linux" and os.environ.get("WORKBOOK_PREWARM", "1") != "0"


# ----------------------------------------------------------------------------- server side

def _preload() -> None:
    """Import what ``nbgrader autograde`` needs, without running any of it."""
    from .nbgrader_main import speed_up, warm_up

    speed_up()  # patches the children inherit; the server itself never opens a gradebook
    import nbgrader.apps.autogradeapp  # noqa: F401
    import nbgrader.apps.nbgraderapp  # noqa: F401
    import nbgrader.converters.autograde  # noqa: F401
    import jupyter_client.manager  # noqa: F401
    # Imported or built by every autograde run: once here rather than once per student.
    import IPython  # noqa: F401  (nbconvert's execute preprocessor)
    import sqlalchemy.dialects.sqlite  # noqa: F401  (the gradebook's engine)
    import ipykernel.kernelspec  # noqa: F401  (read by jupyter_client to find a kernel spec)
    from .sandbox import provisioner  # noqa: F401  (the kernel provisioner that nbgrader loads)
    from nbformat import v4, validator

    # nbformat compiles a JSON-schema validator per (format version, strict or relaxed) on
    # first use, about 0.2 s of CPU in each student's nbgrader otherwise.
    for minor in range(v4.nbformat_minor + 1):
        for relax in (False, True):
            validator.get_validator(4, minor, relax_add_props=relax)
    warm_up()


def _child(request: dict) -> None:
    """Runs in the forked child: become a fresh ``nbgrader`` process, then exit."""
    code = 1
    try:
        os.setsid()  # a process group of its own, so the client can kill the whole tree
        die_with_parent()  # the server's death takes the child with it
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import random

        random.seed()  # do not share the server's random state between students
        sys.argv = ["nbgrader", *request["argv"]]
        from nbgrader.apps.nbgraderapp import main

        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 - report anything, then leave without cleanup
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _requests(fd: int, timeout: float):
    """Complete request lines that have arrived on ``fd`` (None once it is closed)."""
    buffer = b""
    while True:
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            yield []
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            yield None
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield [json.loads(line) for line in lines if line.strip()]


def serve() -> None:
    _preload()
    running: dict[int, int] = {}  # child pid -> request id
    _reply({"ready": True, "threads": threading.active_count()})
    stdin_open = True
    incoming = _requests(sys.stdin.fileno(), timeout=0.05)
    while stdin_open or running:
        batch = next(incoming) if stdin_open else None
        if batch is None:
            if stdin_open:  # the client is gone: nobody will read these results
                stdin_open = False
                for pid in running:
                    _kill_group(pid)
            time.sleep(0.05)
        for request in batch or []:
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(request)
            running[pid] = request["id"]
            _reply({"id": request["id"], "pid": pid})
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            request_id = running.pop(pid, None)
            if request_id is not None:
                _reply({"id": request_id, "returncode": os.waitstatus_to_exitcode(status)})


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ----------------------------------------------------------------------------- client side

@dataclass
class _Pending:
    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    pid: int | None = None
    returncode: int | None = None


class PrewarmedNbgrader:
    """Client of one server process; safe to share between the grader's threads."""

    def __init__(self, cwd: str, env: dict) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__], cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        first = self._proc.stdout.readline()
        if not first or not json.loads(first).get("ready"):
            self._proc.kill()
            raise RuntimeError("the pre-started nbgrader did not come up")
        self.server_threads = json.loads(first)["threads"]  # 1, or forking would be unsafe
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self.alive = True
        self._reader = threading.Thread(target=self._read_replies, daemon=True)
        self._reader.start()

    def _read_replies(self) -> None:
        for line in self._proc.stdout:
            message = json.loads(line)
            with self._lock:
                pending = self._pending.get(message["id"])
            if pending is None:
                continue
            if "pid" in message:
                pending.pid = message["pid"]
                pending.started.set()
            else:
                pending.returncode = message["returncode"]
                pending.ended.set()
        with self._lock:  # the server is gone: wake every waiter
            self.alive = False
            for pending in self._pending.values():
                pending.started.set()
                pending.ended.set()

    def run(self, argv: list[str], *, cwd: str, env: dict, timeout: float
            ) -> tuple[int | None, str, float]:
        """Run ``nbgrader ARGV``; return (exit code or None if killed at ``timeout``, log, s)."""
        start = time.monotonic()
        fd, log = tempfile.mkstemp(prefix="nbgrader-", suffix=".log")
        os.close(fd)
        pending, request_id = _Pending(), None
        try:
            with self._lock:
                if not self.alive:
                    raise RuntimeError("the pre-started nbgrader has stopped")
                request_id, self._next_id = self._next_id, self._next_id + 1
                self._pending[request_id] = pending
                self._proc.stdin.write(json.dumps({"id": request_id, "argv": argv, "cwd": cwd,
                                                   "env": env, "log": log}) + "\n")
                self._proc.stdin.flush()
            pending.started.wait()
            finished = pending.ended.wait(timeout=max(0.0, timeout - (time.monotonic() - start)))
            if pending.pid is not None:
                if not finished:
                    _kill_group(pending.pid)
                    pending.ended.wait()
                _kill_group(pending.pid)  # the kernel may have outlived nbgrader
            if pending.pid is None or (finished and pending.returncode is None):
                raise RuntimeError("the pre-started nbgrader stopped during grading")
            with open(log, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            return (pending.returncode if finished else None), text, time.monotonic() - start
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
            os.unlink(log)

    def close(self) -> None:
        """Stop the server; it kills any run still going."""
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=30)
        self._proc.stdout.close()


_shared: PrewarmedNbgrader | None = None
_shared_lock = threading.Lock()


def shared(cwd: str, env: dict) -> PrewarmedNbgrader | None:
    """This process's server, started on first use; None where it cannot run."""
    global _shared
    if not enabled():
        return None
    with _shared_lock:
        if _shared is None or not _shared.alive:
            try:
                _shared = PrewarmedNbgrader(cwd, env)
            except (OSError, RuntimeError, ValueError):
                return None
            atexit.register(_shared.close)
        return _shared


if __name__ == "__main__":
    serve()
