"""The lessons' panels, used in chromium as a learner uses them: a slider move redraws the
playground, the stepper steps both ways, the fault panel's crash button changes the replicas,
and ``check()`` renders its feedback.

Each test works in the page its notebook ran in (``notebook_runs`` in conftest.py).
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import SCREENSHOTS, SOLUTIONS, NotebookRun, output_facts

TIMEOUT_MS = 60_000


def _panel(run: NotebookRun, title: str):
    """The widget output whose text contains ``title`` (the first one, in notebook order)."""
    outputs = run.page.locator(".jp-OutputArea-output").filter(  # type: ignore[attr-defined]
        has=run.page.locator(":scope > .jupyter-widgets"))  # type: ignore[attr-defined]
    return outputs.filter(has_text=title).first


def _src(panel) -> str:
    return panel.locator("img").first.get_attribute("src") or ""


def _wait_src_change(run: NotebookRun, panel, before: str) -> None:
    handle = panel.locator("img").first.element_handle()
    run.page.wait_for_function(  # type: ignore[attr-defined]
        "([img, before]) => img.src !== before && img.complete", arg=[handle, before],
        timeout=TIMEOUT_MS)


def _cell_of(panel) -> int:
    return panel.evaluate("""el => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]
                                   .findIndex(c => c.contains(el))""")


def _layout_holds(run: NotebookRun, index: int) -> None:
    """The panel's figure keeps its shape and size; its tables fit or scroll in their box."""
    cell = next(c for c in output_facts(run) if c["index"] == index)
    for image in cell["images"]:
        (nw, nh), (w, h) = image["natural"], image["shown"]
        assert abs(w / h - nw / nh) <= 0.02 * nw / nh, f"drawn {nw}×{nh}, shown {w}×{h}"
        assert w <= nw + 1, f"drawn {nw}×{nh}, shown {w}×{h}"
    for table in cell["tables"]:
        assert table["scrolls"], f"table {table['head']!r} overflows {table['narrow']!r}"
    assert not cell["cut"], cell["cut"]


def test_playground_figure_changes_after_a_slider_move(
        notebook_runs: dict[str, NotebookRun]) -> None:
    """Moving the partitions slider re-simulates: a new figure with one more partition."""
    run = notebook_runs["notebooks/01_partitioners.ipynb"]
    panel = _panel(run, "Partitioner playground")
    slider = panel.locator(".widget-slider").filter(
        has=run.page.locator("label", has_text=re.compile(r"^partitions$"))).first
    readout = slider.locator(".widget-readout")
    before_value = readout.inner_text()
    before = _src(panel)
    slider.locator(".noUi-handle").first.focus()
    run.page.keyboard.press("ArrowRight")
    _wait_src_change(run, panel, before)
    assert int(readout.inner_text()) == int(before_value) + 1
    assert "re-simulating" not in panel.inner_text()
    _layout_holds(run, _cell_of(panel))


def _click_and_wait(run: NotebookRun, button, status) -> None:
    """Click ``button`` and wait until the stepper's status line changes."""
    before = status.inner_text()
    button.click()
    run.page.wait_for_function(  # type: ignore[attr-defined]
        "([el, before]) => el.innerText !== before", arg=[status.element_handle(), before],
        timeout=TIMEOUT_MS)


def _event_number(status) -> int:
    return int(re.search(r"event #(\d+) of", status.inner_text()).group(1))


def test_stepper_advances_and_steps_back(notebook_runs: dict[str, NotebookRun]) -> None:
    """Step ▶ moves to the next trace events (one simulation step can write several), ◀ step
    back returns to an earlier event; after many events the figure keeps its shape and the
    event table stays in its own box."""
    run = notebook_runs["notebooks/00_tour.ipynb"]
    panel = _panel(run, "keyed records into")
    status = panel.locator(".widget-html", has_text="run ends at").first
    assert "event none yet of" in status.inner_text()
    step = panel.get_by_role("button", name="step ▶")
    back = panel.get_by_role("button", name="◀ step back")
    _click_and_wait(run, step, status)
    assert _event_number(status) == 0
    for _ in range(11):
        _click_and_wait(run, step, status)
    forward = _event_number(status)
    assert forward >= 11
    _click_and_wait(run, back, status)
    assert _event_number(status) < forward
    run.page.wait_for_timeout(300)
    _layout_holds(run, _cell_of(panel))


def test_replication_stepper_goes_to_a_bookmark(notebook_runs: dict[str, NotebookRun]) -> None:
    """Lesson 02's stepper replays to its first bookmark; the long event sentences stay whole
    and the table scrolls in its own box."""
    run = notebook_runs["notebooks/02_replication.ipynb"]
    panel = _panel(run, "acks1-leader-crash")
    before = _src(panel)
    panel.get_by_role("button", name="go", exact=True).click()
    _wait_src_change(run, panel, before)
    status = panel.locator(".widget-html", has_text="run ends at").first
    assert "event #" in status.inner_text()
    _layout_holds(run, _cell_of(panel))


def test_restore_stepper_ends_with_the_instance_running(
        notebook_runs: dict[str, NotebookRun]) -> None:
    """Lesson 07's restore stepper, taken to its last step: the restore ends, then the task
    runs, then the instance is RUNNING (``TaskManager.checkStateUpdater``); the figure keeps
    its shape and the step table stays in its box. The page is kept as a screenshot."""
    run = notebook_runs["notebooks/07_streams_state.ipynb"]
    panel = _panel(run, "the restore, step by step")
    select = panel.locator("select").first
    labels = [o.inner_text().replace("\xa0", " ") for o in select.locator("option").all()]
    assert "caught up" in labels[-3], labels[-3:]  # restore end
    assert "processes records again" in labels[-2], labels[-3:]  # the task runs
    assert re.search(r"instance .* is RUNNING$", labels[-1]), labels[-3:]
    before = _src(panel)
    select.select_option(index=len(labels) - 1)
    panel.get_by_role("button", name="go", exact=True).click()
    _wait_src_change(run, panel, before)
    assert "is RUNNING" in panel.inner_text().replace("\xa0", " ")
    run.page.wait_for_timeout(300)
    panel.screenshot(path=SCREENSHOTS / run.name / "restore-stepper-last-step.png")
    _layout_holds(run, _cell_of(panel))


def test_fault_panel_crash_changes_the_replication_view(
        notebook_runs: dict[str, NotebookRun]) -> None:
    """Crash broker 0: the figure is redrawn and the status lists the fault."""
    run = notebook_runs["notebooks/02_replication.ipynb"]
    panel = _panel(run, "Break the cluster")
    before = _src(panel)
    panel.get_by_role("button", name="crash", exact=True).click()
    _wait_src_change(run, panel, before)
    assert "crash broker 0 at" in panel.inner_text()
    _layout_holds(run, _cell_of(panel))


@pytest.mark.parametrize("path", SOLUTIONS)
def test_check_renders_feedback(path: str, notebook_runs: dict[str, NotebookRun]) -> None:
    """Every check() call in a solution shows its feedback box with the points."""
    run = notebook_runs[path]
    calls = sum(len(re.findall(r"^check\(", c["source"], re.MULTILINE))
                for c in output_facts(run))
    boxes = run.page.locator(".kafka-lab-check")
    assert calls > 0
    assert boxes.count() == calls
    for i in range(calls):
        assert re.search(r"\d+ / \d+ points", boxes.nth(i).inner_text())
