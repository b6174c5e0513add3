"""Tables whose sentences a lesson refers to, shown whole in a notebook.

pandas shortens any text longer than ``display.max_colwidth`` (50 characters) to "...", which
cuts the replication story's and the consumer audit's sentences in the middle ("shrink: [2] not
caught..."). A :class:`WholeTextFrame` is an ordinary DataFrame whose notebook display keeps
every cell's text whole; everything else about it is pandas'.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["WholeTextFrame"]


class WholeTextFrame(pd.DataFrame):
    """A DataFrame displayed without shortening its text (results of its methods stay one)."""

    @property
    def _constructor(self) -> Any:
        return WholeTextFrame

    def _repr_html_(self) -> str | None:
        with pd.option_context("display.max_colwidth", None):
            return super()._repr_html_()

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", None):
            return super().__repr__()
