"""The kernel provisioner nbgrader's kernel manager uses to get a student's kernel.

jupyter_client starts kernels through a *provisioner* named in the kernelspec
(``metadata.kernel_provisioner``). This one asks the grading run's kernel factory for a kernel
instead of starting a process itself: it sends the connection details and the student's sandbox
settings (a JSON request file that the grader wrote next to the kernelspec) and then controls
the kernel through the same connection. nbgrader still drives the execution, writes the
notebook and records the grades; only where the kernel comes from changes.

When the grader started this student's kernel ahead (``kernel_pool``), the request file also
holds ``"attach": {"token", "connection"}``: the provisioner takes that kernel over and hands
jupyter_client the connection details it was started with (jupyter_client adopts what a
provisioner returns). Only the first notebook of a student can take it; a refused token (used,
or the kernel has died) falls back to asking for a new kernel.

Registered as ``workbook-sandbox`` in the ``jupyter_client.kernel_provisioners`` entry points.
"""
from __future__ import annotations

import asyncio
import json
import select
import signal
import socket

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Unicode


class KernelFactoryError(RuntimeError):
    """The kernel factory refused or could not be reached."""


class SandboxProvisioner(LocalProvisioner):
    request = Unicode(help="JSON file with the factory socket and the sandbox settings").tag(
        config=True)

    _conn: socket.socket | None = None
    _buffer: bytes = b""
    _exit: int | None = None

    @property
    def has_process(self) -> bool:
        return self._conn is not None and self._exit is None

    def _messages(self, timeout: float = 0.0) -> list[dict]:
        if self._conn is None:
            return []
        ready, _, _ = select.select([self._conn], [], [], timeout)
        if not ready:
            return []
        chunk = self._conn.recv(1 << 16)
        if not chunk:  # the factory is gone, and with it the kernel
            self._exit = -signal.SIGKILL if self._exit is None else self._exit
            return []
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    async def launch_kernel(self, cmd: list[str], **kwargs):
        with open(self.request, encoding="utf-8") as handle:
            request = json.load(handle)
        factory, ahead = request.pop("factory"), request.pop("attach", None)
        if ahead:
            try:
                self.pid = self._ask(factory, {"attach": ahead["token"]})
                info = dict(ahead["connection"])
                info["key"] = info["key"].encode()
                return info
            except KernelFactoryError:
                self._drop_connection()   # used or dead: start one now, as without a pool
        info = {k: (v.decode() if isinstance(v, bytes) else v)
                for k, v in self.connection_info.items()}
        request.update(connection=info, env=dict(kwargs.get("env") or {}))
        self.pid = self._ask(factory, request)
        return self.connection_info

    def _ask(self, factory: str, message: dict) -> int:
        """Send one request on a new connection to the factory; the kernel's pid."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(factory)
            conn.sendall((json.dumps(message) + "\n").encode())
        except OSError as err:
            conn.close()
            raise KernelFactoryError(f"the kernel factory could not be reached: {err}") from err
        self._conn, self._buffer, self._exit = conn, b"", None
        for _ in range(600):
            for reply in self._messages(timeout=0.1):
                if "error" in reply:
                    raise KernelFactoryError(f"the kernel factory refused: {reply['error']}")
                if "pid" in reply:
                    return reply["pid"]
            if self._exit is not None:
                break
        raise KernelFactoryError("the kernel factory did not start a kernel")

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._buffer, self._exit = None, b"", None

    async def poll(self) -> int | None:
        for message in self._messages():
            if "exit" in message:
                self._exit = message["exit"]
        return self._exit if self._conn is not None else 0

    async def wait(self) -> int | None:
        while await self.poll() is None:
            await asyncio.sleep(0.05)
        return self._exit

    async def send_signal(self, signum: int) -> None:
        if self.has_process:
            try:
                self._conn.sendall((json.dumps({"signal": int(signum)}) + "\n").encode())
            except OSError:
                pass

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        if self._conn is not None:
            self._conn.close()   # the factory kills the kernel if it still runs
            self._conn = None
        await super().cleanup(restart=restart)

    async def get_provisioner_info(self) -> dict:
        return {**await super().get_provisioner_info(), "request": self.request}
