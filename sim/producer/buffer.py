"""The producer's record buffer: every record it was asked to send, as numpy columns.

One row per record (send time, topic, key id, value size, size in a batch)
plus what came back for it (partition, offset, acknowledgement time, error code). Batches hold
index arrays into these columns, so records are never copied one by one.
"""

from __future__ import annotations

import numpy as np

_COLUMNS = {
    "time_ms": np.float64, "topic_id": np.int16, "key_id": np.int16,
    "value_bytes": np.int32, "size": np.int16, "error": np.int8,
}
"""The columns' types when the buffer is made; ``key_id`` and ``size`` are widened when a
record needs more (``RecordBuffer.fit``)."""
_ACK_COLUMNS = {
    "partition": (np.int32, -1), "offset": (np.int64, -1), "ack_ms": (np.float64, np.nan),
}
"""Type and value before acknowledgement of the columns written from the acknowledgements
recorded per batch, when first read (``RecordBuffer.write_acks``)."""
_BOUNDS = {np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max))
           for t in (np.int8, np.int16, np.int32, np.int64)}
PENDING_ACK_RECORDS = 1 << 16
"""Once the acknowledgement columns exist, records whose acknowledgements may wait, recorded
per batch, before they are written out; also how many are written out at a time."""

EXPIRY_CHECK_MS = 100.0  # how often queued batches are checked against delivery.timeout.ms
DELIVERY_TIMEOUT = "TimeoutException: delivery.timeout.ms expired"
TRANSACTION_ABORTED = "TransactionAbortedException: the transaction was aborted before it was sent"
ERRORS = ("", DELIVERY_TIMEOUT, "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
          "NOT_LEADER_OR_FOLLOWER", "NETWORK_EXCEPTION", "REQUEST_TIMEOUT", "REQUEST_TIMED_OUT",
          "OUT_OF_ORDER_SEQUENCE_NUMBER", "INVALID_PRODUCER_EPOCH", TRANSACTION_ABORTED,
          "INVALID_RECORD", "retries exhausted", "INVALID_TXN_STATE", "INVALID_PRODUCER_ID_MAPPING")
"""Error codes stored per record; 0 = acknowledged."""


class RecordBuffer:
    """Every record the producer was asked to send, as growable numpy columns.

    ``time_ms`` is the simulated send time; ``size`` a record's bytes in a batch (after
    compression). Its CreateTime and key hash are derived when a batch is sent, from the send time
    (``Producer.timestamps_of``) and from its ``key_id`` (each distinct key is hashed once).

    Acknowledgements are recorded once per batch (``ack``) and written into the ``partition``,
    ``offset`` and ``ack_ms`` columns only when one of them is read (then also whenever many
    are waiting): the columns always read as if every acknowledgement had been written at once.
    A large run that nobody reads during it never holds those 20 bytes per record: a batch's
    acknowledgement keeps its record indices, which its partition's record stream holds anyway.
    """

    time_ms: np.ndarray
    topic_id: np.ndarray
    key_id: np.ndarray
    value_bytes: np.ndarray
    size: np.ndarray
    error: np.ndarray

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self.cols = {name: np.empty(capacity, dtype) for name, dtype in _COLUMNS.items()}
        self._acks: dict[str, np.ndarray] | None = None  # the acknowledgement columns, once read
        self._pending: list[tuple[np.ndarray, int, float, int]] = []
        self._pending_records = 0
        self._expose()

    def _expose(self) -> None:
        self.__dict__.update(self.cols)

    @property
    def partition(self) -> np.ndarray:
        return self._ack_column("partition")

    @property
    def offset(self) -> np.ndarray:
        return self._ack_column("offset")

    @property
    def ack_ms(self) -> np.ndarray:
        return self._ack_column("ack_ms")

    def _ack_column(self, name: str) -> np.ndarray:
        self.write_acks()
        assert self._acks is not None
        return self._acks[name]

    def ack(self, idx: np.ndarray, partition: int, ack_ms: float, base_offset: int) -> None:
        """Records ``idx`` (in batch order) were acknowledged at ``ack_ms`` in ``partition``,
        at offsets from ``base_offset`` on (-1: offsets not known, as with acks=0)."""
        self._pending.append((idx, partition, ack_ms, base_offset))
        self._pending_records += len(idx)
        if self._acks is not None and self._pending_records >= PENDING_ACK_RECORDS:
            self.write_acks()

    def write_acks(self) -> None:
        """Write the acknowledgements recorded per batch into the per-record columns (made
        on first use), ``PENDING_ACK_RECORDS`` records at a time, in the order recorded."""
        if self._acks is None:
            capacity = len(self.time_ms)
            self._acks = {name: np.full(capacity, empty, dtype)
                          for name, (dtype, empty) in _ACK_COLUMNS.items()}
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_records = 0
        group: list[tuple[np.ndarray, int, float, int]] = []
        count = 0
        for entry in pending:
            group.append(entry)
            count += len(entry[0])
            if count >= PENDING_ACK_RECORDS:
                self._write_ack_group(group)
                group, count = [], 0
        if group:
            self._write_ack_group(group)

    def _write_ack_group(self, pending: list[tuple[np.ndarray, int, float, int]]) -> None:
        cols = self._acks
        assert cols is not None
        if len(pending) == 1:
            idx, partition, ack_ms, base = pending[0]
            cols["ack_ms"][idx] = ack_ms
            cols["partition"][idx] = partition
            if base >= 0:
                cols["offset"][idx] = np.arange(base, base + len(idx), dtype=np.int64)
            return
        idx = np.concatenate([p[0] for p in pending])
        lengths = np.fromiter((len(p[0]) for p in pending), np.int64, len(pending))
        cols["ack_ms"][idx] = np.repeat(np.fromiter((p[2] for p in pending), np.float64,
                                                    len(pending)), lengths)
        cols["partition"][idx] = np.repeat(np.fromiter((p[1] for p in pending), np.int64,
                                                       len(pending)), lengths)
        bases = np.fromiter((p[3] for p in pending), np.int64, len(pending))
        known = np.repeat(bases >= 0, lengths)
        starts = np.cumsum(lengths) - lengths
        offsets = np.repeat(bases - starts, lengths) + np.arange(len(idx), dtype=np.int64)
        cols["offset"][idx[known]] = offsets[known]

    def fit(self, name: str, low: int, high: int) -> None:
        """Widen integer column ``name`` if values from ``low`` to ``high`` do not fit its type
        (16 bits, then 32, then 64): key ids and record sizes are small in most runs."""
        col = self.cols[name]
        lowest, highest = _BOUNDS[col.dtype]
        if lowest <= low and high <= highest:
            return
        for dtype in (np.dtype(np.int32), np.dtype(np.int64)):
            lowest, highest = _BOUNDS[dtype]
            if lowest <= low and high <= highest:
                break
        self.cols[name] = col.astype(dtype)
        self._expose()

    def extend(self, count: int) -> slice:
        """Make room for ``count`` more records and return their slice."""
        if self._acks is not None:
            self.write_acks()
        need = self.n + count
        capacity = len(self.time_ms)
        if need > capacity:
            new_capacity = max(need, 2 * capacity)
            for cols in (self.cols, self._acks or {}):
                for name, col in cols.items():
                    grown = np.empty(new_capacity, col.dtype)
                    grown[: self.n] = col[: self.n]
                    cols[name] = grown
            self._expose()
        rows = slice(self.n, need)
        if self._acks is not None:
            for name, (_, empty) in _ACK_COLUMNS.items():
                self._acks[name][rows] = empty
        self.cols["error"][rows] = 0
        self.n = need
        return rows


def _grow(array: np.ndarray) -> np.ndarray:
    grown = np.empty(max(64, 2 * len(array)), array.dtype)
    grown[: len(array)] = array
    return grown
