"""Producer state: what a partition replica remembers of each idempotent producer.

Mirrors Kafka's ``ProducerStateManager``, ``ProducerStateEntry`` and ``ProducerAppendInfo``
(storage module, Kafka 4.0). For every producer id that wrote to the partition a replica keeps
one entry: the producer epoch of its latest batch and the metadata (first and last sequence,
first and last offset) of its last ``NUM_BATCHES_TO_RETAIN`` batches of that epoch.

The state is part of the log: every replica updates it as it appends a batch — the leader for
the batches producers send, a follower for the batches it fetches — and rebuilds it from the
log when the log is truncated. So a follower that becomes leader knows every producer's last
sequences, exactly as the old leader did.

The leader uses it for each batch a producer sends (``UnifiedLog.analyzeAndValidateProducerState``):

- *duplicate*: same producer id and epoch, and exactly the first **and** last sequence of a
  retained batch — a retry of a batch already written; the answer is that batch's offsets.
- *INVALID_PRODUCER_EPOCH*: an epoch older than the one the partition last saw.
- *OUT_OF_ORDER_SEQUENCE_NUMBER*: a new epoch must start at sequence 0; within an epoch a batch
  must start right after the last sequence written (``inSequence``).
- A producer the partition has no entry for may start at any sequence (its batches may have
  been removed, e.g. by retention).

Worked example: batches of 3 and 2 records (sequences 0–2 and 3–4) are written at offsets 10–12
and 13–14. A retry of 3–4 is a duplicate (offsets 13–14); a batch 3–5 is not (its last sequence
differs) and is out of order, as is 6–7 (5 is missing); 5–7 is appended.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

NUM_BATCHES_TO_RETAIN = 5  # ProducerStateEntry.NUM_BATCHES_TO_RETAIN
NO_PRODUCER_EPOCH = -1  # RecordBatch.NO_PRODUCER_EPOCH
NO_SEQUENCE = -1  # RecordBatch.NO_SEQUENCE
MAX_SEQUENCE = 2**31 - 1  # sequences wrap around after Integer.MAX_VALUE

OUT_OF_ORDER_SEQUENCE_NUMBER = "OUT_OF_ORDER_SEQUENCE_NUMBER"
INVALID_PRODUCER_EPOCH = "INVALID_PRODUCER_EPOCH"


class BatchMetadata(NamedTuple):
    """One retained batch of a producer (Kafka's ``BatchMetadata``)."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int


class ProducerStateEntry:
    """A producer's epoch and its last few batches on one partition."""

    __slots__ = ("batches", "producer_epoch")

    def __init__(self) -> None:
        self.producer_epoch = NO_PRODUCER_EPOCH
        self.batches: deque[BatchMetadata] = deque(maxlen=NUM_BATCHES_TO_RETAIN)

    def __repr__(self) -> str:
        return f"ProducerStateEntry(epoch={self.producer_epoch}, batches={list(self.batches)})"

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def add_batch(self, producer_epoch: int, batch: BatchMetadata) -> None:
        """Remember a written batch; a new epoch forgets the batches of the old one."""
        if producer_epoch != self.producer_epoch:
            self.batches.clear()
            self.producer_epoch = producer_epoch
        self.batches.append(batch)  # the deque drops the oldest beyond NUM_BATCHES_TO_RETAIN

    def find_duplicate_batch(self, producer_epoch: int, first_seq: int,
                             last_seq: int) -> BatchMetadata | None:
        """The retained batch with this epoch and exactly this sequence range, if any."""
        if producer_epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == MAX_SEQUENCE)


def last_sequence(base_sequence: int, records: int) -> int:
    """The sequence of a batch's last record (``DefaultRecordBatch.lastSequence``, wrapping)."""
    return (base_sequence + records - 1) % (MAX_SEQUENCE + 1)


class ProducerStateManager:
    """Every producer's entry on one replica of one partition (Kafka's ``ProducerStateManager``)."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerStateEntry] = {}

    def __repr__(self) -> str:
        return f"ProducerStateManager({self.producers})"

    def last_entry(self, producer_id: int) -> ProducerStateEntry | None:
        return self.producers.get(producer_id)

    def find_duplicate_batch(self, producer_id: int, producer_epoch: int, first_seq: int,
                             last_seq: int) -> BatchMetadata | None:
        """A batch already written with this producer id, epoch and sequence range."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return None
        return entry.find_duplicate_batch(producer_epoch, first_seq, last_seq)

    def check_append(self, producer_id: int, producer_epoch: int, first_seq: int) -> str | None:
        """Validate a producer's batch before the leader appends it; an error name, or None.

        ``ProducerAppendInfo.checkProducerEpoch`` and ``checkSequence`` for a client append.
        """
        entry = self.producers.get(producer_id)
        if entry is None or entry.producer_epoch == NO_PRODUCER_EPOCH:
            return None  # no state for this producer: any sequence is accepted
        if producer_epoch < entry.producer_epoch:
            return INVALID_PRODUCER_EPOCH
        if producer_epoch != entry.producer_epoch:
            return None if first_seq == 0 else OUT_OF_ORDER_SEQUENCE_NUMBER
        return None if _in_sequence(entry.last_seq, first_seq) else OUT_OF_ORDER_SEQUENCE_NUMBER

    def analyze_and_validate(self, producer_id: int, producer_epoch: int, first_seq: int,
                             records: int) -> tuple[BatchMetadata | None, str | None]:
        """The leader's look at a producer's batch before appending it; ``(duplicate, error)``.

        Kafka's ``UnifiedLog.analyzeAndValidateProducerState``: first the retained batch this
        one repeats (``find_duplicate_batch``: the answer is its offsets), else the error of
        ``check_append`` (None: append it). Done in one pass over the producer's entry, as it
        runs for every batch an idempotent producer sends.
        """
        entry = self.producers.get(producer_id)
        if entry is None:
            return None, None  # no state for this producer: any sequence is accepted
        if producer_epoch == entry.producer_epoch:
            batches = entry.batches
            if batches and first_seq == batches[-1].last_seq + 1:  # the next batch in
                return None, None  # sequence (the usual case): no retained batch repeats it
            last_seq = (first_seq + records - 1) % (MAX_SEQUENCE + 1)  # last_sequence()
            for batch in batches:
                if batch.first_seq == first_seq and batch.last_seq == last_seq:
                    return batch, None
            if producer_epoch == NO_PRODUCER_EPOCH:
                return None, None
            written = batches[-1].last_seq if batches else NO_SEQUENCE
            if first_seq == written + 1 or (first_seq == 0 and written == MAX_SEQUENCE):
                return None, None  # _in_sequence
            return None, OUT_OF_ORDER_SEQUENCE_NUMBER
        if entry.producer_epoch == NO_PRODUCER_EPOCH:
            return None, None
        if producer_epoch < entry.producer_epoch:
            return None, INVALID_PRODUCER_EPOCH
        return None, (None if first_seq == 0 else OUT_OF_ORDER_SEQUENCE_NUMBER)

    def update(self, producer_id: int, producer_epoch: int, first_seq: int, records: int,
               first_offset: int) -> None:
        """Record a batch appended to the log (by the leader or by a follower's fetch).

        Every replica runs this for every batch it appends, so ``ProducerStateEntry.add_batch``
        and ``last_sequence`` are written out here, and the ``BatchMetadata`` is made without
        the Python-level ``__new__`` a NamedTuple calls (half the cost).
        """
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerStateEntry()
        if producer_epoch != entry.producer_epoch:  # a new epoch forgets the old one's batches
            entry.batches.clear()
            entry.producer_epoch = producer_epoch
        entry.batches.append(tuple.__new__(BatchMetadata, (  # the deque drops the oldest
            first_seq, (first_seq + records - 1) % (MAX_SEQUENCE + 1), first_offset,
            first_offset + records - 1)))

    def check_epoch(self, producer_id: int, producer_epoch: int) -> str | None:
        """A batch without a sequence — a transaction marker, or the transactional offsets a
        group coordinator writes for a producer — from an older epoch than the partition's
        is refused (``ProducerAppendInfo.checkProducerEpoch``, for every batch that has a
        producer id, whatever its origin but replication)."""
        entry = self.producers.get(producer_id)
        if entry is not None and producer_epoch < entry.producer_epoch:
            return INVALID_PRODUCER_EPOCH
        return None

    def update_epoch(self, producer_id: int, producer_epoch: int) -> None:
        """A batch without a sequence (a marker, a coordinator's transactional offsets) written
        with ``producer_epoch``: a newer epoch fences the older one here
        (``ProducerStateEntry.maybeUpdateProducerEpoch``), so its late batches are refused."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerStateEntry()
        if producer_epoch != entry.producer_epoch:
            entry.batches.clear()
            entry.producer_epoch = producer_epoch

    def reload(self, batches: Iterable[tuple[int, int, int, int, int]]) -> None:
        """Rebuild from the log's batches, oldest first, as ``truncateAndReload`` replays the
        log after a truncation: ``(producer id, producer epoch, base sequence, records,
        base offset)`` for each batch of an idempotent producer."""
        self.producers = {}
        for producer_id, producer_epoch, first_seq, records, first_offset in batches:
            self.update(producer_id, producer_epoch, first_seq, records, first_offset)
