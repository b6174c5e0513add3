"""Check results: what a learner (or an instructor's grade table) is told about one answer.

Vocabulary:

- **verdict** — ``"passed"`` (every visible check passed), ``"failed"`` (some check failed),
  ``"not yet solved"`` (the answer is still the stub) or ``"error"`` (the answer's code crashed,
  ran out of time or broke the grading rules, so little or nothing could be checked).
- **passed / failed** — one line per sub-check, so partial credit is explained line by line.
- **reason** — one line for a grade table: why the points are what they are.

Feedback never claims more than it knows: a full score says "all visible checks passed", not
"correct".
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

__all__ = ["VERDICTS", "CheckResult", "ExerciseReport", "Verdict"]

Verdict = Literal["passed", "failed", "not yet solved", "error"]
VERDICTS: tuple[str, ...] = get_args(Verdict)

ALL_PASSED = "all visible checks passed"

_COLOURS: Mapping[str, str] = {
    "passed": "#1a7f37",
    "failed": "#bc4c00",
    "not yet solved": "#6e7781",
    "error": "#cf222e",
}
_BOX_STYLE = (
    "border-left:4px solid {colour};padding:6px 12px;margin:6px 0;"
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;line-height:1.5"
)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one answer to one question.

    Rendered as HTML in Jupyter (``_repr_html_``) and as plain text elsewhere (``str``).
    ``to_dict`` / ``from_dict`` carry it through the batch grader's JSON.
    """

    question: str
    points: int
    max_points: int
    verdict: Verdict
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    hint: str = ""
    reason: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not 0 <= self.points <= self.max_points:
            raise ValueError(f"points must be in 0..{self.max_points}, got {self.points}")

    @property
    def heading(self) -> str:
        """``"01.a VIP partitioner"`` — the question id and its title."""
        return f"{self.question} {self.title}".strip()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in data.items() if k in names})

    def _lines(self) -> list[tuple[str, str]]:
        """(kind, text) rows shared by both renderings: kind is ok, bad, note or hint."""
        rows = [("ok", line) for line in self.passed] + [("bad", line) for line in self.failed]
        if self.verdict == "passed":
            rows.append(("note", f"{ALL_PASSED.capitalize()}."))
        elif self.verdict in ("not yet solved", "error") and self.reason not in self.failed:
            rows.insert(0, ("note", self.reason))
        if self.hint and self.verdict != "passed":
            rows.append(("hint", self.hint))
        return rows

    def __str__(self) -> str:
        marks = {"ok": "✔ ", "bad": "✘ ", "note": "", "hint": "Hint: "}
        head = f"{self.heading}: {self.points}/{self.max_points} points ({self.verdict})"
        return "\n".join([head, *(f"  {marks[kind]}{text}" for kind, text in self._lines())])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))  # IPython's plain-text display: the readable form

    def _repr_html_(self) -> str:
        colour = _COLOURS[self.verdict]
        styles = {
            "ok": ("✔", "#1a7f37"),
            "bad": ("✘", "#cf222e"),
            "note": ("", "#24292f"),
            "hint": ("Hint:", "#57606a"),
        }
        rows = []
        for kind, text in self._lines():
            mark, fg = styles[kind]
            prefix = f"<b>{mark}</b> " if mark else ""
            rows.append(f'<div style="color:{fg}">{prefix}{_inline_code(text)}</div>')
        head = (
            f"<div><b>{html.escape(self.heading)}</b> — "
            f"<b>{self.points} / {self.max_points} points</b> "
            f'<span style="color:{colour}">· {html.escape(self.verdict)}</span></div>'
        )
        style = _BOX_STYLE.format(colour=colour)
        return f'<div class="kafka-lab-check" style="{style}">{head}{"".join(rows)}</div>'


@dataclass(frozen=True)
class ExerciseReport:
    """Several check results for one exercise, with the total; used for feedback files."""

    exercise: str
    results: Sequence[CheckResult]
    notes: Sequence[str] = ()

    @property
    def points(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> int:
        return sum(r.max_points for r in self.results)

    def __str__(self) -> str:
        head = f"Exercise {self.exercise}: {self.points}/{self.max_points} points"
        parts = [head, *(f"Note: {note}" for note in self.notes)]
        parts += [str(result) for result in self.results]
        return "\n\n".join(parts) + "\n"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        head = (
            f'<div style="font-family:system-ui,sans-serif;font-size:14px"><b>Exercise '
            f"{html.escape(self.exercise)}</b> — <b>{self.points} / {self.max_points} points"
            "</b></div>"
        )
        notes = "".join(f"<div><i>{html.escape(note)}</i></div>" for note in self.notes)
        return head + notes + "".join(r._repr_html_() for r in self.results)


def _inline_code(text: str) -> str:
    """Escape ``text`` for HTML and show its `backticked` spans as code, not raw backticks."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
