"""Retention: which old segments a broker deletes, and when (``cleanup.policy=delete``).

Kafka's ``LogManager`` runs a "kafka-log-retention" task every
``log.retention.check.interval.ms`` (300,000 ms) on every broker, over every log it holds,
leader or follower; each log deletes its oldest segments (``UnifiedLog.deleteOldSegments``) in
three passes, each walking from the oldest segment and stopping at the first that is kept:

1. *log start offset breach*: segments wholly below the log start offset (a follower that
   learnt a higher start from its leader) — whatever the cleanup policy;
2. *retention.bytes* (when ≥ 0 and the policy includes ``delete``): while the log's bytes
   minus the segment's still reach ``retention.bytes``;
3. *retention.ms* (when ≥ 0 and the policy includes ``delete``): while ``now`` minus the
   segment's largest timestamp is more than ``retention.ms`` (the breach rule of
   ``deleteRetentionMsBreachedSegments``; a record with a future timestamp keeps its segment).

For a tiered topic (``remote.storage.enable``) the passes delete *local* segments: passes 2
and 3 use ``local.retention.bytes`` / ``local.retention.ms`` (-2: ``retention.*``), pass 1 the
log start offset of the whole log (remote included), and a segment goes only once the remote
tier holds all of it (its last offset ≤ the highest copied offset) or it is wholly below that
log start offset (``isSegmentEligibleForDeletion``); so the active segment, never uploaded,
never goes. Deleting from the remote tier is the ``RemoteLogManager``'s job.

A segment is deleted only whole, and only when all of it is below the high watermark; the
active segment counts too, but an empty active segment never goes, and when every segment
goes the log first rolls a new empty one (``UnifiedLog.deletableSegments`` /
``deleteSegments``). Worked example: segments of 300 bytes at offsets 0, 10, 20 and an active
one at 30 holding 100 bytes (1,000 bytes), ``retention.bytes`` = 500: 1000−300 ≥ 500 deletes
the first, 700−300 < 500 keeps the second, so the log start offset moves to 10.

Each deleted segment is a ``log.segment.delete`` trace event (the audit ties unread records to
it; a tiered topic's local deletion is a ``tier.delete`` event instead, as the records are still
in the remote tier); followers learn the leader's log start offset through their fetches
(``sim.broker.replication``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sim import config
from sim import trace as events
from sim.broker import remote_log_manager
from sim.broker.log import PartitionLog, Segment

if TYPE_CHECKING:
    from sim.broker.cluster import Partition
    from sim.broker.runtime import BrokerRuntime

SEGMENT_DELETE = events.register(events.EventKind(
    "log.segment.delete", ("topic", "partition", "node", "base_offset", "end_offset", "records",
                           "size_bytes", "reason"),
    "a replica deleted a whole log segment (retention, or a log start offset it learnt)"))

LOG_START_OFFSET = "log start offset"
RETENTION_BYTES = "retention.bytes"
RETENTION_MS = "retention.ms"


def deletable_count(log: PartitionLog, keep: Callable[[Segment, int], bool],
                    tiered: RemoteBounds | None = None) -> int:
    """How many oldest segments may go: Kafka's ``deletableSegments`` walk.

    ``keep(segment, index)`` is the pass's rule. The walk stops at the first kept segment, at
    a segment not wholly below the high watermark, and at an empty active segment; for a
    tiered log also at a segment not yet uploaded whole and not below the log start offset.
    """
    count = 0
    for index, segment in enumerate(log.segments):
        last = index == len(log.segments) - 1
        upper = log.log_end_offset if last else log.segments[index + 1].base_offset
        if (log.high_watermark < upper or (last and segment.size_bytes == 0)
                or (tiered is not None and not tiered.eligible(upper, last))
                or keep(segment, index)):
            break
        count += 1
    return count


class RemoteBounds:
    """What a tiered log's retention pass needs from the remote tier's metadata."""

    def __init__(self, highest_copied_offset: int, log_start_offset: int) -> None:
        self.highest_copied_offset = highest_copied_offset
        self.log_start_offset = log_start_offset  # of the whole log, remote included

    def eligible(self, upper: int, last: bool) -> bool:
        """``isSegmentEligibleForDeletion`` for a segment ending (exclusive) at ``upper``."""
        return (upper > 0 and upper - 1 <= self.highest_copied_offset) or (
            not last and self.log_start_offset >= upper)


def delete_old_segments(log: PartitionLog, topic_config: Mapping[str, Any], now_ms: float,
                        tiered: RemoteBounds | None = None) -> list[tuple[Segment, str]]:
    """Apply the three passes (module docstring) to one log; the deleted segments and why.

    ``tiered`` is given for a tiered topic's log: what the remote tier holds of it.
    """
    deleted: list[tuple[Segment, str]] = []
    start = log.log_start_offset
    if tiered is not None:
        start = max(start, tiered.log_start_offset)

    def run(reason: str, keep: Callable[[Segment, int], bool]) -> None:
        count = deletable_count(log, keep, tiered)
        deleted.extend((s, reason) for s in log.delete_oldest_segments(count))

    def below_start(_segment: Segment, index: int) -> bool:
        later = log.segments[index + 1:index + 2]
        return not later or later[0].base_offset > start

    run(LOG_START_OFFSET, below_start)
    if "delete" not in config.cleanup_policies(topic_config):
        return deleted
    local = "local." if tiered is not None else ""
    retention_bytes = int(topic_config.get("retention.bytes", -1))
    retention_ms = int(topic_config.get("retention.ms", -1))
    if tiered is not None:
        retention_bytes = remote_log_manager.effective_local_retention(topic_config, "bytes")
        retention_ms = remote_log_manager.effective_local_retention(topic_config, "ms")
    if retention_bytes >= 0:
        excess = [log.size_bytes - retention_bytes]

        def within_size(segment: Segment, _index: int) -> bool:
            if excess[0] - segment.size_bytes < 0:
                return True
            excess[0] -= segment.size_bytes
            return False

        run(local + RETENTION_BYTES, within_size)
    if retention_ms >= 0:
        run(local + RETENTION_MS, lambda s, _i: now_ms - s.max_timestamp_ms <= retention_ms)
    return deleted


class LogRetention:
    """The brokers' periodic retention task (Kafka's ``LogManager.cleanupLogs``)."""

    def __init__(self, runtime: BrokerRuntime) -> None:
        self.runtime = runtime
        self.cluster = runtime.cluster

    def start(self, broker_id: int) -> None:
        """Broker ``broker_id`` checks retention every ``log.retention.check.interval.ms``.

        Background timers: they never keep an idle run going. A crash ends the task; a restart
        starts a new one (with the process's own incarnation).
        """
        broker = self.cluster.brokers[broker_id]
        incarnation = broker.incarnation

        def tick(_event: object = None) -> None:
            if broker.incarnation != incarnation:
                return
            if broker.alive and _event is not None:
                self.check(broker_id)
            timer = self.runtime.background_timeout(
                broker.config["log.retention.check.interval.ms"])
            timer.callbacks.append(tick)

        tick()

    def check(self, broker_id: int) -> int:
        """One retention pass over every log on ``broker_id``; the number of deleted segments."""
        total = 0
        for topic in self.cluster.topics.values():
            for part in topic.partitions:
                if broker_id in part.logs:
                    log = part.logs[broker_id]
                    state = remote_log_manager.remote_state(self.cluster, part)
                    bounds = None if state is None else RemoteBounds(
                        state.highest_copied_offset, state.remote_log_start_offset)
                    deleted = delete_old_segments(log, topic.config, self.runtime.now_ms, bounds)
                    if state is None:
                        self.record(part, broker_id, deleted)
                    else:
                        self.record_local(part, broker_id, deleted)
                    total += len(deleted)
        return total

    def record_local(self, part: Partition, node: int,
                     deleted: list[tuple[Segment, str]]) -> None:
        """One ``tier.delete`` event (``where`` = local) per local segment of a tiered log."""
        for segment, _reason in deleted:
            self.runtime.trace.emit(remote_log_manager.TIER_DELETE, self.runtime.now_ms,
                                    f"broker-{node}", part.topic, part.partition, node,
                                    segment.base_offset, segment.end_offset - 1, "local")

    def record(self, part: Partition, node: int, deleted: list[tuple[Segment, str]]) -> None:
        """One ``log.segment.delete`` event per deleted segment."""
        for segment, reason in deleted:
            self.runtime.trace.emit(SEGMENT_DELETE, self.runtime.now_ms, f"broker-{node}",
                                    part.topic, part.partition, node, segment.base_offset,
                                    segment.end_offset, segment.end_offset - segment.base_offset,
                                    segment.size_bytes, reason)
