"""Run a student's kernel in a sandbox: no network, read-only files, resource limits.

The grader installs a kernelspec whose command is this module wrapped around
``python -m ipykernel_launcher``. It sets resource limits (address space, CPU time, file size,
open files) and, when bubblewrap (``bwrap``) is installed, starts the kernel in a new network
namespace (no network at all) with the whole filesystem read-only except the folders passed
with ``--rw``. The kernel talks to nbgrader over Unix sockets (``ipc`` transport) that live in
one of those folders, so it needs no network.

Without bubblewrap (e.g. on macOS) the portable fallback keeps the resource limits, the
wall-clock and per-cell timeouts and the output cap, but cannot stop network access or writes
outside the student's folder; the grade table notes this. Install ``bubblewrap`` (Debian and
Ubuntu: ``apt-get install bubblewrap``) for real isolation.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from ..paths import cache_dir

OUTPUT_CAP_STARTUP = '''\
# Installed by the grader: caps what one cell (and the whole kernel) can print, so a flood
# cannot bury the grader. The per-cell budget is renewed before each cell runs.
import sys as _sys

_LIMIT = {limit}
_TOTAL = {limit} * 8


class _CappedStream:
    _spent_total = 0

    def __init__(self, stream):
        self._stream = stream
        self.renew()

    def renew(self):
        self._left, self._told = _LIMIT, False

    def write(self, text):
        room = min(self._left, _TOTAL - _CappedStream._spent_total)
        if room <= 0:
            if not self._told:
                self._told = True
                self._stream.write("\\n[output cut by the grader after {limit} characters]\\n")
            return len(text)
        kept = text[:room]
        self._left -= len(kept)
        _CappedStream._spent_total += len(kept)
        self._stream.write(kept)
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


_sys.stdout = _CappedStream(_sys.stdout)
_sys.stderr = _CappedStream(_sys.stderr)


def _renew_output_budget(*_args):
    for _stream in (_sys.stdout, _sys.stderr):
        if isinstance(_stream, _CappedStream):
            _stream.renew()


get_ipython().events.register("pre_run_cell", _renew_output_budget)
'''

@functools.lru_cache(maxsize=None)
def bwrap_available() -> bool:
    """True when bubblewrap is installed *and* may create namespaces here.

    Some containers ship ``bwrap`` but forbid user namespaces; starting a kernel through it
    would then fail for every student, so probe once with a trivial command. Set
    ``WORKBOOK_SANDBOX=none`` to skip bubblewrap on purpose.
    """
    if os.environ.get("WORKBOOK_SANDBOX", "").lower() == "none":
        return False
    if shutil.which("bwrap") is None:
        return False
    probe = bwrap_command(["true"], [])
    try:
        done = subprocess.run(probe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def isolation_note() -> str:
    """One line for reports: which isolation the kernels get on this machine."""
    if bwrap_available():
        return "bubblewrap: no network, read-only filesystem outside the student's folder"
    return ("no bubblewrap (not installed or not permitted): resource limits and timeouts only; "
            "network and file writes are not blocked (install bubblewrap, see docs/GRADING.md)")


def install_kernelspec(jupyter_dir: Path, *, scratch: Path, writable: list[Path],
                       memory_bytes: int, cpu_seconds: int, file_bytes: int,
                       output_chars: int) -> None:
    """Write a ``python3`` kernelspec under ``jupyter_dir/kernels`` that starts sandboxed."""
    for sub in ("home", "tmp", "ipython/profile_default/startup"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    (scratch / "ipython/profile_default/startup/00-output-cap.py").write_text(
        OUTPUT_CAP_STARTUP.format(limit=output_chars), encoding="utf-8")
    argv = [sys.executable, "-m", "transformer_workbook.grading.sandbox",
            "--memory", str(memory_bytes), "--cpu", str(cpu_seconds), "--fsize", str(file_bytes)]
    if bwrap_available():
        argv.append("--bwrap")
    for folder in [scratch, *writable]:
        argv += ["--rw", str(folder)]
    argv += ["--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec_dir = jupyter_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": argv,
        "display_name": "Python 3 (sandboxed grader)",
        "language": "python",
        # Interrupt by message: nbgrader interrupts a cell that runs past the timeout, and a
        # signal to the launcher's process group would reach bwrap rather than the kernel.
        "interrupt_mode": "message",
        "env": {
            "HOME": str(scratch / "home"),
            "TMPDIR": str(scratch / "tmp"),
            "IPYTHONDIR": str(scratch / "ipython"),
            "MPLCONFIGDIR": str(scratch / "tmp"),
            "XDG_CACHE_HOME": str(scratch / "tmp"),
            "HF_HOME": str(scratch / "tmp" / "hf"),
            # The grader's own asset cache (the review snippets), read-only under bubblewrap:
            # HOME moves to the scratch folder, so the default location would be empty.
            "WORKBOOK_CACHE": str(cache_dir()),
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def _set_limits(memory: int, cpu: int, fsize: int) -> None:
    for limit, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu),
                         (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_CORE, 0)):
        if value >= 0:
            resource.setrlimit(limit, (value, value))


def bwrap_command(command: list[str], writable: list[str]) -> list[str]:
    # --new-session: the kernel gets a process group of its own, so an interrupt (which ipykernel
    # delivers to its own group) stops the running cell without killing bwrap and the kernel.
    cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in writable:
        cmd += ["--bind", folder, folder]
    return cmd + ["--"] + command


def _die_with_parent() -> None:
    """Linux: be killed when nbgrader (our parent) dies, e.g. when the grader's wall clock
    kills it; the setting survives exec, so it applies to bwrap or the kernel itself."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", type=int, default=-1, help="address-space limit, bytes")
    parser.add_argument("--cpu", type=int, default=-1, help="CPU-time limit, seconds")
    parser.add_argument("--fsize", type=int, default=-1, help="largest file it may write, bytes")
    parser.add_argument("--bwrap", action="store_true",
                        help="start the command inside bubblewrap (no network, read-only /)")
    parser.add_argument("--rw", action="append", default=[], help="folder left writable")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    _set_limits(args.memory, args.cpu, args.fsize)
    _die_with_parent()
    if args.bwrap:
        command = bwrap_command(command, args.rw)
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
