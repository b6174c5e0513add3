"""Batch grading: a folder of submitted notebooks → one grade table (and feedback files).

Each submission is graded by its own checker process (:mod:`sim.grading.checker`), which runs the
notebook in the grading jail (:mod:`sim.grading.sandbox`) with only its own copy of the notebook,
and grades the answers the notebook hands over as data. This process only starts checkers, up
to ``jobs`` at a time, and writes what they report: a checker that crashes, hangs or is killed
costs that submission its points (each zero with a reason), never the batch. Rows are appended
to the CSV as each submission finishes, so an interrupted batch keeps what it graded; at the end
the file is rewritten sorted.

The table has one row per student per question: ``file, student, exercise, question, points,
max_points, verdict, reason``. Text cells are safe to open in a spreadsheet: one that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'``; reasons are
one line of at most :data:`MAX_REASON` characters.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from sim.grading.checker import check_budget
from sim.grading.registry import exercise_questions
from sim.grading.results import VERDICTS, CheckResult, ExerciseReport
from sim.grading.sandbox import Limits, available_mode, die_with_parent, remove_tree

__all__ = ["COLUMNS", "MAX_REASON", "Submission", "feedback_name", "grade_directory",
           "grade_submission", "safe_cell"]

COLUMNS = ["file", "student", "exercise", "question", "points", "max_points", "verdict", "reason"]
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CELL_TIMEOUT_S = 10.0
MAX_REASON = 300
MAX_REPORT_BYTES = 4 << 20
MAX_FEEDBACK_NAME = 200  # characters of a feedback file's name before ".txt"
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Submission:
    """What grading one notebook produced: results per question, or a problem for all of them."""

    path: Path
    exercise: str | None
    results: list[CheckResult] = field(default_factory=list)
    problem: str | None = None
    cells: list[dict[str, Any]] = field(default_factory=list)  # how each code cell ran


def plain(text: object, limit: int = MAX_REASON) -> str:
    """One line of printable text, at most ``limit`` characters."""
    cleaned = "".join(c if c.isprintable() else " " for c in str(text))
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def safe_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def printable(text: str) -> str:
    """``text`` with each unprintable character (a newline, a file name's byte that is not
    UTF-8) written as its escape: one line that a UTF-8 file can hold, different names kept
    different."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def feedback_name(student: str) -> str:
    """The feedback file's name for ``student``: one file in the folder, never hidden, and no
    two students share one (a student cannot name a file so that it replaces a classmate's)."""
    name = quote(student, safe="", errors="surrogateescape")  # "/" too; "%" only as %XX
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > MAX_FEEDBACK_NAME:  # "%~" never appears in a quoted name
        digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        name = name[: MAX_FEEDBACK_NAME - 18] + "%~" + digest
    return name + ".txt"


def _boot(module: str) -> str:
    return (f"import sys; sys.path.insert(0, {_PACKAGE_PARENT!r}); "
            f"import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _run_checker(notebook: Path, timeout_s: float, cell_timeout_s: float, memory_bytes: int,
                 mode: str | None, slot: int) -> dict[str, Any]:
    """Start a checker for ``notebook`` and return its document (or a problem)."""
    scratch = tempfile.mkdtemp(prefix="kafka-lab-checker-")
    os.chmod(scratch, 0o755)  # the jail's own user must reach its folder inside
    try:
        return _checker_document(notebook, timeout_s, cell_timeout_s, memory_bytes, mode, slot,
                                 scratch)
    finally:
        remove_tree(scratch)  # also when the checker died before cleaning up


def _checker_env() -> dict[str, str]:
    """The environment of a checker and of what it starts: the same hash seed for every
    submission, no bytecode written, matplotlib off screen, one thread per numerical library."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "KAFKA_LAB_JAIL")
           if k in os.environ}
    env.update({"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
                "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    return env


def memory_suffices(memory_bytes: int) -> bool:
    """Whether a process held to ``memory_bytes`` of address space can import what the
    exercises import (the simulator, NumPy, pandas, matplotlib, RocksDB for Streams' stores,
    the Connect REST server). Below that a submission's process ends before it gets far and
    its questions get 0, as if the student's code had failed: the grader refuses such a limit
    instead."""
    code = ("import resource; "
            f"resource.setrlimit(resource.RLIMIT_AS, ({memory_bytes}, {memory_bytes})); "
            f"import sys; sys.path.insert(0, {_PACKAGE_PARENT!r}); "
            "import numpy, pandas, matplotlib.pyplot, sim.grading.runner, sim.kernel, "
            "sim.streams.rocksdb, sim.connect.rest")
    try:
        probe = subprocess.run([sys.executable, "-I", "-c", code], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=_checker_env(), cwd="/", timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def _checker_document(notebook: Path, timeout_s: float, cell_timeout_s: float,
                      memory_bytes: int, mode: str | None, slot: int,
                      scratch: str) -> dict[str, Any]:
    command = [sys.executable, "-I", "-c", _boot("sim.grading.checker"), str(notebook.absolute()),
               "--timeout", str(timeout_s), "--cell-timeout", str(cell_timeout_s),
               "--memory", str(memory_bytes), "--slot", str(slot), "--scratch", scratch]
    if mode:
        command += ["--mode", mode]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               env=_checker_env(),
                               cwd="/", preexec_fn=die_with_parent())
    # the checker's own deadline covers the notebook; the checks run after it, each budgeted
    deadline = time.monotonic() + timeout_s + 8 * check_budget(cell_timeout_s) + 30
    jail: int | None = None
    document: dict[str, Any] | None = None
    assert process.stdout is not None
    fd, buffer, total = process.stdout.fileno(), bytearray(), 0
    import select

    while document is None and time.monotonic() < deadline and total <= MAX_REPORT_BYTES:
        ready, _, _ = select.select([fd], [], [], min(1.0, max(deadline - time.monotonic(), 0)))
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        total += len(chunk)
        buffer += chunk
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer = bytearray(rest)
            try:
                message = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(message, dict) and isinstance(message.get("jail"), int):
                jail = message["jail"]
            elif isinstance(message, dict) and isinstance(message.get("document"), dict):
                document = message["document"]
    timed_out = document is None and time.monotonic() >= deadline
    _kill_group(process.pid)
    if jail is not None:
        _kill_group(jail)  # if the checker died, its jail's session must not outlive it
    process.stdout.close()
    process.wait()
    if document is not None:
        return document
    if timed_out:
        return {"problem": f"the notebook did not finish within {timeout_s:g} s (whole run)"}
    return {"problem": "grading of this submission was interrupted (its checker process "
                       f"ended with code {process.returncode})"}


def _parse_results(document: dict[str, Any]) -> list[CheckResult]:
    results = []
    for item in document.get("results") or []:
        try:
            results.append(CheckResult.from_dict(item))
        except (TypeError, ValueError):
            continue  # malformed entries are treated as missing below
    return results


def grade_submission(
    notebook: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cell_timeout_s: float = DEFAULT_CELL_TIMEOUT_S,
    memory_bytes: int = Limits.memory_bytes,
    mode: str | None = None,
    slot: int = 0,
) -> Submission:
    """Grade one notebook in its own checker process and jail.

    Args:
        notebook: the submitted ``.ipynb``.
        timeout_s: wall-clock limit for running the whole notebook; past it every question
            gets 0.
        cell_timeout_s: limit per code cell and per check; past it, that cell's questions get 0.
        memory_bytes: address-space limit of each of the submission's processes.
        mode: the jail's mode (``"namespaces"`` or ``"plain"``; default: the best available).
        slot: which of the submissions graded at the same time this is (0 … jobs - 1).
    """
    notebook = Path(notebook)
    document = _run_checker(notebook, timeout_s, cell_timeout_s, memory_bytes,
                            mode or available_mode(), slot)
    exercise = document.get("exercise")
    problem = document.get("problem")
    cells = document.get("cells") or []
    return Submission(
        notebook,
        exercise if isinstance(exercise, str) else None,
        _parse_results(document),
        problem if isinstance(problem, str) else None,
        [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else [],
    )


def _complete(sub: Submission, exercise: str | None) -> ExerciseReport:
    """Every question of the exercise, with a zero and a reason where no result came back."""
    exercise = sub.exercise or exercise
    if exercise is None:
        reason = sub.problem or "no result"
        zero = CheckResult("?", 0, 0, "error", failed=[reason], reason=reason)
        return ExerciseReport("unknown", [zero], notes=[reason])
    got = {r.question: r for r in sub.results}
    results = []
    for q in exercise_questions(exercise):
        result = got.get(q.id)
        if result is None or result.max_points != q.points or result.verdict not in VERDICTS:
            reason = sub.problem or "the grader returned no result for this question"
            result = CheckResult(
                q.id, 0, q.points, "error", failed=[reason], reason=reason, title=q.title
            )
        results.append(result)
    notes = [sub.problem] if sub.problem else []
    return ExerciseReport(exercise, results, notes=notes)


def _student(path: Path, directory: Path) -> str:
    relative = path.relative_to(directory).with_suffix("")
    return relative.as_posix() if len(relative.parts) > 1 else relative.name


def _rows(sub: Submission, report: ExerciseReport, directory: Path) -> list[dict[str, object]]:
    file = printable(sub.path.relative_to(directory).as_posix())
    return [
        {
            "file": file,
            "student": printable(_student(sub.path, directory)),
            "exercise": report.exercise,
            "question": r.question,
            "points": int(r.points),
            "max_points": int(r.max_points),
            "verdict": r.verdict,
            "reason": plain(r.reason),
        }
        for r in report.results
    ]


def _write_rows(handle: Any, rows: Iterable[dict[str, object]]) -> None:
    writer = csv.writer(handle)
    for row in rows:
        writer.writerow([safe_cell(row[c]) for c in COLUMNS])
    handle.flush()


def grade_directory(
    directory: Path,
    out_csv: Path,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    feedback_dir: Path | None = None,
    *,
    cell_timeout_s: float = DEFAULT_CELL_TIMEOUT_S,
    recursive: bool = False,
    exercise: str | None = None,
    jobs: int | None = None,
    memory_bytes: int = Limits.memory_bytes,
    mode: str | None = None,
) -> pd.DataFrame:
    """Grade every ``*.ipynb`` in ``directory`` and write the grade table to ``out_csv``.

    Args:
        directory: the submissions, any file names (the exercise is read from the metadata).
        out_csv: the CSV to write, one row per student per question.
        timeout_s: wall-clock limit per submission.
        feedback_dir: if given, ``<student>.txt`` with each student's feedback is written there.
        cell_timeout_s: limit per code cell and per check.
        recursive: also grade notebooks in subfolders (student = relative path without suffix).
        exercise: the exercise for notebooks that cannot be recognised (default: the one
            exercise the recognised submissions share, if there is exactly one).
        jobs: submissions graded at the same time (default: the number of CPU cores).
        memory_bytes: address-space limit of each of a submission's processes.
        mode: the jail's mode (default: the best available, see :mod:`sim.grading.sandbox`).

    Returns:
        The table as a DataFrame with :data:`COLUMNS`, sorted by file and question.
    """
    directory, out_csv = Path(directory), Path(out_csv)
    pattern = "**/*.ipynb" if recursive else "*.ipynb"
    notebooks = sorted(p for p in directory.glob(pattern) if ".ipynb_checkpoints" not in p.parts)
    jobs = max(1, jobs or os.cpu_count() or 1)
    mode = mode or available_mode()  # probed once, not by every checker
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    graded: list[Submission] = []
    with open(out_csv, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(COLUMNS)
        handle.flush()

        slots = queue.SimpleQueue[int]()
        for slot in range(jobs):
            slots.put(slot)

        def grade(notebook: Path) -> None:
            if notebook.is_symlink():  # graded, it would be what it points to: a classmate's
                # notebook, the solution (glob never enters a linked folder)
                sub = Submission(notebook, None, problem=f"{printable(notebook.name)} is a "
                                 "symbolic link, not a submitted notebook")
            else:
                slot = slots.get()
                try:
                    sub = grade_submission(notebook, timeout_s=timeout_s,
                                           cell_timeout_s=cell_timeout_s,
                                           memory_bytes=memory_bytes, mode=mode, slot=slot)
                finally:
                    slots.put(slot)
            with lock:
                graded.append(sub)
                _write_rows(handle, _rows(sub, _complete(sub, exercise or sub.exercise),
                                          directory))

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(grade, nb) for nb in notebooks]:
                future.result()
    if exercise is None:
        seen = Counter(s.exercise for s in graded if s.exercise)
        exercise = next(iter(seen)) if len(seen) == 1 else None
    rows: list[dict[str, object]] = []
    reports = {}
    for sub in graded:
        report = reports[_student(sub.path, directory)] = _complete(sub, exercise)
        rows += _rows(sub, report, directory)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.sort_values(["file", "question"], kind="stable").reset_index(drop=True)
    partial = out_csv.with_name(out_csv.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(COLUMNS)
        _write_rows(handle, table.to_dict("records"))
    os.replace(partial, out_csv)
    if feedback_dir is not None:
        folder = Path(feedback_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for student, report in reports.items():
            (folder / feedback_name(student)).write_text(str(report), encoding="utf-8",
                                                          errors="backslashreplace")
    return table
