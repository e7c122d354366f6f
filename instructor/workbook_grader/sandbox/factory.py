"""A kernel factory: import the course's libraries once, then fork one sandboxed kernel per student.

Most of a student's grading time used to go into starting Python, importing torch and
transformers and starting a kernel, before the first graded cell ran (notebook 01: about 7 of
its 11 seconds of CPU). The factory is one process per grading run that imports the modules
named in ``nbgrader_config.py`` (``c.GradingSandbox.preload``) and nothing else: no notebook,
no gradebook, no hidden test, so there is nothing in its memory that a student may not see.
For each kernel it forks a child; the child enters a sandbox of its own (``namespaces.enter``)
and becomes an IPython kernel. Each child serves exactly one student and then dies with its
whole PID namespace; no state goes from one student to another, because nothing ever flows
back from a child to the factory.

Protocol: the factory listens on a Unix socket in a private folder. A client (the kernel
provisioner inside the student's nbgrader) opens one connection per kernel and sends one JSON
line: ``{"connection", "env", "cwd", "writable", "read_only", "limits", "threads",
"startup"}``. The factory answers ``{"pid": N}`` (or ``{"error": ...}``), later
``{"exit": code}``; the client may send ``{"signal": n}`` lines. When the connection closes,
the kernel is killed. The factory exits, killing its kernels, when its stdin closes.

Kernels started ahead of their student (``kernel_pool``): the request also carries a secret
``"token"``. Later, the student's nbgrader opens a connection of its own and sends only
``{"attach": token}``; the kernel then belongs to that connection (``{"pid": N}``, the exit,
the signals, and its close kills the kernel) and the first connection is let go. A token works
once; an unknown or used one is answered ``{"error": ...}``, and the provisioner then asks for
a new kernel the ordinary way.

Linux only; elsewhere the grader starts kernels the plain way (see kernelspec.py).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import time

from . import namespaces

# Set before the course's modules are imported, because they read them at import time.
# * Thread counts: the factory must stay single-threaded to fork safely; each kernel sets its own.
# * A sandboxed kernel has no GPU (no device nodes), so Triton kernels can only run in Triton's
#   interpreter; Triton decides that when a kernel (or triton.language itself) is defined.
# * pydevd (ipykernel's debugger, imported below) would print a warning about frozen modules.
FACTORY_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "TRITON_INTERPRET": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
# What every kernel imports while it starts, whatever the course: ipykernel's kernel, shell and
# debugger (which pulls in debugpy) and IPython's shell. Imported here once, instead of in each
# kernel: about 0.4 s of CPU per student (cProfile of the kernel's start, notebook 01).
KERNEL_PRELOAD = ["ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell",
                  "ipykernel.debugger", "IPython.core.interactiveshell"]
SANDBOX_HOME = "/tmp/home"
KERNEL_FILE = "/tmp/kernel.json"


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def preload(modules: list[str]) -> list[str]:
    """Import each module; return a sentence per module that could not be imported."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # a missing optional library must not stop grading
            failed.append(f"{name}: {type(err).__name__}: {err}")
    return failed


# ------------------------------------------------------------------------------ in the child

# What a kernel may see of the grader's environment: the grader's own secrets (tokens, keys in
# the instructor's shell) must not reach a student's code, so everything else is dropped.
KERNEL_ENV = {"PATH", "LANG", "LANGUAGE", "TZ", "PYTHONHASHSEED", "OMP_NUM_THREADS",
              "MKL_NUM_THREADS", "TQDM_DISABLE", "MPLBACKEND", "HF_HUB_OFFLINE",
              "TRANSFORMERS_OFFLINE", "JPY_SESSION_NAME"}
KERNEL_ENV_PREFIXES = ("LC_", "WORKBOOK_")


def _sandbox_env(request: dict) -> dict:
    env = {k: v for k, v in request.get("env", {}).items()
           if k in KERNEL_ENV or k.startswith(KERNEL_ENV_PREFIXES)}
    env.update({
        "HOME": SANDBOX_HOME, "TMPDIR": "/tmp", "IPYTHONDIR": "/tmp/ipython",
        "MPLCONFIGDIR": "/tmp/matplotlib", "XDG_CACHE_HOME": "/tmp/cache",
        "HF_HOME": "/tmp/huggingface", "TRITON_INTERPRET": FACTORY_ENV["TRITON_INTERPRET"],
    })
    return env


def _become_kernel(request: dict, view: namespaces.View, limits: namespaces.Limits) -> None:
    """Runs in the forked child: enter the sandbox, then run an IPython kernel. Never returns."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)   # stderr stays the factory's log until the sandbox stands
        os.closerange(3, 65536)
        try:
            namespaces.enter(view, limits)
        except BaseException as err:
            os.write(2, f"kernel sandbox for {request.get('cwd')}: {err}\n".encode())
            raise
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 2)
        os.close(null)
        for folder in (SANDBOX_HOME, "/tmp/ipython/profile_default/startup", "/tmp/matplotlib"):
            os.makedirs(folder, exist_ok=True)
        with open(KERNEL_FILE, "w", encoding="utf-8") as handle:
            json.dump(request["connection"], handle)
        if request.get("startup"):
            with open("/tmp/ipython/profile_default/startup/00-grader.py", "w",
                      encoding="utf-8") as handle:
                handle.write(request["startup"])
        os.environ.clear()
        os.environ.update(_sandbox_env(request))
        os.chdir(request["cwd"])
        import random

        random.seed()   # a fresh process would not share the factory's random state
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(max(1, int(request.get("threads", 1))))
        # No SQLite history: the kernel is thrown away after one notebook, and opening the
        # database costs each student about 0.03 s of CPU. In, Out and _i still work.
        sys.argv = ["ipykernel_launcher", "-f", KERNEL_FILE, "--HistoryManager.enabled=False"]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=sys.argv[1:])
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0
    except BaseException:  # noqa: BLE001 - nothing may escape into the factory's loop
        code = 71
    finally:
        os._exit(code)


# ------------------------------------------------------------------------------ the factory

class Factory:
    def __init__(self, listen: socket.socket, base_view: list[str], public: list[str]):
        self.listen = listen
        self.base_view = base_view
        self.public = public
        self.selector = selectors.DefaultSelector()
        self.kernels: dict[int, socket.socket] = {}     # waiter pid -> client connection
        self.clients: dict[socket.socket, dict] = {}    # connection -> {"pid", "buffer"}
        self.tokens: dict[str, int] = {}                # started ahead, not yet attached
        wake_r, self.wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(listen, selectors.EVENT_READ, "listen")
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        self.running = True

    def _send(self, conn: socket.socket, message: dict) -> None:
        try:
            conn.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            pass

    def _launch(self, conn: socket.socket, request: dict) -> None:
        writable = [os.path.realpath(p) for p in request.get("writable", [])]
        read_only = self.base_view + [os.path.realpath(p) for p in request.get("read_only", [])
                                      if os.path.realpath(p) in self.public]
        view = namespaces.View(read_only=read_only, writable=writable)
        limits = namespaces.Limits(**request.get("limits", {}))
        for folder in writable:
            namespaces.give_to_sandbox(folder)
        token = request.pop("token", None)   # the kernel itself never holds its token
        pid = os.fork()
        if pid == 0:
            _become_kernel(request, view, limits)
        self.kernels[pid] = conn
        self.clients[conn]["pid"] = pid
        if token:
            self.tokens[str(token)] = pid
        self._send(conn, {"pid": pid})

    def _attach(self, conn: socket.socket, token: str) -> None:
        """Hand a kernel started ahead over to ``conn``; its first owner is let go."""
        pid = self.tokens.pop(token, None)
        owner = self.kernels.get(pid) if pid is not None else None
        if owner is None or owner not in self.clients:
            self._send(conn, {"error": "no kernel waits under this token"})
            return
        self.clients[owner]["pid"] = None   # closing the first connection no longer kills it
        self.kernels[pid] = conn
        self.clients[conn]["pid"] = pid
        self._send(conn, {"pid": pid})

    def _on_client(self, conn: socket.socket) -> None:
        state = self.clients[conn]
        try:
            chunk = conn.recv(1 << 20)
        except OSError:
            chunk = b""
        if not chunk:  # the client is gone: its kernel goes too
            self._drop(conn)
            return
        state["buffer"] += chunk
        *lines, state["buffer"] = state["buffer"].split(b"\n")
        for line in filter(None, (ln.strip() for ln in lines)):
            message = json.loads(line)
            if "connection" in message and state["pid"] is None:
                try:
                    self._launch(conn, message)
                except Exception as err:  # noqa: BLE001 - report, keep serving others
                    self._send(conn, {"error": f"{type(err).__name__}: {err}"})
            elif "attach" in message and state["pid"] is None:
                self._attach(conn, str(message["attach"]))
            elif "signal" in message and state["pid"] in self.kernels:
                self._kill(state["pid"], message["signal"])

    @staticmethod
    def _kill(pid: int, signum: int) -> None:
        # The waiter ignores polite signals; anything but an interrupt ends the whole sandbox.
        try:
            os.kill(pid, signal.SIGINT if signum == signal.SIGINT else signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _drop(self, conn: socket.socket) -> None:
        state = self.clients.pop(conn, {})
        pid = state.get("pid")
        if pid in self.kernels:
            self._kill(pid, signal.SIGKILL)
        self.selector.unregister(conn)
        conn.close()

    def _reap(self) -> None:
        while self.kernels:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.kernels.pop(pid, None)
            for token in [t for t, p in self.tokens.items() if p == pid]:
                del self.tokens[token]
            if conn is not None and conn in self.clients:
                self._send(conn, {"exit": os.waitstatus_to_exitcode(status)})

    def serve(self) -> None:
        while self.running or self.kernels:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "listen":
                    conn, _ = self.listen.accept()
                    self.clients[conn] = {"pid": None, "buffer": b""}
                    self.selector.register(conn, selectors.EVENT_READ, "client")
                elif key.data == "wake":
                    try:
                        os.read(key.fd, 4096)
                    except BlockingIOError:
                        pass
                elif key.data == "stdin":
                    if not os.read(key.fd, 4096):
                        self.selector.unregister(key.fd)
                        self.running = False
                        for pid in list(self.kernels):
                            self._kill(pid, signal.SIGKILL)
                else:
                    self._on_client(key.fileobj)
            self._reap()


# ------------------------------------------------------------------------------ client side

class FactoryProcess:
    """The grader's handle on one factory process (shared by the grader's threads)."""

    def __init__(self, *, preload: list[str], public: list[str], never: list[str], env: dict):
        import subprocess
        import tempfile

        self.folder = tempfile.mkdtemp(prefix="wbk-")   # 0700; short, for the socket path
        self.socket = os.path.join(self.folder, "factory.sock")
        self.log = os.path.join(self.folder, "factory.log")
        cmd = [sys.executable, "-P", "-m", __name__, "--socket", self.socket,
               "--preload", ",".join(preload)]
        cmd += [f"--public={p}" for p in public] + [f"--never={p}" for p in never]
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen(cmd, cwd=self.folder, env={**env, **FACTORY_ENV},
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=log)
        first = self._proc.stdout.readline()
        info = json.loads(first) if first.strip() else {}
        if not info.get("ready"):
            self.close()
            raise RuntimeError(f"the kernel factory did not start; see {self.log}")
        self.isolation: bool = bool(info.get("isolation"))
        self.why: str = info.get("why", "")
        self.failed: list[str] = info.get("failed", [])   # preloads that could not be imported

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        except (OSError, ValueError):
            pass
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired and the like
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout:
            self._proc.stdout.close()


_shared: dict[tuple, FactoryProcess] = {}
_shared_lock = None


def shared(*, preload: list[str], public: list[str], never: list[str], env: dict
           ) -> FactoryProcess | None:
    """This process's factory for these settings, started on first use; None if it cannot run."""
    import atexit
    import threading

    global _shared_lock
    if _shared_lock is None:
        _shared_lock = threading.Lock()
    key = (tuple(preload), tuple(public), tuple(never))
    with _shared_lock:
        factory = _shared.get(key)
        if factory is None or not factory.alive:
            try:
                factory = FactoryProcess(preload=preload, public=public, never=never, env=env)
            except (OSError, RuntimeError, ValueError):
                return None
            _shared[key] = factory
            atexit.register(factory.close)
        return factory


def close_shared(factory: FactoryProcess | None) -> None:
    """Stop ``factory`` (a grading run's, from :func:`shared`) when its run is over, so that a
    process grading many runs (a test suite, a notebook) keeps no idle factory, each holding the
    course's imports in memory, until it exits."""
    if factory is None:
        return
    if _shared_lock is not None:
        with _shared_lock:
            for key in [k for k, v in _shared.items() if v is factory]:
                del _shared[key]
    factory.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="Unix socket to listen on")
    parser.add_argument("--preload", default="", help="comma-separated modules to import")
    parser.add_argument("--public", action="append", default=[],
                        help="a read-only path kernels may ask to see (course files)")
    parser.add_argument("--never", action="append", default=[],
                        help="a path no kernel may see (the checkout's solutions, the grader's work)")
    args = parser.parse_args(argv)

    def ready(**info) -> None:
        sys.stdout.write(json.dumps({"ready": True, **info}) + "\n")
        sys.stdout.flush()

    why = namespaces.supported()
    if why:
        ready(isolation=False, why=why)
        return 0
    start = time.perf_counter()
    failed = preload(KERNEL_PRELOAD + [m for m in args.preload.split(",") if m.strip()])
    loaded = time.perf_counter() - start
    if _threads() != 1:
        ready(isolation=False, why=f"the factory has {_threads()} threads after its imports, "
                                    "so it cannot fork safely")
        return 0
    try:
        view = namespaces.environment_paths(never=args.never)
        why = namespaces.probe(view)
    except namespaces.SandboxError as err:
        why = str(err)
    if why:
        ready(isolation=False, why=why)
        return 0
    listen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listen.bind(args.socket)
    listen.listen(64)
    ready(isolation=True, seconds=round(loaded, 2), failed=failed, view=view)
    factory = Factory(listen, view, [os.path.realpath(p) for p in args.public])
    factory.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
