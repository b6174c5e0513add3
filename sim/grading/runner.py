"""Grade one submitted notebook in this process and print one JSON document.

Run by the batch grader as ``python -m sim.grading.runner NOTEBOOK`` inside a scratch copy of the
submission's folder, one process per submission. Steps:

1. Load the notebook as plain JSON (no Jupyter kernel is started); invalid JSON is a clear reason.
2. Recognise the exercise from the notebook metadata (``kafka_lab.exercise``), whatever the file
   is called.
3. Install the :mod:`sim.grading.sandbox`, then run the code cells in order in one namespace, each
   with a time budget. IPython magics (``%``/``!`` lines, ``%%`` cells) are skipped. Widgets are
   never built: ``KAFKA_LAB_GRADING=1`` tells the lab's widget factories to stand down.
4. For each question of the exercise, call the same check as ``check()`` in the notebook on the
   answer found in the namespace. A question scores 0, with a reason, when a cell tagged with it
   failed or timed out, or when its code broke a sandbox rule (an untagged cell that breaks one
   costs every question).

The learner's prints go to ``/dev/null``; only the result document reaches the real stdout.
"""

from __future__ import annotations

import argparse
import builtins
import json
import linecache
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from sim.grading import GRADING_ENV_VAR, run_check
from sim.grading.budget import BudgetExceeded, time_budget
from sim.grading.checklist import describe_exception
from sim.grading.registry import Question, exercise_names, exercise_questions, questions
from sim.grading.results import CheckResult
from sim.grading.sandbox import Sandbox

__all__ = ["CellRun", "grade_notebook", "load_notebook", "main"]

DEFAULT_CELL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CellRun:
    """How one code cell ran: ``status`` is ok, error, timeout or skipped (a ``%%`` magic)."""

    number: int  # 1-based position among all cells, as a learner counts them
    questions: tuple[str, ...]
    status: str
    message: str = ""

    @property
    def label(self) -> str:
        return f"cell {self.number}"


def load_notebook(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Read a notebook as JSON; returns ``(notebook, None)`` or ``(None, reason)``."""
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return None, f"could not read {name}: {exc.strerror}"
    except UnicodeDecodeError:
        return None, f"not a valid notebook: {name} is not UTF-8 text"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, (
            f"not a valid notebook: {name} is not valid JSON "
            f"({exc.msg} at line {exc.lineno}, column {exc.colno})"
        )
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, f"not a Jupyter notebook: {name} has no list of cells"
    if data.get("nbformat", 4) < 4:
        return None, f"{name} uses an old notebook format; open and save it in Jupyter first"
    return data, None


def _meta(node: Any) -> dict[str, Any]:
    meta = node.get("metadata", {}) if isinstance(node, dict) else {}
    lab = meta.get("kafka_lab", {}) if isinstance(meta, dict) else {}
    return lab if isinstance(lab, dict) else {}


def _cell_questions(cell: dict[str, Any]) -> tuple[str, ...]:
    tag = _meta(cell).get("question")
    if isinstance(tag, str):
        return (tag,)
    if isinstance(tag, list):
        return tuple(t for t in tag if isinstance(t, str))
    return ()


def recognise_exercise(nb: dict[str, Any], path: Path) -> tuple[str | None, str | None]:
    """The exercise a notebook answers: metadata first, then its question tags, then its name."""
    known = exercise_names()
    named = _meta(nb).get("exercise")
    if isinstance(named, str) and named in known:
        return named, None
    registered = questions()
    tagged = {
        registered[q].exercise
        for cell in nb["cells"]
        for q in _cell_questions(cell)
        if q in registered
    }
    if len(tagged) == 1:
        return tagged.pop(), None
    if path.stem in known:
        return path.stem, None
    return None, (
        "cannot tell which exercise this notebook answers: its metadata has no known "
        "kafka_lab.exercise (start from the notebook in exercises/)"
    )


def _source(cell: dict[str, Any]) -> str | None:
    """The cell's Python source with magic lines blanked; ``None`` for a ``%%`` cell magic."""
    raw = cell.get("source", "")
    text = "".join(raw) if isinstance(raw, list) else str(raw)
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return None
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass  # IPython magic skipped"
        out.append(line)
    return "\n".join(out) + "\n"


def _run_cell(
    number: int, source: str, namespace: dict[str, Any], budget_s: float | None
) -> tuple[str, str]:
    filename = f"<cell {number}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        return "error", f"has a syntax error: {exc.msg} (line {exc.lineno})"
    try:
        with time_budget(budget_s):
            exec(code, namespace)
    except BudgetExceeded as exc:
        return "timeout", f"{exc} (an endless loop?)"
    except SystemExit:
        return "error", "called exit(), which stops the notebook"
    except BaseException as exc:
        return "error", f"raised {describe_exception(exc)}"
    return "ok", ""


def run_cells(
    nb: dict[str, Any], namespace: dict[str, Any], sandbox: Sandbox, budget_s: float | None
) -> list[CellRun]:
    """Run every code cell in order in ``namespace``; one failure never stops the rest."""
    runs = []
    for number, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        tags = _cell_questions(cell)
        source = _source(cell)
        if source is None:
            runs.append(CellRun(number, tags, "skipped", "cell magic"))
            continue
        sandbox.where = f"cell {number}"
        status, message = _run_cell(number, source, namespace, budget_s)
        runs.append(CellRun(number, tags, status, message))
    sandbox.where = "grader"
    return runs


def _zero(q: Question, reason: str) -> CheckResult:
    return CheckResult(
        q.id,
        0,
        q.points,
        "error",
        failed=[reason],
        reason=reason,
        title=q.title,
        hint="Fix the cell named above, restart the kernel and run the whole notebook.",
    )


def grade_question(
    q: Question,
    namespace: dict[str, Any],
    cells: list[CellRun],
    sandbox: Sandbox,
    budget_s: float | None,
) -> CheckResult:
    """Grade one question from the state the notebook left behind."""
    mine = [c for c in cells if q.id in c.questions]
    exposed = {c.label for c in mine} | {c.label for c in cells if not c.questions}

    def blocked() -> str | None:
        violation = next((v for v in sandbox.violations if v.where in exposed), None)
        if violation is not None:
            return f"sandbox: {violation.where} {violation.message}"
        failed = next((c for c in mine if c.status in ("error", "timeout")), None)
        if failed is not None:
            return f"{failed.label} (question {q.id}) {failed.message}"
        return None

    if (reason := blocked()) is not None:
        return _zero(q, reason)
    if q.answer not in namespace:
        broken = next((c for c in cells if c.status in ("error", "timeout")), None)
        why = f"; {broken.label} {broken.message}" if broken else ""
        return CheckResult(
            q.id,
            0,
            q.points,
            "not yet solved",
            reason=f"{q.answer} is not defined after running the notebook{why}",
            title=q.title,
            hint=f"Keep the cell that defines {q.answer} and run the notebook top to bottom.",
        )
    sandbox.where = f"check {q.id}"
    exposed.add(sandbox.where)
    result = run_check(q, namespace[q.answer], budget_s)
    sandbox.where = "grader"
    if (reason := blocked()) is not None:
        return _zero(q, reason)
    return result


def _display(*objects: object, **kwargs: object) -> None:
    """Stands in for IPython's ``display`` while grading: shows nothing."""


def grade_notebook(
    path: Path,
    *,
    cell_timeout_s: float | None = DEFAULT_CELL_TIMEOUT_S,
    check_timeout_s: float | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """Run and grade one notebook; returns the JSON-ready result document.

    Args:
        path: the notebook (a scratch copy: the sandbox confines it to ``root``).
        cell_timeout_s: wall-clock budget of each code cell.
        check_timeout_s: budget of each question's check (default: ``cell_timeout_s``).
        root: the folder the submission may use (default: the notebook's folder).
    """
    document: dict[str, Any] = {"exercise": None, "problem": None, "results": [], "cells": []}
    nb, problem = load_notebook(path)
    if nb is None:
        document["problem"] = problem
        return document
    exercise, problem = recognise_exercise(nb, path)
    document["exercise"] = exercise
    if exercise is None:
        document["problem"] = problem
        return document
    qs = exercise_questions(exercise)
    os.chdir(path.parent)
    sandbox = Sandbox(root or path.parent)
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "display": _display,
    }
    sandbox.install()
    cells = run_cells(nb, namespace, sandbox, cell_timeout_s)
    budget = cell_timeout_s if check_timeout_s is None else check_timeout_s
    results = [grade_question(q, namespace, cells, sandbox, budget) for q in qs]
    sandbox.disable()
    document["results"] = [r.to_dict() for r in results]
    document["cells"] = [asdict(c) for c in cells]
    return document


def _claim_stdout() -> TextIO:
    """Keep the real stdout for the result; send fds 1 and 2 (the learner's output) to null."""
    sys.stdout.flush()
    sys.stderr.flush()
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m sim.grading.runner NOTEBOOK [--cell-timeout S]``."""
    parser = argparse.ArgumentParser(prog="python -m sim.grading.runner", description=__doc__)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--cell-timeout", type=float, default=DEFAULT_CELL_TIMEOUT_S)
    parser.add_argument("--check-timeout", type=float, default=None)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ[GRADING_ENV_VAR] = "1"
    sys.dont_write_bytecode = True
    out = _claim_stdout()
    try:
        document = grade_notebook(
            args.notebook.resolve(),
            cell_timeout_s=args.cell_timeout,
            check_timeout_s=args.check_timeout,
            root=args.root,
        )
    except BaseException as exc:  # a failure of the grader itself, or an escaped budget
        document = {"exercise": None, "problem": f"grading failed: {describe_exception(exc)}"}
    out.write(json.dumps(document) + "\n")
    out.flush()
    os._exit(0)  # skip the learner's atexit handlers and threads


if __name__ == "__main__":
    main()
