"""Custom partitioners (``partitioner.class``): when ``partition()`` is asked, and with what.

Kafka calls ``partition()`` in ``KafkaProducer.send``, once per record, with the cluster
metadata the producer has at that moment. The lab asks it at other moments — in bulk, or ahead
of time — only where the answers come out the same:

- **Before Kafka 4.0** records wait unpartitioned until a sender pass takes them in, because
  ``onNewBatch`` (and the second ``partition()`` call it brings, KAFKA-9965) depends on the
  batches of the moment. A pass comes only when something could become sendable; a metadata
  change first takes in the records sent before it, with the metadata they were sent under.
  With ``linger.ms=0`` every new batch is sendable at once, so ``partition()`` is asked ahead
  for records sent before anything else happens in the simulation (``look_ahead``).
- **Since Kafka 4.0** nothing about batches feeds back into the partitioner, so records are
  partitioned in chunks up to ``retry.backoff.ms`` ahead of their send time and routed like
  keyed ones.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim.errors import PartitionerError
from sim.partitioners import ClusterMetadata
from sim.producer.streams import RecordStream
from sim.records import serialize

if TYPE_CHECKING:
    from sim.producer import Producer
    from sim.producer.topic_state import TopicState


class CustomPartitioning:
    """Asks a producer's custom partitioner where its records go."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.partitioner = producer.partitioner
        self.buffer = producer.buffer
        self.cluster = producer.cluster
        self.kernel = producer.kernel
        self.per_record = producer.config["lab.kafka.version"] != "4.0"
        self.metadata: ClusterMetadata | None = None  # in force since the last change
        if self.per_record:
            producer.cluster.metadata_listeners.append(self.metadata_changed)

    def partition_all(self, state: TopicState, idx: np.ndarray) -> None:
        """Call the custom partitioner for each record, in send order, and route them."""
        meta = self.cluster.metadata()
        producer = self.producer
        if producer.values:  # records from send() carry values: one call at a time
            parts = [self.call(state, i, meta) for i in idx.tolist()]
        else:  # a workload's records: the same calls, in one loop
            partition = self.partitioner.partition
            keys = [*producer.keys, None]  # key id -1: no key
            key_bytes = [*producer.key_bytes, None]
            parts = []
            name, count = state.name, state.partitions
            for i, key_id in zip(idx.tolist(), self.buffer.key_id[idx].tolist(), strict=True):
                try:
                    p = partition(name, keys[key_id], key_bytes[key_id], None, None, meta)
                except Exception as exc:
                    raise self._failed(state, i, keys[key_id], exc) from exc
                if type(p) is not int or not 0 <= p < count:
                    p = self._checked(state, i, keys[key_id], p)
                parts.append(p)
        self.producer.route(state, np.array(parts, np.int32), idx)

    @property
    def ahead_ms(self) -> float:
        """How far ahead of their send time a Kafka 4.0 custom partitioner places records.

        Knowing where upcoming records go tells the sender when their batches fill, so they are
        partitioned in bulk, ahead of time — at most ``retry.backoff.ms`` (at least 1 ms) ahead,
        so the partitioner's view of the cluster is that old at most: about as long as a real
        producer takes to refresh its metadata after a request failed on a dead leader.
        """
        return max(float(self.producer.config["retry.backoff.ms"]), 1.0)

    def partition_ahead(self, state: TopicState, stream: RecordStream, now_ms: float) -> None:
        """Once the records partitioned so far run out within half of ``ahead_ms``, partition
        those sent up to ``ahead_ms`` from now (in chunks: each costs a new running sum of the
        partitions' streams)."""
        ahead = self.ahead_ms
        if stream.next_time() > now_ms + ahead / 2:
            return
        end = stream.end_before(now_ms + ahead)
        if end > stream.pos:
            idx = stream.idx[stream.pos : end]
            stream.pos = end
            self.partition_all(state, idx)

    def ingest(self, state: TopicState, now_ms: float, strictly_before: bool = False) -> None:
        """Before Kafka 4.0: partition each record, and again after ``onNewBatch`` (KAFKA-9965).

        Records are taken in at sender passes, in send order, with the metadata in force when
        they were sent (``metadata_changed`` takes in those sent before a change).

        Records that go where the previous one went and fit in the batch it is filling form a
        run (stream positions ``run … k-1``) appended in one call: the same batches as
        appending one by one, at a fraction of the work.
        """
        stream = state.per_record
        assert stream is not None
        end = (int(stream.t.searchsorted(now_ms, "left")) if strictly_before
               else stream.end_before(now_ms))
        if end <= stream.pos:
            return
        meta = self.metadata or self.cluster.metadata()
        acc = state.accumulator
        records = stream.idx[stream.pos : end]
        run, run_p, room = stream.pos, -1, -1  # records run… go to run_p, which has room left
        first_calls = state.first_calls
        for k, i, size in zip(range(stream.pos, end), records.tolist(),
                              self.buffer.size[records].tolist(), strict=True):
            p = first_calls.popleft() if first_calls else self.call(state, i, meta)
            if p == run_p and size <= room:
                room -= size
                continue
            self._append_run(state, run_p, run, k)
            run = k
            open_batch = acc.open_batch(p)
            if open_batch is None or acc.room(p) < size:
                # KafkaProducer.doSend before 4.0: abort, onNewBatch, partition again (KAFKA-9965)
                if open_batch is not None:  # tryAppend found no room: closeForRecordAppends
                    open_batch.full_ms = float(self.buffer.time_ms[i])
                    state.refresh(p)
                on_new_batch = getattr(self.partitioner, "on_new_batch", None)
                if on_new_batch is not None:
                    on_new_batch(state.name, meta, p)
                p = self.call(state, i, meta)
            # the room left after this record in the batch it joins: p's open batch if it
            # fits there, else a new one (full at once, -1, for a record bigger than a batch)
            room = acc.room(p) if acc.open_batch(p) is not None else -1
            room = room - size if size <= room else max(state.batch_room - size, -1)
            run_p = p
        self._append_run(state, run_p, run, end)
        stream.pos = end

    def _append_run(self, state: TopicState, p: int, start: int, stop: int) -> None:
        """Append per-record stream positions ``start … stop-1``, all bound for ``p``."""
        if start < stop:
            stream = state.per_record
            assert stream is not None
            state.append(p, stream.idx[start:stop], cs=stream.cs[start:stop],
                         cs_base=stream.cs.item(start - 1) if start else 0,
                         times=stream.t[start:stop], in_order=stream.in_order)

    def look_ahead(self, state: TopicState, sendable: set[int]) -> float:
        """Send time of the first waiting record that may make a batch sendable (linger.ms=0).

        Such a record goes to a partition whose leader can take a request, or opens a batch
        (and ``onNewBatch`` may move the partitioner on). Any other record joins a batch that
        waits for a busy leader, and changes nothing the sender could act on. To know where
        records go, ``partition()`` is asked ahead of time — only for records sent before
        anything else happens in the simulation, so its answers are those it would give when
        they are sent; the answers wait in ``state.first_calls``.
        """
        stream = state.per_record
        assert stream is not None
        answers = state.first_calls
        horizon = min(self.kernel.stop_ms, self.kernel.next_event_ms(self._is_own_timer))
        acc = state.accumulator
        meta = self.metadata or self.cluster.metadata()
        sizes = self.buffer.size
        rooms: dict[int, int] = {}  # room left in each open batch after the records so far

        def matters(p: int, size: int) -> bool:  # may the record make a batch sendable?
            if p in sendable:
                return True
            room = rooms.get(p)
            if room is None:
                room = acc.room(p) if acc.open_batch(p) is not None else -1
            rooms[p] = room - size
            return size > room

        pos = stream.pos
        known = len(answers)  # records answered by an earlier look ahead: no calls needed
        for j, (p, size) in enumerate(zip(answers, sizes[stream.idx[pos : pos + known]].tolist(),
                                          strict=True)):
            if matters(p, size):
                return stream.t.item(pos + j)
        for k in range(pos + known, len(stream.idx)):
            t = stream.t.item(k)
            if t >= horizon:
                return t
            i = stream.idx.item(k)
            p = self.call(state, i, meta)
            answers.append(p)
            if matters(p, sizes.item(i)):
                return t
        return math.inf

    def _is_own_timer(self, event: simpy.Event) -> bool:
        return bool(event.callbacks) and self.producer.on_timer in event.callbacks

    def metadata_changed(self) -> None:
        """The cluster's metadata changed: partition the records sent before the change with
        the metadata they were sent under, then show the partitioner the new metadata."""
        now = self.kernel.now_ms
        wake = math.inf
        for state in self.producer.topics.values():
            if state.per_record is not None and not state.per_record.exhausted:
                self.ingest(state, now, strictly_before=True)
                wake = min(wake, state.per_record.next_time())
        self.metadata = self.cluster.metadata()
        self.producer.set_timer(wake)  # leaders may have moved: look again at the next record

    def call(self, state: TopicState, i: int, meta: ClusterMetadata) -> int:
        """Ask the custom partitioner for record ``i``'s partition, and check the answer."""
        producer = self.producer
        key_id = self.buffer.key_id.item(i)
        key = key_bytes = value = None
        if key_id >= 0:
            key = producer.keys[key_id]
            key_bytes = producer.key_bytes[key_id]  # serialized once per key
        if producer.values:  # only send() gives values
            value = producer.values.get(i)
        try:
            p = self.partitioner.partition(state.name, key, key_bytes, value,
                                           None if value is None else serialize(value), meta)
        except Exception as exc:
            raise self._failed(state, i, key, exc) from exc
        if type(p) is not int or not 0 <= p < state.partitions:  # the quick test first
            p = self._checked(state, i, key, p)
        return p

    def _failed(self, state: TopicState, i: int, key: Any, exc: Exception) -> PartitionerError:
        return PartitionerError(
            f"{type(self.partitioner).__name__}.partition raised {type(exc).__name__}: "
            f"{exc} — for record #{i} (topic {state.name!r}, key {key!r}). Fix the "
            "partitioner and run again."
        )

    def _checked(self, state: TopicState, i: int, key: Any, p: Any) -> int:
        """A partitioner's answer that is not a plain int in range: accept a NumPy integer,
        refuse anything else with an error naming the partitioner and the record."""
        name = type(self.partitioner).__name__
        if isinstance(p, bool) or not isinstance(p, int | np.integer):
            raise PartitionerError(
                f"{name}.partition returned {p!r} ({type(p).__name__}) for record #{i} (topic "
                f"{state.name!r}, key {key!r}); it must return an int partition number."
            )
        if not 0 <= p < state.partitions:
            raise PartitionerError(
                f"{name}.partition returned {p} for record #{i} (topic {state.name!r}, key "
                f"{key!r}), but topic {state.name!r} has partitions 0..{state.partitions - 1}."
            )
        return int(p)
