"""Consumer-group read-outs as DataFrames: members, generations, ownership, pauses and lag.

Two lags, as Kafka has two (kafka-facts §4.5):

- ``lag`` is what ``kafka-consumer-groups.sh --describe`` shows: LOG-END-OFFSET minus
  CURRENT-OFFSET, where CURRENT-OFFSET is the group's **committed** offset and LOG-END-OFFSET
  the high watermark (for ``read_uncommitted``). It lags behind while records are processed but
  not yet committed, and it is what a new owner would restart from.
- ``consumer_lag`` is the consumer's own metric (``records-lag``): high watermark minus the
  consumer's **position** (the next offset it will fetch). It drops as soon as a poll returns
  records, before they are processed.

Both are sampled on a time grid from the run's history: high watermarks from the trace's
``log.append`` events (until replication is modelled the high watermark follows the log end),
commits from the group coordinator, positions from the consumers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim import trace as trace_events
from sim.consumer import events
from sim.consumer.client import ConsumerClient


def consumers(kernel: Any, group_id: str | None = None) -> list[ConsumerClient]:
    """The kernel's consumers, optionally only those of one group."""
    return [c for c in kernel.clients if isinstance(c, ConsumerClient)
            and (group_id is None or c.group_id == group_id)]


def group_ids(kernel: Any) -> list[str]:
    """Groups that have consumers, in the order their first consumer was created."""
    return list(dict.fromkeys(c.group_id for c in consumers(kernel) if c.group_id is not None))


def consumer_metrics(kernel: Any) -> pd.DataFrame:
    """One row per consumer: state, assignment, polls, records read and processed, commits."""
    rows = []
    for c in consumers(kernel):
        commits = c.history.commits
        sent = {(row["sent_ms"], row["kind"]) for row in commits}
        failed = {(row["sent_ms"], row["kind"]) for row in commits if row["error"]}
        processed = c.processed()
        rows.append({
            "consumer": c.client_id, "group": c.group_id, "state": c.state,
            "assignment": events.format_partitions(c.assignment()),
            "polls": c.history.polls, "records_read": len(c.reads()),
            "records_processed": len(processed),
            "latency_p50_ms": _percentile(processed["latency_ms"], 50),
            "commits": len(sent), "failed_commits": len(failed),
        })
    return pd.DataFrame(rows, columns=["consumer", "group", "state", "assignment", "polls",
                                       "records_read", "records_processed", "latency_p50_ms",
                                       "commits", "failed_commits"])


def generations(kernel: Any, group_id: str) -> list[dict[str, Any]]:
    """Each generation's assignment once the group was stable, members named by client.id.

    A member id is shown instead when two members of a generation share a client.id (a
    restarted consumer whose old member has not timed out yet).
    """
    coordinator = getattr(kernel.cluster, "group_coordinator", None)
    group = coordinator.groups.get(group_id) if coordinator else None
    out = []
    for entry in group.history if group else []:
        clients = entry["clients"]
        names = list(clients.values())
        assignments = {}
        for member_id, partitions in sorted(entry["assignments"].items(),
                                            key=lambda kv: clients[kv[0]]):
            name = clients[member_id] if names.count(clients[member_id]) == 1 else member_id
            assignments[name] = partitions
        out.append({"generation": entry["generation"], "time_ms": entry["time_ms"],
                    "protocol": entry["protocol"], "leader": clients.get(entry["leader"]),
                    "assignments": assignments})
    return out


def assignment_timeline(kernel: Any, group_id: str) -> pd.DataFrame:
    """Who owned which partition when: one row per ownership interval (``end_ms`` NaN = still).

    An interval starts at ``consumer.assigned`` and ends at ``consumer.revoked``,
    ``consumer.lost``, or when the consumer crashed or closed (``consumer.left``).
    """
    frame = kernel.trace.to_frame()
    columns = ["consumer", "topic", "partition", "generation", "start_ms", "end_ms"]
    if frame.empty or "group" not in frame:
        return pd.DataFrame(columns=columns)
    kinds = {events.CONSUMER_ASSIGNED.name, events.CONSUMER_REVOKED.name,
             events.CONSUMER_LOST.name, events.CONSUMER_LEFT.name}
    rows = frame[frame["kind"].isin(kinds) & (frame["group"] == group_id)]
    open_: dict[tuple[str, str], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for event in rows.itertuples(index=False):
        who = event.component
        if event.kind == events.CONSUMER_LEFT.name:
            names = [key for key in open_ if key[0] == who]
        else:
            names = [(who, tp) for tp in str(event.partitions).split(",") if tp]
        for key in names:
            if event.kind == events.CONSUMER_ASSIGNED.name:
                topic, _, partition = key[1].rpartition("-")
                open_[key] = {"consumer": who, "topic": topic, "partition": int(partition),
                              "generation": int(event.generation), "start_ms": event.time_ms,
                              "end_ms": np.nan}
            elif key in open_:
                interval = open_.pop(key)
                interval["end_ms"] = event.time_ms
                out.append(interval)
    out.extend(open_.values())
    result = pd.DataFrame(out, columns=columns)
    return result.sort_values(["topic", "partition", "start_ms"], kind="stable",
                              ignore_index=True)


def rebalance_pauses(kernel: Any, group_id: str) -> pd.DataFrame:
    """Every stretch during which a partition had no owner, from one owner to the next.

    With the eager protocol every partition pauses at every rebalance (stop the world); with the
    cooperative protocol only partitions that move pause.
    """
    timeline = assignment_timeline(kernel, group_id)
    rows = []
    for (topic, partition), part in timeline.groupby(["topic", "partition"], sort=True):
        part = part.sort_values("start_ms", kind="stable")
        previous = None
        for interval in part.itertuples(index=False):
            # a zombie that still believed it owned the partition overlaps the next owner:
            # there was no pause then
            if previous is not None and not np.isnan(previous.end_ms) and (
                    interval.start_ms >= previous.end_ms):
                rows.append({"topic": topic, "partition": int(partition),
                             "from_consumer": previous.consumer, "to_consumer": interval.consumer,
                             "generation": interval.generation, "stopped_ms": previous.end_ms,
                             "resumed_ms": interval.start_ms,
                             "pause_ms": interval.start_ms - previous.end_ms})
            previous = interval
    return pd.DataFrame(rows, columns=["topic", "partition", "from_consumer", "to_consumer",
                                       "generation", "stopped_ms", "resumed_ms", "pause_ms"])


def lag(kernel: Any, group_id: str, every_ms: float = 100.0) -> pd.DataFrame:
    """Per partition over time: high watermark, committed offset, position and both lags.

    Rows every ``every_ms`` from 0 to now for each partition of the topics the group's
    consumers subscribe to or are assigned. ``committed`` is NaN before the first commit, and
    so is ``lag`` (kafka-consumer-groups.sh prints "-").
    """
    members = consumers(kernel, group_id)
    partitions = sorted({(tp.topic, tp.partition) for c in members for tp in _partitions(c)})
    times = np.arange(0.0, kernel.now_ms + every_ms / 2, every_ms)
    columns = ["time_ms", "topic", "partition", "high_watermark", "committed", "position",
               "lag", "consumer_lag"]
    if not partitions or not len(times):
        return pd.DataFrame(columns=columns)
    appends = kernel.trace.frame(trace_events.LOG_APPEND)
    coordinator = kernel.cluster.group_coordinator
    group = coordinator.groups.get(group_id)
    commits = pd.DataFrame(group.commit_log if group else [],
                           columns=["time_ms", "topic", "partition", "offset"])
    positions = pd.concat([c.history.position_frame() for c in members], ignore_index=True)
    parts = []
    for topic, partition in partitions:
        mine = appends[(appends["topic"] == topic) & (appends["partition"] == partition)]
        hw = _step(times, mine["time_ms"], mine["offset"] + mine["records"], 0.0)
        hw = np.maximum.accumulate(hw) if len(hw) else hw
        done = commits[(commits["topic"] == topic) & (commits["partition"] == partition)]
        committed = _step(times, done["time_ms"], done["offset"], np.nan)
        pos = positions[(positions["topic"] == topic) & (positions["partition"] == partition)]
        position = _step(times, pos["time_ms"], pos["position"], np.nan)
        parts.append(pd.DataFrame({"time_ms": times, "topic": topic, "partition": partition,
                                   "high_watermark": hw, "committed": committed,
                                   "position": position, "lag": hw - committed,
                                   "consumer_lag": hw - position}))
    return pd.concat(parts, ignore_index=True)[columns]


def group_lag(kernel: Any, group_id: str, every_ms: float = 100.0) -> pd.DataFrame:
    """The group's total ``lag`` and ``consumer_lag`` over time (sum over partitions)."""
    frame = lag(kernel, group_id, every_ms)
    if frame.empty:
        return pd.DataFrame(columns=["time_ms", "lag", "consumer_lag"])
    return frame.groupby("time_ms", as_index=False)[["lag", "consumer_lag"]].sum(min_count=1)


def _partitions(consumer: ConsumerClient) -> list[Any]:
    from sim.records import TopicPartition

    out = set(consumer.assignment())
    for topic in consumer.subscribed_topics():
        if topic in consumer.cluster.topics:
            out.update(TopicPartition(topic, p)
                       for p in range(len(consumer.cluster.topics[topic].partitions)))
    for _inc, _poll, _seq, _t, chunk in consumer.history.reads:
        out.add(chunk.tp)
    return sorted(out)


def _step(times: np.ndarray, at: pd.Series, values: pd.Series, before: float) -> np.ndarray:
    """The latest value at or before each time (``before`` when there is none yet)."""
    if len(at) == 0:
        return np.full(len(times), before)
    order = np.argsort(at.to_numpy(), kind="stable")
    at_sorted = at.to_numpy()[order]
    vals = values.to_numpy(dtype=np.float64)[order]
    index = np.searchsorted(at_sorted, times, side="right") - 1
    out = np.where(index >= 0, vals[np.clip(index, 0, None)], before)
    return out.astype(np.float64)


def _percentile(values: pd.Series, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")
