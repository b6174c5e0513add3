"""Replication runs summarised and compared: one row per run of outcome and metric changes.

A :class:`ReplicationRun` collects what :mod:`sim.lessons.replication` computes about a finished
(or paused) run — the line of configs in force, the delivery outcome, the broker metric changes,
the replicas and the story — and renders as that line plus its outcome and its metric changes.
``compare_replication`` and ``scenario_table`` put several runs side by side, captioned with the
Kafka version.

Sixteen columns side by side are more than 2,000 pixels wide, and a notebook output is about
850: the columns a lesson's text cites would sit out of view behind a scroll bar. So a run, or a
comparison, is shown as two tables: what the producer saw (configs and delivery outcome, one row
per run) and what the brokers counted (one row per metric, one column per run). The ``table``
behind them keeps every column in one frame.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sim import config
from sim.kernel import Kernel
from sim.lessons.producer import Comparison, config_header
from sim.lessons.replication import (
    METRIC_COLUMNS,
    OUTCOME_COLUMNS,
    advance,
    breakable_labels,
    broker_metric_changes,
    delivery_outcome,
    metric_totals,
    replication_events,
    replication_kernel,
    replication_snapshot,
)
from sim.lessons.whole_text import WholeTextFrame, text_left

__all__ = [
    "ReplicationComparison",
    "ReplicationRun",
    "compare_replication",
    "replication_run",
    "replication_summary",
    "scenario_table",
]


@dataclass
class ReplicationRun:
    """A replication run at its end: header, outcome, broker metrics, replicas, story."""

    header: str
    outcome: dict[str, float]
    totals: dict[str, int]
    metrics: pd.DataFrame
    snapshot: pd.DataFrame
    story: pd.DataFrame
    kernel: Kernel

    @property
    def end_ms(self) -> float:
        return self.kernel.now_ms

    def row(self) -> dict[str, Any]:
        """Outcome and metric totals as one table row."""
        return {**self.outcome, **self.totals}

    def _repr_html_(self) -> str:
        row = pd.DataFrame([self.row()])
        tables = [breakable_labels(row[list(columns)].to_html(
            index=False, border=0, float_format=lambda v: f"{v:.1f}"))
            for columns in (OUTCOME_COLUMNS, METRIC_COLUMNS)]
        return (f"<div style='font-size:90%;color:#333'>{html.escape(self.header)}</div>"
                f"<div>run ended at {self.end_ms:,.0f} ms</div>"
                f"{_TITLE.format('delivery (what the producer saw)')}{tables[0]}"
                f"{_TITLE.format('broker metric changes')}{tables[1]}")

    def __repr__(self) -> str:
        outcome = ", ".join(f"{k}={v:g}" for k, v in self.row().items())
        return f"ReplicationRun({self.header}; {outcome})"


_TITLE = "<div style='margin-top:0.6em;font-weight:bold'>{}</div>"


class ReplicationComparison(Comparison):
    """Runs side by side (``table``: one row per run, every column), shown as two tables that
    fit a notebook: configs and delivery outcome with a row per run, then the broker metric
    changes with a row per metric and a column per run."""

    def _repr_html_(self) -> str:
        per_metric = self.table[list(METRIC_COLUMNS)].T
        per_metric.columns.name = self.table.index.name
        caption = (f"<div style='font-size:90%;color:#333'>{html.escape(self.caption)}</div>"
                   if self.caption else "")
        per = f"broker metric changes (one column per {self.table.index.name})"
        return (f"{caption}{_TITLE.format('delivery (what the producer saw)')}"
                f"{_fitting_html(self.table[['configs', *OUTCOME_COLUMNS]])}"
                f"{_TITLE.format(per)}{_fitting_html(per_metric)}")


def _fitting_html(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table that fits a notebook output where it can: every cell's text
    whole (no "..."), column labels free to break at a space, a hyphen or after an
    underscore, row labels only at a space (``acks=all,`` / ``min.insync.replicas=3``, but
    never ``acks1-leader-`` / ``crash``)."""
    with pd.option_context("display.max_colwidth", None):
        table = frame.to_html(border=0, float_format=lambda v: f"{v:.1f}")
    head, _, body = table.partition("<tbody>")
    return text_left(frame, f"{breakable_labels(head)}<tbody>"
                            f"{_ROW_LABEL.sub(_words_kept_whole, body)}")


_ROW_LABEL = re.compile(r"<th>([^<]*)</th>")


def _words_kept_whole(label: re.Match[str]) -> str:
    words = label.group(1).split(" ")
    return "<th>" + " ".join(f'<span style="white-space: nowrap">{w}</span>'
                             for w in words) + "</th>"


def replication_summary(kernel: Kernel) -> ReplicationRun:
    """Collect what a (finished or paused) replication run did."""
    return ReplicationRun(config_header(kernel, focus="replication"), delivery_outcome(kernel),
                          metric_totals(kernel), broker_metric_changes(kernel),
                          replication_snapshot(kernel), replication_events(kernel), kernel)


def replication_run(configs: Mapping[str, Any] | None = None, *, until_ms: float | None = None,
                    **kwargs: Any) -> ReplicationRun:
    """Build a :func:`replication_kernel`, run it and summarise it.

    Args:
        until_ms: when to stop; by default 10 s after the last traffic or fault.
        kwargs: the other arguments of :func:`replication_kernel`.
    """
    kernel = replication_kernel(configs, **kwargs)
    if until_ms is None:
        traffic = kwargs.get("traffic_ms", ((0.0, 20_000.0),))
        ends = [end for _start, end in traffic] + [at for at, _f in kwargs.get("faults", ())]
        until_ms = max(ends, default=0.0) + 10_000.0
    advance(kernel, until_ms)
    return replication_summary(kernel)


def _merge(common: Mapping[str, Any], variant: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**common, **variant}
    merged["configs"] = {**common.get("configs", {}), **variant.get("configs", {})}
    return merged


def compare_replication(runs: Mapping[str, Mapping[str, Any]], **common: Any) -> Comparison:
    """Run each named variant of :func:`replication_run` and tabulate outcome and metrics.

    ``configs`` of a variant are laid over the common ``configs``. Example::

        compare_replication({"acks=1": {"configs": {"acks": "1"}},
                             "acks=all": {}}, faults=[(3000, CrashBroker(2))])
    """
    summaries = {name: replication_run(**_merge(common, variant))
                 for name, variant in runs.items()}
    table = WholeTextFrame([{"run": name, "configs": _short_configs(run.kernel), **run.row()}
                            for name, run in summaries.items()])
    faults_shown = "; ".join(f"{type(f).__name__} at {at:,.0f} ms"
                             for at, f in common.get("faults", ())) or "no faults"
    caption = (f"Kafka {config.KAFKA_VERSION} behaviour · {faults_shown} · "
               f"{common.get('rate_per_s', 200):g} records/s")
    return ReplicationComparison(table.set_index("run").round(1), summaries, caption)


def _short_configs(kernel: Kernel) -> str:
    """``acks=1 idempotence=off min.insync.replicas=1 unclean=false`` for a table cell."""
    parts = [f"acks={producer.config['acks']} idempotence="
             f"{'on' if producer.idempotent else 'off'}"
             for producer in kernel.clients if hasattr(producer, "idempotent")]
    for topic in kernel.cluster.topics.values():
        if not topic.name.startswith("__"):
            unclean = str(topic.config["unclean.leader.election.enable"]).lower()
            parts.append(f"rf={topic.replication_factor} min.insync.replicas="
                         f"{topic.config['min.insync.replicas']} unclean={unclean}")
    return " ".join(parts)


def scenario_table(names: Sequence[str]) -> Comparison:
    """Run built-in scenarios and tabulate their configs, outcomes and broker metric changes."""
    from sim import scenarios  # scenarios pull in the consumer side; only needed here

    summaries = {}
    rows = []
    for name in names:
        kernel = scenarios.load(name).run()
        summary = replication_summary(kernel)
        summaries[name] = summary
        rows.append({"scenario": name, "configs": _short_configs(kernel), **summary.row()})
    table = WholeTextFrame(rows).set_index("scenario")
    return ReplicationComparison(table.round(1), summaries,
                      f"Kafka {config.KAFKA_VERSION} behaviour · built-in scenarios, each with its "
                      "own seed, faults and configs (column configs)")
