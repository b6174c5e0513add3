"""Lesson computations: the numbers the notebooks show, as plain functions with tests.

The lessons call these so that every cell stays a line or two, and the tests
(``tests/test_viz.py``, ``tests/test_widgets.py``, ``tests/test_lessons_replication.py``) call
the very same functions to back each number the lessons state.

- :mod:`sim.lessons.producer`: producer runs for lessons 00 and 01 — partitioners, batching,
  keys moving between partitions, the cluster at a moment, the line of configs in force.
- :mod:`sim.lessons.replication`: lesson 02 — replica snapshots (leader, ISR, log end offsets,
  high watermark), runs under a fault schedule, broker metric changes, and what was lost by
  which event; :mod:`sim.lessons.replication_tables` summarises and compares such runs.
- :mod:`sim.lessons.transactions`: lesson and exercise 05 — scripted transactional logs and
  what each isolation level reads from them, the transaction scenarios' outcomes, the cost of
  a transaction by its size, a consume-transform-produce loop written as steps.
  (Imported as ``from sim.lessons import transactions as lt``.)

Everything above is re-exported here, so ``from sim import lessons`` is all those notebooks
need. Later lessons import their own module: :mod:`sim.lessons.groups` (lesson 03, consumer
groups) and :mod:`sim.lessons.streams` (lesson 06, Kafka Streams: topologies through the test
driver, tables, WordCount, windows, and instances on the simulated cluster).
"""

from __future__ import annotations

from sim.lessons.producer import (
    KEY_DISTRIBUTIONS,
    PARTITIONERS,
    REPLICATION_PRODUCER_CONFIGS,
    REPLICATION_TOPIC_CONFIGS,
    STAT_COLUMNS,
    VIP_PARTITIONS,
    Comparison,
    PartitionerChoice,
    RunSummary,
    cluster_state,
    compare,
    config_header,
    expected_moved_fraction,
    key_moves,
    key_route,
    moved_fractions,
    partitions_at,
    producer_kernel,
    run,
    summarise,
)
from sim.lessons.replication import (
    METRIC_COLUMNS,
    OUTCOME_COLUMNS,
    REPLICATION_KINDS,
    REPLICATION_TOPIC,
    SNAPSHOT_COLUMNS,
    advance,
    breakable_labels,
    broker_metric_changes,
    broker_state,
    delivery_outcome,
    loss_report,
    metric_totals,
    replication_bookmarks,
    replication_events,
    replication_kernel,
    replication_snapshot,
    replication_timeline,
)
from sim.lessons.replication_tables import (
    ReplicationComparison,
    ReplicationRun,
    compare_replication,
    replication_run,
    replication_summary,
    scenario_table,
)

__all__ = [
    "KEY_DISTRIBUTIONS",
    "METRIC_COLUMNS",
    "OUTCOME_COLUMNS",
    "PARTITIONERS",
    "REPLICATION_KINDS",
    "REPLICATION_PRODUCER_CONFIGS",
    "REPLICATION_TOPIC",
    "REPLICATION_TOPIC_CONFIGS",
    "SNAPSHOT_COLUMNS",
    "STAT_COLUMNS",
    "VIP_PARTITIONS",
    "Comparison",
    "PartitionerChoice",
    "ReplicationComparison",
    "ReplicationRun",
    "RunSummary",
    "advance",
    "breakable_labels",
    "broker_metric_changes",
    "broker_state",
    "cluster_state",
    "compare",
    "compare_replication",
    "config_header",
    "delivery_outcome",
    "expected_moved_fraction",
    "key_moves",
    "key_route",
    "loss_report",
    "metric_totals",
    "moved_fractions",
    "partitions_at",
    "producer_kernel",
    "replication_bookmarks",
    "replication_events",
    "replication_kernel",
    "replication_run",
    "replication_snapshot",
    "replication_summary",
    "replication_timeline",
    "run",
    "scenario_table",
    "summarise",
]
