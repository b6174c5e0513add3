"""Tiered storage (KIP-405): the ``RemoteLogManager`` copies, expires and serves old segments.

A topic with ``remote.storage.enable=true`` (on brokers with
``remote.log.storage.system.enable=true``) keeps its recent segments on the brokers' disks and
its older ones in the remote tier (``sim.broker.remote_storage``). Every
``remote.log.manager.task.interval.ms`` the leader of each tiered partition:

1. **copies** closed segments whose records are all below the last stable offset (the high
   watermark, held back by open transactions: ``last_stable_offset``) to the remote tier, oldest
   first, starting after the highest offset already copied (``RLMCopyTask``,
   ``candidateLogSegments``). An upload takes simulated time (``lab.remote.copy.mb.per.s``,
   shared by the uploads of one broker);
   if the broker lost leadership meanwhile, the upload is abandoned and the new leader copies
   the segment again — to the same object, as objects are named by base offset. A new leader
   first drops copied segments that are not its own history (an unclean election:
   ``within_leader_epochs``) and copies again from where its history and the remote tier agree;
2. **expires** remote segments past ``retention.ms`` (by their largest timestamp) or beyond
   ``retention.bytes`` (``RLMExpirationTask``), which moves the log start offset;
3. deletes **local** segments, on every replica, that were uploaded *and* are past
   ``local.retention.ms`` / ``local.retention.bytes`` (-2: the same as ``retention.*``). A
   segment not yet uploaded is never deleted locally.

Two start offsets follow: the *log start offset* (oldest offset anywhere, remote included) and
the *local log start offset* (oldest on the broker's disk, ``PartitionLog.log_start_offset``).
A consumer fetching in between is served from the remote tier (``RemoteLogReader``), with
``lab.remote.fetch.latency.ms`` plus the bytes at ``lab.remote.fetch.mb.per.s`` (one broker's
reads share that throughput: a read waits for the bytes of earlier ones).
``ListOffsets`` knows two extra timestamps for this: ``EARLIEST_LOCAL_TIMESTAMP`` (-4) and
``LATEST_TIERED_TIMESTAMP`` (-5) (``ListOffsetsRequest``, KIP-1005).

Lab simplifications: one manager serves the whole cluster, acting as each partition's leader
broker; local deletion runs on the same interval as copying (the brokers' retention task,
``sim.broker.retention``, leaves tiered topics to it); a follower whose log ends below the
leader's local log start offset restarts its log there (``sim.broker.replication``), as
Kafka's ``OFFSET_MOVED_TO_TIERED_STORAGE`` does, without rebuilding state from remote metadata.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Generator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim import trace as events
from sim.broker.list_offsets import OffsetAndTimestamp
from sim.broker.remote_storage import (
    COPY_SEGMENT_FINISHED,
    DELETE_SEGMENT_FINISHED,
    DELETE_SEGMENT_STARTED,
    RemoteLogSegmentMetadata,
    RemoteStorageManager,
)
from sim.config import cleanup_policies
from sim.errors import ConfigError
from sim.payloads import RECORD_INDEX_BITS
from sim.records import serialize

if TYPE_CHECKING:
    from sim.broker.cluster import Cluster, Partition
    from sim.broker.log import PartitionLog, Segment
    from sim.broker.runtime import BrokerRuntime

EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5
"""``ListOffsetsRequest``'s special timestamps (-4 and -5: KIP-1005)."""

TIER_UPLOAD = events.register(events.EventKind(
    "tier.upload", ("topic", "partition", "node", "base_offset", "end_offset", "bytes",
                    "outcome"),
    "a leader copied a closed segment to the remote tier (or abandoned the copy)"))
TIER_DELETE = events.register(events.EventKind(
    "tier.delete", ("topic", "partition", "node", "base_offset", "end_offset", "where"),
    "a segment was deleted from the remote tier or, once uploaded, from a broker's disk"))
REMOTE_READ = events.register(events.EventKind(
    "remote.read", ("topic", "partition", "node", "offset", "records", "bytes", "latency_ms"),
    "a consumer fetch below the local log start offset was served from the remote tier"))


def check_topic_config(values: dict[str, Any]) -> None:
    """Kafka's rules for a topic with ``remote.storage.enable=true`` (``LogConfig``).

    Raises:
        ConfigError: for a compacted topic, or a local retention above the total retention.
    """
    if "compact" in cleanup_policies(values):
        raise ConfigError(f"Remote log storage is unsupported for the compacted topics "
                          f"(cleanup.policy={values['cleanup.policy']}): tier a delete topic, "
                          "or set remote.storage.enable=false.")
    for unit in ("ms", "bytes"):
        total, local = values[f"retention.{unit}"], values[f"local.retention.{unit}"]
        if total > -1 and local != -2 and (local == -1 or local > total):
            allowed = f"at most retention.{unit} ({total}) or -2"
            raise ConfigError(f"Invalid value {local} for configuration local.retention.{unit}: "
                              f"must be {allowed} (topic config; the local tier keeps a part "
                              "of what the whole log keeps).")


def effective_local_retention(config: dict[str, Any], unit: str) -> int:
    """``local.retention.ms`` or ``.bytes``, with -2 read as ``retention.*`` (-1: no limit)."""
    local = int(config.get(f"local.retention.{unit}", -2))
    return int(config.get(f"retention.{unit}", -1)) if local == -2 else local


def last_stable_offset(part: Partition) -> int:
    """Where copying must stop: the leader's last stable offset (the high watermark, or the
    first offset of the oldest open transaction when lower): remote storage holds only
    decided data."""
    return part.log.last_stable_offset


@dataclass
class RemoteLogState:
    """What the remote tier holds of one partition, shared by all its replicas' logs."""

    topic: str
    partition: int
    rsm: RemoteStorageManager
    highest_copied_offset: int = -1  # Kafka's highestOffsetInRemoteStorage
    leader_epoch: int = -1  # the leader epoch whose lineage the copied segments were checked in
    remote_log_start_offset: int = 0
    copying: bool = False
    copy_bytes: int = 0
    copy_requests: int = 0
    fetch_bytes: int = 0
    fetch_requests: int = 0
    delete_requests: int = 0

    def segments(self) -> list[RemoteLogSegmentMetadata]:
        """The copied segments, by base offset."""
        return self.rsm.segments(self.topic, self.partition)

    def log_start_offset(self, log: PartitionLog) -> int:
        """The oldest offset anywhere: the remote tier's first, else the local log's."""
        segments = self.segments()
        if not segments:
            return log.log_start_offset
        return min(max(segments[0].base_offset, self.remote_log_start_offset),
                   log.log_start_offset)

    def segment_for(self, offset: int) -> RemoteLogSegmentMetadata | None:
        """The copied segment holding ``offset`` (``RemoteLogMetadataManager`` lookup)."""
        for segment in self.segments():
            if segment.base_offset <= offset <= segment.end_offset:
                return segment
        return None


def remote_state(cluster: Cluster, part: Partition) -> RemoteLogState | None:
    """The remote tier's state of ``part``, or None when its topic is not tiered."""
    manager = cluster.remote_log_manager
    return manager.states.get((part.topic, part.partition)) if manager is not None else None


def log_start_offset(cluster: Cluster, part: Partition) -> int:
    """The partition's log start offset as consumers see it: for a tiered topic, the remote
    tier's first offset when it holds older records than the leader's disk."""
    state = remote_state(cluster, part)
    return state.log_start_offset(part.log) if state is not None else part.log.log_start_offset


def list_offsets(cluster: Cluster, part: Partition, timestamp: int) -> int:
    """``ListOffsets`` for the special timestamps -1, -2, -4 and -5 (``ListOffsetsRequest``).

    -1 latest (the high watermark), -2 earliest (the log start offset, remote included),
    -4 earliest local (the local log start offset), -5 latest tiered (the highest offset copied
    to the remote tier; -1 when nothing is, as Kafka answers an unknown offset).
    """
    log = part.log
    if timestamp == LATEST_TIMESTAMP:
        return log.high_watermark
    if timestamp == EARLIEST_TIMESTAMP:
        return log_start_offset(cluster, part)
    if timestamp == EARLIEST_LOCAL_TIMESTAMP:
        return log.log_start_offset
    if timestamp == LATEST_TIERED_TIMESTAMP:
        state = remote_state(cluster, part)
        return state.highest_copied_offset if state is not None else -1
    raise ConfigError(f"ListOffsets special timestamp {timestamp!r} is none of -1 (latest), "
                      "-2 (earliest), -4 (earliest local) or -5 (latest tiered).")


def offset_for_timestamp(cluster: Cluster, part: Partition,
                         timestamp: int) -> OffsetAndTimestamp | None:
    """ListOffsets by time in the remote tier (``RemoteLogManager.findOffsetByTimestamp``): the
    earliest copied offset whose timestamp is ≥ ``timestamp``, read from the first segment whose
    largest timestamp reaches it; None when no copied record does (then search the local log).
    """
    state = remote_state(cluster, part)
    if state is None or timestamp < 0:
        return None
    start = state.log_start_offset(part.log)
    for segment in state.segments():
        if segment.end_offset < start or segment.max_timestamp_ms < timestamp:
            continue
        frame = pd.read_parquet(state.rsm.root / segment.object_name,
                                columns=["offset", "timestamp_ms"])
        hits = frame[(frame["offset"] >= start) & (frame["timestamp_ms"] >= timestamp)]
        if len(hits):
            return OffsetAndTimestamp(int(hits["offset"].iloc[0]),
                                      int(hits["timestamp_ms"].iloc[0]))
    return None


def within_leader_epochs(segment: RemoteLogSegmentMetadata, epochs: list[tuple[int, int]],
                         log_end_offset: int) -> bool:
    """Whether a leader whose epoch cache is ``epochs`` has the segment's records: each leader
    epoch in the segment is in the cache and lasts there at least as long as in the segment.

    A cache truncated at the leader's local log start answers for older epochs with that
    start, so segments wholly below it stay referenced.
    """
    from sim.broker.replication import end_offset_for  # replication imports the cluster

    marks = sorted(segment.segment_leader_epochs.items())
    for i, (epoch, _start) in enumerate(marks):
        last = marks[i + 1][1] - 1 if i + 1 < len(marks) else segment.end_offset
        found, end = end_offset_for(epochs, log_end_offset, epoch)
        if found != epoch or last >= end:
            return False
    return True


def remote_deletions(trace: Any, leaders: dict[tuple[str, int], int]) -> pd.DataFrame:
    """Segments retention deleted from the remote tier, as rows of ``log.segment.delete``
    (``end_offset`` one past the last record): the tier is shared by a partition's replicas,
    so each deletion counts for the partition's final leader (``leaders``)."""
    frame = trace.frame(TIER_DELETE)
    frame = frame[frame["where"] == "remote"]
    nodes = [leaders.get((t, int(p)), -1) for t, p in zip(frame["topic"], frame["partition"],
                                                           strict=True)]
    return pd.DataFrame({"seq": frame["seq"], "time_ms": frame["time_ms"], "node": nodes,
                         "topic": frame["topic"], "partition": frame["partition"],
                         "base_offset": frame["base_offset"],
                         "end_offset": frame["end_offset"] + 1,
                         "reason": "retention, in the remote tier"})


def remote_record_ids(cluster: Cluster, part: Partition) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and record ids that only the remote tier still holds: from the log start
    offset up to the leader's local log start offset, read from the Parquet objects."""
    state = remote_state(cluster, part)
    empty = np.zeros(0, np.int64)
    if state is None:
        return empty, empty
    local_start = part.log.log_start_offset
    frames = [pd.read_parquet(state.rsm.root / s.object_name, columns=["offset", "record_id"])
              for s in state.segments() if s.base_offset < local_start]
    if not frames:
        return empty, empty
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[(frame["offset"] >= state.log_start_offset(part.log))
                  & (frame["offset"] < local_start)].drop_duplicates("offset")
    return (frame["offset"].to_numpy(np.int64), frame["record_id"].to_numpy(np.int64))


class RemoteLogManager:
    """Copies, expires and serves a cluster's tiered partitions (see the module docstring)."""

    def __init__(self, cluster: Cluster, runtime: BrokerRuntime) -> None:
        self.cluster = cluster
        self.runtime = runtime
        configured = cluster.brokers[0].config["lab.remote.storage.dir"]
        if configured:
            root = Path(configured)
        else:  # one folder per kernel build, removed when the cluster is garbage-collected
            self._tmp = tempfile.TemporaryDirectory(prefix="kafka-lab-remote-")
            weakref.finalize(self, self._tmp.cleanup)
            root = Path(self._tmp.name)
        self.rsm = RemoteStorageManager(root)
        self.states: dict[tuple[str, int], RemoteLogState] = {}
        self._started = False
        # when each broker's link to the object store is free again (uploads, reads)
        self._upload_free_ms: dict[int, float] = {}
        self._read_free_ms: dict[int, float] = {}
        self._key_tables: dict[int, np.ndarray] = {}  # producer → its keys, serialized

    def __repr__(self) -> str:
        return f"RemoteLogManager({self.rsm.root}, partitions={len(self.states)})"

    @property
    def root(self) -> Path:
        """The folder standing in for object storage (open it with pandas.read_parquet)."""
        return self.rsm.root

    def add_topic(self, topic: Any) -> None:
        """Start tiering ``topic``'s partitions."""
        for part in topic.partitions:
            self.rsm.clear_partition(part.topic, part.partition)
            self.states[(part.topic, part.partition)] = RemoteLogState(part.topic,
                                                                       part.partition, self.rsm)
        self._start()

    # -- the periodic task ------------------------------------------------------------------

    def _interval_ms(self) -> float:
        return float(min(b.config["remote.log.manager.task.interval.ms"]
                         for b in self.cluster.brokers.values()))

    def _start(self) -> None:
        runtime = self.runtime
        if self._started:
            return
        self._started = True

        def tick(_event: object = None) -> None:
            if _event is not None:
                self.run_once()
            timer = runtime.background_timeout(self._interval_ms())
            timer.callbacks.append(tick)

        tick()

    def run_once(self) -> None:
        """One pass of every partition's tasks: copy, expire remote, delete local."""
        for key in sorted(self.states):
            part = self.cluster.partition(*key)
            state = self.states[key]
            leads = self._leads(part, part.leader, part.leader_epoch)
            if leads and state.leader_epoch != part.leader_epoch and not state.copying:
                self._drop_unreferenced(part, state)
            if leads and not state.copying:
                candidates = self.candidate_segments(part, state)
                if candidates:
                    state.copying = True
                    self.runtime.env.process(self._copy(part, state, candidates))
            self._expire_remote(part, state)
            self._delete_local(part, state)

    def _leads(self, part: Partition, broker_id: int, epoch: int) -> bool:
        broker = self.cluster.brokers.get(broker_id)
        return (broker is not None and broker.alive and part.leader == broker_id
                and part.leader_epoch == epoch
                and broker.leads.get((part.topic, part.partition)) == epoch)

    # -- copying --------------------------------------------------------------------------------

    def candidate_segments(self, part: Partition, state: RemoteLogState) -> list[Segment]:
        """Closed segments past the highest copied offset whose records are all below the
        last stable offset (``candidateLogSegments``), oldest first."""
        log = part.log
        start = max(state.highest_copied_offset + 1, log.log_start_offset)
        lso = last_stable_offset(part)
        return [s for s in log.closed_segments()
                if s.end_offset > start and s.end_offset <= lso and s.size_bytes > 0]

    def _copy(self, part: Partition, state: RemoteLogState,
              candidates: list[Segment]) -> Generator[Any, Any, None]:
        runtime = self.runtime
        leader, epoch = part.leader, part.leader_epoch
        rate = self.cluster.brokers[leader].config["lab.remote.copy.mb.per.s"] * 1e6 / 1000
        try:
            for segment in candidates:
                if not self._leads(part, leader, epoch):
                    return
                started = self._start_copy(part, state, segment)
                start = max(self._now(), self._upload_free_ms.get(leader, 0.0))
                self._upload_free_ms[leader] = start + segment.size_bytes / rate
                yield runtime.env.timeout(self._upload_free_ms[leader] - self._now())
                if not self._finish_copy(part, state, started, leader, epoch):
                    return
        finally:
            state.copying = False

    def _start_copy(self, part: Partition, state: RemoteLogState,
                    segment: Segment) -> tuple[RemoteLogSegmentMetadata, pd.DataFrame]:
        """``COPY_SEGMENT_STARTED``: the segment's records and metadata as the leader has them."""
        log = part.log
        # a new leader may roll differently: its segment then starts inside the copied range,
        # and only the part after it is copied, so that remote segments never overlap
        first = max(segment.base_offset, state.highest_copied_offset + 1)
        stop = segment.end_offset
        size, max_timestamp = segment.size_bytes, segment.max_timestamp_ms
        if first > segment.base_offset:
            size = size * (stop - first) // (stop - segment.base_offset)
            max_timestamp = int(log.column("timestamp_ms", first, stop).max())
        in_force = [e for e, start in log.epochs if start <= first]
        epochs = ({in_force[-1]: first} if in_force else {}) | {
            e: start for e, start in log.epochs if first < start < stop}
        metadata = RemoteLogSegmentMetadata(
            part.topic, part.partition, first, stop - 1, int(max_timestamp), int(size),
            part.leader, self._now(), epochs)
        self.rsm.add(metadata)
        return metadata, self._segment_records(log, first, stop)

    def _drop_unreferenced(self, part: Partition, state: RemoteLogState) -> None:
        """A new leader keeps only the copied segments of its own history (Kafka's
        ``findHighestRemoteOffset`` and ``isRemoteSegmentWithinLeaderEpochs``).

        A segment whose leader epochs the new leader's epoch cache does not have, or has ending
        before the segment's records do (an unclean election left them behind), is deleted
        with every later one, and copying resumes after the last segment that is kept.
        """
        state.leader_epoch = part.leader_epoch
        log = part.log
        segments = state.segments()
        keep = 0
        for segment in segments:
            if not within_leader_epochs(segment, log.epochs, log.log_end_offset):
                break
            keep += 1
        if keep == len(segments):
            return
        now = self._now()
        for segment in segments[keep:]:
            self.rsm.update(segment, DELETE_SEGMENT_STARTED, now)
            self.rsm.delete_log_segment_data(segment)
            self.rsm.update(segment, DELETE_SEGMENT_FINISHED, now)
            state.delete_requests += 1
            self._emit(TIER_DELETE, part, part.leader, segment.base_offset, segment.end_offset,
                       "remote: not in the leader's epoch lineage")
        state.highest_copied_offset = segments[keep - 1].end_offset if keep else -1

    def _finish_copy(self, part: Partition, state: RemoteLogState,
                     started: tuple[RemoteLogSegmentMetadata, pd.DataFrame],
                     leader: int, epoch: int) -> bool:
        """``COPY_SEGMENT_FINISHED`` if ``leader`` still leads in ``epoch``; else abandon."""
        metadata, records = started
        now = self._now()
        if not self._leads(part, leader, epoch):
            self.rsm.update(metadata, DELETE_SEGMENT_STARTED, now)
            self.rsm.delete_log_segment_data(metadata)
            self.rsm.update(metadata, DELETE_SEGMENT_FINISHED, now)
            self._emit(TIER_UPLOAD, part, leader, metadata.base_offset, metadata.end_offset,
                       metadata.size_bytes, "abandoned: leadership moved")
            return False
        self.rsm.copy_log_segment_data(metadata, records)
        self.rsm.update(metadata, COPY_SEGMENT_FINISHED, now)
        state.highest_copied_offset = metadata.end_offset
        state.copy_bytes += metadata.size_bytes
        state.copy_requests += 1
        self._emit(TIER_UPLOAD, part, leader, metadata.base_offset, metadata.end_offset,
                   metadata.size_bytes, "copied")
        return True

    def _segment_records(self, log: PartitionLog, first: int, stop: int) -> pd.DataFrame:
        """A segment's records with keys and values as bytes (null where not kept).

        Vectorised per producer: each producer's key table is serialized once (and again only
        when it grew), then indexed by the records' key ids, as ``sim.payloads`` reads them.
        """
        frame = log.records(first, stop)
        ids = frame["record_id"].to_numpy()
        keys = np.full(len(ids), None, dtype=object)
        values = np.full(len(ids), None, dtype=object)
        owners = np.where(ids >= 0, ids >> RECORD_INDEX_BITS, -1)
        clients = self.runtime.clients
        for owner in np.unique(owners[owners >= 0]):
            producer = clients[int(owner)] if owner < len(clients) else None
            if not hasattr(producer, "keys"):
                continue  # a record not sent by a lab producer: no payload to show
            mine = np.flatnonzero(owners == owner)
            index = ids[mine] & ((1 << RECORD_INDEX_BITS) - 1)
            table = self._key_table(int(owner), producer)
            key_ids = producer.buffer.key_id[index]
            keys[mine] = table[np.where(key_ids < 0, len(table) - 1, key_ids)]
            if producer.values:
                values[mine] = [serialize(producer.values.get(int(i))) for i in index]
        frame["key"] = keys
        frame["value"] = values
        frame["control"], frame["aborted"] = self._transaction_flags(log, first, stop)
        return frame

    @staticmethod
    def _transaction_flags(log: PartitionLog, first: int, stop: int
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Per record: a transaction marker? in an aborted transaction? (All decided: copies
        stay below the last stable offset.)"""
        control = np.zeros(stop - first, bool)
        aborted = np.zeros(stop - first, bool)
        if not log.transactions.any:
            return control, aborted
        gone = log.transactions.aborted_between(first, stop)
        for batch in log.batches_overlapping(first, stop):
            lo, hi = max(batch.base_offset, first) - first, min(batch.last_offset + 1, stop) - first
            if batch.is_control:
                control[lo:hi] = True
            elif batch.is_transactional and any(
                    t.producer_id == batch.producer_id
                    and t.first_offset <= batch.base_offset <= t.last_offset for t in gone):
                aborted[lo:hi] = True
        return control, aborted

    def _key_table(self, owner: int, producer: Any) -> np.ndarray:
        """The producer's keys serialized, with None last for a null key (cached)."""
        cached = self._key_tables.get(owner)
        if cached is None or len(cached) != len(producer.keys) + 1:
            cached = np.array([*map(serialize, producer.keys), None], dtype=object)
            self._key_tables[owner] = cached
        return cached

    # -- expiring the remote tier and deleting local segments ----------------------------------

    def _expire_remote(self, part: Partition, state: RemoteLogState) -> None:
        """``RLMExpirationTask``: delete remote segments past ``retention.ms`` or beyond
        ``retention.bytes``, oldest first; the log start offset moves past them."""
        if not self._leads(part, part.leader, part.leader_epoch):
            return
        retention_ms = int(part.config.get("retention.ms", -1))
        retention_bytes = int(part.config.get("retention.bytes", -1))
        segments = state.segments()
        log = part.log
        only_local = sum(s.size_bytes for s in log.segments
                         if s.base_offset > state.highest_copied_offset)
        breached = (sum(s.size_bytes for s in segments) + only_local - retention_bytes
                    if retention_bytes >= 0 else 0)
        now = self._now()
        for segment in segments:
            by_time = retention_ms >= 0 and segment.max_timestamp_ms <= now - retention_ms
            by_size = breached >= segment.size_bytes > 0
            if not (by_time or by_size):
                break
            breached -= segment.size_bytes
            self.rsm.update(segment, DELETE_SEGMENT_STARTED, now)
            self.rsm.delete_log_segment_data(segment)
            self.rsm.update(segment, DELETE_SEGMENT_FINISHED, now)
            state.remote_log_start_offset = segment.end_offset + 1
            state.delete_requests += 1
            self._emit(TIER_DELETE, part, part.leader, segment.base_offset, segment.end_offset,
                       "remote")

    def _delete_local(self, part: Partition, state: RemoteLogState) -> None:
        """On every live replica, delete the oldest local segments that were uploaded and are
        past local retention, or below the log start offset (never the active segment)."""
        local_ms = effective_local_retention(part.config, "ms")
        local_bytes = effective_local_retention(part.config, "bytes")
        now = self._now()
        for broker_id in sorted(part.logs):
            if not self.cluster.brokers[broker_id].alive:
                continue
            log = part.logs[broker_id]
            size = sum(s.size_bytes for s in log.segments)
            count = 0
            for segment in log.closed_segments():
                below_start = segment.end_offset <= state.remote_log_start_offset
                uploaded = segment.end_offset - 1 <= state.highest_copied_offset
                by_time = local_ms >= 0 and segment.max_timestamp_ms <= now - local_ms
                by_size = local_bytes >= 0 and size - segment.size_bytes >= local_bytes
                if not (below_start or (uploaded and (by_time or by_size))):
                    break
                size -= segment.size_bytes
                count += 1
            for segment in log.delete_oldest_segments(count):
                self._emit(TIER_DELETE, part, broker_id, segment.base_offset,
                           segment.end_offset - 1, "local")

    # -- reads from the remote tier ---------------------------------------------------------

    def read(self, part: Partition, offset: int, max_records: int
             ) -> tuple[dict[str, np.ndarray], float] | None:
        """Records from ``offset`` in one remote segment (``RemoteLogReader``), and how long
        the read takes; None if no copied segment holds ``offset``."""
        state = self.states.get((part.topic, part.partition))
        segment = state.segment_for(offset) if state is not None else None
        if state is None or segment is None:
            return None
        stop = min(segment.end_offset + 1, offset + max_records)
        columns = self.rsm.fetch_log_segment(segment, offset, stop)
        size = segment.size_bytes * (stop - offset) // max(segment.records, 1)
        node = part.leader if part.leader >= 0 else part.last_leader
        config = self.cluster.brokers[node].config
        now = self._now()  # the first byte after the latency; bytes share the broker's link
        start = max(now + config["lab.remote.fetch.latency.ms"], self._read_free_ms.get(node, 0.0))
        self._read_free_ms[node] = start + size / (config["lab.remote.fetch.mb.per.s"] * 1e6 / 1000)
        latency = self._read_free_ms[node] - now
        state.fetch_bytes += size
        state.fetch_requests += 1
        self._emit(REMOTE_READ, part, part.leader, offset, stop - offset, size, latency)
        done = self.runtime.env.timeout(latency)  # then the records are there to be polled:
        done.callbacks.append(_records_arrived)  # a change consumers' idle polls look for
        return columns, latency

    # -- read-outs ----------------------------------------------------------------------------

    def metrics(self) -> pd.DataFrame:
        """One row per tiered partition: Kafka's remote storage metrics (``RemoteStorageMetrics``)
        as totals, plus per-second rates over the run so far."""
        seconds = max(self._now() / 1000, 1e-9)
        rows = []
        for key in sorted(self.states):
            state = self.states[key]
            part = self.cluster.partition(*key)
            log = part.log
            copy_lag = [s for s in log.closed_segments()
                        if s.end_offset - 1 > state.highest_copied_offset]
            segments = state.segments()
            rows.append({
                "topic": key[0], "partition": key[1],
                "log_start_offset": state.log_start_offset(log),
                "local_log_start_offset": log.log_start_offset,
                "highest_copied_offset": state.highest_copied_offset,
                "high_watermark": log.high_watermark,
                "RemoteLogSizeBytes": sum(s.size_bytes for s in segments),
                "RemoteLogMetadataCount": len(segments),
                "LocalLogSizeBytes": log.size_bytes,
                "RemoteCopyLagBytes": sum(s.size_bytes for s in copy_lag),
                "RemoteCopyLagSegments": len(copy_lag),
                "RemoteCopyBytes": state.copy_bytes,
                "RemoteCopyRequests": state.copy_requests,
                "RemoteFetchBytes": state.fetch_bytes,
                "RemoteFetchRequests": state.fetch_requests,
                "RemoteDeleteRequests": state.delete_requests,
                "RemoteCopyBytesPerSec": state.copy_bytes / seconds,
                "RemoteFetchBytesPerSec": state.fetch_bytes / seconds,
            })
        return pd.DataFrame(rows)

    def consistency_problems(self) -> list[str]:
        """What is wrong with the remote tier, one sentence each (empty when all is well).

        The copied segments of each partition follow each other without gap or overlap up to
        the highest copied offset; the folder holds exactly their objects (an abandoned copy
        leaves none behind); each object holds its segment's offsets, and every record there
        is the one each live in-sync replica keeps at that offset below its high watermark.
        """
        problems = []
        for key in sorted(self.states):
            state = self.states[key]
            name = f"{key[0]}-{key[1]}"
            segments = state.segments()
            for before, after in pairwise(segments):
                if after.base_offset != before.end_offset + 1:
                    problems.append(f"{name}: remote segments {before.base_offset}–"
                                    f"{before.end_offset} and {after.base_offset}–"
                                    f"{after.end_offset} leave a gap or overlap")
            if segments and segments[-1].end_offset != state.highest_copied_offset:
                problems.append(f"{name}: highest copied offset {state.highest_copied_offset} "
                                f"is not the last remote segment's end {segments[-1].end_offset}")
            folder = self.root / name
            stored = sorted(p.name for p in folder.glob("*.parquet"))
            expected = sorted(Path(s.object_name).name for s in segments)
            if stored != expected:
                problems.append(f"{name}: the folder holds objects {stored} but the metadata "
                                f"lists {expected}")
                continue
            part = self.cluster.partition(*key)
            in_sync = [b for b in part.isr if self.cluster.brokers[b].alive]
            for segment in segments:
                frame = pd.read_parquet(self.root / segment.object_name,
                                        columns=["offset", "record_id"])
                offsets = frame["offset"].to_numpy()
                if not np.array_equal(offsets, np.arange(segment.base_offset,
                                                         segment.end_offset + 1)):
                    problems.append(f"{name}: object {segment.object_name} does not hold "
                                    f"offsets {segment.base_offset}–{segment.end_offset}")
                    continue
                for broker_id in sorted(in_sync):
                    log = part.logs[broker_id]
                    lo = max(segment.base_offset, log.log_start_offset)
                    hi = min(segment.end_offset + 1, log.high_watermark)
                    if lo < hi and not np.array_equal(
                            log.column("record_id", lo, hi),
                            frame["record_id"].to_numpy()[lo - segment.base_offset:
                                                          hi - segment.base_offset]):
                        problems.append(f"{name}: object {segment.object_name} differs from "
                                        f"broker {broker_id}'s log at offsets {lo}–{hi - 1}")
        return problems

    def _now(self) -> float:
        return self.runtime.now_ms

    def _emit(self, kind: events.EventKind, part: Partition, node: int, *values: Any) -> None:
        self.runtime.trace.emit(kind, self.runtime.now_ms, f"broker-{node}", part.topic,
                                part.partition, node, *values)


def check_system_enabled(cluster: Cluster, name: str) -> None:
    """A tiered topic needs brokers with ``remote.log.storage.system.enable=true``.

    Raises:
        ConfigError: naming the brokers that have it off (Kafka's ``LogConfig`` message).
    """
    disabled = [b for b, broker in sorted(cluster.brokers.items())
                if not broker.config["remote.log.storage.system.enable"]]
    if disabled:
        raise ConfigError(f"Topic {name!r}: Tiered Storage functionality is disabled in "
                          f"the broker (remote.log.storage.system.enable=false on brokers "
                          f"{disabled}); topic cannot be configured with remote log storage.")
    if cluster.runtime is None:
        raise ConfigError(f"Topic {name!r}: tiered storage needs simulated time; create the "
                          "topic on a Kernel's cluster.")


def _records_arrived(_event: object) -> None:
    """Count a finished remote read as a log change (``PartitionLog.changes``), so that a
    consumer that skips idle polls until something changed looks again."""
    from sim.broker.log import PartitionLog

    PartitionLog.changes += 1


def attach(cluster: Cluster, topic: Any) -> RemoteLogManager:
    """Tier ``topic`` on ``cluster``, creating the cluster's manager on first use."""
    if cluster.remote_log_manager is None:
        assert cluster.runtime is not None, "check_system_enabled comes first"
        cluster.remote_log_manager = RemoteLogManager(cluster, cluster.runtime)
    cluster.remote_log_manager.add_topic(topic)
    return cluster.remote_log_manager
