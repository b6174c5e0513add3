"""Graded exercises: check an answer and get feedback, in a notebook or in batch.

``check("01.a", VipPartitioner)`` runs the registered check for question ``01.a`` on the answer,
within a time budget, and returns a :class:`CheckResult` that Jupyter renders as a small box.
The same check functions grade a folder of submissions (:mod:`sim.grading.batch`), but outside
the submission's process: there ``check()`` answers "checked by the batch grader" and checks
nothing.

Stub convention: an answer is *not yet solved* (0 points, never an exception) when it is ``None``
or ``...``, or when the learner's code raises ``NotImplementedError`` on first use — which is
what the generated exercise notebooks contain (:mod:`sim.grading.notebooks`). Any other error in
the learner's code becomes a one-line "error"/"failed" message naming the exception and line.

While a notebook is being graded the environment variable ``KAFKA_LAB_GRADING`` is ``"1"``;
widget factories check :func:`grading_mode` and build nothing, as widgets can hang a grader.
"""

from __future__ import annotations

import os

from sim.errors import GradingError
from sim.grading.budget import BudgetExceeded, time_budget
from sim.grading.checklist import Checklist, describe_exception, is_stub
from sim.grading.registry import (
    Question,
    exercise_names,
    exercise_questions,
    get_question,
    question,
    questions,
)
from sim.grading.results import CheckResult, ExerciseReport

__all__ = [
    "DEFAULT_BUDGET_S",
    "GRADING_ENV_VAR",
    "CheckResult",
    "Checklist",
    "ExerciseReport",
    "Question",
    "check",
    "exercise_names",
    "exercise_questions",
    "grading_mode",
    "question",
    "questions",
    "run_check",
]

DEFAULT_BUDGET_S = 10.0
GRADING_ENV_VAR = "KAFKA_LAB_GRADING"


def grading_mode() -> bool:
    """True while the batch grader runs a submission (widgets must not be built then)."""
    return os.environ.get(GRADING_ENV_VAR) == "1"


def run_check(
    q: Question, answer: object, budget_s: float | None = DEFAULT_BUDGET_S
) -> CheckResult:
    """Check ``answer`` against question ``q``; learner mistakes never raise."""
    sheet = Checklist(q.id, q.points, title=q.title, hint=q.hint)
    if is_stub(answer):
        shown = "None" if answer is None else "..."
        return sheet.not_yet_solved(f"no answer yet: {q.answer} is still {shown}")
    try:
        with time_budget(budget_s):
            q.check(answer, sheet)
    except BudgetExceeded as exc:
        where = f" while checking: {sheet.items[-1].text}" if sheet.items else ""
        return sheet.error(
            f"time budget ran out: the check {exc}{where}",
            hint="Look for a loop that never ends in your code.",
        )
    except GradingError:
        raise
    except NotImplementedError:
        return sheet.not_yet_solved(f"{q.answer} still raises NotImplementedError")
    except Exception as exc:  # a learner object misbehaving outside any item
        return sheet.error(f"your answer could not be checked: {describe_exception(exc)}")
    return sheet.result()


def check(
    question_id: str, answer: object, *, budget_s: float | None = DEFAULT_BUDGET_S
) -> CheckResult:
    """Check a learner's answer to one question and return the feedback.

    Args:
        question_id: the question, e.g. ``"01.a"``.
        answer: the learner's class, function or value.
        budget_s: wall-clock seconds the check may take (``None``: no limit).

    Returns:
        The result; in Jupyter it renders as a box listing what passed and what failed.

    Raises:
        GradingError: ``question_id`` is not a registered question.
    """
    if grading_mode():  # the batch grader checks the answers itself, outside this process
        return CheckResult(str(question_id), 0, 0, "not yet solved",
                           reason="checked by the batch grader, not in the notebook")
    return run_check(get_question(question_id), answer, budget_s)
