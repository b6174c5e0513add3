"""Transactions in one partition's log: where open ones start, and which ones were aborted.

Mirrors two of Kafka's storage parts (Kafka 4.0, KIP-98):

- ``ProducerStateManager``'s *ongoing transactions*: for every producer with an open
  transaction, the offset of its first transactional batch here. The oldest one is the *first
  unstable offset*. A transaction whose marker is written stays unstable until the high
  watermark passes the marker (``unreplicatedTxns``), so the **last stable offset** (LSO) is
  ``min(first unstable offset, high watermark)``: a ``read_committed`` consumer reads below it.
- the segments' *transaction index* (``TransactionIndex``, ``.txnindex`` files): one
  ``AbortedTxn`` per aborted transaction — producer id, first offset, last offset (the abort
  marker's) and the LSO when it was aborted. A ``read_committed`` fetch gets the aborted
  transactions that overlap what it reads and drops their records (``CompletedFetch``).

A *control batch* holds one control record that takes an offset like any other record; its key
says ``ControlRecordType`` ABORT (0) or COMMIT (1). The lab keeps that type in the record's
``key_hash`` column.

Worked example: producer 7 writes transactional records at offsets 0–2, producer 8 at 3, then
7's abort marker lands at 4 and 8's commit marker at 5. While both are open the first unstable
offset is 0; after the markers (HW 6) the LSO is 6, the index holds AbortedTxn(7, 0, 4), and a
read_committed consumer gets only offset 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

ABORT = 0  # ControlRecordType.ABORT
COMMIT = 1  # ControlRecordType.COMMIT


class _Batch(Protocol):
    base_offset: int
    producer_id: int
    is_control: bool

    @property
    def last_offset(self) -> int: ...


class AbortedTxn(NamedTuple):
    """One entry of the transaction index (Kafka's ``AbortedTxn``)."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    """Open transactions and the aborted-transaction index of one replica's log."""

    def __init__(self) -> None:
        self.ongoing: dict[int, int] = {}  # producer id → first offset of its open transaction
        self.completed: list[tuple[int, int]] = []  # (first offset, marker offset), unreplicated
        self.aborted: list[AbortedTxn] = []
        self.any = False  # whether the log ever held a transactional batch

    def __repr__(self) -> str:
        return f"TransactionIndex(ongoing={self.ongoing}, aborted={self.aborted})"

    def append(self, batch: _Batch, control_type: int) -> None:
        """Account for a transactional batch just appended (data or marker)."""
        self.any = True
        pid = batch.producer_id
        if not batch.is_control:
            self.ongoing.setdefault(pid, batch.base_offset)
            return
        first = self.ongoing.pop(pid, None)
        if first is None:
            return  # a marker for a transaction with no data here (e.g. a retried marker)
        self.completed.append((first, batch.base_offset))
        if control_type == ABORT:
            lso = min([first, *self.ongoing.values()])
            self.aborted.append(AbortedTxn(pid, first, batch.base_offset, lso))

    def on_high_watermark_updated(self, high_watermark: int) -> None:
        """Forget the decided transactions whose marker is now below the high watermark
        (``ProducerStateManager.onHighWatermarkUpdated`` → ``removeUnreplicatedTransactions``),
        so a log whose LSO nobody reads (a follower's) keeps none of them. Markers are in
        offset order: the ones to forget are at the front."""
        completed = self.completed
        passed = 0
        while passed < len(completed) and completed[passed][1] < high_watermark:
            passed += 1
        del completed[:passed]

    def first_unstable_offset(self, high_watermark: int) -> int:
        """The oldest offset of a transaction not yet decided below ``high_watermark``."""
        self.completed = [(f, m) for f, m in self.completed if m >= high_watermark]
        firsts = [*self.ongoing.values(), *(f for f, _ in self.completed)]
        return min(firsts) if firsts else high_watermark

    def aborted_between(self, start: int, stop: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping offsets ``start … stop-1`` (``collectAbortedTxns``)."""
        return [t for t in self.aborted if t.last_offset >= start and t.first_offset < stop]

    def control_type(self, producer_id: int, offset: int) -> int:
        """ABORT if the marker of ``producer_id`` at ``offset`` ends an aborted transaction."""
        for txn in self.aborted:
            if txn.producer_id == producer_id and txn.last_offset == offset:
                return ABORT
        return COMMIT

    def reload(self, batches: Iterable[tuple[_Batch, int]]) -> None:
        """Rebuild from the transactional batches a log still holds, oldest first (after a
        truncation; Kafka rebuilds producer state and truncates the index likewise)."""
        self.ongoing, self.completed, self.aborted = {}, [], []
        for batch, control_type in batches:
            self.append(batch, control_type)
