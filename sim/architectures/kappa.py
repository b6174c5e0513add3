"""The kappa architecture (Jay Kreps, "Questioning the Lambda Architecture", 2014).

One Kafka Streams application (:mod:`sim.architectures.revenue_app`) computes revenue per
merchant and hour into an output topic, read as a table (latest value per window). There is no
batch layer: to change the logic, reprocess by replaying the log, as Kreps described it —

1. keep the full history in the input topic (``retention.ms`` must cover it; with tiered
   storage the old segments are read back from the remote tier);
2. start a **second instance** of the job, with the new logic and a new ``application.id``
   (a new consumer group, so it starts at the log start offset), writing to a **new table**;
3. when it has caught up — its committed offsets have reached the old job's — switch the
   readers to the new table;
4. stop the old job and delete the old table.

Until the switch, readers keep getting the old logic's answers; during reprocessing both
tables exist (twice the output storage).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.architectures.revenue_app import revenue_app, window_cell
from sim.architectures.tiers import TopicFollower
from sim.consumer.group import group_coordinator
from sim.errors import ConfigError
from sim.records import TopicPartition


def table_topic(rule: str) -> str:
    """The output table (topic) of the job running ``rule``."""
    return f"revenue-{rule}"


class KappaArchitecture:
    """The kappa variant (module docstring)."""

    name = "kappa"
    code_paths = 1
    when_a_component_crashes = ("the Streams app restores its state from the changelog and "
                                "resumes; the table is stale meanwhile, nothing is lost")

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, int], int]] = {}
        self.followers: dict[str, TopicFollower] = {}
        self.jobs: dict[str, Any] = {}
        self.serving_rule = "v1"
        self.reprocessing: dict[str, float] = {}
        self.down = False
        self.deferred: str | None = None  # a rule deployed during an outage, not started yet

    def attach(self, run: Any) -> None:
        """Start the first job."""
        self.run = run
        self._start_job("v1")

    def _start_job(self, rule: str) -> None:
        kernel, run = self.run.kernel, self.run
        kernel.cluster.create_topic(table_topic(rule), run.partitions, run.replication_factor)
        self.jobs[rule] = revenue_app(kernel, f"revenue-{rule}", rule, run.topic,
                                      table_topic(rule))
        self.tables[rule] = {}
        self.followers[rule] = TopicFollower(kernel, table_topic(rule))

    def retention_covers_history(self) -> bool:
        """Whether the input topic still holds every offset from 0 (remote tier included)."""
        from sim.broker.remote_log_manager import log_start_offset

        cluster = self.run.kernel.cluster
        return all(log_start_offset(cluster, part) == 0
                   for part in cluster.topics[self.run.topic].partitions)

    def change_logic(self, now_ms: float) -> None:
        """Step 2: start the second instance, from offset 0, into a new table.

        Raises:
            ConfigError: the input topic no longer holds its whole history.
        """
        if not self.retention_covers_history():
            raise ConfigError(f"kappa reprocessing needs the whole history of "
                              f"{self.run.topic!r}, but retention has deleted its oldest "
                              "records; raise retention.ms (or use tiered storage).")
        rule = self.run.workload.rule_at(now_ms)
        if self.down:  # deployed during an outage: its process starts when the others do
            self.deferred = rule
        else:
            self._start_job(rule)
        self.reprocessing = {"rule": rule, "start_ms": now_ms}

    def fail(self, now_ms: float) -> None:
        """Every job's process dies."""
        for job in self.jobs.values():
            job.crash()
        self.down = True

    def recover(self, now_ms: float) -> None:
        """Every job restarts, restoring its state from its changelog, and resumes from its
        last committed offsets; a job deployed during the outage starts now."""
        self.jobs = {rule: job.restart() for rule, job in self.jobs.items()}
        self.down = False
        if self.deferred is not None:
            self._start_job(self.deferred)
            self.deferred = None

    def committed(self, rule: str) -> list[int]:
        """The job's committed offsets on the input partitions (-1 where none)."""
        tps = [TopicPartition(self.run.topic, p) for p in range(self.run.partitions)]
        got = group_coordinator(self.run.kernel).fetch_offsets(f"revenue-{rule}", tps)
        return [-1 if got[tp] is None else int(got[tp]) for tp in tps]

    def tick(self, now_ms: float) -> None:
        """Read the tables' new rows; switch (step 3) and clean up (step 4) once caught up."""
        for rule, follower in self.followers.items():
            table = self.tables[rule]
            for _p, _o, key, value, _t in follower.poll():
                if value is not None:
                    table[window_cell(key)] = int(value)
        new = self.reprocessing.get("rule")
        if new is None or "switch_ms" in self.reprocessing or new not in self.jobs:
            return  # no reprocessing, done, or its job waits for the outage to end
        old = self.committed(self.serving_rule)
        mine = self.committed(str(new))
        if all(m >= o for m, o in zip(mine, old, strict=True)):
            self.reprocessing["switch_ms"] = now_ms
            retired = self.serving_rule
            self.serving_rule = str(new)
            self.jobs.pop(retired).close()
            self.followers.pop(retired)
            self.tables.pop(retired)  # the old table is deleted

    @property
    def reprocessing_ms(self) -> float:
        """How long the second instance took to catch up (NaN before it has)."""
        if "switch_ms" not in self.reprocessing:
            return float("nan")
        return float(self.reprocessing["switch_ms"] - self.reprocessing["start_ms"])

    def answer(self) -> np.ndarray:
        """The table readers use now (NaN for cells without a row yet)."""
        return self.table(self.serving_rule)

    def table(self, rule: str) -> np.ndarray:
        """The table of the job running ``rule``, over the run's cells (NaN: no row)."""
        out = np.full(len(self.run.cells), np.nan)
        for cell, value in self.tables[rule].items():
            i = self.run.cell_index.get(cell)
            if i is not None:
                out[i] = value
        return out

    def storage(self) -> dict[str, float]:
        """Bytes kept besides the shared ``payments`` topic: the output tables (every
        replica), both of them while reprocessing."""
        cluster = self.run.kernel.cluster
        disk = 0
        for rule in self.tables:
            topic = cluster.topics[table_topic(rule)]
            disk += sum(p.log.size_bytes for p in topic.partitions) * topic.replication_factor
        return {"disk_bytes": float(disk), "object_bytes": 0.0}
