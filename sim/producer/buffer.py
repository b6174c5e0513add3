"""The producer's record buffer: every record it was asked to send, as numpy columns.

One row per record (send time, CreateTime, topic, key id and hash, value size, size in a batch)
plus what came back for it (partition, offset, acknowledgement time, error code). Batches hold
index arrays into these columns, so records are never copied one by one.
"""

from __future__ import annotations

import numpy as np

_COLUMNS = {
    "time_ms": np.float64, "timestamp_ms": np.int64, "topic_id": np.int16, "key_id": np.int32,
    "key_hash": np.int32, "value_bytes": np.int32, "size": np.int64, "partition": np.int32,
    "offset": np.int64, "ack_ms": np.float64, "error": np.int8,
}

EXPIRY_CHECK_MS = 100.0  # how often queued batches are checked against delivery.timeout.ms
DELIVERY_TIMEOUT = "TimeoutException: delivery.timeout.ms expired"
TRANSACTION_ABORTED = "TransactionAbortedException: the transaction was aborted before it was sent"
ERRORS = ("", DELIVERY_TIMEOUT, "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
          "NOT_LEADER_OR_FOLLOWER", "NETWORK_EXCEPTION", "REQUEST_TIMEOUT", "REQUEST_TIMED_OUT",
          "OUT_OF_ORDER_SEQUENCE_NUMBER", "INVALID_PRODUCER_EPOCH", TRANSACTION_ABORTED,
          "INVALID_RECORD", "retries exhausted")
"""Error codes stored per record; 0 = acknowledged."""


class RecordBuffer:
    """Every record the producer was asked to send, as growable numpy columns.

    ``time_ms`` is the simulated send time; ``timestamp_ms`` the record's CreateTime as Kafka
    stores it (whole milliseconds); ``size`` its bytes in a batch (after compression).
    """

    time_ms: np.ndarray
    timestamp_ms: np.ndarray
    topic_id: np.ndarray
    key_id: np.ndarray
    key_hash: np.ndarray
    value_bytes: np.ndarray
    size: np.ndarray
    partition: np.ndarray
    offset: np.ndarray
    ack_ms: np.ndarray
    error: np.ndarray

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self.cols = {name: np.empty(capacity, dtype) for name, dtype in _COLUMNS.items()}
        self.__dict__.update(self.cols)

    def extend(self, count: int) -> slice:
        """Make room for ``count`` more records and return their slice."""
        need = self.n + count
        capacity = len(self.time_ms)
        if need > capacity:
            new_capacity = max(need, 2 * capacity)
            for name, col in self.cols.items():
                grown = np.empty(new_capacity, col.dtype)
                grown[: self.n] = col[: self.n]
                self.cols[name] = grown
            self.__dict__.update(self.cols)
        rows = slice(self.n, need)
        self.partition[rows] = -1
        self.offset[rows] = -1
        self.ack_ms[rows] = np.nan
        self.error[rows] = 0
        self.n = need
        return rows


def _grow(array: np.ndarray) -> np.ndarray:
    grown = np.empty(max(64, 2 * len(array)), array.dtype)
    grown[: len(array)] = array
    return grown
