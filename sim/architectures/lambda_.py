"""The lambda architecture (Nathan Marz, 2011): a batch layer, a speed layer, a serving layer.

- **batch layer**: every ``batch_every_ms`` a job recomputes the batch view from the whole
  master dataset — every payment in the ``payments`` topic, read across both tiers
  (:func:`sim.architectures.tiers.read_topic`) — with the pandas logic
  (:func:`sim.architectures.workload.revenue`). It covers the hours that had ended when it ran.
- **speed layer**: a Kafka Streams application (:mod:`sim.architectures.revenue_app`) keeps
  revenue per merchant and hour up to date, incrementally: the same logic, written a second
  time, in a second system.
- **serving layer**: a real SQLite database. The batch job replaces ``batch_view``; a loader
  upserts the speed layer's output into ``realtime_view``; a query merges them with a fixed rule
  — batch for the hours the last batch run covered, real time for the others
  (:data:`MERGE_SQL`).

The weaknesses the lesson shows: when the business changes the rule, the batch copy is updated
and the streaming copy is not (two code bases drift), so the merged answer changes when a batch
run replaces the speed view; and a late payment for an hour the batch view already covers
disappears from the answer until the next batch run (the merge is rigid).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from sim.architectures.revenue_app import revenue_app, window_cell
from sim.architectures.tiers import TopicFollower, read_topic
from sim.architectures.workload import HOUR_MS, MINUTE_MS, decode_value, revenue

SPEED_TOPIC = "speed-revenue"

SCHEMA_SQL = """
CREATE TABLE batch_view (merchant TEXT, hour INTEGER, revenue INTEGER,
                         PRIMARY KEY (merchant, hour));
CREATE TABLE realtime_view (merchant TEXT, hour INTEGER, revenue INTEGER,
                            PRIMARY KEY (merchant, hour));
CREATE TABLE batch_runs (run_ms REAL, covered_until_hour INTEGER, rule TEXT, payments INTEGER);
"""

MERGE_SQL = """
WITH horizon AS (SELECT COALESCE(MAX(covered_until_hour), 0) AS h FROM batch_runs)
SELECT merchant, hour, revenue, 'batch' AS layer FROM batch_view, horizon WHERE hour < horizon.h
UNION ALL
SELECT merchant, hour, revenue, 'speed' AS layer FROM realtime_view, horizon
 WHERE hour >= horizon.h
ORDER BY merchant, hour
"""
"""The serving layer's query: batch view below the last run's horizon, real time above it."""


class LambdaArchitecture:
    """The lambda variant (module docstring).

    Args:
        batch_every_ms: the batch job's period (an hour); it first runs at
            ``batch_every_ms + batch_delay_ms``.
        batch_delay_ms: how long after each full hour the job runs (5 minutes).
        update_speed_layer: whether the logic change reaches the speed layer too (False: the
            streaming copy keeps the old rule, as happens when two teams own two code bases).
    """

    name = "lambda"
    code_paths = 2
    when_a_component_crashes = ("speed layer down: hours after the last batch run freeze; "
                                "batch job fails: late payments stay missing for a period")

    def __init__(self, batch_every_ms: int = HOUR_MS, batch_delay_ms: int = 5 * MINUTE_MS,
                 update_speed_layer: bool = False) -> None:
        self.batch_every_ms = batch_every_ms
        self.batch_delay_ms = batch_delay_ms
        self.update_speed_layer = update_speed_layer
        self.db = sqlite3.connect(":memory:")
        self.db.executescript(SCHEMA_SQL)
        self.batch_rule = "v1"
        self.speed_rule = "v1"
        self.down = False
        self.speed_deferred = False  # the new rule's speed layer waits for an outage to end
        self.failed_runs: list[float] = []

    def attach(self, run: Any) -> None:
        """Create the speed layer's output topic and start it."""
        self.run = run
        kernel = run.kernel
        kernel.cluster.create_topic(SPEED_TOPIC, run.partitions, run.replication_factor)
        self.speed = revenue_app(kernel, "speed-layer", self.speed_rule, run.topic, SPEED_TOPIC)
        self.follower = TopicFollower(kernel, SPEED_TOPIC)
        self.next_batch_ms = self.batch_every_ms + self.batch_delay_ms

    def change_logic(self, now_ms: float) -> None:
        """Deploy the new rule to the batch job (and to the speed layer only if asked)."""
        self.batch_rule = self.run.workload.rule_at(now_ms)
        if self.update_speed_layer:
            self.speed_rule = self.batch_rule
            self.speed.close()
            if self.down:  # deployed during an outage: it starts when the processing does
                self.speed_deferred = True
            else:
                self._start_speed_layer()

    def _start_speed_layer(self) -> None:
        """Start the speed layer with the rule it now has (a new application.id per rule)."""
        self.speed = revenue_app(self.run.kernel, f"speed-layer-{self.speed_rule}",
                                 self.speed_rule, self.run.topic, SPEED_TOPIC)

    def fail(self, now_ms: float) -> None:
        """The speed layer's process dies and the batch scheduler is down."""
        self.speed.crash()
        self.down = True

    def recover(self, now_ms: float) -> None:
        """The speed layer restarts (restoring its windows from the changelog), or starts
        with the new rule if that was deployed during the outage; batch jobs resume at their
        next scheduled time."""
        if self.speed_deferred:  # the crashed instance was closed for the new rule's
            self._start_speed_layer()
            self.speed_deferred = False
        else:
            self.speed = self.speed.restart()
        self.down = False

    def tick(self, now_ms: float) -> None:
        """Run the batch job when due, then load the speed layer's new output."""
        if now_ms >= self.next_batch_ms:
            if self.down:
                self.failed_runs.append(self.next_batch_ms)
            else:
                self.batch_job(now_ms)
            self.next_batch_ms += self.batch_every_ms
        rows = [(*window_cell(key), value) for _p, _o, key, value, _t in self.follower.poll()
                if value is not None]
        self.db.executemany("INSERT OR REPLACE INTO realtime_view VALUES (?, ?, ?)", rows)

    def batch_job(self, now_ms: float) -> None:
        """Recompute the batch view from the whole master dataset."""
        master = read_topic(self.run.kernel, self.run.topic)
        decoded = [decode_value(v) for v in master["value"]]
        master = master.assign(merchant=master["key"], method=[m for m, _ in decoded],
                               amount_cents=[a for _, a in decoded],
                               event_ms=master["timestamp_ms"])
        view = revenue(master, self.batch_rule, self.run.workload)
        covered = int(now_ms // HOUR_MS)
        with self.db:
            self.db.execute("DELETE FROM batch_view")
            self.db.executemany("INSERT INTO batch_view VALUES (?, ?, ?)",
                                [(m, int(h), int(r)) for (m, h), r in view.items()
                                 if h < covered])
            self.db.execute("INSERT INTO batch_runs VALUES (?, ?, ?, ?)",
                            (now_ms, covered, self.batch_rule, len(master)))

    def merged(self) -> list[tuple[str, int, int, str]]:
        """The serving layer's answer: (merchant, hour, revenue, layer) rows."""
        return self.db.execute(MERGE_SQL).fetchall()

    def answer(self) -> np.ndarray:
        """The merged answer over the run's cells (NaN where neither view has a row)."""
        out = np.full(len(self.run.cells), np.nan)
        for merchant, hour, value, _layer in self.merged():
            i = self.run.cell_index.get((merchant, hour))
            if i is not None:
                out[i] = value
        return out

    def layers(self) -> np.ndarray:
        """Which layer answers each cell now (``batch``, ``speed`` or empty)."""
        out = np.full(len(self.run.cells), "", dtype=object)
        for merchant, hour, _value, layer in self.merged():
            i = self.run.cell_index.get((merchant, hour))
            if i is not None:
                out[i] = layer
        return out

    def storage(self) -> dict[str, float]:
        """Bytes kept besides the shared ``payments`` topic: the speed layer's output topic
        (every replica) and the SQLite serving database."""
        cluster = self.run.kernel.cluster
        topic = cluster.topics[SPEED_TOPIC]
        disk = sum(p.log.size_bytes for p in topic.partitions) * topic.replication_factor
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return {"disk_bytes": float(disk + pages * size), "object_bytes": 0.0}
