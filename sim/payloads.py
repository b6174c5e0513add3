"""Record payloads: the key and value of a record in a log, from the producer that sent it.

The logs keep columns, not payloads (``sim.broker.log``): a record's ``record_id`` is
``producer_id << 40 | index``, and the producer keeps each record's key and value. This module
turns record ids back into keys and values — for consumers that transform records (Kafka
Streams, consume-transform-produce loops) and for the log cleaner, which must decide by a key's
identity (its serialized bytes, as Kafka compares them), never by a hash.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.records import serialize

RECORD_INDEX_BITS = 40
"""Bits of a record id that hold the record's index in its producer."""


def producer_of(kernel: Any, record_id: int) -> Any:
    """The producer that sent the record ``record_id``."""
    return kernel.clients[int(record_id) >> RECORD_INDEX_BITS]


def payload(kernel: Any, record_id: int) -> tuple[Any, Any]:
    """The key and value of one record (``None`` for a null key or value)."""
    producer = producer_of(kernel, record_id)
    index = int(record_id) & ((1 << RECORD_INDEX_BITS) - 1)
    key_id = int(producer.buffer.key_id[index])
    key = producer.keys[key_id] if key_id >= 0 else None
    return key, producer.values.get(index)


def key_identities(kernel: Any, record_ids: np.ndarray) -> np.ndarray:
    """One integer per record that is equal exactly when two records' serialized keys are equal.

    -1 for a null key. Vectorised per producer: each producer's key table is mapped once onto
    identities (numbered by producer id, then by the order the producer first saw each key), so the
    result does not depend on hashing or on ``PYTHONHASHSEED``.
    """
    record_ids = np.asarray(record_ids, dtype=np.int64)
    out = np.full(len(record_ids), -1, dtype=np.int64)
    producer_ids = record_ids >> RECORD_INDEX_BITS
    indices = record_ids & ((1 << RECORD_INDEX_BITS) - 1)
    known: dict[bytes, int] = {}
    for pid in np.unique(producer_ids):
        producer = kernel.clients[int(pid)]
        table = np.array([known.setdefault(serialize(key), len(known)) for key in producer.keys]
                         + [-1], dtype=np.int64)
        mine = producer_ids == pid
        key_ids = producer.buffer.key_id[indices[mine]]
        out[mine] = table[np.where(key_ids < 0, len(producer.keys), key_ids)]
    return out
