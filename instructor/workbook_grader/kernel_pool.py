"""Kernels started ahead of their students, so that a student's nbgrader finds its kernel up.

Without a pool, a student's kernel is asked for only when nbgrader reaches the first cell: the
kernel then forks from the factory, builds its sandbox and starts IPython (about 0.4 s of wall
time on the 2-core machine) while nbgrader waits. With the pool, the grader asks the factory
for the kernels of the next students while earlier ones are being graded (``depth`` of them,
one per ``--jobs``), so that start-up runs in the gaps of the students before.

Each kernel is started in the sandbox of the student it will serve (that student's own kernel
folder and socket folder) and is used by that student's first notebook only: the provisioner
in their nbgrader takes it over with a one-time token (see ``sandbox/factory.py``). Nothing
flows between students: a kernel never serves anyone else, and one whose student needs none
(nothing to grade, or the grader failed first) is killed unused.
"""
from __future__ import annotations

import json
import secrets
import shutil
import socket
import threading
from dataclasses import dataclass, field

from .execute import Folders, Settings
from .sandbox import kernelspec

CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


@dataclass
class Ahead:
    """A kernel started for one student and not yet taken over by their nbgrader (``attach``
    is empty when the factory refused: the student's nbgrader then asks for one itself)."""
    folders: Folders
    attach: dict                      # {"token", "connection"}: what the provisioner needs
    pid: int | None = None            # the kernel's process, as the factory numbers it
    _conn: socket.socket | None = field(default=None, repr=False)

    def close(self) -> None:
        """Let the kernel go: kills it unless the student's nbgrader has taken it over."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def discard(self) -> None:
        """For a student who was not executed after all: the kernel and its socket folder go."""
        self.close()
        shutil.rmtree(self.folders.ipc, ignore_errors=True)


def connection_info(folders: Folders) -> dict:
    """Connection details of a kernel over Unix sockets in the student's socket folder."""
    info = {name: port for port, name in enumerate(CHANNELS, start=1)}
    info.update(transport="ipc", ip=str(folders.ipc / "pool"), key=secrets.token_hex(32),
                signature_scheme="hmac-sha256", kernel_name="python3")
    return info


def start(settings: Settings, factory, assignment: str, student: str,
          timeout: float = 30.0) -> Ahead | None:
    """Ask ``factory`` for ``student``'s kernel now; None where kernels do not come from a
    factory (no sandbox)."""
    if factory is None or not factory.isolation:
        return None
    folders = Folders.fresh(settings, assignment, student)
    connection = connection_info(folders)
    token = secrets.token_hex(16)
    request = kernelspec.sandbox_request(factory=factory, **folders.sandbox_args(settings))
    request.pop("factory")
    request.update(connection=connection, token=token,
                   env={**folders.env(settings), **kernelspec.KERNELSPEC_ENV})
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(timeout)
        conn.connect(factory.socket)
        conn.sendall((json.dumps(request) + "\n").encode())
        reply = json.loads(conn.makefile("rb").readline() or b"{}")
    except (OSError, ValueError):
        reply = {}
    if "pid" not in reply:
        conn.close()
        return Ahead(folders, {})
    return Ahead(folders, {"token": token, "connection": connection}, reply["pid"], conn)


class KernelPool:
    """The kernels started ahead during one grading run on this machine, by student."""

    def __init__(self, settings: Settings, factory, order: list[tuple[str, str]], depth: int):
        self._settings, self._factory, self._depth = settings, factory, depth
        self._order = order                     # (assignment, student) in the order graded
        self._position = {key: i for i, key in enumerate(order)}
        self._ahead: dict[tuple[str, str], Ahead | None] = {}
        self._taken: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def take(self, assignment: str, student: str) -> Ahead | None:
        """This student's kernel (started now if it was not yet), after starting the kernels
        of the next ``depth`` students. Starting one takes milliseconds here: the factory
        forks and answers; the kernel comes up on its own meanwhile."""
        key = (assignment, student)
        i = self._position.get(key, len(self._order))
        with self._lock:
            for other in [key, *self._order[i + 1:i + 1 + self._depth]]:
                if other not in self._ahead and other not in self._taken:
                    try:
                        self._ahead[other] = start(self._settings, self._factory, *other)
                    except OSError:   # e.g. the scratch folder: that student's own run says so
                        self._ahead[other] = None
            self._taken.add(key)
            return self._ahead.pop(key, None)

    def close(self) -> None:
        """Kill every kernel that was started and never taken."""
        with self._lock:
            left, self._ahead = list(self._ahead.values()), {}
        for ahead in left:
            if ahead is not None:
                ahead.discard()
