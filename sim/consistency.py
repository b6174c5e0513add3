"""Consistency of a finished run, read straight from the replicas' logs (not from the audit).

The delivery audit (``sim.audit``) reasons over the trace and the consumers' reads; a bug there
could hide a bug in the model. This check is deliberately separate and small: it looks only at
what the producers were told and what the partition logs hold at the end.

- ``lost``: an acknowledged record is not at its acknowledged offset in its partition's current
  leader log (another record is there, or the log ends before it).
- ``duplicate``: an acknowledged record is stored more than once in its leader's log.
- ``isr-divergence``: an in-sync replica holds another record than the leader below the high
  watermark, or its log ends below the high watermark (Kafka keeps HW ≤ every ISR member's LEO).
- ``offline``: a partition has no leader, or its leader's broker is not running.
- ``in-flight``: a record was neither acknowledged nor failed (its future never completes).

``sim.invariants`` checks the same two replica properties (ISR agreement below the HW, every
partition online) for the replication tests, as sentences; it also counts a fenced leader as
offline and reports a HW past the leader's LEO. Both read only the logs, never the audit; they
are meant to become one module (the fuzzer's findings built from the invariants' checks).

Example: leader log ``[a, b, c]`` with HW 3, acknowledged ``b@1`` and ``d@2`` → ``d`` is lost
(``c`` is at offset 2); a follower in the ISR with ``[a, x]`` diverges at offset 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("lost", "duplicate", "isr-divergence", "offline", "in-flight")


@dataclass(frozen=True)
class Finding:
    """One violated property: its kind, where, how many records, and a readable detail."""

    kind: str
    topic: str
    partition: int
    count: int
    detail: str


def check(kernel: Any, results: Mapping[Any, Any] | None = None) -> list[Finding]:
    """Every finding of the run on ``kernel``, in a fixed order (partitions, then producers).

    ``results`` holds producers' ``results()`` frames already built (by producer), so that a
    caller that reads them too (the fuzz checker's audit) builds each once.
    """
    from sim.producer import Producer

    built = results or {}
    findings: list[Finding] = []
    for topic in sorted(kernel.cluster.topics):
        if topic.startswith("__"):
            continue
        for part in kernel.cluster.topics[topic].partitions:
            findings += _partition_findings(part, kernel.cluster.brokers)
    for producer in kernel.clients:
        if isinstance(producer, Producer):
            findings += _producer_findings(kernel, producer, built[producer] if producer
                                           in built else producer.results())
    return findings


def _partition_findings(part: Any, brokers: dict[int, Any]) -> list[Finding]:
    where = (part.topic, part.partition)
    if part.leader < 0 or not brokers[part.leader].alive:
        who = "no leader" if part.leader < 0 else f"leader {part.leader}, which is not running"
        return [Finding("offline", *where, 0, f"{part.topic}-{part.partition} has {who} "
                        f"(ISR {part.isr})")]
    leader = part.logs[part.leader]
    hw = leader.high_watermark
    out = []
    for follower in part.isr:
        if follower == part.leader:
            continue
        log = part.logs[follower]
        start = max(log.log_start_offset, leader.log_start_offset)
        stop = min(hw, log.log_end_offset)
        mine, theirs = log.column("record_id", start, stop), leader.column("record_id", start,
                                                                           stop)
        differ = np.flatnonzero(mine != theirs)
        if len(differ) or log.log_end_offset < hw:
            first = start + int(differ[0]) if len(differ) else log.log_end_offset
            out.append(Finding("isr-divergence", *where, len(differ) + max(
                0, hw - log.log_end_offset), f"in-sync broker {follower} differs from leader "
                f"{part.leader} from offset {first} (HW {hw}, its LEO {log.log_end_offset})"))
    return out


def _producer_findings(kernel: Any, producer: Any, results: Any) -> list[Finding]:
    out = []
    ack_ms = results["ack_ms"].to_numpy(float)
    offset_column = results["offset"].to_numpy(np.int64)
    pending = np.isnan(ack_ms) & results["error"].isna().to_numpy()
    if pending.any():
        first = int(np.flatnonzero(pending)[0])
        out.append(Finding("in-flight", str(results["topic"].iloc[first]),
                           int(results["partition"].iloc[first]), int(pending.sum()),
                           f"{producer.client_id}: {int(pending.sum())} records neither "
                           f"acknowledged nor failed (first #{first})"))
    acked = ~np.isnan(ack_ms) & (offset_column >= 0)
    topics = results["topic"].to_numpy(object)[acked]
    partitions = results["partition"].to_numpy(np.int64)[acked]
    offset_column = offset_column[acked]
    id_column = results["record_id"].to_numpy(np.int64)[acked]
    for topic in sorted(set(topics)):  # partitions in (topic, partition) order
        in_topic = topics == topic
        for partition in np.unique(partitions[in_topic]).tolist():
            rows = in_topic & (partitions == partition)
            part = kernel.cluster.partition(topic, partition)
            log = part.log
            offsets, ids = offset_column[rows], id_column[rows]
            kept = offsets >= log.log_start_offset  # below it: deleted by retention, not lost
            offsets, ids = offsets[kept], ids[kept]
            stored = log.column("record_id")
            at = np.full(len(offsets), -1, np.int64)
            inside = offsets < log.log_end_offset
            at[inside] = stored[offsets[inside] - log.log_start_offset]
            lost = at != ids
            if lost.any():
                first = int(offsets[lost].min())
                out.append(Finding("lost", topic, partition, int(lost.sum()),
                                   f"{producer.client_id}: {int(lost.sum())} acknowledged "
                                   f"records not at their offsets in leader {part.leader}'s log "
                                   f"of {topic}-{partition} (first offset {first}, log end "
                                   f"{log.log_end_offset})"))
            uniq, counts = np.unique(stored, return_counts=True)
            twice = np.isin(ids, uniq[counts > 1])
            if twice.any():
                out.append(Finding("duplicate", topic, partition, int(twice.sum()),
                                   f"{producer.client_id}: {int(twice.sum())} acknowledged "
                                   f"records stored more than once in {topic}-{partition}"))
    return out
