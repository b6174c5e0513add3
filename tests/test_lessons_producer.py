"""Specification of how lesson 01's comparisons show in a notebook (their numbers are checked
in ``tests/test_viz.py``, next to the figures)."""

from __future__ import annotations

import re

from sim import lessons, viz


def test_a_comparison_lets_its_column_labels_break_and_shows_every_column() -> None:
    """Eight statistics side by side were about 1,050 pixels wide and hid
    ``slow_broker_share``, which the lesson's text cites; each label may now break after an
    underscore. Row labels, the cells and the frame itself are unchanged."""
    slow = lessons.compare({"KIP-480": {"partitioner": "kip-480"}, "uniform sticky": {}},
                           records=2_000, slow_broker=0, slowdown=100)
    page = slow._repr_html_()
    head, _, body = page.partition("<tbody>")
    found = re.findall(r"<th>([^<]*(?:<wbr>[^<]*)*)</th>", head)
    labels = [label.replace("<wbr>", "") for label in found]
    assert [label for label in labels if label] == [*slow.table.columns, "run"]
    assert "<th>slow_<wbr>broker_<wbr>share</th>" in head
    assert "<th>latency_<wbr>p99_<wbr>ms</th>" in head
    assert "<wbr>" not in body
    assert "<th>uniform sticky</th>" in body
    share = slow.table.loc["KIP-480", "slow_broker_share"]
    assert f"<td>{share:.3f}</td>" in body
    assert "slow_broker_share" in slow.table.columns
    assert "<wbr>" not in repr(slow)


def test_four_partition_panels_are_as_wide_as_a_notebook_output() -> None:
    """Section 5's four slow-broker runs, two to a row, fit 8.4 inches (840 pixels inline), so
    they are shown at the size drawn; at 9.6 inches they were shrunk to 87 %."""
    run = lessons.run(records=2_000, slow_broker=0, slowdown=100)
    fig = viz.partition_bars_grid({name: run.partitions for name in "abcd"},
                                  slow_brokers={0: 100})
    assert fig.get_figwidth() <= 8.4
    assert len(fig.axes) == 4
