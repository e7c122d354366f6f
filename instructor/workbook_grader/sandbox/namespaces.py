"""Linux namespaces for one student's kernel: its own filesystem view, processes, network and user.

``enter(view, limits)`` is called in a freshly forked, single-threaded process. When it returns,
that process is PID 1 of new PID, mount, network, IPC, UTS and cgroup namespaces, inside a user
namespace of its own; it sees only the paths in ``view`` (read-only, except ``view.writable``),
a private ``/tmp``, ``/dev/shm`` and ``/proc``, and a handful of device nodes; it has no network
interface but loopback, no capabilities, ``no_new_privs`` set, resource limits, and it can
create no further user namespaces. When it exits, the kernel kills every process left in its PID
namespace, so nothing a student starts outlives the student's grading.

When the grader runs as root, the student's processes run as an unprivileged user (``nobody``,
65534) in the host's accounting, so the per-user process limit applies and files they write
are not root's; the writable folders must belong to that user (``sandbox_uid()``).

This is the same technique as bubblewrap, written out so that it can run after ``fork`` in a
process that has already imported the course's libraries (see kernel_factory): a fork costs
milliseconds where starting Python and importing torch costs seconds.
"""
from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal
import socket
import stat
import sys
from dataclasses import dataclass, field

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
ALL_BUT_USER = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID
                | CLONE_NEWNET)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
NOBODY = 65534

# The parts of the host every Python program needs (shared libraries, the loader's cache, user
# names); the interpreter, its site-packages and the course's packages are added by the caller.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd",
                "/etc/group", "/etc/nsswitch.conf", "/etc/localtime", "/etc/hosts",
                "/sys/devices/system/cpu")
DEVICES = ("null", "zero", "full", "random", "urandom")


class SandboxError(OSError):
    """The namespaces or mounts could not be set up (the message names the step)."""


@dataclass
class View:
    """What the sandboxed process sees: absolute host paths, shown at the same place."""
    read_only: list[str] = field(default_factory=list)
    writable: list[str] = field(default_factory=list)
    tmp_bytes: int = 512 * 1024 ** 2       # the private /tmp and /dev/shm (each)


@dataclass
class Limits:
    memory_bytes: int = -1      # RLIMIT_AS
    cpu_seconds: int = -1       # RLIMIT_CPU
    file_bytes: int = -1        # RLIMIT_FSIZE
    processes: int = 256        # RLIMIT_NPROC (threads count too)
    open_files: int = 1024      # RLIMIT_NOFILE


_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, step: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SandboxError(err, f"{step}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None, step=None) -> None:
    enc = (lambda s: s.encode() if isinstance(s, str) else s)
    _check(_c().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           step or f"mount {source or fstype} on {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def sandbox_uid() -> int:
    """The host user id that sandboxed processes run as (``nobody`` when we are root)."""
    return NOBODY if os.geteuid() == 0 else os.geteuid()


def supported() -> str | None:
    """None when this machine can build the sandbox; otherwise a sentence saying why not."""
    if sys.platform != "linux":
        return f"{sys.platform} has no Linux namespaces"
    if platform.machine() not in PIVOT_ROOT:
        return f"pivot_root's system call number is not known on {platform.machine()}"
    return None


# ------------------------------------------------------------------------------ the steps

def die_with_parent() -> None:
    """Linux: be killed (SIGKILL) when the parent process dies; the setting survives exec."""
    try:
        _c().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _die_with_waiter(parent_alive: int) -> None:
    """Be killed when the waiter dies. ``parent_alive`` is the read end of a pipe whose write end
    only the waiter holds: it reads as closed if the waiter died before the signal was set (it
    lives in another PID namespace, so getppid() cannot tell). Changing credentials clears the
    setting, so this runs again after them."""
    die_with_parent()
    import select

    if select.select([parent_alive], [], [], 0)[0]:
        os._exit(1)


def _map_user(outside: int) -> None:
    """Become root of the user namespace just created, mapped to ``outside`` on the host."""
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {outside} 1")
    _write("/proc/self/gid_map", f"0 {os.getegid() if outside == os.geteuid() else outside} 1")


def _make_target(path: str, like: str) -> None:
    if os.path.exists(path):
        return
    if os.path.isdir(like):
        os.makedirs(path)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _bind(old_root: str, path: str, writable: bool) -> None:
    source = old_root + path
    _make_target(path, source)
    _mount(source, path, None, MS_BIND, step=f"bind {path}")
    if not writable:
        # A remount in a user namespace must keep the flags the original mount was locked with.
        flags = os.statvfs(path).f_flag
        keep = sum(ms for st, ms in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
                                     (os.ST_NOEXEC, MS_NOEXEC)) if flags & st)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep,
               step=f"make {path} read-only")


def _build_root(view: View) -> None:
    """Swap the root for a tmpfs that holds only ``view`` (runs as PID 1 of the new namespaces)."""
    base, old = "/tmp", "/tmp/.old-root"
    _mount(None, "/", None, MS_REC | MS_PRIVATE, step="make mounts private")
    _mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m", step="new root")
    os.mkdir(old)
    _check(_c().syscall(PIVOT_ROOT[platform.machine()], base.encode(), old.encode()), "pivot_root")
    old = "/.old-root"
    os.chdir("/")
    for name in ("proc", "tmp", "dev"):
        os.mkdir("/" + name, 0o755)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, step="mount /proc")
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={view.tmp_bytes}",
           step="private /tmp")
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", step="/dev")
    for device in DEVICES:
        _bind(old, f"/dev/{device}", writable=True)
    os.mkdir("/dev/shm")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           f"mode=1777,size={view.tmp_bytes}", step="/dev/shm")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{name}")
    for entry in os.listdir(old):  # merged /usr: /bin -> usr/bin and the like
        if os.path.islink(f"{old}/{entry}") and not os.path.lexists(f"/{entry}"):
            os.symlink(os.readlink(f"{old}/{entry}"), f"/{entry}")
    wanted = [(p, False) for p in view.read_only] + [(p, True) for p in view.writable]
    for path, writable in sorted(wanted, key=lambda item: item[0].count("/")):
        if os.path.lexists(old + path) and not os.path.islink(old + path):
            _bind(old, path, writable)
    _check(_c().umount2(old.encode(), MNT_DETACH), "detach the host's root")
    os.rmdir(old)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
           step="make the new root read-only")


def _set_limits(limits: Limits) -> None:
    """Set once the user namespace exists: the process limit then counts only this sandbox's
    processes (a limit set before would also cap the host user's processes outside it)."""
    for which, value in ((resource.RLIMIT_NPROC, limits.processes),
                         (resource.RLIMIT_AS, limits.memory_bytes),
                         (resource.RLIMIT_CPU, limits.cpu_seconds),
                         (resource.RLIMIT_FSIZE, limits.file_bytes),
                         (resource.RLIMIT_NOFILE, limits.open_files),
                         (resource.RLIMIT_CORE, 0)):
        if value >= 0:
            resource.setrlimit(which, (value, value))


def _drop_capabilities() -> None:
    libc = _c()
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _check(libc.capset(ctypes.byref(Header(_LINUX_CAPABILITY_VERSION_3, 0)),
                       ctypes.byref((Data * 2)())), "drop all capabilities")


def enter(view: View, limits: Limits, hostname: str = "sandbox") -> None:
    """Put the calling process into a new sandbox (see the module docstring).

    The caller must be single-threaded (a fresh fork). The caller itself stays behind as a
    small waiter that never returns: it exits with the sandboxed process's status and takes it
    down if it is killed. Only the sandboxed process (PID 1 inside) returns from this call.
    """
    why = supported()
    if why:
        raise SandboxError(0, why)
    as_root = os.geteuid() == 0
    uid, parent = os.geteuid(), os.getppid()
    _check(_c().unshare(ALL_BUT_USER if as_root else ALL_BUT_USER | CLONE_NEWUSER),
           "create namespaces")
    if not as_root:
        _map_user(uid)
    die_with_parent()  # the waiter goes when its parent goes (set after the credential change)
    if os.getppid() != parent:
        os._exit(1)
    parent_alive, held_by_parent = os.pipe()
    child = os.fork()
    if child:
        os.close(parent_alive)
        _wait_and_mirror(child)
    os.close(held_by_parent)
    _die_with_waiter(parent_alive)
    _build_root(view)
    socket.sethostname(hostname)
    if as_root:  # become nobody, then root of a user namespace of our own
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        _c().prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # setuid cleared it; /proc/self must stay ours
        _check(_c().unshare(CLONE_NEWUSER), "create the user namespace")
        _map_user(NOBODY)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    _write("/proc/sys/user/max_user_namespaces", "0")
    _set_limits(limits)
    _drop_capabilities()
    _die_with_waiter(parent_alive)
    os.close(parent_alive)


def _wait_and_mirror(child: int) -> None:
    """The waiter: exit with the sandboxed process's status (never returns)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else
             128 + os.WTERMSIG(status))


def environment_paths(extra: list[str] = (), never: list[str] = ()) -> list[str]:
    """Read-only paths a sandboxed Python needs: the system libraries, this interpreter with its
    site-packages, and the folders of the modules it has imported (editable installs live
    outside site-packages). Nested paths are folded into their parents.

    Nothing in ``never`` is exposed (the solutions, the grader's and the instructor's code, the
    class's submissions): a path inside one is dropped, and a folder that holds one (say,
    site-packages holding the instructor's package, or a checkout root that a ``.pth`` file put
    on ``sys.path``) is exposed entry by entry, without it.
    """
    paths = {p for p in SYSTEM_PATHS if os.path.lexists(p) and not os.path.islink(p)}
    for prefix in (sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix):
        paths.add(os.path.realpath(prefix))
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            paths.add(os.path.realpath(entry))
    for module in list(sys.modules.values()):
        location = getattr(module, "__file__", None)
        name = getattr(module, "__name__", "") or ""
        if not location or "." in name or name == "__main__":
            continue
        location = os.path.realpath(location)
        if os.path.basename(location) == "__init__.py":
            location = os.path.dirname(location)
        paths.add(location)
    paths.update(os.path.realpath(p) for p in extra if os.path.exists(p))
    folded = []
    for path in sorted(paths, key=len):
        if not any(_within(path, kept) for kept in folded):
            folded.append(path)
    secrets = [os.path.realpath(p) for p in never]
    return sorted(q for path in folded for q in _without(path, secrets))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _without(path: str, secrets: list[str]) -> list[str]:
    """``path``, or, if it holds a secret, its entries without the secrets (recursively)."""
    if any(_within(path, secret) for secret in secrets):
        return []
    if not any(_within(secret, path) for secret in secrets):
        return [path]
    return [q for entry in sorted(os.listdir(path))
            for q in _without(os.path.join(path, entry), secrets)
            if not os.path.islink(os.path.join(path, entry))]


def probe(read_only: list[str] | None = None) -> str | None:
    """Fork once into a sandbox and back: None if it can be built here, else why not."""
    why = supported()
    if why:
        return why
    view = View(read_only=environment_paths() if read_only is None else read_only)
    pid = os.fork()
    if pid == 0:
        try:
            enter(view, Limits())
            os._exit(0 if os.getpid() == 1 and not os.path.exists("/.old-root") else 3)
        except BaseException as err:  # noqa: BLE001 - report through the exit status
            os._exit(4 if isinstance(err, SandboxError) else 5)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return None if code == 0 else (
        "Linux namespaces could not be set up here (user namespaces may be disabled, e.g. "
        f"sysctl kernel.unprivileged_userns_clone=0, or forbidden by a container; exit {code})")


def give_to_sandbox(path: str) -> None:
    """Make a folder the sandbox writes into belong to the sandbox's user (root only)."""
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        os.chmod(path, mode | stat.S_IRWXU)
