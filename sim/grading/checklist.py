"""Checklists: how a check function awards partial points, one sub-check at a time.

A check function receives a :class:`Checklist` and opens one ``item`` per behaviour it tests::

    with sheet.item("returns a partition in 0–9 for every record", points=1) as item:
        ...                        # call the learner's code
        item.fail("returned 12 for key 'vip-3'; allowed range is 0–9")
    if item.crashed:
        return sheet.stop("could not route every record")

An item passes unless ``fail`` is called or its body raises. Exceptions from the learner's code are
caught by the item and turned into a one-line message naming the exception and the learner's line,
never a traceback. ``NotImplementedError`` means "still the stub". ``stop`` ends the check early:
the points of the items not reached are reported as not checked.

The verdict follows (see :mod:`sim.grading.results`): stopped on a stub → "not yet solved" with 0
points; stopped on a crash → "error"; every point earned → "passed"; otherwise "failed".
"""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path
from types import TracebackType

from sim.errors import GradingError
from sim.grading.results import ALL_PASSED, CheckResult, Verdict

__all__ = [
    "Checklist",
    "Item",
    "LearnerError",
    "LearnerNotImplementedError",
    "describe_exception",
    "is_stub",
]

_SIM_DIR = Path(__file__).resolve().parents[1]
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)
CRASH_HINT = "Call your code yourself on one example to see the full error message."
STUB_HINT = (
    "Replace the `raise NotImplementedError(...)` line or the `...` with your answer, "
    "run that cell, then run this check again."
)


class LearnerError(Exception):
    """Learner code raised in another process; ``str()`` is the description made there.

    ``kinds`` names the exception's classes (``module.qualname``, most derived first), so a
    check can tell the lab's ``DataError`` from a learner's class of the same name.
    """

    def __init__(self, text: str, kinds: tuple[str, ...] = ()) -> None:
        super().__init__(text)
        self.kinds = kinds


class LearnerNotImplementedError(NotImplementedError):
    """Learner code in another process still raises ``NotImplementedError`` (the stub)."""


def is_stub(answer: object) -> bool:
    """Whether ``answer`` is still the exercise's placeholder (``None`` or ``...``)."""
    return answer is None or answer is Ellipsis


def _is_learner_file(filename: str) -> bool:
    if filename.startswith("<") and not filename.startswith("<cell"):
        return False  # <frozen ...>, <string> and friends
    try:
        path = Path(filename).resolve()
    except OSError:
        return True
    text = str(path)
    return not (path.is_relative_to(_SIM_DIR) or text.startswith(_LIBRARY_DIRS))


def describe_exception(exc: BaseException) -> str:
    """``"ZeroDivisionError: division by zero (in partition, line 7)"`` — one line, no traceback.

    The location is the innermost frame that belongs to the learner's code (a notebook cell),
    not to the lab or to a library it called.
    """
    if isinstance(exc, LearnerError | LearnerNotImplementedError):
        return str(exc)  # already described where it was raised
    try:
        said = str(exc)
    except Exception:  # a learner's exception whose __str__ raises is still named
        said = ""
    text = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if _is_learner_file(frame.f_code.co_filename):
            where = f"in {frame.f_code.co_name}, line {lineno}"
    return f"{text} ({where})" if where else text


class Item:
    """One sub-check with its points; a context manager that catches the learner's errors."""

    def __init__(self, sheet: Checklist, text: str, points: int) -> None:
        self.sheet = sheet
        self.text = text
        self.points = points
        self.problem: str | None = None
        self.hint = ""
        self.crashed = False
        self.stub = False
        self.detail = ""

    @property
    def passed(self) -> bool:
        return self.problem is None

    def fail(self, problem: str, hint: str = "") -> None:
        """Mark the item failed; the first problem reported is the one shown."""
        if self.problem is None:
            self.problem = problem
            self.hint = hint

    def __enter__(self) -> Item:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            self.sheet._record(self)
            return False  # success, or a BaseException such as an exhausted time budget
        if isinstance(exc, NotImplementedError):
            self.stub = True
            self.detail = f"your code still raises {describe_exception(exc)}"
            self.fail(f"{self.text}: {self.detail}", STUB_HINT)
        else:
            self.crashed = True
            self.fail(f"{self.text}: your code raised {describe_exception(exc)}", CRASH_HINT)
        self.sheet._record(self)
        return True


class Checklist:
    """The sub-checks of one question and the points they earned."""

    def __init__(self, question: str, max_points: int, title: str = "", hint: str = "") -> None:
        self.question = question
        self.max_points = max_points
        self.title = title
        self.hint = hint
        self.items: list[Item] = []
        self.stopped: str | None = None
        self._stopped_on: Item | None = None

    def item(self, text: str, points: int) -> Item:
        """Open a sub-check worth ``points``; use it as a ``with`` block."""
        return Item(self, text, points)

    def _record(self, item: Item) -> None:
        self.items.append(item)

    def stop(self, reason: str) -> None:
        """End the check: the remaining points are not checked, for ``reason``."""
        self.stopped = reason
        self._stopped_on = self.items[-1] if self.items else None

    def not_yet_solved(self, reason: str) -> CheckResult:
        """The result for an answer that is still the stub: 0 points, never an error."""
        return CheckResult(
            self.question,
            0,
            self.max_points,
            "not yet solved",
            hint=STUB_HINT,
            reason=reason,
            title=self.title,
        )

    def error(self, reason: str, hint: str = "") -> CheckResult:
        """The result when the answer could not be checked at all (crash, time, unreadable)."""
        return CheckResult(
            self.question,
            0,
            self.max_points,
            "error",
            failed=[reason],
            hint=hint or self.hint,
            reason=reason,
            title=self.title,
        )

    def result(self) -> CheckResult:
        """Sum the items into a :class:`CheckResult`.

        Raises:
            GradingError: the items' points do not add up to the question's points (a bug in
                the check, not in the answer).
        """
        earned = sum(i.points for i in self.items if i.passed)
        recorded = sum(i.points for i in self.items)
        passed = [i.text for i in self.items if i.passed]
        failed = [i.problem for i in self.items if i.problem is not None]
        hint = next((i.hint for i in self.items if i.hint), "") or self.hint
        last = self._stopped_on
        if self.stopped is not None:
            left = self.max_points - recorded
            failed.append(f"not checked ({left} points): {self.stopped}")
            if last is not None and last.stub:
                return self.not_yet_solved(last.detail)
        elif recorded != self.max_points:
            raise GradingError(
                f"check for {self.question} awards {recorded} points in its items but the "
                f"question is worth {self.max_points}; make the items add up"
            )
        verdict: Verdict
        if self.stopped is not None and last is not None and last.crashed:
            verdict, reason = "error", str(last.problem)
        elif earned == self.max_points:
            verdict, reason = "passed", ALL_PASSED
        else:
            verdict = "failed"
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            reason = f"{failed[0]}{more}"
        return CheckResult(
            self.question,
            earned,
            self.max_points,
            verdict,
            passed=passed,
            failed=failed,
            hint=hint if verdict != "passed" else "",
            reason=reason,
            title=self.title,
        )
