"""The grading jail: run one submission under limits the operating system enforces.

A submission's notebook runs in its own process tree, started by :func:`start` and ended by
:meth:`Jail.finish`, which kills every process of the tree whatever it did. Two modes:

- ``namespaces`` (Linux with ``unshare`` and ``setpriv``): new user (unless already root), mount,
  network, PID, IPC and UTS namespaces. The process sees a fresh in-memory root holding only the
  system folders (``/usr``, ``/etc``, …, read-only), the Python installation (read-only), the
  ``sim`` package (read-only, at ``/kafka-lab/sim``), ``/tmp`` and ``/submission`` — its own copy
  of the notebook, alone. Solutions, other submissions, the grade table and the rest of the file
  system do not exist for it; there is no network but an unconnected loopback; it is PID 1 of
  its namespace, cannot see or signal any process outside it, and every process it starts dies
  with it. All capabilities are dropped (``no_new_privs``), so it cannot undo the mounts. As
  root, the submission also runs as an unprivileged user of its own (:func:`jail_uid`), so
  the process limit applies, and applies to it alone.
- ``plain`` (anything else): a scratch folder outside the submissions tree as the working
  directory, ``python -I`` (no ``PYTHONPATH``, no user site, no script folder on ``sys.path``),
  an emptied environment, its own session. Its parent is a disposable checker process that
  adopts and kills every descendant at the end. Files readable by the grader's user stay
  readable, and the network is open: use ``namespaces`` for untrusted batches.

In both modes: :func:`limits` (CPU seconds, address space, processes, open files, file size, no
core dumps) apply to every process of the submission, the caller enforces the wall-clock limit,
and the pipe is read with a size and time bound (:func:`read_line`).

This file is also the jail's first program (``python -I sandbox.py CONFIG``): it prepares the
namespaces as their root, drops every privilege and executes the submission's interpreter. It
imports only the standard library.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "JAIL_UID_BASE",
    "Jail",
    "Limits",
    "available_mode",
    "die_with_parent",
    "jail_uid",
    "kill_descendants",
    "read_line",
    "remove_tree",
    "start",
]

JAIL_UID_BASE = 1_900_000_000  # jails of a root grader run as BASE + slot: no one else's uid
JAIL_ROOT_SIZE = "64m"  # the in-memory root: everything a submission can write, in total
JAIL_SIM = "/kafka-lab"  # where the sim package appears inside the jail
JAIL_WORK = "/submission"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../sim
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_DEVICES = ("null", "zero", "random", "urandom")

# mount(2) flags
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36


@dataclass(frozen=True)
class Limits:
    """What one submission's processes may use; each is an OS resource limit."""

    cpu_s: int = 120  # RLIMIT_CPU, per process
    memory_bytes: int = 2 << 30  # RLIMIT_AS, per process
    processes: int = 32  # RLIMIT_NPROC (per user; root is exempt, see the module docstring)
    open_files: int = 256  # RLIMIT_NOFILE
    file_bytes: int = 16 << 20  # RLIMIT_FSIZE: the largest file it may write


def jail_uid(slot: int) -> int:
    """The user a root grader's jail number ``slot`` runs as.

    Linux counts the process limit per user: jails graded at the same time must not share a
    user, or a fork bomb in one would leave the other no process to start.
    """
    return JAIL_UID_BASE + slot


def limits(spec: Limits) -> None:
    """Apply ``spec`` to this process (and so to everything it starts)."""
    for which, value in (
        (resource.RLIMIT_CPU, spec.cpu_s),
        (resource.RLIMIT_AS, spec.memory_bytes),
        (resource.RLIMIT_NPROC, spec.processes),
        (resource.RLIMIT_NOFILE, spec.open_files),
        (resource.RLIMIT_FSIZE, spec.file_bytes),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn``: the child is killed when the process that started it dies (Linux).

    Made in the parent, so the child can tell if its parent died before the request took hold.
    """
    parent = os.getpid()

    def prepare() -> None:
        try:
            _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:
            os._exit(1)

    return prepare


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so :func:`kill_descendants` finds detached ones."""
    try:
        return _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


def kill_descendants(rounds: int = 50) -> None:
    """SIGKILL every descendant of this process and reap them (repeat: a fork may race)."""
    me = os.getpid()
    for _ in range(rounds):
        seen, todo = [], _children(me)
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo += _children(pid)
        for pid in seen:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        reaped = False
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            reaped = True
        if not seen and not reaped:
            return
        time.sleep(0.01)


def remove_tree(path: str) -> None:
    """Remove a scratch folder, also where the submission took away permissions."""

    def retry(function: Callable[..., Any], failed: str, _info: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            os.chmod(failed, 0o700)
            function(failed)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=retry)


def _works(command: Sequence[str]) -> bool:
    try:
        return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


_MODE: list[str] = []


def available_mode() -> str:
    """``"namespaces"`` if the jail can be built here, else ``"plain"`` (cached).

    ``KAFKA_LAB_JAIL=plain`` forces the plain mode.
    """
    if os.environ.get("KAFKA_LAB_JAIL") == "plain":
        return "plain"
    if not _MODE:
        unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
        ok = bool(unshare and setpriv and sys.platform.startswith("linux"))
        ok = ok and _works([*_unshare_command(str(unshare)), "true"]) and _jail_works()
        _MODE.append("namespaces" if ok else "plain")
    return _MODE[0]


def _jail_works() -> bool:
    """Build a whole jail once (mounts, chroot, dropped privileges, the interpreter inside):
    some systems allow the namespaces but refuse what is done in them."""
    probe = "import sys; sys.stdout.write('ok\\n')"
    try:
        jail = start(b"{}", [], spec=Limits(), package_parent=os.path.dirname(_PACKAGE_DIR),
                     mode="namespaces", boot=probe)
    except OSError:
        return False
    try:
        return read_line(jail, time.monotonic() + 20, 1024) == b"ok"
    finally:
        jail.finish()


def _unshare_command(unshare: str) -> list[str]:
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return [unshare, *user, "--mount", "--net", "--pid", "--ipc", "--uts", "--fork",
            "--kill-child", "--"]


def _environment(home: str, tmp: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "TMPDIR": tmp,
        "MPLCONFIGDIR": tmp,
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        **extra,
    }


def _boot(package_parent: str, module: str) -> str:
    """``python -c`` code that finds ``sim`` at ``package_parent`` (not via PYTHONPATH)."""
    return (f"import sys; sys.path.insert(0, {package_parent!r}); "
            f"import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")


@dataclass
class Jail:
    """A started submission: its pipes, and how to end it."""

    process: subprocess.Popen[bytes]
    mode: str
    scratch: str
    buffer: bytearray = field(default_factory=bytearray)
    received: int = 0

    def send(self, line: str) -> bool:
        """Write one line to the submission; False if it no longer listens."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def finish(self) -> None:
        """Kill the whole tree (session, namespace, adopted orphans) and remove the scratch."""
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        kill_descendants()
        remove_tree(self.scratch)


def read_line(jail: Jail, deadline: float, max_bytes: int) -> bytes | None:
    """The next line the submission writes, waiting until ``deadline`` (``time.monotonic``).

    Returns ``None`` if it ends, goes past the deadline, or writes more than ``max_bytes`` in
    total; never blocks past the deadline, even if a detached child keeps the pipe open.
    """
    assert jail.process.stdout is not None
    fd = jail.process.stdout.fileno()
    scanned = 0
    while True:
        end = jail.buffer.find(b"\n", scanned)
        if end >= 0:
            line = bytes(jail.buffer[:end])
            del jail.buffer[: end + 1]
            return line
        scanned = len(jail.buffer)
        left = deadline - time.monotonic()
        if left <= 0 or jail.received > max_bytes:
            return None
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        jail.received += len(chunk)
        jail.buffer += chunk


def start(
    notebook_bytes: bytes,
    argv: Sequence[str],
    *,
    spec: Limits,
    package_parent: str,
    hide: Sequence[str] = (),
    mode: str | None = None,
    extra_env: dict[str, str] | None = None,
    boot: str | None = None,
    slot: int = 0,
    within: str | None = None,
) -> Jail:
    """Start ``python -m sim.grading.runner ARGV`` on a private copy of the notebook.

    Args:
        notebook_bytes: the submission, written as ``submission.ipynb`` in its working folder.
        argv: the runner's arguments after the notebook path.
        spec: the resource limits.
        package_parent: the folder holding the ``sim`` package the jail should run.
        hide: modules inside ``sim`` the submission must not read (namespaces mode), relative
            to the package folder, e.g. ``grading/exercises/ex01_partitioners.py``; their
            compiled copies in ``__pycache__`` are hidden too.
        mode: ``"namespaces"`` or ``"plain"`` (default: :func:`available_mode`).
        extra_env: more environment variables for the submission.
        boot: ``python -c`` code to run instead of the runner (namespaces mode; a probe).
        slot: which of the jails running at the same time this is (see :func:`jail_uid`).
        within: the folder to make the jail's scratch folder in (default: the temp folder); a
            caller that outlives this process removes it, whatever happens here.
    """
    mode = mode or available_mode()
    scratch = tempfile.mkdtemp(prefix="kafka-lab-jail-", dir=within)
    try:
        return _start(scratch, mode, notebook_bytes, argv, spec, package_parent, hide,
                      dict(extra_env or {}), boot, slot)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _start(scratch: str, mode: str, notebook_bytes: bytes, argv: Sequence[str], spec: Limits,
           package_parent: str, hide: Sequence[str], extra: dict[str, str],
           boot: str | None, slot: int) -> Jail:
    os.chmod(scratch, 0o755)
    if mode == "namespaces":
        config = {
            "root": scratch,
            "notebook": notebook_bytes.decode("latin-1"),
            "package": os.path.join(os.path.realpath(package_parent), "sim"),
            "hide": list(hide),
            "python": [sys.prefix, sys.base_prefix, sys.exec_prefix, *_site_dirs()],
            "executable": sys.executable,
            "limits": vars(spec),
            "drop_to": jail_uid(slot) if os.geteuid() == 0 else None,
            "argv": [*argv],
            "env": _environment("/tmp", "/tmp", extra),
            "boot": boot or _boot(JAIL_SIM, "sim.grading.runner"),
        }
        unshare = shutil.which("unshare") or "unshare"
        command = [*_unshare_command(unshare), sys.executable, "-I", os.path.abspath(__file__)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True,
                                   cwd="/", env={"PATH": "/usr/bin:/bin"},
                                   preexec_fn=die_with_parent())
        jail = Jail(process, mode, scratch)
        payload = json.dumps(config).encode()
        jail.send(f"{len(payload)}")  # the jail reads exactly this many bytes, then the runner
        try:  # reads the rest of the pipe
            assert process.stdin is not None
            process.stdin.write(payload)
            process.stdin.flush()
        except OSError:
            pass
        return jail
    work = os.path.join(scratch, "submission")
    tmp = os.path.join(scratch, "tmp")
    os.mkdir(work)
    os.mkdir(tmp)
    with open(os.path.join(work, "submission.ipynb"), "wb") as f:
        f.write(notebook_bytes)
    usable = _usable_by_all(package_parent, os.path.join(work, "submission.ipynb"))
    uid = jail_uid(slot) if os.geteuid() == 0 and usable else None
    if uid is not None:
        for path in (scratch, work, tmp, os.path.join(work, "submission.ipynb")):
            os.chown(path, uid, uid)

    orphan_guard = die_with_parent()

    def prepare() -> None:
        orphan_guard()
        limits(spec)
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    command = [sys.executable, "-I", "-c", _boot(package_parent, "sim.grading.runner"),
               os.path.join(work, "submission.ipynb"), *argv]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, start_new_session=True, cwd=work,
                               env=_environment(tmp, tmp, extra), preexec_fn=prepare)
    return Jail(process, mode, scratch)


def _usable_by_all(package_parent: str, notebook: str) -> bool:
    """Whether an unprivileged user can run this interpreter, read the package and reach the
    scratch folder."""
    for path in (sys.executable, os.path.join(package_parent, "sim", "__init__.py"),
                 *_site_dirs(), notebook):
        path = os.path.realpath(path)
        while path != os.path.dirname(path):
            path = os.path.dirname(path)
            if not os.stat(path).st_mode & 0o001:
                return False
    return True


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")]


# --- inside the jail (runs as the namespaces' root, before any submission code) -----------------


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def raw(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    if libc.mount(raw(source), raw(target), raw(fstype), ctypes.c_ulong(flags), raw(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _bind(libc: ctypes.CDLL, source: str, target: str, *, writable: bool = False) -> None:
    _mount(libc, source, target, None, _MS_BIND | _MS_REC)
    if writable:
        return
    # keep the flags the source mount is locked with (nosuid, nodev, noexec), add read-only
    kept = os.statvfs(source).f_flag & (_MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    _mount(libc, None, target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | kept)


def _place(root: str, path: str, *, directory: bool = True) -> str:
    target = root + path
    if directory:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    return target


def _read_exactly(count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = os.read(0, count - len(data))
        if not chunk:
            raise SystemExit("the grader closed the pipe")
        data += chunk
    return bytes(data)


def _jail_main() -> None:
    header = bytearray()
    while not header.endswith(b"\n"):
        header += _read_exactly(1)
    config = json.loads(_read_exactly(int(header)))
    libc = _libc()
    root = config["root"]
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount(libc, "tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"size={JAIL_ROOT_SIZE},mode=755")
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            os.symlink(os.readlink(path), root + path)
        elif os.path.isdir(path):
            _bind(libc, path, _place(root, path))
    for path in sorted({os.path.realpath(p) for p in config["python"]}, key=len):
        if os.path.isdir(path) and not os.path.exists(root + path):
            _bind(libc, path, _place(root, path))
    _bind(libc, config["package"], _place(root, JAIL_SIM + "/sim"))
    for relative in config["hide"]:
        source = root + JAIL_SIM + "/sim/" + relative
        folder, name = os.path.split(source)
        stem = os.path.splitext(name)[0]
        compiled = glob.glob(os.path.join(glob.escape(folder), "__pycache__",
                                          glob.escape(stem) + ".*"))
        for target in [source, *compiled]:  # its compiled copies would do as well
            if os.path.isfile(target):
                _mount(libc, "/dev/null", target, None, _MS_BIND)
    for device in _DEVICES:
        _mount(libc, "/dev/" + device, _place(root, "/dev/" + device, directory=False), None,
               _MS_BIND)
    with contextlib.suppress(OSError):  # without /proc Python still runs
        _mount(libc, "proc", _place(root, "/proc"), "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    for path in ("/tmp", JAIL_WORK):
        os.chmod(_place(root, path), 0o1777)
    notebook = root + JAIL_WORK + "/submission.ipynb"
    with open(notebook, "wb") as f:
        f.write(config["notebook"].encode("latin-1"))
    uid = config["drop_to"]
    if uid is not None:
        os.chown(notebook, uid, uid)
    os.chroot(root)
    os.chdir(JAIL_WORK)
    limits(Limits(**config["limits"]))
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin") or "/usr/bin/setpriv"
    who = [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if uid is not None else []
    command = [setpriv, *who, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
               config["executable"], "-I", "-c", config["boot"],
               JAIL_WORK + "/submission.ipynb", *config["argv"]]
    os.execve(setpriv, command, config["env"])


if __name__ == "__main__":
    _jail_main()
