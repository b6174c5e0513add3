"""The streaming data lake: no serving layer; queries run over the log itself, by time.

The ``payments`` topic is the store. Tiered storage (KIP-405) copies each closed segment (one
an hour here, ``segment.ms``) to the remote tier — Parquet files in a folder standing in for
object storage — and the brokers delete their local copy after ``local.retention.ms``: hot data
on the brokers, cold data in cheap storage. A query (:func:`query_revenue`) asks
``offsets_for_times`` where its time range starts, reads the cold part from Parquet and the hot
part from the brokers, filters by timestamp and applies the rule **at query time**, so a new
rule covers the whole history at once.

The honest caveats:

- a time range is not an offset range: late payments stamped in an hour sit at offsets far
  after the hour's last offset, so a query reads from the range's first offset to the end (or
  to a bound on lateness) and filters (:func:`query_revenue` counts what an offset range
  would miss);
- the Parquet table lags the log: a record reaches the remote tier only once its segment has
  closed and been copied (:meth:`StreamingDataLake.cold_lag`);
- every query scans: the answer costs a read of the data each time.

In the comparison the lake's answer at each sample time is what a query at that time gets:
every payment below the high watermark, under the rule in force (read incrementally; the
tests check it against :func:`query_revenue`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.architectures.tiers import TopicFollower, read_topic
from sim.architectures.workload import HOUR_MS, RULES, Workload, decode_value, revenue
from sim.kernel import Kernel


def query_revenue(kernel: Kernel, topic: str, workload: Workload, rule: str,
                  from_ms: int = 0) -> tuple[pd.Series, dict[str, int]]:
    """Revenue per merchant and hour of event time ≥ ``from_ms``, read from the log.

    Returns:
        The revenue per cell (hours before ``from_ms`` are 0) and what the read did:
        ``remote`` and ``local`` records read, and ``missed_by_offset_range`` — records that
        sit after the offset where the next hour starts (``offsets_for_times`` of the hour's
        end), which reading each hour as an offset range would have missed.
    """
    records = read_topic(kernel, topic, from_ms)
    decoded = [decode_value(v) for v in records["value"]]
    frame = records.assign(merchant=records["key"], method=[m for m, _ in decoded],
                           amount_cents=[a for _, a in decoded],
                           event_ms=records["timestamp_ms"])
    inside = frame[frame["event_ms"] >= from_ms]
    missed = 0
    for _p, part in inside.groupby("partition"):
        stamps, offsets = part["event_ms"].to_numpy(), part["offset"].to_numpy()
        hours = stamps // HOUR_MS
        for hour in np.unique(hours):
            later = np.flatnonzero(stamps >= (hour + 1) * HOUR_MS)
            if len(later):  # an offset range for the hour would stop at the next hour's start
                missed += int(((hours == hour) & (offsets > offsets[later[0]])).sum())
    return revenue(inside, rule, workload), {
        "remote": int((records["tier"] == "remote").sum()),
        "local": int((records["tier"] == "local").sum()),
        "missed_by_offset_range": missed}


class StreamingDataLake:
    """The streaming-data-lake variant (module docstring)."""

    name = "streaming data lake"
    code_paths = 1
    when_a_component_crashes = ("a broker down: its replicas take over; queries are batch "
                                "reads, so a failed query is simply run again")

    def attach(self, run: Any) -> None:
        """Follow the input topic (what a query at each sample time reads)."""
        self.run = run
        self.follower = TopicFollower(run.kernel, run.topic)
        self.sums = {rule: np.zeros(len(run.cells), np.int64) for rule in RULES}
        self.rule = "v1"
        self.cold: list[dict[str, float]] = []

    def change_logic(self, now_ms: float) -> None:
        """The next query uses the new rule: nothing to deploy, nothing to reprocess."""
        self.rule = self.run.workload.rule_at(now_ms)

    def fail(self, now_ms: float) -> None:
        """No long-running processing to fail: queries run when asked (the brokers stay up)."""

    def recover(self, now_ms: float) -> None:
        """Nothing to restart."""

    def tick(self, now_ms: float) -> None:
        """Take in what the log gained; note how much of it the remote tier holds."""
        for _p, _o, merchant, value, stamp in self.follower.poll():
            method, amount = decode_value(value)
            i = self.run.cell_index.get((merchant, stamp // HOUR_MS))
            if i is None:
                continue
            self.sums["v1"][i] += amount
            self.sums["v2"][i] += 0 if method == "voucher" else amount
        manager = self.run.kernel.cluster.remote_log_manager
        copied = local = 0
        for part in self.run.kernel.cluster.topics[self.run.topic].partitions:
            state = manager.states[(self.run.topic, part.partition)]
            copied += state.highest_copied_offset + 1
            local += part.log.high_watermark
        self.cold.append({"time_ms": now_ms, "in_log": local, "in_remote_tier": copied})

    def answer(self) -> np.ndarray:
        """What a query gets now: every payment below the high watermark, under the rule."""
        return self.sums[self.rule].astype(float)

    def cold_lag(self) -> pd.DataFrame:
        """Over time: records in the log and records already copied to the remote tier (the
        Parquet table lags the log by up to a segment's life plus a copy interval)."""
        return pd.DataFrame(self.cold, columns=["time_ms", "in_log", "in_remote_tier"])

    def storage(self) -> dict[str, float]:
        """Nothing besides the shared ``payments`` topic."""
        return {"disk_bytes": 0.0, "object_bytes": 0.0}
