"""Batch grading: a folder of submitted notebooks → one grade table (and feedback files).

Each submission is graded alone: its folder is copied to a fresh scratch directory (without the
other submissions' notebooks), and ``python -m sim.grading.runner`` runs it there in its own
process, under a wall-clock timeout, with ``KAFKA_LAB_GRADING=1`` and temp/home folders inside the
scratch copy. Whatever a submission does — loop, crash, print garbage, snoop — it only costs that
submission's points, each zero comes with a reason, and the batch goes on.

The table has one row per student per question: ``file, student, exercise, question, points,
max_points, verdict, reason``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.grading import GRADING_ENV_VAR
from sim.grading.registry import exercise_questions
from sim.grading.results import CheckResult, ExerciseReport
from sim.grading.runner import load_notebook, recognise_exercise

__all__ = ["COLUMNS", "Submission", "grade_directory", "grade_submission"]

COLUMNS = ["file", "student", "exercise", "question", "points", "max_points", "verdict", "reason"]
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CELL_TIMEOUT_S = 10.0
_SIM_PARENT = Path(__file__).resolve().parents[2]  # the folder that makes `import sim` work
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT")


@dataclass
class Submission:
    """What grading one notebook produced: results per question, or a problem for all of them."""

    path: Path
    exercise: str | None
    results: list[CheckResult] = field(default_factory=list)
    problem: str | None = None
    cells: list[dict[str, Any]] = field(default_factory=list)  # how each code cell ran


def _ignore_for(notebook: Path, excluded: Sequence[Path]) -> Callable[[str, list[str]], set[str]]:
    """copytree filter: leave out other notebooks, checkpoints and the grader's own outputs."""
    keep = notebook.resolve()
    skip = [p.resolve() for p in excluded]

    def ignore(folder: str, names: list[str]) -> set[str]:
        dropped = set()
        for name in names:
            path = (Path(folder) / name).resolve()
            excluded_path = any(path == s or s in path.parents for s in skip)
            other_notebook = name.endswith(".ipynb") and path != keep
            if name == ".ipynb_checkpoints" or excluded_path or other_notebook:
                dropped.add(name)
        return dropped

    return ignore


def _environment(scratch: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
    private = scratch / ".kafka-lab"
    for sub in ("tmp", "home", "matplotlib"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        {
            GRADING_ENV_VAR: "1",
            "PYTHONPATH": str(_SIM_PARENT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "TMPDIR": str(private / "tmp"),
            "HOME": str(private / "home"),
            "MPLCONFIGDIR": str(private / "matplotlib"),
            "MPLBACKEND": "Agg",
        }
    )
    return env


def _run_runner(
    notebook: Path, env: dict[str, str], timeout_s: float, cell_timeout_s: float
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "sim.grading.runner",
        str(notebook),
        "--cell-timeout",
        str(cell_timeout_s),
        "--root",
        str(notebook.parent),
    ]
    process = subprocess.Popen(
        command,
        cwd=notebook.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"problem": f"the notebook did not finish within {timeout_s:g} s (whole run)"}
    text = out.decode("utf-8", errors="replace").strip()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        tail = err.decode("utf-8", errors="replace").strip().splitlines()[-1:] or ["no output"]
        if process.returncode:
            return {"problem": f"the grader crashed (exit code {process.returncode}): {tail[0]}"}
        return {"problem": "the grader's output was not a result document (garbage output)"}
    if not isinstance(document, dict):
        return {"problem": "the grader's output was not a result document (garbage output)"}
    return document


def _parse_results(document: dict[str, Any]) -> list[CheckResult]:
    results = []
    for item in document.get("results") or []:
        try:
            results.append(CheckResult.from_dict(item))
        except (TypeError, ValueError):
            continue  # malformed entries are treated as missing below
    return results


def _recognise(notebook: Path) -> str | None:
    """The exercise named in the notebook's metadata, read without running anything."""
    nb, _ = load_notebook(notebook)
    return None if nb is None else recognise_exercise(nb, notebook)[0]


def grade_submission(
    notebook: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cell_timeout_s: float = DEFAULT_CELL_TIMEOUT_S,
    exclude: Sequence[Path] = (),
) -> Submission:
    """Grade one notebook in a scratch copy of its folder, in its own process.

    Args:
        notebook: the submitted ``.ipynb``.
        timeout_s: wall-clock limit for the whole notebook; past it every question gets 0.
        cell_timeout_s: limit per code cell and per check; past it, that cell's questions get 0.
        exclude: paths inside the folder not to copy (e.g. the grade table being written).
    """
    notebook = Path(notebook)
    scratch = Path(tempfile.mkdtemp(prefix="kafka-lab-grade-"))
    try:
        work = scratch / "submission"
        shutil.copytree(notebook.parent, work, ignore=_ignore_for(notebook, exclude), symlinks=True)
        document = _run_runner(work / notebook.name, _environment(work), timeout_s, cell_timeout_s)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    exercise = document.get("exercise")
    if not isinstance(exercise, str):
        exercise = _recognise(notebook)
    return Submission(
        notebook,
        exercise,
        _parse_results(document),
        document.get("problem") if isinstance(document.get("problem"), str) else None,
        [c for c in document.get("cells") or [] if isinstance(c, dict)],
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
        if result is None:
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


def grade_directory(
    directory: Path,
    out_csv: Path,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    feedback_dir: Path | None = None,
    *,
    cell_timeout_s: float = DEFAULT_CELL_TIMEOUT_S,
    recursive: bool = False,
    exercise: str | None = None,
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

    Returns:
        The table as a DataFrame with :data:`COLUMNS`, sorted by file and question.
    """
    directory, out_csv = Path(directory), Path(out_csv)
    pattern = "**/*.ipynb" if recursive else "*.ipynb"
    notebooks = sorted(p for p in directory.glob(pattern) if ".ipynb_checkpoints" not in p.parts)
    excluded = [out_csv] + ([Path(feedback_dir)] if feedback_dir else [])
    graded = [
        grade_submission(nb, timeout_s=timeout_s, cell_timeout_s=cell_timeout_s, exclude=excluded)
        for nb in notebooks
    ]
    if exercise is None:
        seen = Counter(s.exercise for s in graded if s.exercise)
        exercise = next(iter(seen)) if len(seen) == 1 else None
    rows: list[dict[str, object]] = []
    reports = {}
    for sub in graded:
        student = _student(sub.path, directory)
        report = reports[student] = _complete(sub, exercise)
        file = sub.path.relative_to(directory).as_posix()
        rows += [
            {
                "file": file,
                "student": student,
                "exercise": report.exercise,
                "question": r.question,
                "points": r.points,
                "max_points": r.max_points,
                "verdict": r.verdict,
                "reason": r.reason,
            }
            for r in report.results
        ]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.sort_values(["file", "question"], kind="stable").reset_index(drop=True)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    if feedback_dir is not None:
        folder = Path(feedback_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for student, report in reports.items():
            (folder / f"{student.replace('/', '__')}.txt").write_text(str(report), encoding="utf-8")
    return table
