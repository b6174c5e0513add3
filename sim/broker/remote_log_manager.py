"""Tiered storage (KIP-405): each broker's ``RemoteLogManager`` copies, expires and serves old
segments; followers rebuild their log's start from the remote tier.

A topic with ``remote.storage.enable=true`` (on brokers with
``remote.log.storage.system.enable=true``) keeps its recent segments on the brokers' disks and
its older ones in the remote tier (``sim.broker.remote_storage``), which all brokers share: the
objects and their metadata (Kafka's ``RemoteStorageManager`` and topic-based
``RemoteLogMetadataManager``) live in one ``RemoteTier`` per cluster. Every broker runs its own
``RemoteLogManager``; every ``remote.log.manager.task.interval.ms`` of that broker, for each
tiered partition it leads, it:

1. **copies** closed segments whose records are all below the last stable offset (the high
   watermark, held back by open transactions: ``last_stable_offset``) to the remote tier, oldest
   first, starting after the highest offset already copied (``RLMCopyTask``,
   ``candidateLogSegments``), with each segment's leader epoch checkpoint and producer snapshot
   (Kafka's ``LogSegmentData``). An upload takes simulated time (``lab.remote.copy.mb.per.s``,
   shared by the uploads of one broker);
   if the broker lost leadership meanwhile, the upload is abandoned and the new leader copies
   the segment again — to the same object, as objects are named by base offset. A new leader
   first drops copied segments that are not its own history (an unclean election:
   ``within_leader_epochs``) and copies again from where its history and the remote tier agree;
2. **expires** remote segments past ``retention.ms`` (by their largest timestamp) or beyond
   ``retention.bytes`` (``RLMExpirationTask``), which moves the log start offset.

**Local** segments are deleted by each broker's retention task, every
``log.retention.check.interval.ms``, on every replica (``sim.broker.retention``, Kafka's
``UnifiedLog.deleteOldSegments``): for a tiered topic by ``local.retention.ms`` /
``local.retention.bytes`` (-2: the same as ``retention.*``), and only segments already uploaded
(``isSegmentEligibleForDeletion``) or wholly below the log start offset.

Two start offsets follow: the *log start offset* (oldest offset anywhere, remote included) and
the *local log start offset* (oldest on the broker's disk, ``PartitionLog.log_start_offset``).
A consumer fetching in between is served from the remote tier (``RemoteLogReader``) by the
leader's manager, with ``lab.remote.fetch.latency.ms`` plus the bytes at
``lab.remote.fetch.mb.per.s`` (one broker's reads share that throughput: a read waits for the
bytes of earlier ones). A *follower* fetching there gets ``OFFSET_MOVED_TO_TIERED_STORAGE``
(``ReplicaManager.handleOffsetOutOfRangeError``) and builds its log's start from the remote tier
instead (``build_remote_log_aux_state``, Kafka's ``TierStateMachine``): it finds the remote
segment holding the offset just below the leader's local log start, empties its log and starts
it after that segment, takes the segment's leader epoch checkpoint as its epoch cache and its
producer snapshot as its producer state, then fetches only the local part.
``ListOffsets`` knows two extra timestamps for this: ``EARLIEST_LOCAL_TIMESTAMP`` (-4) and
``LATEST_TIERED_TIMESTAMP`` (-5) (``ListOffsetsRequest``, KIP-1005).

Lab simplifications: a broker's copy and expiration tasks keep the phase they started with
across a crash and restart (they do nothing while the broker is down); a follower's view of the
highest copied offset is the shared metadata's at once (Kafka's ``RLMFollowerTask`` reads it
every task interval); the remote segment for a follower's rebuild is found by offset alone.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Generator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim import trace as events
from sim.broker.list_offsets import OffsetAndTimestamp
from sim.broker.producer_state import ProducerStateEntry, ProducerStateManager
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
REMOTE_AUX_STATE = events.register(events.EventKind(
    "replica.remote.aux", ("topic", "partition", "node", "fetch_offset", "error", "next_offset"),
    "a follower below the leader's local log start built its log's start from the remote tier "
    "(next_offset -1: the remote tier could not, it retries)"))
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
    aux_state_requests: int = 0  # followers that rebuilt their log's start from here
    aux_state_errors: int = 0  # ... or could not, and retried
    indexes: dict[int, SegmentIndexes] = field(default_factory=dict)  # by base offset

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
    tier = cluster.remote_tier
    return tier.states.get((part.topic, part.partition)) if tier is not None else None


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


@dataclass(frozen=True)
class SegmentIndexes:
    """What Kafka uploads with a segment besides its records (``LogSegmentData``): the leader
    epoch checkpoint up to the segment's end and the producer snapshot at its next offset."""

    leader_epochs: tuple[tuple[int, int], ...]
    producer_snapshot: dict[int, ProducerStateEntry]


def producer_snapshot(log: PartitionLog, first: int, stop: int,
                      previous: dict[int, ProducerStateEntry] | None
                      ) -> dict[int, ProducerStateEntry]:
    """The producer state as of offset ``stop`` (Kafka's snapshot file at a segment's roll):
    the snapshot of the segment before (``previous``; None: start from the log start offset)
    replayed with the batches of ``[first, stop)``, as appending them did."""
    state = ProducerStateManager()
    state.producers = {pid: _copy_entry(e) for pid, e in (previous or {}).items()}
    start = first if previous is not None else log.log_start_offset
    for batch in log.batches_overlapping(start, stop):
        if batch.base_offset < start or batch.base_offset >= stop:
            continue
        if batch.base_sequence >= 0:
            state.update(batch.producer_id, batch.producer_epoch, batch.base_sequence,
                         batch.records, batch.base_offset)
        elif batch.producer_id >= 0:  # a marker, or a coordinator's transactional offsets
            state.update_epoch(batch.producer_id, batch.producer_epoch)
    return state.producers


class RemoteTier:
    """What every broker shares of tiered storage: the folder of objects, each tiered
    partition's remote metadata, and the brokers' ``RemoteLogManager`` s (one each)."""

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
        self.managers = {b: RemoteLogManager(self, b) for b in sorted(cluster.brokers)}
        self._key_tables: dict[int, np.ndarray] = {}  # producer → its keys, serialized

    def __repr__(self) -> str:
        return f"RemoteTier({self.rsm.root}, partitions={len(self.states)})"

    @property
    def root(self) -> Path:
        """The folder standing in for object storage (open it with pandas.read_parquet)."""
        return self.rsm.root

    def add_topic(self, topic: Any) -> None:
        """Start tiering ``topic``'s partitions: every broker's manager starts its task."""
        for part in topic.partitions:
            self.rsm.clear_partition(part.topic, part.partition)
            self.states[(part.topic, part.partition)] = RemoteLogState(part.topic,
                                                                       part.partition, self.rsm)
        for broker_id in sorted(self.managers):
            self.managers[broker_id].start()

    def manager_for(self, part: Partition) -> RemoteLogManager:
        """The manager of the broker that leads ``part`` (its last leader while offline)."""
        return self.managers[part.leader if part.leader >= 0 else part.last_leader]

    def read(self, part: Partition, offset: int, max_records: int
             ) -> tuple[dict[str, np.ndarray], float] | None:
        """A consumer's read below the local log start, served by the leader's manager."""
        return self.manager_for(part).read(part, offset, max_records)

    # -- what a segment's records are, as bytes -------------------------------------------------

    def segment_records(self, log: PartitionLog, first: int, stop: int) -> pd.DataFrame:
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
                "BuildRemoteLogAuxStateRequests": state.aux_state_requests,
                "BuildRemoteLogAuxStateErrors": state.aux_state_errors,
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



class RemoteLogManager:
    """One broker's ``RemoteLogManager``: the copy and expiration tasks of the tiered
    partitions it leads, and the remote reads it serves (see the module docstring)."""

    def __init__(self, tier: RemoteTier, broker_id: int) -> None:
        self.tier = tier
        self.broker_id = broker_id
        self.cluster = tier.cluster
        self.runtime = tier.runtime
        self.rsm = tier.rsm
        self._started = False
        self._upload_free_ms = 0.0  # when this broker's link to the object store is free again
        self._read_free_ms = 0.0

    def __repr__(self) -> str:
        return f"RemoteLogManager(broker {self.broker_id})"

    @property
    def broker(self) -> Any:
        return self.cluster.brokers[self.broker_id]

    # -- the periodic task ------------------------------------------------------------------

    def start(self) -> None:
        """Run the tasks every ``remote.log.manager.task.interval.ms`` of this broker.

        A background timer: it never keeps an idle run going; while the broker is down its
        ticks do nothing.
        """
        if self._started:
            return
        self._started = True

        def tick(_event: object = None) -> None:
            if _event is not None and self.broker.alive:
                self.run_once()
            timer = self.runtime.background_timeout(
                self.broker.config["remote.log.manager.task.interval.ms"])
            timer.callbacks.append(tick)

        tick()

    def led_partitions(self) -> list[tuple[Partition, RemoteLogState]]:
        """The tiered partitions this broker leads in their current epoch."""
        out = []
        for key in sorted(self.tier.states):
            part = self.cluster.partition(*key)
            if self._leads(part, self.broker_id, part.leader_epoch):
                out.append((part, self.tier.states[key]))
        return out

    def run_once(self) -> None:
        """One pass over the partitions this broker leads: copy, then expire remote."""
        for part, state in self.led_partitions():
            if state.leader_epoch != part.leader_epoch and not state.copying:
                self._drop_unreferenced(part, state)
            if not state.copying:
                candidates = self.candidate_segments(part, state)
                if candidates:
                    state.copying = True
                    self.runtime.env.process(self._copy(part, state, candidates))
            self._expire_remote(part, state)

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
        rate = self.broker.config["lab.remote.copy.mb.per.s"] * 1e6 / 1000
        try:
            for segment in candidates:
                if not self._leads(part, leader, epoch):
                    return
                started = self._start_copy(part, state, segment)
                start = max(self._now(), self._upload_free_ms)
                self._upload_free_ms = start + segment.size_bytes / rate
                yield runtime.env.timeout(self._upload_free_ms - self._now())
                if not self._finish_copy(part, state, started, leader, epoch):
                    return
        finally:
            state.copying = False

    def _start_copy(self, part: Partition, state: RemoteLogState, segment: Segment
                    ) -> tuple[RemoteLogSegmentMetadata, pd.DataFrame, SegmentIndexes]:
        """``COPY_SEGMENT_STARTED``: the segment's records, metadata and indexes as the leader
        has them."""
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
        before = state.segment_for(first - 1)
        previous = state.indexes.get(before.base_offset) if before is not None else None
        snapshot = producer_snapshot(log, first, stop,
                                     previous.producer_snapshot if previous else None)
        indexes = SegmentIndexes(tuple((e, s) for e, s in log.epochs if s < stop), snapshot)
        return metadata, self.tier.segment_records(log, first, stop), indexes

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
            state.indexes.pop(segment.base_offset, None)
            state.delete_requests += 1
            self._emit(TIER_DELETE, part, part.leader, segment.base_offset, segment.end_offset,
                       "remote: not in the leader's epoch lineage")
        state.highest_copied_offset = segments[keep - 1].end_offset if keep else -1

    def _finish_copy(self, part: Partition, state: RemoteLogState,
                     started: tuple[RemoteLogSegmentMetadata, pd.DataFrame, SegmentIndexes],
                     leader: int, epoch: int) -> bool:
        """``COPY_SEGMENT_FINISHED`` if ``leader`` still leads in ``epoch``; else abandon."""
        metadata, records, indexes = started
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
        state.indexes[metadata.base_offset] = indexes
        state.highest_copied_offset = metadata.end_offset
        state.copy_bytes += metadata.size_bytes
        state.copy_requests += 1
        self._emit(TIER_UPLOAD, part, leader, metadata.base_offset, metadata.end_offset,
                   metadata.size_bytes, "copied")
        return True

    # -- expiring the remote tier -------------------------------------------------------------

    def _expire_remote(self, part: Partition, state: RemoteLogState) -> None:
        """``RLMExpirationTask``: delete remote segments past ``retention.ms`` or beyond
        ``retention.bytes``, oldest first; the log start offset moves past them."""
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
            state.indexes.pop(segment.base_offset, None)
            state.remote_log_start_offset = segment.end_offset + 1
            state.delete_requests += 1
            self._emit(TIER_DELETE, part, part.leader, segment.base_offset, segment.end_offset,
                       "remote")

    # -- reads from the remote tier ---------------------------------------------------------

    def read(self, part: Partition, offset: int, max_records: int
             ) -> tuple[dict[str, np.ndarray], float] | None:
        """Records from ``offset`` in one remote segment (``RemoteLogReader``), and how long
        the read takes; None if no copied segment holds ``offset``."""
        state = self.tier.states.get((part.topic, part.partition))
        segment = state.segment_for(offset) if state is not None else None
        if state is None or segment is None:
            return None
        stop = min(segment.end_offset + 1, offset + max_records)
        columns = self.rsm.fetch_log_segment(segment, offset, stop)
        size = segment.size_bytes * (stop - offset) // max(segment.records, 1)
        config = self.broker.config
        now = self._now()  # the first byte after the latency; bytes share the broker's link
        start = max(now + config["lab.remote.fetch.latency.ms"], self._read_free_ms)
        self._read_free_ms = start + size / (config["lab.remote.fetch.mb.per.s"] * 1e6 / 1000)
        latency = self._read_free_ms - now
        state.fetch_bytes += size
        state.fetch_requests += 1
        self._emit(REMOTE_READ, part, part.leader, offset, stop - offset, size, latency)
        done = self.runtime.env.timeout(latency)  # then the records are there to be polled:
        done.callbacks.append(_records_arrived)  # a change consumers' idle polls look for
        return columns, latency

    def _now(self) -> float:
        return self.runtime.now_ms

    def _emit(self, kind: events.EventKind, part: Partition, node: int, *values: Any) -> None:
        self.runtime.trace.emit(kind, self.runtime.now_ms, f"broker-{node}", part.topic,
                                part.partition, node, *values)


OFFSET_MOVED_TO_TIERED_STORAGE = "OFFSET_MOVED_TO_TIERED_STORAGE"
OFFSET_OUT_OF_RANGE = "OFFSET_OUT_OF_RANGE"


def follower_fetch_error(cluster: Cluster, part: Partition, fetch_offset: int) -> str | None:
    """The leader's answer to a follower fetching ``fetch_offset`` below its local log start
    (``ReplicaManager.handleOffsetOutOfRangeError``): OFFSET_MOVED_TO_TIERED_STORAGE when the
    offset is still in the remote tier, OFFSET_OUT_OF_RANGE below the log start offset; None
    when the offset is on the leader's disk (or the topic is not tiered)."""
    state = remote_state(cluster, part)
    if state is None or fetch_offset >= part.log.log_start_offset:
        return None
    if fetch_offset < state.log_start_offset(part.log):
        return OFFSET_OUT_OF_RANGE
    return OFFSET_MOVED_TO_TIERED_STORAGE


def build_remote_log_aux_state(cluster: Cluster, part: Partition, follower: int,
                               leader_local_start: int) -> tuple[int, list[Segment]] | None:
    """A follower answered OFFSET_MOVED_TO_TIERED_STORAGE builds its log's start from the
    remote tier (``TierStateMachine.buildRemoteLogAuxState``).

    It looks up the remote segment holding ``leader_local_start - 1`` in the remote metadata;
    none (not copied yet, or expired) is Kafka's RemoteStorageException and the follower tries
    again later (None). Else the follower empties its log and starts it at the segment's end
    offset + 1, takes the segment's leader epoch checkpoint as its epoch cache (from the new
    start on, as the lab's caches start at the local log start) and the segment's producer
    snapshot as its producer state. Returns the next offset to fetch and the local segments
    dropped.
    """
    state = remote_state(cluster, part)
    if state is None:
        return None
    state.aux_state_requests += 1
    segment = state.segment_for(leader_local_start - 1)
    indexes = state.indexes.get(segment.base_offset) if segment is not None else None
    if segment is None or indexes is None:
        state.aux_state_errors += 1
        return None
    log = part.logs[follower]
    gone = log.segments[:-1] + ([log.active_segment] if len(log) else [])
    next_offset = segment.end_offset + 1
    log.truncate_fully_and_start_at(next_offset)
    older = [e for e, start in indexes.leader_epochs if start <= next_offset]
    log.epochs = [(older[-1], next_offset)] if older else []
    log.producer_state.producers = {
        pid: _copy_entry(entry) for pid, entry in indexes.producer_snapshot.items()}
    return next_offset, gone


def _copy_entry(entry: ProducerStateEntry) -> ProducerStateEntry:
    copied = ProducerStateEntry()
    copied.producer_epoch = entry.producer_epoch
    copied.batches.extend(entry.batches)
    return copied


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
    """Count a finished remote read as a log change (``log_changes``), so that a consumer that
    skips idle polls until something changed looks again."""
    from sim.broker.log import log_changes

    log_changes.count += 1


def attach(cluster: Cluster, topic: Any) -> RemoteTier:
    """Tier ``topic`` on ``cluster``, creating the remote tier and the brokers' managers on
    first use."""
    if cluster.remote_tier is None:
        assert cluster.runtime is not None, "check_system_enabled comes first"
        cluster.remote_tier = RemoteTier(cluster, cluster.runtime)
    cluster.remote_tier.add_topic(topic)
    return cluster.remote_tier
