"""Small helpers the exercise checks share to judge and describe a learner's answer."""

from __future__ import annotations

import numbers


def describe(value: object, width: int = 50) -> str:
    """``42 (an int)``: a wrong-typed answer shown with its type, cut to ``width`` characters."""
    text = repr(value)
    if len(text) > width:
        text = text[:width - 3] + "..."
    kind = type(value).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{text} ({article} {kind})"


def is_whole(value: object) -> bool:
    """An integer answer (``True`` is not one, though Python counts it as 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
