"""The transaction coordinator (broker side of KIP-98 transactions).

Mirrors Kafka's ``TransactionCoordinator``, ``TransactionStateManager``, ``TransactionMetadata``
and ``TransactionState`` (``transaction-coordinator`` module, Kafka 4.0, transaction version 1).

Where a transaction lives: every ``transactional.id`` belongs to one partition of the internal
topic ``__transaction_state`` (``transaction.state.log.num.partitions`` = 50):
``Utils.abs(transactionalId.hashCode()) % 50`` with Java's ``String.hashCode``, as
``TransactionStateManager.partitionFor`` computes it. The broker leading that partition is the
transactional id's coordinator. Every state change is a record appended to that partition
(acks=all) before it counts, so a broker that becomes leader after a failover reads the
partition to its end and continues where the old coordinator stopped
(``loadTransactionsForTxnTopicPartition``), resending the markers of transactions it finds in a
Prepare state.

The state machine (``TransactionState.validPreviousStates``)::

    Empty / CompleteCommit / CompleteAbort --AddPartitions/AddOffsets--> Ongoing
    Ongoing --EndTxn(commit)--> PrepareCommit --markers written--> CompleteCommit
    Ongoing --EndTxn(abort)---> PrepareAbort  --markers written--> CompleteAbort
    Ongoing --timeout, or InitProducerId from a new instance--> PrepareEpochFence (epoch + 1)
            --> PrepareAbort --> CompleteAbort

- **InitProducerId**: gives the transactional id its producer id and the next epoch, which
  fences every older instance; an open transaction is first aborted with a bumped epoch (the
  caller is told CONCURRENT_TRANSACTIONS and asks again).
- **AddPartitionsToTxn** / **AddOffsetsToTxn** (the group's ``__consumer_offsets`` partition):
  the partitions the transaction writes to, so that markers reach all of them.
- **EndTxn**: the answer comes once the Prepare state is written; the markers
  (``WriteTxnMarkers``: one control record per partition, taking an offset) follow, then the
  Complete state.
- Every ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` (10 s) the coordinator
  aborts transactions open longer than their ``transaction.timeout.ms``, bumping the epoch so
  that the producer that left them open is fenced (``abortTimedOutTransactions``).

Epoch checks: a request with an older epoch than the coordinator's gets PRODUCER_FENCED.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import trace as events
from sim.broker.log import RECORD_COLUMNS
from sim.broker.replication import NONE as APPEND_OK
from sim.broker.transaction_index import ABORT, COMMIT
from sim.config import ConfigDef, ConfigKey, at_least
from sim.errors import SimulationError
from sim.records import TopicPartition

if TYPE_CHECKING:
    import simpy

TRANSACTION_STATE_TOPIC = "__transaction_state"  # Topic.TRANSACTION_STATE_TOPIC_NAME

EMPTY = "Empty"
ONGOING = "Ongoing"
PREPARE_COMMIT = "PrepareCommit"
PREPARE_ABORT = "PrepareAbort"
COMPLETE_COMMIT = "CompleteCommit"
COMPLETE_ABORT = "CompleteAbort"
DEAD = "Dead"
PREPARE_EPOCH_FENCE = "PrepareEpochFence"

VALID_PREVIOUS_STATES: dict[str, frozenset[str]] = {
    EMPTY: frozenset({EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT}),
    ONGOING: frozenset({ONGOING, EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT}),
    PREPARE_COMMIT: frozenset({ONGOING}),
    PREPARE_ABORT: frozenset({ONGOING, PREPARE_EPOCH_FENCE, EMPTY, COMPLETE_COMMIT,
                              COMPLETE_ABORT}),
    COMPLETE_COMMIT: frozenset({PREPARE_COMMIT}),
    COMPLETE_ABORT: frozenset({PREPARE_ABORT}),
    DEAD: frozenset({EMPTY, COMPLETE_ABORT, COMPLETE_COMMIT}),
    PREPARE_EPOCH_FENCE: frozenset({ONGOING}),
}
"""Kafka 4.0's ``TransactionState.validPreviousStates`` (PrepareAbort from Empty and the
Complete states is transaction version 2's, which the lab does not use)."""

NONE = ""
NOT_COORDINATOR = "NOT_COORDINATOR"
COORDINATOR_NOT_AVAILABLE = "COORDINATOR_NOT_AVAILABLE"
CONCURRENT_TRANSACTIONS = "CONCURRENT_TRANSACTIONS"
PRODUCER_FENCED = "PRODUCER_FENCED"
INVALID_TXN_STATE = "INVALID_TXN_STATE"
INVALID_PRODUCER_ID_MAPPING = "INVALID_PRODUCER_ID_MAPPING"
INVALID_TRANSACTION_TIMEOUT = "INVALID_TRANSACTION_TIMEOUT"
TRANSACTION_ABORTABLE = "TRANSACTION_ABORTABLE"
RETRIABLE = frozenset({NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, CONCURRENT_TRANSACTIONS})
"""Answers after which the producer asks again (looking the coordinator up again)."""

FIRST_PRODUCER_ID = 1 << 20
"""Producer ids the coordinator hands out start here, away from plain producers' ids."""
MARKER_RETRY_MS = 100  # how soon an unwritten marker is sent again (to the new leader)
STATE_RECORD_BYTES = 120  # one __transaction_state record: key, metadata and partitions

TRANSACTION_COORDINATOR = ConfigDef(
    "broker",
    (
        ConfigKey("transaction.state.log.num.partitions", int, 50, "partitions of "
                  "__transaction_state", at_least(1), "transactions", kafka_type="INT"),
        ConfigKey("transaction.state.log.replication.factor", int, 3, "replicas of "
                  "__transaction_state (capped at the number of brokers in the lab)",
                  at_least(1), "transactions", kafka_type="SHORT"),
        ConfigKey("transaction.state.log.min.isr", int, 2, "min.insync.replicas of "
                  "__transaction_state (capped at its replication factor in the lab)",
                  at_least(1), "transactions", kafka_type="INT"),
        ConfigKey("transaction.max.timeout.ms", int, 900000, "largest transaction.timeout.ms "
                  "a producer may ask for", at_least(1), "transactions", kafka_type="INT"),
        ConfigKey("transaction.abort.timed.out.transaction.cleanup.interval.ms", int, 10000,
                  "how often the coordinator aborts transactions past their timeout",
                  at_least(1), "transactions", kafka_type="INT"),
    ),
)

TXN_STATE = events.register(events.EventKind(
    "txn.state", ("transactional_id", "producer_id", "producer_epoch", "state", "partitions"),
    "the transaction coordinator wrote a transaction's new state to __transaction_state"))
TXN_MARKER = events.register(events.EventKind(
    "txn.marker", ("topic", "partition", "producer_id", "producer_epoch", "marker", "offset"),
    "a commit or abort marker was written to a partition of a transaction"))


@dataclasses.dataclass
class TransactionMetadata:
    """What the coordinator knows of one transactional id (Kafka's ``TransactionMetadata``)."""

    transactional_id: str
    producer_id: int
    producer_epoch: int = -1
    timeout_ms: int = 60000
    state: str = EMPTY
    partitions: tuple[TopicPartition, ...] = ()
    txn_start_ms: float = -1.0
    last_update_ms: float = 0.0
    pending_state: str | None = None

    def transit(self, new_state: str, **changes: Any) -> TransactionMetadata:
        """The metadata after moving to ``new_state`` (``prepareTransitionTo``).

        Raises:
            SimulationError: for a transition ``TransactionState`` does not allow.
        """
        if self.state not in VALID_PREVIOUS_STATES[new_state]:
            raise SimulationError(f"transaction {self.transactional_id!r}: {self.state} → "
                                  f"{new_state} is not a valid transition (TransactionState)")
        return dataclasses.replace(self, state=new_state, pending_state=None, **changes)


class TransactionCoordinator:
    """Serves every transactional id of a cluster from the leaders of ``__transaction_state``.

    Request methods run when a request reaches the coordinator broker; each returns a SimPy
    event that triggers with the answer: an error name (``NONE`` = success), or for
    ``init_producer_id`` a tuple ``(error, producer_id, producer_epoch)``.
    """

    def __init__(self, kernel: Any, config: dict[str, Any] | None = None) -> None:
        self.kernel = kernel
        self.config = TRANSACTION_COORDINATOR.parse(config)
        self.txns: dict[str, TransactionMetadata] = {}  # the loaded state, by transactional id
        self._loaded: dict[int, tuple[int, int]] = {}  # partition → (leader, epoch) loaded
        self._records: dict[int, TransactionMetadata] = {}  # state record id → what it says
        self._next_record = 0
        self._next_producer_id = FIRST_PRODUCER_ID
        self._check_timeouts()
        cluster = kernel.cluster
        if TRANSACTION_STATE_TOPIC not in cluster.topics:
            rf = max(1, min(self.config["transaction.state.log.replication.factor"],
                            len(cluster.brokers)))
            cluster.create_topic(TRANSACTION_STATE_TOPIC,
                                 self.config["transaction.state.log.num.partitions"], rf,
                                 {"min.insync.replicas": min(
                                     rf, self.config["transaction.state.log.min.isr"]),
                                  "cleanup.policy": "compact"})
        cluster.metadata_listeners.append(self._on_metadata)

    def __repr__(self) -> str:
        shown = ", ".join(f"{t.transactional_id}: {t.state} epoch {t.producer_epoch}"
                          for t in self.txns.values())
        return f"TransactionCoordinator({shown or 'no transactions'})"

    # -- where a transactional id lives -----------------------------------------------------

    def partition_for(self, transactional_id: str) -> int:
        """``TransactionStateManager.partitionFor``: abs(hashCode) % partitions."""
        from sim.consumer.offsets import partition_for

        return partition_for(transactional_id,
                             self.config["transaction.state.log.num.partitions"])

    def node_for(self, transactional_id: str) -> int:
        """The coordinator broker: leader of the id's ``__transaction_state`` partition."""
        return self.kernel.cluster.partition(TRANSACTION_STATE_TOPIC,
                                             self.partition_for(transactional_id)).leader

    def state_of(self, transactional_id: str) -> TransactionMetadata | None:
        """The metadata of a transactional id, as its current coordinator has it."""
        if not self._ensure_loaded(self.partition_for(transactional_id)):
            return None
        return self.txns.get(transactional_id)

    # -- requests -----------------------------------------------------------------------------

    def init_producer_id(self, transactional_id: str, timeout_ms: int) -> simpy.Event:
        """InitProducerId: a producer id and a new epoch for ``transactional_id``."""
        future = self.kernel.env.event()
        if not 1 <= timeout_ms <= self.config["transaction.max.timeout.ms"]:
            return future.succeed((INVALID_TRANSACTION_TIMEOUT, -1, -1))
        error = self._available(transactional_id)
        if error:
            return future.succeed((error, -1, -1))
        meta = self.txns.get(transactional_id)
        if meta is None:
            meta = TransactionMetadata(transactional_id, self._next_producer_id,
                                       timeout_ms=timeout_ms, last_update_ms=self.now_ms)
            self._next_producer_id += 1
            self.txns[transactional_id] = meta
        if meta.pending_state is not None or meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return future.succeed((CONCURRENT_TRANSACTIONS, -1, -1))
        if meta.state == ONGOING:  # a new instance: fence the old one, abort its transaction
            self._fence_and_abort(meta)
            return future.succeed((CONCURRENT_TRANSACTIONS, -1, -1))
        new = meta.transit(EMPTY, producer_epoch=meta.producer_epoch + 1, timeout_ms=timeout_ms,
                           partitions=(), txn_start_ms=-1.0, last_update_ms=self.now_ms)

        def written(error: str) -> None:
            future.succeed((error, new.producer_id, new.producer_epoch) if not error
                           else (error, -1, -1))

        self._write(meta, new, written)
        return future

    def add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                       partitions: list[TopicPartition]) -> simpy.Event:
        """AddPartitionsToTxn: the transaction will write to ``partitions``."""
        future = self.kernel.env.event()
        meta, error = self._check(transactional_id, producer_id, producer_epoch)
        if error:
            return future.succeed(error)
        assert meta is not None
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return future.succeed(CONCURRENT_TRANSACTIONS)
        added = tuple(tp for tp in dict.fromkeys(partitions) if tp not in meta.partitions)
        if meta.state == ONGOING and not added:
            return future.succeed(NONE)
        start = meta.txn_start_ms if meta.state == ONGOING else self.now_ms
        new = meta.transit(ONGOING, partitions=meta.partitions + added, txn_start_ms=start,
                           last_update_ms=self.now_ms)
        self._write(meta, new, future.succeed)
        return future

    def add_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int,
                    group_id: str, offsets_partition: int) -> simpy.Event:
        """AddOffsetsToTxn: the group's ``__consumer_offsets`` partition joins the transaction."""
        from sim.consumer.config import OFFSETS_TOPIC

        return self.add_partitions(transactional_id, producer_id, producer_epoch,
                                   [TopicPartition(OFFSETS_TOPIC, offsets_partition)])

    def end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int,
                commit: bool) -> simpy.Event:
        """EndTxn: commit or abort; answered once the Prepare state is written."""
        future = self.kernel.env.event()
        meta, error = self._check(transactional_id, producer_id, producer_epoch)
        if error:
            return future.succeed(error)
        assert meta is not None
        done, preparing = ((COMPLETE_COMMIT, PREPARE_COMMIT) if commit
                           else (COMPLETE_ABORT, PREPARE_ABORT))
        if meta.state == done:  # a retry of an EndTxn that already went through
            return future.succeed(NONE)
        if meta.state == preparing:
            return future.succeed(CONCURRENT_TRANSACTIONS)
        if meta.state != ONGOING:
            return future.succeed(INVALID_TXN_STATE)
        new = meta.transit(preparing, last_update_ms=self.now_ms)

        def written(error: str) -> None:
            future.succeed(error)
            if not error:
                self._write_markers(new)

        self._write(meta, new, written)
        return future

    def verify_partition(self, producer_id: int, producer_epoch: int, tp: TopicPartition
                         ) -> str:
        """Whether ``tp`` is in the open transaction of ``producer_id`` at ``producer_epoch``
        (KIP-890 part 1, ``handleVerifyPartitionsInTransaction``): what a partition leader
        asks before it appends a producer's first transactional batch there. Without it, a
        batch that arrives after its transaction was aborted would open a transaction no
        marker ever ends (a *hanging* transaction: the last stable offset stops there).

        The leader asks the coordinator broker in Kafka (``AddPartitionsToTxnManager``); the
        lab looks the state up at once, wherever the two brokers are."""
        meta = next((m for m in self.txns.values() if m.producer_id == producer_id), None)
        if meta is None:
            return INVALID_PRODUCER_ID_MAPPING
        error = self._available(meta.transactional_id)
        if error:
            return error
        if meta.producer_epoch != producer_epoch:
            return PRODUCER_FENCED
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return CONCURRENT_TRANSACTIONS
        # the partitions are added once AddPartitionsToTxn is written, removed at Complete*
        return NONE if meta.state == ONGOING and tp in meta.partitions else TRANSACTION_ABORTABLE

    # -- checks ---------------------------------------------------------------------------------

    @property
    def now_ms(self) -> float:
        return self.kernel.now_ms

    def _available(self, transactional_id: str) -> str:
        partition = self.partition_for(transactional_id)
        return NONE if self._ensure_loaded(partition) else NOT_COORDINATOR

    def _check(self, transactional_id: str, producer_id: int, producer_epoch: int
               ) -> tuple[TransactionMetadata | None, str]:
        """The id's metadata, or the error Kafka answers (fenced, unknown, busy)."""
        error = self._available(transactional_id)
        if error:
            return None, error
        meta = self.txns.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return None, INVALID_PRODUCER_ID_MAPPING
        if producer_epoch != meta.producer_epoch:
            return None, PRODUCER_FENCED
        if meta.pending_state is not None or meta.state == PREPARE_EPOCH_FENCE:
            return None, CONCURRENT_TRANSACTIONS
        return meta, NONE

    # -- the __transaction_state log ----------------------------------------------------------

    def _write(self, old: TransactionMetadata, new: TransactionMetadata,
               done: Callable[[str], None]) -> None:
        """Append ``new`` to the id's partition (acks=all); apply it once it is replicated.

        Until then the id has a pending state and other requests get CONCURRENT_TRANSACTIONS.
        A write that fails (the leader moved, or the ISR is too small) changes nothing, and the
        caller is told NOT_COORDINATOR so that the producer finds the coordinator again; with
        the partition offline it is told COORDINATOR_NOT_AVAILABLE at once."""
        partition = self.partition_for(new.transactional_id)
        part = self.kernel.cluster.partition(TRANSACTION_STATE_TOPIC, partition)
        if part.leader < 0:  # offline: no broker to append to, the caller retries later
            done(COORDINATOR_NOT_AVAILABLE)
            return
        loaded = self._loaded.get(partition)
        old.pending_state = new.state
        record_id = -2 - self._next_record  # negative: never a producer's record id
        self._next_record += 1
        self._records[record_id] = dataclasses.replace(new)
        columns = {"timestamp_ms": np.array([int(self.now_ms)], np.int64),
                   "key_hash": np.array([0], np.int32),
                   "value_size": np.array([STATE_RECORD_BYTES], np.int32),
                   "record_id": np.array([record_id], np.int64)}
        columns = {name: columns[name].astype(dtype) for name, dtype in RECORD_COLUMNS.items()}

        def appended(result: Any) -> None:
            if self._loaded.get(partition) != loaded or self.txns.get(
                    new.transactional_id) is not old:
                done(NOT_COORDINATOR)  # the coordinator moved meanwhile; the new one decides
                return
            old.pending_state = None
            if result.error != APPEND_OK:
                done(NOT_COORDINATOR if result.error == "NOT_LEADER_OR_FOLLOWER"
                     else COORDINATOR_NOT_AVAILABLE)
                return
            self.txns[new.transactional_id] = new
            self.kernel.trace.emit(TXN_STATE, self.now_ms, f"coordinator-{part.leader}",
                                   new.transactional_id, new.producer_id, new.producer_epoch,
                                   new.state, ",".join(str(tp) for tp in new.partitions))
            done(NONE)

        self.kernel.replicas.append(part.leader, TRANSACTION_STATE_TOPIC, partition, columns,
                                    STATE_RECORD_BYTES, -1, -1, "all", 30000, appended)

    def _ensure_loaded(self, partition: int) -> bool:
        """Load a partition's transactions when its leader changed (``onElection``).

        False while the partition has no live leader (COORDINATOR_NOT_AVAILABLE).
        """
        part = self.kernel.cluster.partition(TRANSACTION_STATE_TOPIC, partition)
        if part.leader < 0 or not self.kernel.cluster.brokers[part.leader].alive:
            return False
        owner = (part.leader, part.leader_epoch)
        if self._loaded.get(partition) == owner:
            return True
        self._loaded[partition] = owner
        for txn_id in [t for t in self.txns if self.partition_for(t) == partition]:
            del self.txns[txn_id]
        log = part.log
        ids = log.column("record_id", log.log_start_offset, log.log_end_offset)
        for record_id in ids.tolist():
            meta = self._records.get(record_id)
            if meta is not None:
                self.txns[meta.transactional_id] = dataclasses.replace(meta)
        resume = [m for t, m in self.txns.items()
                  if self.partition_for(t) == partition and m.state in (PREPARE_COMMIT,
                                                                        PREPARE_ABORT)]
        for meta in resume:  # markers the old coordinator may not have finished
            self._write_markers(meta)
        return True

    def _on_metadata(self) -> None:
        """After an election, new leaders of ``__transaction_state`` load their partitions."""
        cluster = self.kernel.cluster
        if TRANSACTION_STATE_TOPIC not in cluster.topics:
            return
        stale = [p for p, owner in self._loaded.items()
                 if owner != (cluster.partition(TRANSACTION_STATE_TOPIC, p).leader,
                              cluster.partition(TRANSACTION_STATE_TOPIC, p).leader_epoch)]
        if stale:
            timer = self.kernel.env.timeout(0)
            timer.callbacks.append(lambda _e: [self._ensure_loaded(p) for p in stale])

    # -- markers ------------------------------------------------------------------------------

    def _write_markers(self, meta: TransactionMetadata) -> None:
        """Send a marker to every partition of the transaction; then write the Complete state
        (``TransactionMarkerChannelManager``: markers are retried until written)."""
        commit = meta.state == PREPARE_COMMIT
        left = set(meta.partitions)
        if not left:
            self._complete(meta, commit)
            return
        for tp in meta.partitions:
            self._send_marker(meta, tp, commit, left)

    def _send_marker(self, meta: TransactionMetadata, tp: TopicPartition, commit: bool,
                     left: set[TopicPartition]) -> None:
        env = self.kernel.env
        cluster = self.kernel.cluster
        if self.txns.get(meta.transactional_id) is not meta:
            return  # the coordinator moved; the new one resends the markers
        source = self.node_for(meta.transactional_id)
        part = cluster.partition(tp.topic, tp.partition)
        leader = part.leader
        if source < 0 or leader < 0 or not cluster.brokers[leader].alive or not (
                cluster.network.connected(source, leader)):
            retry = env.timeout(MARKER_RETRY_MS)
            retry.callbacks.append(lambda _e: self._send_marker(meta, tp, commit, left))
            return
        latency = cluster.brokers[leader].latency_ms

        def answered(result: Any) -> None:
            if result.error != APPEND_OK:
                retry = env.timeout(MARKER_RETRY_MS)
                retry.callbacks.append(lambda _e: self._send_marker(meta, tp, commit, left))
                return
            self.kernel.trace.emit(TXN_MARKER, self.now_ms, f"broker-{leader}", tp.topic,
                                   tp.partition, meta.producer_id, meta.producer_epoch,
                                   "COMMIT" if commit else "ABORT", result.base_offset)
            self._marker_written(meta, tp, commit)
            back = env.timeout(latency)
            back.callbacks.append(lambda _e: self._marker_done(meta, tp, commit, left))

        def arrive(_event: Any) -> None:
            self.kernel.replicas.append_marker(leader, tp.topic, tp.partition, meta.producer_id,
                                               meta.producer_epoch, COMMIT if commit else ABORT,
                                               30000, answered)

        env.timeout(latency).callbacks.append(arrive)

    def _marker_written(self, meta: TransactionMetadata, tp: TopicPartition,
                        commit: bool) -> None:
        """A marker in a ``__consumer_offsets`` partition makes the transaction's offsets
        visible, or drops them (``GroupCoordinator.onTransactionCompleted``)."""
        from sim.consumer.config import OFFSETS_TOPIC

        if tp.topic == OFFSETS_TOPIC:
            groups = getattr(self.kernel.cluster, "group_coordinator", None)
            if groups is not None:
                groups.complete_transaction(meta.producer_id, commit)

    def _marker_done(self, meta: TransactionMetadata, tp: TopicPartition, commit: bool,
                     left: set[TopicPartition]) -> None:
        if tp not in left:
            return
        left.discard(tp)
        if not left:
            self._complete(meta, commit)

    def _complete(self, meta: TransactionMetadata, commit: bool) -> None:
        if self.txns.get(meta.transactional_id) is not meta:
            return
        new = meta.transit(COMPLETE_COMMIT if commit else COMPLETE_ABORT, partitions=(),
                           txn_start_ms=-1.0, last_update_ms=self.now_ms)

        def written(error: str) -> None:
            if error and self.txns.get(meta.transactional_id) is meta:
                retry = self.kernel.env.timeout(MARKER_RETRY_MS)
                retry.callbacks.append(lambda _e: self._complete(meta, commit))

        self._write(meta, new, written)

    # -- fencing and timeouts -------------------------------------------------------------------

    def _fence_and_abort(self, meta: TransactionMetadata) -> None:
        """Bump the epoch (``prepareFenceProducerEpoch``) and abort the open transaction."""
        fenced = meta.transit(PREPARE_EPOCH_FENCE, producer_epoch=meta.producer_epoch + 1)
        self.txns[meta.transactional_id] = fenced
        new = fenced.transit(PREPARE_ABORT, last_update_ms=self.now_ms)

        def written(error: str) -> None:
            if not error:
                self._write_markers(new)
            elif self.txns.get(meta.transactional_id) is fenced:
                self.txns[meta.transactional_id] = meta  # not written: nothing happened

        self._write(fenced, new, written)

    def _check_timeouts(self, _event: Any = None) -> None:
        """Abort transactions open longer than their timeout (background housekeeping).

        Kafka's ``TransactionCoordinator.startup`` schedules this check every interval from
        the broker's start-up, not from the first transactional request: the first check
        comes at the next multiple of the interval (brokers start at 0 ms)."""
        if _event is not None:
            now = self.now_ms
            for meta in list(self.txns.values()):
                if (meta.state == ONGOING and meta.pending_state is None
                        and now >= meta.txn_start_ms + meta.timeout_ms
                        and self._ensure_loaded(self.partition_for(meta.transactional_id))
                        and self.txns.get(meta.transactional_id) is meta):
                    self._fence_and_abort(meta)
        interval = self.config["transaction.abort.timed.out.transaction.cleanup.interval.ms"]
        delay = interval if _event is not None else interval - self.now_ms % interval
        self.kernel.background_timeout(delay).callbacks.append(self._check_timeouts)


def transaction_coordinator(kernel: Any, config: dict[str, Any] | None = None
                            ) -> TransactionCoordinator:
    """The cluster's transaction coordinator, created on first use."""
    cluster = kernel.cluster
    coordinator = getattr(cluster, "transaction_coordinator", None)
    if coordinator is None:
        coordinator = TransactionCoordinator(kernel, config)
        cluster.transaction_coordinator = coordinator
    elif config:
        coordinator.config.update(TRANSACTION_COORDINATOR.parse({**coordinator.config,
                                                                 **config}))
    return coordinator


VERIFICATION_ERRORS = {
    TRANSACTION_ABORTABLE: INVALID_TXN_STATE,
    CONCURRENT_TRANSACTIONS: "NOT_ENOUGH_REPLICAS",
    NOT_COORDINATOR: "NOT_ENOUGH_REPLICAS",
    COORDINATOR_NOT_AVAILABLE: "NOT_ENOUGH_REPLICAS",
    PRODUCER_FENCED: "INVALID_PRODUCER_EPOCH",
}
"""What a produce response says when the verification failed (``ReplicaManager``'s
``postVerificationCallback`` and ``AddPartitionsToTxnManager``): "not added to the transaction"
is INVALID_TXN_STATE for a client of transaction version 1; a coordinator that cannot answer
yet becomes the retriable NOT_ENOUGH_REPLICAS; a fenced epoch INVALID_PRODUCER_EPOCH."""


def verify_transactional_append(cluster: Any, producer_id: int, producer_epoch: int,
                                tp: TopicPartition) -> str:
    """The produce error for a transactional batch whose verification failed, or ``NONE``
    (``sim.broker.replication`` calls it for a producer with no open transaction in ``tp``)."""
    coordinator = getattr(cluster, "transaction_coordinator", None)
    if coordinator is None:
        return INVALID_PRODUCER_ID_MAPPING
    error = coordinator.verify_partition(producer_id, producer_epoch, tp)
    return VERIFICATION_ERRORS.get(error, error)
