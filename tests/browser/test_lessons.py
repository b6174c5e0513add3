"""Every lesson and every solution, run in JupyterLab in chromium as a learner runs it: no
error, every widget drawn, figures shown at their own shape and size, tables that fit or scroll
in their own box.

The notebooks run once per session (``notebook_runs`` in conftest.py); each test reads the
page its notebook ran in.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import NOTEBOOKS, ROOT, NotebookRun, output_facts

RAW_WIDGET_REPR = re.compile(r"^(HBox|VBox|Box|GridBox|Tab|Accordion|[A-Z]\w*Panel)\(",
                             re.MULTILINE)


@pytest.fixture(params=NOTEBOOKS)
def run(request: pytest.FixtureRequest, notebook_runs: dict[str, NotebookRun]) -> NotebookRun:
    return notebook_runs[request.param]


@pytest.fixture
def cells(run: NotebookRun) -> list[dict]:
    return output_facts(run)


def test_every_cell_runs_without_an_error(run: NotebookRun, cells: list[dict]) -> None:
    """Run All Cells finishes; no cell shows an error; every code cell has run."""
    assert not run.error, run.error
    errors = {c["index"]: c["errors"] for c in cells if c["errors"]}
    assert not errors, f"{run.path}: error outputs {errors}"
    not_run = [c["index"] for c in cells if c["count"] is None and c["source"].strip()]
    assert not not_run, f"{run.path}: cells {not_run} did not run"


def test_every_widget_is_drawn(run: NotebookRun, cells: list[dict]) -> None:
    """Each widget output is a live widget: never "Loading widget…", an error, or a raw
    ``HBox(...)`` repr."""
    for cell in cells:
        where = f"{run.path} cell {cell['index']}"
        assert cell["widgetsShown"] == cell["widgetOutputs"], where
        assert "Loading widget" not in cell["text"], where
        assert "Error displaying widget" not in cell["text"], where
        assert not RAW_WIDGET_REPR.search(cell["text"]), f"{where}: {cell['text'][:200]}"


def test_figures_keep_their_shape_and_are_not_upscaled(run: NotebookRun,
                                                       cells: list[dict]) -> None:
    """Every image is shown at its own aspect ratio and never larger than drawn (upscaling
    blurs it)."""
    for cell in cells:
        for image in cell["images"]:
            (nw, nh), (w, h) = image["natural"], image["shown"]
            where = f"{run.path} cell {cell['index']}: drawn {nw}×{nh}, shown {w}×{h}"
            assert min(w, h) > 0, where
            assert abs(w / h - nw / nh) <= 0.02 * nw / nh, where
            assert w <= nw + 1, where


def test_tables_fit_or_scroll_in_their_own_box(run: NotebookRun, cells: list[dict]) -> None:
    """A table wider than the box around it scrolls inside that box, and no cell's text is
    cut off."""
    for cell in cells:
        where = f"{run.path} cell {cell['index']}"
        for table in cell["tables"]:
            assert table["scrolls"], (f"{where}: table {table['head']!r} is {table['width']:.0f}"
                                      f" px wide in a box {table['narrow']!r} that does not "
                                      "scroll")
        assert not cell["cut"], f"{where}: text cut off in {cell['cut']}"


def test_figures_and_tables_fit_the_output_at_full_size(run: NotebookRun,
                                                        cells: list[dict]) -> None:
    """A notebook output is 848 pixels wide in the suite's 1280×1000 window. A figure drawn
    wider is shown shrunk, its labels with it (WordCount's topology came out at 70 %); a table
    wider scrolls and hides the columns the text cites (a dead letter's headers, 1,336 pixels).
    So every figure is shown at the size drawn and every table fits."""
    for cell in cells:
        where = f"{run.path} cell {cell['index']}"
        for image in cell["images"]:
            (nw, nh), (w, _) = image["natural"], image["shown"]
            assert w >= nw - 1, f"{where}: drawn {nw}×{nh} px, shown {w} px wide"
        for table in cell["tables"]:
            assert table["width"] <= table["output"] + 1, (
                f"{where}: table {table['head']!r} is {table['width']:.0f} px wide in an "
                f"output of {table['output']} px")


def test_readme_opens_with_a_picture_of_the_playground() -> None:
    """The README's first picture (badges aside) is the playground, a PNG under docs/, shown
    before the set-up section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pictures = [m for m in re.finditer(r"!\[[^\]]*\]\(([^)]+)\)", readme)
                if not m.group(1).startswith("http")]  # badges are images from elsewhere
    assert pictures
    first = pictures[0]
    assert first.group(1) == "docs/playground.png"
    assert first.start() < readme.index("## Set up")
    assert (ROOT / first.group(1)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
