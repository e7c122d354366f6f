"""Where a student's kernel runs: the sandbox settings the grader hands to nbgrader.

With Linux namespaces (the normal case), each kernel comes from the grading run's kernel
factory (kernel_factory.py) through the ``workbook-sandbox`` provisioner (provisioner.py): it
sees only the Python environment, the course's public files and its own empty working folder,
has a private /tmp, its own PID namespace, no network, no capabilities and resource limits
(namespaces.py). This module writes, per student, the kernelspec that names the provisioner and
the request file it reads.

Without namespaces (not Linux, or a container that forbids user namespaces) the kernel is an
ordinary process started through ``python -m workbook_grader.sandbox.rlimits``, which only sets
resource limits: the rlimits, the timeouts and the output cap still apply, but the kernel can
read and write what the grading user can and reach the network. Every student's row then says
so, and ``workbook grade`` warns once on stderr.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from transformer_workbook.storage import cache_dir

from . import factory as kernel_factory
from . import namespaces

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


from IPython import get_ipython as _get_ipython

_get_ipython().events.register("pre_run_cell", _renew_output_budget)


# Rich output (display(), a cell's last value: HTML, images) has a budget of its own for the
# whole kernel: a flood of it would otherwise fill the graded notebook and the grader's memory.
class _DisplayBudget:
    left = _TOTAL
    told = False


def _display_size(data):
    return sum(len(v) if isinstance(v, (str, bytes)) else len(repr(v))
               for v in (data.values() if isinstance(data, dict) else [data]))


def _over_display_budget(data):
    size = _display_size(data)
    if size > _DisplayBudget.left:
        if not _DisplayBudget.told:
            _DisplayBudget.told = True
            _sys.stdout.write("\\n[rich output cut by the grader after " + str(_TOTAL)
                              + " characters]\\n")
        return True
    _DisplayBudget.left -= size
    return False


def _capped(original):
    def publish(data, *args, **kwargs):
        if _over_display_budget(data):
            return None
        return original(data, *args, **kwargs)
    return publish


_display_pub = _get_ipython().display_pub
_display_pub.publish = _capped(_display_pub.publish)
_displayhook = _get_ipython().displayhook
_displayhook.write_format_data = _capped(_displayhook.write_format_data)
del _display_pub, _displayhook

# Plain tracebacks: the grader keeps only an error's type and message, and IPython's default
# traceback (source context, highlighting) cost about 0.7 s per student of notebook 01's
# sample class (py-spy, 2 cores).
_get_ipython().InteractiveTB.set_mode(mode="Plain")
'''

# IPython runs startup files in the notebook's own namespace; the grader's code runs in a
# module of its own instead, so that nothing it defines looks like (or can be taken for)
# notebook code, and the notebook's namespace stays as a student's own run would have it.
STARTUP = '''\
def _grader_startup(source):
    import types
    module = types.ModuleType("_grader_kernel")
    exec(compile(source, "<grader startup>", "exec"), module.__dict__)


_grader_startup({source!r})
del _grader_startup
'''


def startup_code(output_chars: int, integrity_key: str, *, forget: bool = True) -> str:
    """The file the grader installs in every kernel's IPython startup folder: the audit hook,
    the output cap and the integrity check under ``integrity_key`` (``canaries``). With
    ``forget``, the file deletes itself once IPython has run it, so that notebook code cannot
    read the key from it (the kernel factory writes it anew for every kernel)."""
    from ..canaries import check_startup

    text = (GUARD_STARTUP + OUTPUT_CAP_STARTUP.format(limit=output_chars)
            + check_startup(integrity_key) + (FORGET_STARTUP if forget else ""))
    return STARTUP.format(source=text)


FORGET_STARTUP = '''
def _forget_startup_file():
    import os
    from IPython import get_ipython
    try:
        os.unlink(os.path.join(get_ipython().profile_dir.startup_dir, "00-grader.py"))
    except OSError:
        pass


_forget_startup_file()
del _forget_startup_file
'''


GUARD_STARTUP = '''\
# Installed by the grader before any notebook code: an audit hook (PEP 578; it cannot be
# removed) that refuses, when notebook code asks for them directly, the ways into the
# interpreter that no exercise needs: frames (sys._getframe, a traceback's tb_frame, a
# generator's gi_frame), a function's code object, tracing and profiling hooks, the garbage
# collector's view of every object, ctypes, running code from strings (exec, eval, compile)
# and new audit hooks. Libraries that use these for their own work are unaffected: only the
# immediate caller is judged (through inspect, traceback, logging.currentframe and IPython's
# frame helpers, which only pass frames on to whoever called them). See docs/THREAT-MODEL.md.
def _install_grader_guard():
    import sys, threading

    events = {"sys._getframe", "sys._current_frames", "sys._current_exceptions",
              "sys.settrace", "sys.setprofile", "sys.addaudithook", "gc.get_referrers",
              "gc.get_referents", "gc.get_objects", "exec", "compile", "code.__new__",
              "function.__new__", "object.__getattr__", "object.__setattr__",
              "object.__delattr__", "cpython.run_command", "cpython._PySys_ClearAuditHooks"}
    getframe, busy, ident = sys._getframe, set(), threading.get_ident
    wrappers = ("/inspect.py", "/traceback.py", "/ctypes/__init__.py", "/logging/__init__.py",
                "/IPython/utils/frame.py")

    def from_notebook(filename):
        return filename.startswith("<ipython-input") or "/ipykernel_" in filename

    def guard(event, args):
        if event not in events and not event.startswith("ctypes."):
            return
        me = ident()
        if me in busy:
            return
        busy.add(me)
        try:
            frame = getframe(1)
            # inspect, traceback and ctypes act for whoever called them
            while frame is not None and frame.f_code.co_filename.endswith(wrappers):
                frame = frame.f_back
            caller = frame.f_code.co_filename if frame is not None else ""
        finally:
            busy.discard(me)
        if from_notebook(caller):
            what = event if event[:7] != "object." else f"{event} {args[1]!r}"
            raise RuntimeError(f"graded code may not use {what} (the grader forbids reaching "
                               "into the interpreter; docs/THREAT-MODEL.md)")

    sys.addaudithook(guard)


_install_grader_guard()
del _install_grader_guard
'''


def public_paths(course) -> list[str]:
    """What every kernel may read besides the environment: the released course and the
    grader's asset cache (the review snippets)."""
    return [str(p) for p in (course.release_dir, cache_dir()) if p.exists()]


def factory_for(course, env: dict, never: list[Path], preload: list[str]
                ) -> kernel_factory.FactoryProcess | None:
    """This process's kernel factory for ``course``, importing ``preload``; None where none
    can run, or with ``WORKBOOK_SANDBOX=none``."""
    if namespaces.supported() or os.environ.get("WORKBOOK_SANDBOX", "").lower() == "none":
        return None
    return kernel_factory.shared(preload=preload, public=public_paths(course),
                                 never=[str(p) for p in never], env=env)


def isolation_note(factory) -> str:
    if factory is not None and factory.isolation:
        return ""
    why = (factory.why if factory is not None else namespaces.supported()
           or ("WORKBOOK_SANDBOX=none" if os.environ.get("WORKBOOK_SANDBOX") else None)
           or "the kernel factory could not start")
    return (f"graded without isolation ({why}): the kernel could read the grading user's files "
            "and reach the network")


def sandbox_request(*, factory, cwd: Path, writable: list[Path], course, memory_bytes: int,
                    cpu_seconds: int, file_bytes: int, output_chars: int, threads: int,
                    integrity_key: str) -> dict:
    """What the factory is asked for one student's kernel (the connection and the environment
    are added by whoever asks: the provisioner, or the kernel pool)."""
    return {"factory": factory.socket, "cwd": str(cwd), "writable": [str(p) for p in writable],
            "read_only": public_paths(course), "threads": threads,
            "startup": startup_code(output_chars, integrity_key),
            "limits": {"memory_bytes": memory_bytes, "cpu_seconds": cpu_seconds,
                       "file_bytes": file_bytes}}


KERNELSPEC_ENV = {"WORKBOOK_CACHE": str(cache_dir())}


def write_kernelspec(jupyter_dir: Path, *, factory, cwd: Path, writable: list[Path],
                     course, memory_bytes: int, cpu_seconds: int, file_bytes: int,
                     output_chars: int, threads: int, integrity_key: str,
                     attach: dict | None = None) -> None:
    """Write the ``python3`` kernelspec that nbgrader will use for one student; ``attach``
    (``{"token", "connection"}``) names a kernel already started for them (``kernel_pool``)."""
    spec_dir = jupyter_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"display_name": "Python 3 (sandboxed grader)", "language": "python",
            # nbgrader interrupts a cell that runs past its timeout by message, not signal
            "interrupt_mode": "message",
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            # the grader's asset cache, read-only in the sandbox (HOME moves to its private /tmp)
            "env": dict(KERNELSPEC_ENV)}
    if factory is not None and factory.isolation:
        request = sandbox_request(
            factory=factory, cwd=cwd, writable=writable, course=course,
            memory_bytes=memory_bytes, cpu_seconds=cpu_seconds, file_bytes=file_bytes,
            output_chars=output_chars, threads=threads, integrity_key=integrity_key)
        if attach:
            request["attach"] = attach
        request_file = spec_dir / "sandbox-request.json"
        request_file.write_text(json.dumps(request), encoding="utf-8")
        spec["metadata"] = {"kernel_provisioner": {"provisioner_name": "workbook-sandbox",
                                                   "config": {"request": str(request_file)}}}
    else:
        scratch = cwd.parent / "scratch"
        startup_dir = scratch / "ipython" / "profile_default" / "startup"
        startup_dir.mkdir(parents=True, exist_ok=True)
        # one file for every kernel of this student (one per notebook): it stays; this kernel is
        # not isolated anyway and could read the grading user's files
        (startup_dir / "00-grader.py").write_text(
            startup_code(output_chars, integrity_key, forget=False), encoding="utf-8")
        spec["argv"] = [sys.executable, "-m", "workbook_grader.sandbox.rlimits",
                        "--memory", str(memory_bytes),
                        "--cpu", str(cpu_seconds), "--fsize", str(file_bytes), "--",
                        *spec["argv"]]
        spec["env"].update({"HOME": str(scratch), "TMPDIR": str(scratch),
                            "IPYTHONDIR": str(scratch / "ipython"), "MPLCONFIGDIR": str(scratch),
                            "XDG_CACHE_HOME": str(scratch),
                            "HF_HOME": str(scratch / "hf")})
    spec_dir.joinpath("kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
