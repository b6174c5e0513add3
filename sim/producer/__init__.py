"""The producer: ``send()`` records, batch them per partition, send batches to partition leaders.

Mirrors ``org.apache.kafka.clients.producer.KafkaProducer``: ``Producer(kernel, config)``
accepts Kafka's producer config names and defaults (Kafka 4.0, see ``sim.config.PRODUCER``).
``send(topic, key=…, value=…)`` returns a future whose ``get()`` runs the simulation until the
record is acknowledged and gives its ``RecordMetadata`` (partition, offset, latency).

For large runs, ``add_workload(workload)`` queues a whole generated stream of records at once;
the producer then works at batch granularity (one simulated event per batch or request, never
one per record).

The parts: ``streams`` (the routes records take to a partition), ``custom`` (when a
``partitioner.class`` is asked), ``topic_state`` and ``accumulator`` (batches per partition),
``sender`` (requests to leaders) and ``buffer`` (every record's columns).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import simpy

from sim import config as configs
from sim import trace as events
from sim.broker.log import largest_timestamp
from sim.errors import ConfigError, PartitionerError, ProduceError, SimulationError
from sim.kernel import kernel_of
from sim.murmur2 import murmur2_array
from sim.partitioners import random_source, resolve_partitioner
from sim.producer.accumulator import ProducerBatch, lookup_record_sizes
from sim.producer.buffer import (
    DELIVERY_TIMEOUT,
    ERRORS,
    EXPIRY_CHECK_MS,
    TRANSACTION_ABORTED,
    RecordBuffer,
    _grow,
)
from sim.producer.custom import CustomPartitioning
from sim.producer.sender import RETRY_BACKOFF_MAX_MS, Sender, cancel_timer, timer_at
from sim.producer.streams import RecordStream, split_by_partition
from sim.producer.topic_state import TopicState
from sim.producer.transaction_manager import RETRIABLE, TransactionManager
from sim.producer.transactional import TransactionalState
from sim.records import RecordMetadata, serialize
from sim.workloads import Workload

__all__ = ["FutureRecordMetadata", "Producer"]

NEW_LEADER_ERRORS = frozenset({"NOT_LEADER_OR_FOLLOWER"})
"""Errors whose produce response names the partition's current leader and epoch, as the
answering broker knows them (``KafkaApis.getCurrentLeader``, KIP-951): the producer learns the
new leader from the answer itself and retries there without a backoff."""

FILL_CHUNK = 1 << 18
"""Records of a workload copied into the buffer at a time (bounds the temporaries)."""

class FutureRecordMetadata:
    """The result of ``send()``: ``get()`` runs the simulation until the record is acknowledged."""

    def __init__(self, producer: Producer, index: int) -> None:
        self._producer = producer
        self._index = index

    def done(self) -> bool:
        return not math.isnan(self._producer.buffer.ack_ms[self._index])

    @property
    def record_id(self) -> int:
        """How the record is named in every log (producer id << 40 | index)."""
        return int(self._producer.record_ids(np.array([self._index]))[0])

    def get(self, max_ms: float = math.inf) -> RecordMetadata:
        kernel = self._producer.kernel
        if not kernel.run_until(lambda _k: self.done(), max_ms=max_ms):
            raise SimulationError(f"Record #{self._index} was not acknowledged by "
                                  f"{kernel.now_ms:g} ms.")
        error = int(self._producer.buffer.error[self._index])
        if error:
            raise ProduceError(f"Record #{self._index} failed: {ERRORS[error]} (after retries; "
                               "see the trace's produce.retry and produce.failed events).")
        return self._producer.metadata(self._index)

    def __repr__(self) -> str:
        if self.done():
            return f"FutureRecordMetadata(done: {self._producer.metadata(self._index)})"
        return "FutureRecordMetadata(pending)"


class Producer:
    """A Kafka producer in the simulation.

    Args:
        kernel: the ``Kernel`` (or its ``Cluster``) to produce into.
        config: Kafka producer configs, e.g. ``{"linger.ms": 10, "acks": "1"}``.
        workload: optional ``Workload`` to send (same as calling ``add_workload``).

    Raises:
        ConfigError: for an unknown config name or a bad value, naming both.
    """

    def __init__(self, kernel: Any, config: dict[str, Any] | None = None,
                 workload: Workload | None = None) -> None:
        kernel = kernel_of(kernel, "Producer")
        self.kernel = kernel
        self.cluster = kernel.cluster
        self.trace = kernel.trace
        self.config = configs.PRODUCER.parse(config)
        self.client_id = self.config["client.id"]
        if any(getattr(c, "client_id", None) == self.client_id for c in kernel.clients):
            self.client_id = f"{self.client_id}-{len(kernel.clients)}"
        self.rng = kernel.spawn_rng()
        self.random = random_source(self.rng)
        self.compression_ratio = configs.COMPRESSION_RATIOS[self.config["compression.type"]]
        self.clock_skew_ms = self.config["lab.clock.skew.ms"]
        self.partitioner = resolve_partitioner(self.config["partitioner.class"],
                                               self.config["lab.kafka.version"])
        if self.partitioner is not None and hasattr(self.partitioner, "configure"):
            self.partitioner.configure({**self.config, "lab.random": kernel.spawn_rng()})
        self.idempotent = _idempotence(self.config, config or {})
        self.transactions = (TransactionManager(bool(self.config["transactional.id"]))
                             if self.idempotent else None)
        self.txn = TransactionalState(self) if self.config["transactional.id"] else None
        self._progress: simpy.Event | None = None  # woken as records complete
        self.failed = 0
        self.buffer = RecordBuffer()
        self.topics: dict[str, TopicState] = {}
        self.keys: list[Any] = []
        self.key_bytes: list[bytes] = []  # each key serialized once, for custom partitioners
        self._key_ids: dict[Any, int] = {}
        self._key_hash = np.empty(0, np.int32)
        self._key_len = np.empty(0, np.int64)
        self._key_hash_by_id = np.zeros(1, np.int32)  # _key_hash_table(), rebuilt for new keys
        self.values: dict[int, Any] = {}  # values given to send(), by record
        # timestamps given to send(), by record (-1: none); only allocated once one is given
        self._given_timestamps = np.empty(0, np.int64)
        self.headers: dict[int, list[tuple[str, Any]]] = {}  # headers given to send(), by record
        self.sender = Sender(self)
        # the batches of the request being handed to a leader, by id of their index arrays
        # (alive while they are handed): what max_timestamp reads (Sender._handle)
        self.handed: dict[int, ProducerBatch] = {}
        self.acked = 0  # records acknowledged
        self.completed = 0  # records answered: acknowledged or failed
        self.flushing = False
        self.closed = False
        self.crashed = False
        self._in_pass = False
        self._timer: simpy.Event | None = None
        self._timer_ms = math.inf
        self.next_expiry_check_ms = 0.0  # the next expiry check of queued batches
        self._deadline_timers: dict[simpy.Event, float] = {}  # timer → when it fires
        self.deadline_armed_ms = math.inf  # the earliest of them
        self.producer_id = len(kernel.clients)  # deterministic, unlike a wall-clock id
        self.custom = CustomPartitioning(self) if self.partitioner is not None else None
        kernel.register(self)
        if workload is not None:
            self.add_workload(workload)

    def __repr__(self) -> str:
        return (f"Producer({self.client_id!r}, records={self.buffer.n}, acked={self.acked}, "
                f"partitioner={self.partitioner_name})")

    @property
    def partitioner_name(self) -> str:
        if self.partitioner is None:
            return "built-in (uniform sticky, KIP-794)"
        return type(self.partitioner).__name__

    # -- the public client API ----------------------------------------------------------------

    def send(self, topic: str, key: Any = None, value: Any = None,
             partition: int | None = None, timestamp: int | None = None,
             headers: list[tuple[str, Any]] | None = None) -> FutureRecordMetadata:
        """Send one record now; returns a future of its ``RecordMetadata``.

        ``timestamp`` is the record's CreateTime (``ProducerRecord.timestamp``); by default the
        send time, as Kafka's producer stamps a record without one. ``headers`` are
        ``(key, value)`` pairs (``ProducerRecord.headers``), kept in order, repeats allowed;
        ``headers_of(index)`` gives them back, and consumers read them with the record.
        """
        if self.closed:
            raise SimulationError("Cannot send after the producer is closed.")
        if self.txn is not None:
            self.txn.check_send()
        if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(
                timestamp, int | np.integer) or timestamp < 0):
            raise ProduceError(f"Invalid timestamp: {timestamp!r}. Timestamp should always be "
                              "non-negative or null.")
        if headers is not None:
            headers = _checked_headers(headers)
        state = self._topic(topic)
        now = self.kernel.now_ms
        if self.buffer.n and self.buffer.time_ms[self.buffer.n - 1] > now:
            raise SimulationError("This producer has a workload queued for later; use another "
                                  "Producer for interactive send() calls.")
        key_id = self._key_id(key)
        value_len = _value_length(value)
        i = self.buffer.extend(1).start
        self._fill(i, i + 1, now, state.topic_id, key_id, value_len)
        if timestamp is not None:
            if len(self._given_timestamps) <= i:
                grown = np.full(max(64, 2 * (i + 1)), -1, np.int64)
                grown[: len(self._given_timestamps)] = self._given_timestamps
                self._given_timestamps = grown
            self._given_timestamps[i] = timestamp
        if value is not None:
            self.values[i] = value
        if headers:
            self.headers[i] = headers
        if partition is not None:
            if not 0 <= partition < state.partitions:
                last = state.partitions - 1
                raise PartitionerError(f"Partition {partition} is out of range for topic "
                                       f"{topic!r}, which has partitions 0..{last}.")
            self.route(state, np.array([partition], np.int32), np.array([i]))
        else:
            self._dispatch(state, np.array([i]), single=True)
        self.wakeup()
        return FutureRecordMetadata(self, i)

    def headers_of(self, index: int) -> list[tuple[str, Any]]:
        """The headers record ``index`` was sent with (empty when none)."""
        return list(self.headers.get(index, []))

    def add_workload(self, workload: Workload) -> None:
        """Queue every record of ``workload`` to be sent at its send time."""
        if self.txn is not None:
            raise SimulationError("A transactional producer sends with send() inside "
                                  "begin_transaction() … commit_transaction(), not a workload.")
        state = self._topic(workload.topic)
        n = len(workload)
        if n == 0:
            return
        last = self.buffer.time_ms[self.buffer.n - 1] if self.buffer.n else -math.inf
        if workload.time_ms[0] < max(last, self.kernel.now_ms):
            raise SimulationError("A workload must start after the records already queued and "
                                  "not in the past; use another Producer for a second workload.")
        key_map = np.append(self._key_ids_of(list(workload.keys)), np.int32(-1))
        rows = self.buffer.extend(n)
        for a in range(0, n, FILL_CHUNK):  # a chunk at a time: small temporaries
            z = min(n, a + FILL_CHUNK)
            self._fill(rows.start + a, rows.start + z, workload.time_ms[a:z], state.topic_id,
                       key_map.take(workload.key_ids[a:z]), workload.value_bytes[a:z])
        if (self.custom is None and not self.config["partitioner.ignore.keys"]
                and int(self.buffer.key_id[rows].min()) >= 0):
            self._route_rows(state, rows)  # every record has a key: the keyed route
        else:
            self._dispatch(state, np.arange(rows.start, rows.stop), single=False)
        self.set_timer(self.kernel.now_ms)  # records are taken in as simulated time passes

    def flush(self) -> None:
        """Send everything now, without waiting for ``linger.ms``, and wait for the acks."""
        self.flushing = True
        self.wakeup()
        self.kernel.run_until(lambda _k: self.completed >= self.buffer.n)
        self.flushing = False

    # -- transactions (transactional.id set) ------------------------------------------------------

    @property
    def wire_producer_id(self) -> int:
        """The producer id brokers see: the coordinator's for a transactional producer."""
        return self.txn.producer_id if self.txn is not None else self.producer_id

    def _transactional(self) -> TransactionalState:
        if self.txn is None:
            from sim.errors import TransactionStateError

            raise TransactionStateError("Transactional method called on a producer without a "
                                        "transactional.id; set transactional.id in its config.")
        return self.txn

    def init_transactions(self) -> None:
        """Find the coordinator, get the producer id and a new epoch (fencing older instances
        with the same ``transactional.id`` and aborting their open transaction)."""
        self._drive(self._transactional().init_gen())

    def begin_transaction(self) -> None:
        """Start a transaction: the records sent until commit or abort belong to it."""
        self._transactional().begin()

    def send_offsets_to_transaction(self, offsets: dict[Any, int],
                                    group_metadata: dict[str, Any]) -> None:
        """Commit a consumer's ``offsets`` with the transaction (consume-transform-produce).

        ``group_metadata`` is ``consumer.group_metadata()``: group id, member id, generation.
        """
        from sim.records import TopicPartition

        wanted = {TopicPartition(*k) if isinstance(k, tuple) else k: int(getattr(v, "offset", v))
                  for k, v in offsets.items()}
        self._drive(self._transactional().send_offsets_gen(wanted, group_metadata))

    def commit_transaction(self) -> None:
        """Flush, then commit: the records and offsets become visible to read_committed."""
        self._drive(self._transactional().commit_gen())

    def abort_transaction(self) -> None:
        """Abort: read_committed consumers never see the transaction's records."""
        self._drive(self._transactional().abort_gen())

    def _drive(self, gen: Any) -> Any:
        """Run a blocking call: step the kernel until the generator returns (or raises)."""
        if self.kernel.env.active_process is not None:
            from sim.errors import TransactionStateError

            raise TransactionStateError(
                "A blocking producer call cannot run inside the simulation (e.g. in "
                "on_records): there, use consumer.run_step() with the producer's generators, "
                "as sim.consumer.transform does.")
        box: list[Any] = []

        def wrapper() -> Any:
            box.append((yield from gen))

        proc = self.kernel.env.process(wrapper())
        self.kernel.run_until(lambda _k: not proc.is_alive)
        if proc.is_alive:
            raise SimulationError(f"producer {self.client_id}: the call did not finish; nothing "
                                  "was left to simulate (is the coordinator's broker down?).")
        if not proc.ok:
            proc.defused = True
            raise proc.value
        return box[0] if box else None

    def flush_gen(self) -> Any:
        """``flush()`` inside the simulation: send now, wait until every record completed (or,
        for a transactional producer, until the transaction hits an error: batches of
        partitions it could not add would wait for ever)."""
        self.flushing = True
        self.wakeup()
        while self.completed < self.buffer.n and not (self.txn is not None
                                                      and self.txn.in_error):
            self._progress = self.kernel.env.event()
            yield self._progress
        self.flushing = False

    def notify_progress(self) -> None:
        if self._progress is not None and not self._progress.triggered:
            self._progress.succeed()

    def abort_incomplete_batches(self) -> None:
        """Fail the batches not sent yet (``abortUndrainedBatches``): they are not written.
        A dropped batch that already had sequences leaves a gap: the epoch is bumped."""
        now = self.kernel.now_ms
        for state in self.topics.values():
            state.catch_up()
            for p, dq in enumerate(state.accumulator.deques):
                while dq:
                    batch = state.accumulator.take_first(p)
                    if batch.base_sequence >= 0 and self.transactions is not None:
                        self.transactions.request_epoch_bump((state.name, p))
                    self._fail(state, batch, TRANSACTION_ABORTED, now)
                state.refresh(p)

    def crash(self) -> None:
        """The process died: records not sent yet are lost (they were only in its memory),
        batches already on the wire still arrive, and nothing more is sent or asked."""
        self.crashed = True
        self.closed = True
        self.abort_incomplete_batches()

    def close(self) -> None:
        """``KafkaProducer.close()``: send the records left and wait for them; a transactional
        producer then aborts a transaction still ongoing (``TransactionalState.close_gen``);
        then release the partitioner (``Partitioner.close``)."""
        if self.txn is not None:
            self._drive(self.close_gen())
            return
        self.flush()
        self._release()

    def close_gen(self) -> Any:
        """``close()`` inside the simulation, as an application's process closes its
        producer."""
        yield from self.flush_gen()
        if self.txn is not None:
            yield from self.txn.close_gen()
        self._release()

    def _release(self) -> None:
        self.closed = True
        if self.partitioner is not None and hasattr(self.partitioner, "close"):
            self.partitioner.close()

    def metadata(self, i: int) -> RecordMetadata:
        buf = self.buffer
        topic = self._topic_name(int(buf.topic_id[i]))
        return RecordMetadata(topic, int(buf.partition[i]), int(buf.offset[i]),
                              float(buf.time_ms[i]), float(buf.ack_ms[i] - buf.time_ms[i]))

    def results(self) -> pd.DataFrame:
        """One row per record: topic, key, partition, offset, send and ack times, latency, error.

        ``ack_ms`` is empty for records not (yet) acknowledged; ``error`` names why a record
        failed; ``record_id`` is how the record is named in every partition log.
        """
        buf = self.buffer
        n = buf.n
        key_id = buf.key_id[:n].astype(np.int64)  # room for len(self.keys)
        error = buf.error[:n]
        ack = np.where(error == 0, buf.ack_ms[:n], np.nan)
        return pd.DataFrame({
            "topic": _gather(list(self.topics), buf.topic_id[:n]),
            "key": _gather([*self.keys, None], np.where(key_id < 0, len(self.keys), key_id)),
            "partition": buf.partition[:n], "offset": buf.offset[:n],
            "send_ms": buf.time_ms[:n], "ack_ms": ack, "latency_ms": ack - buf.time_ms[:n],
            "value_bytes": buf.value_bytes[:n],
            "error": _gather([None, *ERRORS[1:]], error),
            "record_id": self.record_ids(np.arange(n)),
        })

    # -- routing records to partitions ----------------------------------------------------------

    def _dispatch(self, state: TopicState, idx: np.ndarray, single: bool) -> None:
        """Split new records by route: per-record partitioner, keyed, or sticky."""
        state.catch_up()  # the sticky and per-record routes append to any partition
        ignore_keys = self.config["partitioner.ignore.keys"]
        custom = self.custom
        if custom is not None and not custom.per_record:  # Kafka 4.0: partitioned ahead
            if single:
                custom.partition_all(state, idx)
            else:
                state.custom_pending = self._extend_stream(state.custom_pending, idx)
            return
        if custom is not None:  # before 4.0: partitioned when a sender pass takes them in
            state.per_record = self._extend_stream(state.per_record, idx)
            if custom.metadata is None:
                custom.metadata = self.cluster.metadata()
            if single:
                custom.ingest(state, self.kernel.now_ms)
            return
        key_id = self.buffer.key_id[idx]
        keyed = (key_id >= 0) if not ignore_keys else np.zeros(len(idx), bool)
        every = bool(keyed.all())
        if every:  # the usual keyed workload: no copies of the record indices
            self.route(state, self._partition_table(state)[key_id], idx)
        elif keyed.any():
            self.route(state, self._partition_table(state)[key_id[keyed]], idx[keyed])
        if not every:
            state.sticky = self._extend_stream(state.sticky, idx[~keyed])
            if single:
                self._ingest_sticky(state, self.kernel.now_ms)

    def route(self, state: TopicState, parts: np.ndarray, idx: np.ndarray) -> None:
        """Give records with known partitions to the per-partition keyed streams."""
        self._route_groups(state, split_by_partition(
            len(idx), lambda a, z: parts[a:z], lambda a, z: idx[a:z], self.buffer.n))

    def _route_rows(self, state: TopicState, rows: slice) -> None:
        """``route`` for buffer rows that all have keys, looking their partitions up a chunk at
        a time (no index or partition array as long as the workload)."""
        table = self._partition_table(state)
        key_id = self.buffer.key_id
        start = rows.start
        self._route_groups(state, split_by_partition(
            rows.stop - start, lambda a, z: table.take(key_id[start + a : start + z]), None,
            self.buffer.n, first=start))

    def _route_groups(self, state: TopicState, groups: dict[int, np.ndarray]) -> None:
        for p in sorted(groups):  # partitions with records, in order
            state.keyed[p] = self._extend_stream(state.keyed.get(p), groups.pop(p),
                                                 compact=True)
            state.advance_keyed(p, self.kernel.now_ms)
            state.refresh(p)

    def _extend_stream(self, stream: RecordStream | None, idx: np.ndarray,
                       compact: bool = False) -> RecordStream:
        buf = self.buffer
        if stream is None or stream.exhausted:
            return RecordStream(idx, buf.time_ms, buf.size, compact)
        rest = np.concatenate([stream.idx[stream.pos :], idx])
        return RecordStream(rest, buf.time_ms, buf.size, compact)

    def _partition_table(self, state: TopicState) -> np.ndarray:
        """Partition of every known key for this topic: each distinct key hashed once."""
        if len(state.partition_table) < len(self.keys):
            hashes = self._key_hash[: len(self.keys)].astype(np.int64)
            state.partition_table = ((hashes & 0x7FFFFFFF) % state.partitions).astype(np.int32)
        return state.partition_table

    def _ingest(self, now_ms: float) -> None:
        for state in self.topics.values():
            if state.custom_pending is not None and not state.custom_pending.exhausted:
                self.custom.partition_ahead(state, state.custom_pending, now_ms)
            if state.sticky is not None and not state.sticky.exhausted and (
                now_ms >= state.sticky_wake_ms or self.flushing
                or state.builtin.current is None
                or state.next_ready[state.builtin.current] <= now_ms
            ):
                # Before the sticky wake-up nothing can fill, open or switch a batch, so the
                # records can wait in the stream — unless the open batch is about to be sent.
                self._ingest_sticky(state, now_ms)
            if state.per_record is not None and not state.per_record.exhausted:
                self.custom.ingest(state, now_ms)

    def _ingest_sticky(self, state: TopicState, now_ms: float) -> None:
        """KIP-794: append runs to the sticky partition, switching as ``RecordAccumulator`` does.

        Before appending, if every batch of the sticky partition is full (a record just did not
        fit, or the queue was drained) and ``batch.size`` bytes were produced, switch and send the
        record elsewhere (``partitionChanged``). After appending, switch once ``2 × batch.size``
        bytes were produced, or ``batch.size`` bytes with the last batch exactly full
        (``updatePartitionInfo``). Each loop appends to one batch, so work is per batch.
        """
        stream = state.sticky
        assert stream is not None
        end = stream.end_before(now_ms)
        batch_size = max(1, self.config["batch.size"])
        meta = self.cluster.metadata()
        builtin = state.builtin
        acc = state.accumulator
        while stream.pos < end:
            p = builtin.peek(meta)
            if acc.all_batches_full(p) and builtin.update_partition_info(0, meta, True):
                self._switched(state, p, float(stream.t[stream.pos]))
                continue
            if state.keyed:  # this partition's keyed records sent earlier go first
                state.advance_keyed(p, float(stream.t[stream.pos]))
            limit = 2 * batch_size - builtin.produced_bytes
            # look no further than the records that 2 × batch.size bytes could possibly hold
            stop = min(end, stream.pos + 2 * batch_size // stream.min_size + 2)
            idx, cs, cs_base = stream.take(stop)
            consumed, appended = state.append(p, idx, max_bytes=limit, one_batch=True, cs=cs,
                                              cs_base=cs_base, times=stream.t[stream.pos : stop],
                                              in_order=stream.in_order)
            stream.pos += consumed
            if builtin.update_partition_info(appended, meta, acc.all_batches_full(p)):
                self._switched(state, p, float(stream.t[stream.pos - 1]))

    def _switched(self, state: TopicState, previous: int, time_ms: float) -> None:
        self.trace.emit(events.STICKY_SWITCH, time_ms, self.client_id, state.name,
                        state.builtin.current, previous)

    # -- the sender's loop and its callbacks ----------------------------------------------------

    def wakeup(self) -> None:
        """Run a sender pass now, as ``KafkaProducer`` wakes its sender thread."""
        if not self._in_pass:
            self._sender_pass()

    def pass_may_act(self, now_ms: float) -> bool:
        """Whether a sender pass now could do anything, after a response that freed no broker
        and failed no batch (Kafka's sender wakes for every response).

        It could not for records whose partitions are known (keyed, or partitioned ahead):
        nothing new is due, the timer already set stays right, and no expiry check is due.
        The sticky and per-record routes take records in at passes, so they always get one.
        """
        if self.flushing or now_ms >= self.next_expiry_check_ms:
            return True
        for state in self.topics.values():
            if ((state.sticky is not None and not state.sticky.exhausted)
                    or (state.per_record is not None and not state.per_record.exhausted)
                    or state.ready.earliest() <= now_ms):
                return True
        return False

    def _sender_pass(self) -> None:
        """Take in records sent so far, send what is ready, and set the next wake-up timer."""
        if self.crashed:  # a dead process sends nothing; its requests still time out
            self.arm_deadline()
            return
        self._in_pass = True
        now = self.kernel.now_ms
        transactions = self.transactions
        while True:
            if transactions is not None and (transactions.unresolved
                                             or transactions.epoch_bump_required):
                # Sender.runOnce, before anything is drained (nothing to do, mostly)
                transactions.maybe_resolve_sequences()
                if self.txn is None:  # a transactional producer bumps at its next abort
                    transactions.bump_epoch_if_needed()
            # records without a partition yet (sticky, per-record or partitioned-ahead routes)
            # are taken in at a pass, and only the sticky route reads the adaptive weights: a
            # keyed workload needs neither
            unrouted = False
            for state in self.topics.values():
                if (state.sticky is not None or state.per_record is not None
                        or state.custom_pending is not None):
                    unrouted = True
            if unrouted:
                self._ingest(now)
            if now >= self.next_expiry_check_ms:  # Kafka checks every loop; every 100 ms is plenty
                self.expire_batches(now)
                self.next_expiry_check_ms = now + EXPIRY_CHECK_MS
            if unrouted:
                self._update_load_stats()
            sent = self.sender.send_ready(now, self.flushing)
            blocked = self.sender.blocked
            if self.sender.held:  # their batches wait for an answer, not for the clock
                blocked = blocked | self.sender.held
            wake = math.inf
            for state in self.topics.values():
                topic_wake = state.next_wakeup_ms(blocked, now)
                if topic_wake < wake:
                    wake = topic_wake
            if (transactions is not None and self.txn is None
                    and (transactions.unresolved or transactions.epoch_bump_required)
                    and transactions.needs_pass()):
                continue  # an expiry left sequences to resolve: the next runOnce does it
            if not (sent and wake <= now):
                break
        self._in_pass = False
        self.set_timer(wake, now)
        sender = self.sender
        if sender.deadline_stale or (self._deadline_timers and not sender._requests):
            self.arm_deadline()  # otherwise the deadline can only have moved later: see there

    def arm_deadline(self) -> None:
        """Make sure the producer wakes when the oldest request in flight reaches
        ``request.timeout.ms`` or the oldest batch in flight ``delivery.timeout.ms``, even if
        nothing else happens by then.

        One timer at or before that moment is enough: one that fires early finds nothing due
        and arms the next. When nothing is in flight the timers are taken off the queue, so a
        run to the end stops at its last real event.

        Between two calls, answers and failures only move the deadline later: the timer
        armed before (``deadline_armed_ms``) is still at or before it. Only a request that may
        be due before that timer (``Sender.deadline_stale``), a timer firing, or nothing left in
        flight (its timers to take off) needs a call, so a sender pass calls this only then.
        """
        sender = self.sender
        sender.deadline_stale = False
        deadline = sender.deadline_ms()  # inf when nothing is in flight
        env = self.kernel.env
        if deadline == math.inf:
            for timer in self._deadline_timers:
                cancel_timer(env, timer)
            self._deadline_timers.clear()
            self.deadline_armed_ms = math.inf
        elif self.deadline_armed_ms > deadline:  # no timer by then
            timer = timer_at(env, env.now, deadline, self._on_deadline)
            self._deadline_timers[timer] = deadline
            self.deadline_armed_ms = deadline

    def _on_deadline(self, timer: simpy.Event) -> None:
        self._deadline_timers.pop(timer, None)
        self.deadline_armed_ms = min(self._deadline_timers.values(), default=math.inf)
        self.sender.deadline_stale = True  # the next timer, if any, is armed afresh
        now = self.kernel.now_ms
        self.sender.time_out_requests(now)
        self.next_expiry_check_ms = now  # check the batches now, not at the next 100 ms
        self.wakeup()

    def set_timer(self, wake_ms: float, now_ms: float | None = None) -> None:
        """Make sure a sender pass happens at ``wake_ms`` (an earlier pending one will do).
        ``now_ms``: the current time, if the caller has it at hand."""
        now = self.kernel.now_ms if now_ms is None else now_ms
        if wake_ms < math.inf and not now <= self._timer_ms <= wake_ms:
            self._timer_ms = max(wake_ms, now)
            timer = self.kernel.env.timeout(self._timer_ms - now)
            timer.callbacks.append(self.on_timer)
            self._timer = timer

    def on_timer(self, event: simpy.Event) -> None:
        if event is self._timer:  # later timers replace earlier-scheduled ones
            self._timer_ms = math.inf
            self._sender_pass()

    def _update_load_stats(self) -> None:
        """Refresh adaptive partitioning weights from queue sizes (``RecordAccumulator.ready``).

        Kafka builds them only once every partition of the topic has a batch queue, and leaves
        out partitions whose broker has not drained ready data within
        ``partitioner.availability.timeout.ms``.
        """
        if self.partitioner is not None:
            return
        for state in self.topics.values():
            if state.sticky is not None:
                break
        else:
            return  # only the sticky route reads the weights (asked at every sender pass)
        adaptive = self.config["partitioner.adaptive.partitioning.enable"]
        unavailable = self.sender.unavailable_nodes(
            self.config["partitioner.availability.timeout.ms"])
        for state in self.topics.values():
            if state.sticky is None:
                continue
            if not adaptive or state.unseen:
                state.builtin.update_partition_load_stats(None, [], 0)
                state.stats_version = -1
                continue
            if not unavailable and state.accumulator.version == state.stats_version:
                continue  # no queue gained or lost a batch: same weights
            state.stats_version = state.accumulator.version
            sizes = state.accumulator.queue_sizes()
            if not unavailable:
                state.builtin.update_partition_load_stats(sizes, range(state.partitions),
                                                          state.partitions)
                continue
            state.stats_version = -1
            leaders = state.leaders()
            ids = [p for p in range(state.partitions) if leaders[p] not in unavailable]
            length = len(ids)
            ids += [p for p in range(state.partitions) if leaders[p] in unavailable]
            state.builtin.update_partition_load_stats([sizes[p] for p in ids], ids, length)

    def record_columns(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The stored columns of records ``idx``, as a leader's log writes them (the log asks
        when it is read, for many batches at once: ``sim.broker.log.RecordSource``).

        Written out for the usual case (no clock skew, no timestamps given to ``send()``).
        """
        buf = self.buffer
        # NumPy converts smaller indices to its own index type at every gather: once is enough
        idx = idx.astype(np.int64, copy=False)
        if self.clock_skew_ms or len(self._given_timestamps):
            stamps = self.timestamps_of(idx)
        else:  # send times are never negative: converting to integers is the floor
            stamps = buf.time_ms[idx].astype(np.int64)
        return {"timestamp_ms": stamps, "key_hash": self._key_hash_table()[buf.key_id[idx]],
                "value_size": buf.value_bytes[idx], "record_id": (self.producer_id << 40) | idx}

    def max_timestamp(self, idx: np.ndarray) -> int:
        """The largest CreateTime of records ``idx`` (a batch the leader appends).

        A batch being handed to its leader (``handed``, keyed by its index array) kept the
        latest send time of its records as they were appended: no need to gather them.
        """
        if self.clock_skew_ms or len(self._given_timestamps):
            return largest_timestamp(self.timestamps_of(idx))
        batch = self.handed.get(id(idx))
        if batch is not None:  # send times are never negative: converting is the floor
            return int(batch.max_time_ms)
        # send times are never negative: the floor of the largest is the largest floor;
        # ``take`` gathers with 32-bit indices without first converting them (as ``[idx]`` does)
        return largest_timestamp(self.buffer.time_ms.take(idx))

    def timestamps_of(self, idx: np.ndarray) -> np.ndarray:
        """Records' CreateTime: the one given to ``send()``, else the send time on this
        producer's clock (``lab.clock.skew.ms``) in whole milliseconds, never below 0."""
        skew = self.clock_skew_ms
        if skew:
            times = self.buffer.time_ms[idx]  # a copy: shifted in place
            times += skew
            # converting rounds toward zero: below 0 that is not the floor, but 0 all the same
            stamps = np.maximum(times.astype(np.int64), 0)
        else:  # send times are never negative: converting to integers is the floor
            stamps = self.buffer.time_ms[idx].astype(np.int64)
        given = self._given_timestamps
        if len(given):
            inside = idx < len(given)
            chosen = np.full(len(idx), -1, np.int64)
            chosen[inside] = given[idx[inside]]
            stamps = np.where(chosen >= 0, chosen, stamps)
        return stamps

    def _key_hash_table(self) -> np.ndarray:
        """murmur2 of every key by key id, then 0 for no key (key id -1 picks the last)."""
        count = len(self.keys)
        if len(self._key_hash_by_id) != count + 1:
            self._key_hash_by_id = np.append(self._key_hash[:count], np.int32(0))
        return self._key_hash_by_id

    def record_ids(self, idx: np.ndarray) -> np.ndarray:
        """Ids that name this producer's records in any log: producer id << 40 | index."""
        return (self.producer_id << 40) | idx.astype(np.int64, copy=False)

    def complete_batches(self, batches: list[tuple[TopicState, ProducerBatch]], now_ms: float,
                         offsets: bool, base_offset: int | None = None) -> None:
        """Resolve the futures of every record in ``batches`` as acknowledged."""
        offset = base_offset if offsets and base_offset is not None else -1
        for state, batch in batches:
            self.complete_batch(state, batch, now_ms, offset)
        self.notify_progress()

    def complete_batch(self, state: TopicState, batch: ProducerBatch, now_ms: float,
                       base_offset: int) -> None:
        """``ProducerBatch.done`` for an acknowledged batch: its records' futures get the
        partition and offsets from ``base_offset`` (-1: none known, as with acks=0). The caller
        then calls ``notify_progress`` (once for several batches)."""
        if self.transactions is not None and batch.base_sequence >= 0:
            self.transactions.handle_completed_batch((state.name, batch.partition), batch)
        if batch.done:  # it expired while in flight: only its sequence was news
            return
        batch.done = True
        self.buffer.ack(batch.indices(), batch.partition, now_ms, base_offset)
        self.acked += batch.records
        self.completed += batch.records

    def retry_or_fail(self, state: TopicState, batch: ProducerBatch, error: str,
                      now_ms: float) -> None:
        """Put a failed batch back in its queue after a backoff, or fail it (``canRetry``)."""
        if batch.done:  # it expired while in flight
            return
        if self.crashed:  # a dead process retries nothing: the batch ends with its request
            self._fail(state, batch, error, now_ms)
            return
        if now_ms >= batch.created_ms + self.config["delivery.timeout.ms"]:
            # Kafka's sender expires it before it reads a later answer (getExpiredInflightBatches)
            self._expire(state, batch, now_ms)
            return
        attempts_left = batch.attempts < self.config["retries"]
        if self.transactions is not None:
            retriable = self.transactions.can_retry((state.name, batch.partition), batch, error)
        else:
            retriable = error in RETRIABLE
        if not attempts_left or not retriable:
            # a batch that could still have been retried leaves a hole in its sequences
            self._fail(state, batch, error, now_ms, adjust_sequences=attempts_left)
            return
        batch.attempts += 1
        backoff = min(self.config["retry.backoff.ms"] * 2 ** (batch.attempts - 1),
                      RETRY_BACKOFF_MAX_MS)
        batch.retry_at_ms = now_ms + backoff * float(self.rng.uniform(0.8, 1.2))  # KIP-580
        if error in NEW_LEADER_ERRORS:  # the answer names the partition's new leader (KIP-951)
            batch.maybe_update_leader_epoch(state.epoch_seen(batch.partition))
            if batch.leader_changed_for_retry:  # a new leader is tried without a backoff
                batch.retry_at_ms = now_ms
        state.catch_up(batch.partition)  # its queue as the sender passes left it
        state.accumulator.reenqueue(batch, in_sequence_order=self.idempotent)
        state.refresh(batch.partition)
        self.trace.emit(events.PRODUCE_RETRY, now_ms, self.client_id, state.name,
                        batch.partition, error, batch.attempts)

    def _fail(self, state: TopicState, batch: ProducerBatch, error: str, now_ms: float,
              adjust_sequences: bool = False) -> None:
        batch.done = True
        if self.transactions is not None and batch.base_sequence >= 0:
            self.transactions.handle_failed_batch((state.name, batch.partition), batch, error,
                                                  adjust_sequences)
        idx = batch.indices()
        self.buffer.error[idx] = ERRORS.index(error) if error in ERRORS else len(ERRORS) - 1
        self.buffer.ack_ms[idx] = now_ms
        self.buffer.partition[idx] = batch.partition
        self.failed += len(idx)
        self.completed += len(idx)
        if self.txn is not None and error != TRANSACTION_ABORTED:
            self.txn.batch_failed(error)
        self.notify_progress()
        self.trace.emit(events.PRODUCE_FAILED, now_ms, self.client_id, state.name,
                        batch.partition, error, len(idx))

    def _expire(self, state: TopicState, batch: ProducerBatch, now_ms: float) -> None:
        """Fail a batch whose ``delivery.timeout.ms`` ran out. If it was being retried,
        nobody knows whether the leader wrote it: its partition's sequence is unresolved."""
        self._fail(state, batch, DELIVERY_TIMEOUT, now_ms)
        if self.transactions is not None and batch.attempts > 0 and batch.base_sequence >= 0:
            self.transactions.mark_sequence_unresolved((state.name, batch.partition), batch)

    def expire_batches(self, now_ms: float) -> None:
        """Fail batches older than ``delivery.timeout.ms``: queued (``expiredBatches``) and in
        flight (``Sender.getExpiredInflightBatches``)."""
        limit = self.config["delivery.timeout.ms"]
        for state in self.topics.values():
            state.catch_up()
            for p, dq in enumerate(state.accumulator.deques):
                while dq and now_ms >= dq[0].created_ms + limit and dq[0].is_full:
                    self._expire(state, state.accumulator.take_first(p), now_ms)
                    state.refresh(p)
        for state, batch in self.sender.in_flight_batches():
            # compared as the deadline is computed, so a timer at it always finds it due
            if not batch.done and now_ms >= batch.created_ms + limit:
                self._expire(state, batch, now_ms)

    def broker_crashed(self, node: int) -> None:
        self.sender.broker_crashed(node)

    # -- bookkeeping ------------------------------------------------------------------------------

    def _topic(self, name: str) -> TopicState:
        state = self.topics.get(name)
        if state is None:
            state = TopicState(self, len(self.topics), name)
            self.topics[name] = state
        return state

    def _topic_name(self, topic_id: int) -> str:
        return list(self.topics)[topic_id]

    def _key_id(self, key: Any) -> int:
        return -1 if key is None else int(self._key_ids_of([key])[0])

    def _key_ids_of(self, keys: list[Any]) -> np.ndarray:
        """The producer's id of each key (-1 for None). A key seen for the first time is
        serialized and hashed once; the new keys are hashed together, in one murmur2 call."""
        new = [k for k in dict.fromkeys(keys) if k is not None and k not in self._key_ids]
        if new:
            first = len(self.keys)
            count = first + len(new)
            while count > len(self._key_hash):
                self._key_hash = _grow(self._key_hash)
                self._key_len = _grow(self._key_len)
            new_bytes = [serialize(k) for k in new]
            self._key_ids.update(zip(new, range(first, count), strict=True))
            self.keys.extend(new)
            self.key_bytes.extend(new_bytes)
            self._key_hash[first:count] = murmur2_array(new_bytes)
            self._key_len[first:count] = [len(b) for b in new_bytes]
        ids = self._key_ids
        return np.fromiter((-1 if k is None else ids[k] for k in keys), np.int32, len(keys))

    def _fill(self, start: int, stop: int, time_ms: Any, topic_id: int, key_ids: Any,
              value_bytes: Any) -> None:
        buf = self.buffer
        rows = slice(start, stop)
        buf.time_ms[rows] = time_ms
        buf.topic_id[rows] = topic_id
        count = len(self.keys)
        buf.fit("key_id", -1, count)  # so that code may also use count as an id
        buf.key_id[rows] = key_ids
        buf.value_bytes[rows] = value_bytes
        # Per-key columns are looked up with the key id; -1 (no key) picks the appended sentinel.
        sizes = lookup_record_sizes(np.append(self._key_len[:count], -1), buf.key_id[rows],
                                    buf.value_bytes[rows], self.compression_ratio)
        if len(sizes):
            buf.fit("size", int(sizes.min()), int(sizes.max()))
        buf.size[rows] = sizes


def _gather(values: list[Any], codes: np.ndarray) -> Any:
    """``values[codes]`` as a column. pandas types it from the values that occur (str, say),
    so those few are typed once and gathered, instead of typing every row."""
    used = np.bincount(codes, minlength=len(values)) > 0
    occurring = [v for v, u in zip(values, used, strict=False) if u]
    column = pd.Series(np.fromiter(occurring, dtype=object, count=len(occurring)))
    return column.array.take((np.cumsum(used) - 1)[codes])


def _checked_headers(headers: Any) -> list[tuple[str, Any]]:
    """Headers as ``(str key, value)`` pairs; Kafka's ``RecordHeader`` refuses a null key."""
    try:
        pairs = [tuple(h) for h in headers]
    except TypeError:
        raise ProduceError(f"headers={headers!r}: a list of (key, value) pairs, e.g. "
                           "[('trace-id', b'42')].") from None
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str):
            raise ProduceError(f"Header {pair!r}: a (key, value) pair with a string key "
                               "(Kafka's RecordHeader: 'Null header keys are not permitted').")
    return pairs  # type: ignore[return-value]


def _idempotence(config: dict[str, Any], given: dict[str, Any]) -> bool:
    """Kafka 3.0+: idempotence is on by default, but quietly off when other configs conflict.

    Conflicts are ``acks`` other than all, ``retries=0`` and more than five requests in flight.
    If the user *asked* for ``enable.idempotence=true``, or set a ``transactional.id`` (which
    needs idempotence), a conflict is a ConfigException instead
    (``ProducerConfig.postProcessAndValidateIdempotenceConfigs``).
    """
    transactional = config["transactional.id"] is not None
    if transactional and "enable.idempotence" in given and not config["enable.idempotence"]:
        raise ConfigError("Cannot set a transactional.id without also enabling idempotence "
                          "(enable.idempotence=false was set; remove it or the transactional.id).")
    conflicts = []
    if config["acks"] not in ("all", "-1"):
        conflicts.append(f"acks={config['acks']} (must be all)")
    if config["retries"] == 0:
        conflicts.append("retries=0 (must be > 0)")
    if config["max.in.flight.requests.per.connection"] > 5:
        conflicts.append("max.in.flight.requests.per.connection > 5")
    if not config["enable.idempotence"]:
        return False
    if conflicts:
        if "enable.idempotence" in given or transactional:
            raise ConfigError("enable.idempotence=true conflicts with " + ", ".join(conflicts)
                              + "; change those configs or set enable.idempotence=false.")
        return False
    return True


def _value_length(value: Any) -> int:
    data = serialize(value)
    return -1 if data is None else len(data)
