"""The grading sandbox: a submission may only touch files in its own scratch folder.

Installed by the grader process (:mod:`sim.grading.runner`) before it runs a submission, as a
``sys.addaudithook`` hook. It refuses:

- opening a file for writing anywhere outside the submission's scratch folder;
- opening a file for reading outside that folder, except under the Python installation, its
  site-packages, the ``sim`` package and a few system folders libraries read (fonts, time zones);
- starting other programs (``subprocess``, ``os.system``, ``os.exec*``, ``os.spawn*``, ``fork``).

A refused operation raises :class:`SandboxError` (a ``PermissionError``) in the submission's
code *and* is recorded, so catching the error does not hide it: the grader zeroes the question
whose code did it.

This keeps honest mistakes and casual snooping (``open("../other_student.ipynb")``) out of the
grades. It is not a security boundary against a determined attacker: audit hooks can be evaded
from native code. Run untrusted batches in a container as well.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sandbox", "SandboxError", "Violation", "default_read_roots"]

# Folders outside Python that common libraries read (matplotlib fonts, pandas time zones).
SYSTEM_READ_ROOTS = (
    "/usr/share/fonts",
    "/usr/share/zoneinfo",
    "/usr/share/matplotlib",
    "/etc/fonts",
    "/etc/localtime",
    "/dev/null",
    "/dev/urandom",
)
_SPAWN_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "pty.spawn",
    }
)
_STDLIB = (sysconfig.get_paths()["stdlib"], "<frozen")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class SandboxError(PermissionError):
    """The submission tried something the grading sandbox refuses."""


@dataclass(frozen=True)
class Violation:
    """One refused operation and where it happened (``where`` is set by the grader)."""

    message: str
    where: str


def default_read_roots() -> list[Path]:
    """Folders a submission may read: Python's library, site-packages, ``sim``, system data."""
    paths = sysconfig.get_paths()
    roots = [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    roots += site.getsitepackages()
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        roots.append(site.getusersitepackages())
    roots.append(str(Path(__file__).resolve().parents[1]))  # the sim package
    # the interpreter's own files: the import system also probes entries such as
    # lib/python311.zip that sit beside the standard library
    roots += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    roots += [entry for entry in sys.path if entry and not Path(entry).is_dir()]
    roots += SYSTEM_READ_ROOTS
    return [Path(os.path.realpath(r)) for r in dict.fromkeys(roots)]


def _called_from_learner_code() -> bool:
    """Whether the innermost caller outside the standard library is a notebook cell.

    Libraries probe for programs (matplotlib runs ``fc-list``, ``ctypes.util`` runs ``ldconfig``)
    and cope when that fails; such refusals are not the submission's doing and are not recorded.
    """
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename != __file__ and not filename.startswith(_STDLIB):
            return filename.startswith("<cell ")
        frame = frame.f_back
    return False


def _within(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


class Sandbox:
    """Audit-hook file and process guard for one submission (see the module docstring)."""

    def __init__(self, root: Path, read_roots: Iterable[Path] | None = None) -> None:
        self.root = os.path.realpath(root)
        roots = default_read_roots() if read_roots is None else read_roots
        self._read_roots = tuple(os.path.realpath(r) for r in roots)
        self.violations: list[Violation] = []
        self.where = "setup"
        self._enabled = False
        self._busy = False

    def install(self) -> None:
        """Start guarding this process (an audit hook cannot be removed, only disabled)."""
        sys.addaudithook(self._hook)
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def violations_in(self, where: str) -> list[Violation]:
        return [v for v in self.violations if v.where == where]

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self._enabled or self._busy:
            return
        if event == "open":
            self._busy = True
            try:
                problem = self._open_problem(*args[:3])
            finally:
                self._busy = False
            if problem:
                self._refuse(problem)
        elif event in _SPAWN_EVENTS:
            message = f"tried to start another program ({event}), which grading does not allow"
            self._refuse(message, record=_called_from_learner_code())

    def _refuse(self, message: str, record: bool = True) -> None:
        if record:
            self.violations.append(Violation(message, self.where))
        raise SandboxError(f"grading sandbox: {message}")

    def _open_problem(self, path: object, mode: object, flags: object) -> str | None:
        if path is None or isinstance(path, int):
            return None  # an already open file descriptor
        name = os.fsdecode(path)  # type: ignore[call-overload]
        full = os.path.realpath(os.path.join(os.getcwd(), name))
        if isinstance(mode, str):
            writing = any(c in mode for c in "wax+")
        else:
            writing = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        if _within(full, (self.root,)):
            return None
        if not writing and _within(full, self._read_roots):
            return None
        action = "write" if writing else "read"
        return (
            f"tried to {action} {name!r}, which is outside the submission's folder; "
            "a submission may only open its own files"
        )
