"""The question registry: which check function grades which question id.

Each module ``sim/grading/exercises/exNN_topic.py`` declares ``EXERCISE = "NN_topic"`` and marks
one function per question with :func:`question`::

    @question("01.b", points=2, answer="alice_partition", title="Predict: where does alice go?")
    def alice_prediction(answer: object, sheet: Checklist) -> None: ...

``answer`` names the variable (or class) the learner's notebook defines; the batch grader looks
it up after running the notebook. Modules are discovered on first use, so adding an exercise
means adding a module, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from sim.errors import GradingError
from sim.grading.checklist import Checklist

__all__ = [
    "Question",
    "exercise_names",
    "exercise_questions",
    "get_question",
    "guarded_while_graded",
    "hidden_while_graded",
    "question",
    "questions",
]

CheckFunction = Callable[[Any, Checklist], None]

_MARK = "__kafka_lab_question__"
_QUESTION_ID = re.compile(r"^(\d\d)\.[a-z]$")
_EXERCISES_PACKAGE = "sim.grading.exercises"


@dataclass(frozen=True)
class Question:
    """One graded question: its id, exercise, points, answer name and check function."""

    id: str
    exercise: str
    points: int
    answer: str
    title: str
    hint: str
    check: CheckFunction


@dataclass(frozen=True)
class _Mark:
    id: str
    points: int
    answer: str
    title: str
    hint: str


def question(
    question_id: str, *, points: int, answer: str, title: str = "", hint: str = ""
) -> Callable[[CheckFunction], CheckFunction]:
    """Mark a check function as the grader of ``question_id`` (``"NN.x"``).

    Args:
        question_id: ``"01.a"``; the number must match the module's ``EXERCISE``.
        points: the most the question can earn; the check's items must add up to it.
        answer: the name the learner's notebook binds to the answer.
        title: a few words shown next to the id.
        hint: shown when the answer fails and no sub-check gave a more specific hint.
    """
    if not _QUESTION_ID.match(question_id):
        raise GradingError(f"question id {question_id!r} must look like '01.a'")
    if points < 1:
        raise GradingError(f"question {question_id} must be worth at least 1 point, got {points}")

    def mark(fn: CheckFunction) -> CheckFunction:
        setattr(fn, _MARK, _Mark(question_id, points, answer, title, hint))
        return fn

    return mark


@cache
def _discover() -> Mapping[str, Question]:
    found: dict[str, Question] = {}
    package = importlib.import_module(_EXERCISES_PACKAGE)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("ex"):
            continue
        module = importlib.import_module(f"{_EXERCISES_PACKAGE}.{info.name}")
        exercise = getattr(module, "EXERCISE", None)
        if not isinstance(exercise, str):
            raise GradingError(f"{module.__name__} must declare EXERCISE = 'NN_topic'")
        for fn in vars(module).values():
            mark = getattr(fn, _MARK, None)
            if not isinstance(mark, _Mark):
                continue
            if mark.id in found:
                raise GradingError(f"question {mark.id} is declared twice ({module.__name__})")
            if not exercise.startswith(mark.id[:2] + "_"):
                raise GradingError(
                    f"question {mark.id} is declared in {module.__name__}, whose exercise is "
                    f"{exercise}; question ids start with their exercise's number"
                )
            found[mark.id] = Question(
                mark.id, exercise, mark.points, mark.answer, mark.title, mark.hint, fn
            )
    return MappingProxyType(dict(sorted(found.items())))


def questions() -> Mapping[str, Question]:
    """Every registered question, by id, in id order."""
    return _discover()


def get_question(question_id: str) -> Question:
    """The question with this id.

    Raises:
        GradingError: no exercise module declares it.
    """
    try:
        return _discover()[question_id]
    except KeyError:
        known = ", ".join(_discover()) or "none"
        raise GradingError(
            f"unknown question {question_id!r}; the registered questions are: {known}"
        ) from None


def exercise_names() -> list[str]:
    """The names of all exercises that have questions, sorted."""
    return sorted({q.exercise for q in _discover().values()})


def exercise_questions(exercise: str) -> list[Question]:
    """The questions of one exercise, in id order (empty if the exercise is unknown)."""
    return [q for q in _discover().values() if q.exercise == exercise]


def hidden_while_graded(exercise: str) -> list[str]:
    """Files of the ``sim`` package a submission of ``exercise`` must not read while graded.

    An exercise module that declares ``HIDDEN_WHILE_GRADED = True`` (its notebook does not
    import it) holds the checks' own helpers, which compute the expected answers: the grading
    jail replaces it with an empty file. Relative to the ``sim`` package folder.
    """
    for q in exercise_questions(exercise):
        module = importlib.import_module(q.check.__module__)
        if getattr(module, "HIDDEN_WHILE_GRADED", False):
            return [module.__name__.removeprefix("sim.").replace(".", "/") + ".py"]
        return []
    return []


def guarded_while_graded(exercise: str) -> list[str]:
    """Lab helpers (``module:function``) switched off while the checks call a submission's code.

    An exercise module may declare ``GUARDED_WHILE_GRADED``: helpers that run the simulator for
    exactly what a question asks the learner to predict (05.a's ``scripted_log``). The learner
    may call them in the notebook; while the grader calls the learner's function they raise, so
    a prediction cannot ask the simulator for the hidden cases' answers.
    """
    names: list[str] = []
    for module_name in sorted({q.check.__module__ for q in exercise_questions(exercise)}):
        module = importlib.import_module(module_name)
        names.extend(getattr(module, "GUARDED_WHILE_GRADED", ()))
    return names
