"""Tables whose sentences a lesson refers to, shown whole in a notebook.

pandas shortens any text longer than ``display.max_colwidth`` (50 characters) to "...", which
cuts the replication story's and the consumer audit's sentences in the middle ("shrink: [2] not
caught..."), and a narrow output wraps row names such as ``acks1-leader-crash`` onto several
lines. A :class:`WholeTextFrame` is an ordinary DataFrame whose notebook display keeps every
cell's text whole and every header on one line; everything else about it is pandas'.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pandas as pd

__all__ = ["WholeTextFrame", "breakable_labels", "text_left"]


class WholeTextFrame(pd.DataFrame):
    """A DataFrame displayed without shortening its text (results of its methods stay one)."""

    @property
    def _constructor(self) -> Any:
        return WholeTextFrame

    def _repr_html_(self) -> str | None:
        with pd.option_context("display.max_colwidth", None):
            html = super()._repr_html_()
        if html is None:
            return None
        return text_left(self, html.replace("<th>", '<th style="white-space: nowrap">'))

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", None):
            return super().__repr__()


_TABLES = itertools.count()
"""Numbers each table displayed, so that its style rules reach only its own cells."""


def text_left(frame: pd.DataFrame, html: str) -> str:
    """``html`` (``frame``'s table) with its text columns aligned left: JupyterLab aligns every
    table cell right, so sentences would end at the right edge, ragged on the left. A style
    rule per text column (``nth-child``, counting the index cells before it)."""
    text = [frame.index.nlevels + i + 1 for i, dtype in enumerate(frame.dtypes)
            if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)]
    if not text or 'class="dataframe"' not in html:
        return html
    name = f"kafka-lab-table-{next(_TABLES)}"
    cells = ", ".join(f".{name} td:nth-child({k}), .{name} th:nth-child({k})" for k in text)
    html = html.replace('class="dataframe"', f'class="dataframe {name}"', 1)
    return f"<style>{cells} {{ text-align: left; }}</style>{html}"


_HEADER = re.compile(r"(<th(?: [^>]*)?>)([^<]*_[^<]*)(</th>)")


def breakable_labels(html: str) -> str:
    """``html`` with a line-break opportunity (``<wbr>``) after each underscore of a header
    cell, so that ``failed_produce_requests`` may take three short lines instead of one long
    one; the text a reader sees (and copies) is unchanged."""
    return _HEADER.sub(lambda m: m.group(1) + m.group(2).replace("_", "_<wbr>") + m.group(3),
                       html)
