"""The idempotent producer's sequence bookkeeping (the idempotent part of Kafka's
``TransactionManager`` with ``TxnPartitionEntry``, KIP-98 and KIP-360).

Per partition the producer keeps the next sequence to give a batch, the last sequence the
leader acknowledged, and its *in-flight* batches: sent at least once and not yet acknowledged
or failed. A batch keeps the producer epoch and sequences it was first sent with for all its
retries — giving a retry new ones could write it twice.

When a partition's sequences can no longer be trusted the producer bumps its epoch
(``requestEpochBumpForPartition``, done at the next sender pass):

- a batch failed after it was sent (the leader may or may not have written it), or
- the leader answered OUT_OF_ORDER_SEQUENCE_NUMBER for the batch right after the last
  acknowledged one (a real gap), or
- a batch expired while being retried and no in-flight batch resolved its sequence.

The bump rewrites the in-flight batches of *that* partition from sequence 0 under the new epoch
(``startSequencesAtBeginning``, ``ProducerBatch.resetProducerState``). Other partitions keep
their old epoch until their in-flight batches are done; only then does their next batch start
at sequence 0 under the new epoch. The drain rules keep order
(``RecordAccumulator.shouldStopDrainBatchesForPartition``): a partition with in-flight batches
of an old epoch, or with an unresolved sequence, sends no new batch, and a retried batch goes
only when it is the first in flight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.broker.producer_state import OUT_OF_ORDER_SEQUENCE_NUMBER, last_sequence

if TYPE_CHECKING:
    from sim.producer.accumulator import ProducerBatch

NO_LAST_ACKED_SEQUENCE_NUMBER = -1
NO_EPOCH = -1

TopicPartition = tuple[str, int]

RETRIABLE = frozenset({"NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
                       "NOT_LEADER_OR_FOLLOWER", "NETWORK_EXCEPTION", "REQUEST_TIMEOUT",
                       "REQUEST_TIMED_OUT"})
"""Errors whose Kafka exception is a ``RetriableException``."""


class TxnPartitionEntry:
    """One partition's sequences and in-flight batches (Kafka's ``TxnPartitionEntry``)."""

    __slots__ = ("in_flight", "last_acked_sequence", "next_sequence", "producer_epoch")

    def __init__(self) -> None:
        self.producer_epoch = NO_EPOCH
        self.next_sequence = 0
        self.last_acked_sequence = NO_LAST_ACKED_SEQUENCE_NUMBER
        self.in_flight: list[ProducerBatch] = []  # kept sorted by (epoch, base sequence)

    def first_in_flight(self) -> ProducerBatch | None:
        return self.in_flight[0] if self.in_flight else None

    def add(self, batch: ProducerBatch) -> None:
        in_flight = self.in_flight
        last = in_flight[-1] if in_flight else None
        in_flight.append(batch)
        # usually the newest batch goes last: the (stable) sort would leave the list as it is
        if last is not None and ((last.producer_epoch, last.base_sequence)
                                 > (batch.producer_epoch, batch.base_sequence)):
            in_flight.sort(key=lambda b: (b.producer_epoch, b.base_sequence))

    def remove(self, batch: ProducerBatch) -> None:
        in_flight = self.in_flight
        if in_flight and in_flight[0] is batch:  # the usual case: answers come in order
            del in_flight[0]
        elif batch in in_flight:
            in_flight.remove(batch)

    def start_sequences_at_beginning(self, producer_epoch: int) -> None:
        """Number the in-flight batches again from 0 under ``producer_epoch``."""
        sequence = 0
        for batch in self.in_flight:
            batch.producer_epoch = producer_epoch
            batch.base_sequence = sequence
            batch.sequence_reset = True
            sequence += batch.records
        self.producer_epoch = producer_epoch
        self.next_sequence = sequence
        self.last_acked_sequence = NO_LAST_ACKED_SEQUENCE_NUMBER


class TransactionManager:
    """Producer epoch and per-partition sequences of an idempotent producer."""

    def __init__(self, transactional: bool = False) -> None:
        self.transactional = transactional  # a transactional.id is set (isTransactional)
        self.producer_epoch = 0
        self.partitions: dict[TopicPartition, TxnPartitionEntry] = {}
        self.epoch_bump_required = False
        self._to_rewrite: dict[TopicPartition, None] = {}  # ordered set
        # partition → next sequence; read at every sender pass, like epoch_bump_required
        self.unresolved: dict[TopicPartition, int] = {}

    def __repr__(self) -> str:
        return (f"TransactionManager(epoch={self.producer_epoch}, "
                f"unresolved={list(self.unresolved)})")

    def entry(self, tp: TopicPartition) -> TxnPartitionEntry:
        entry = self.partitions.get(tp)
        if entry is None:
            entry = self.partitions[tp] = TxnPartitionEntry()
        return entry

    # -- draining -----------------------------------------------------------------------------

    def should_stop_drain(self, tp: TopicPartition, batch: ProducerBatch) -> bool:
        """Whether the partition's head batch must wait (``shouldStopDrainBatchesForPartition``).

        Asked for every batch drained, so it reads the table without adding an entry: a
        partition without one has nothing in flight.
        """
        entry = self.partitions.get(tp)
        if batch.base_sequence < 0:
            if (entry is not None and entry.in_flight
                    and entry.producer_epoch != self.producer_epoch):
                return True  # old-epoch batches in flight: a new epoch's sequence 0 would race
            return tp in self.unresolved  # whether earlier sequences were written is not known
        # a retry goes only when it is the first in flight: one request at a time until then
        return (entry is not None and bool(entry.in_flight)
                and batch.base_sequence != entry.in_flight[0].base_sequence)

    def assign_sequence(self, tp: TopicPartition, batch: ProducerBatch) -> None:
        """Give a batch drained for the first time its epoch and sequences; track it."""
        entry = self.partitions.get(tp) or self.entry(tp)  # a call only for a new partition
        if entry.producer_epoch != self.producer_epoch and not entry.in_flight:
            entry.start_sequences_at_beginning(self.producer_epoch)  # maybeUpdateProducerIdAndEpoch
        batch.producer_epoch = self.producer_epoch
        batch.base_sequence = entry.next_sequence
        entry.next_sequence += batch.records
        entry.add(batch)

    # -- responses ----------------------------------------------------------------------------

    def handle_completed_batch(self, tp: TopicPartition, batch: ProducerBatch) -> None:
        entry = self.partitions.get(tp) or self.entry(tp)
        last = last_sequence(batch.base_sequence, batch.records)
        if last > entry.last_acked_sequence:
            entry.last_acked_sequence = last
        entry.remove(batch)

    def handle_failed_batch(self, tp: TopicPartition, batch: ProducerBatch, error: str,
                            adjust_sequences: bool) -> None:
        """A batch failed for good. Its sequences are a hole the leader would refuse to skip,
        unless it never left the producer: bump the epoch for this partition."""
        self.entry(tp).remove(batch)
        if error == OUT_OF_ORDER_SEQUENCE_NUMBER or adjust_sequences:
            self.request_epoch_bump(tp)

    def can_retry(self, tp: TopicPartition, batch: ProducerBatch, error: str) -> bool:
        """Whether a batch that got ``error`` is retried (``TransactionManager.canRetry``).

        OUT_OF_ORDER_SEQUENCE_NUMBER for the batch after the last acknowledged one is a real
        gap (say, an unclean election truncated acknowledged batches): an idempotent producer
        bumps its epoch and retries; a transactional one lets the batch fail, so the
        transaction must be aborted (the error is not retriable).
        """
        if error != OUT_OF_ORDER_SEQUENCE_NUMBER:
            return error in RETRIABLE
        unresolved = self.unresolved.get(tp)
        if unresolved is None and (batch.sequence_reset or not self._is_next(tp, batch)):
            return True  # an earlier batch failed first: this one follows it when retried
        if self.transactional:
            return False
        if unresolved is None or batch.base_sequence == unresolved:
            self.request_epoch_bump(tp)  # a real gap: start this partition over
        return True

    def _is_next(self, tp: TopicPartition, batch: ProducerBatch) -> bool:
        return batch.base_sequence - self.entry(tp).last_acked_sequence == 1

    # -- epochs and unresolved sequences -------------------------------------------------------

    def request_epoch_bump(self, tp: TopicPartition) -> None:
        self.epoch_bump_required = True
        self._to_rewrite[tp] = None

    def mark_sequence_unresolved(self, tp: TopicPartition, batch: ProducerBatch) -> None:
        """A batch expired after it was retried: nobody knows whether the leader has it."""
        following = last_sequence(batch.base_sequence, batch.records) + 1
        self.unresolved[tp] = max(self.unresolved.get(tp, following), following)

    def has_unresolved(self, tp: TopicPartition) -> bool:
        return tp in self.unresolved

    def maybe_resolve_sequences(self) -> None:
        """Once a partition with an unresolved sequence has nothing in flight, either later
        batches were acknowledged (resolved) or the epoch must be bumped."""
        if not self.unresolved:  # the usual case, at every sender pass
            return
        for tp in list(self.unresolved):
            entry = self.entry(tp)
            if entry.in_flight:
                continue
            if entry.next_sequence - entry.last_acked_sequence != 1:
                self.request_epoch_bump(tp)
            del self.unresolved[tp]

    def needs_pass(self) -> bool:
        """Whether the next sender pass has sequences to resolve or an epoch to bump."""
        return self.epoch_bump_required or (bool(self.unresolved) and any(
            not self.entry(tp).in_flight for tp in self.unresolved))

    def reset_producer_id_and_epoch(self, producer_epoch: int) -> None:
        """A transactional producer got a new epoch from its coordinator (InitProducerId):
        every partition's sequences start again at 0 (``resetSequenceNumbers``)."""
        self.producer_epoch = producer_epoch
        self.partitions.clear()
        self.epoch_bump_required = False
        self._to_rewrite.clear()
        self.unresolved.clear()

    def bump_epoch_if_needed(self) -> bool:
        """``bumpIdempotentEpochAndResetIdIfNeeded``: True if the epoch was bumped."""
        if not self.epoch_bump_required:
            return False
        self.producer_epoch += 1
        for tp in self._to_rewrite:
            self.entry(tp).start_sequences_at_beginning(self.producer_epoch)
            self.unresolved.pop(tp, None)
        self._to_rewrite.clear()
        self.epoch_bump_required = False
        return True
