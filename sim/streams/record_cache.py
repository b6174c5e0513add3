"""The record cache in front of aggregation stores (``ThreadCache`` / ``NamedCache``).

Each stream thread has a cache of ``statestore.cache.max.bytes / num.stream.threads`` bytes,
shared by the caching nodes of its tasks (one ``NamedCache`` per task and node). When an
aggregation updates a key, the update goes into the cache instead of downstream: a later update
of the same key replaces it, so only the newest value per key is forwarded when the cache is
**flushed**, at every commit, or when the cache is full (then the least recently updated entry
is evicted, which flushes every dirty entry of its ``NamedCache``, the evicted one first). A
flush forwards the entries in the order of each key's latest update. With a size of 0 nothing
is cached and every update is forwarded at once, as in the ``TopologyTestDriver``.

Entry sizes count the serialized key and value plus a fixed overhead per entry (Kafka's
``LRUCacheEntry`` adds the record's offset, timestamp, partition and topic).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sim.records import serialize
from sim.streams.processor import Record

ENTRY_OVERHEAD_BYTES = 40
"""Bytes an entry costs besides its key and value (``LRUCacheEntry`` and ``NamedCache``
bookkeeping, rounded)."""

FlushListener = Callable[[list[Record]], None]


def _size(value: Any) -> int:
    data = serialize(getattr(value, "new_value", value))
    return 0 if data is None else len(data)


def entry_size(record: Record) -> int:
    """The bytes one cached record takes."""
    return _size(record.key) + _size(record.value) + ENTRY_OVERHEAD_BYTES


class NamedCache:
    """The cache of one node in one task: dirty records by key, least recently updated first."""

    def __init__(self, name: str, listener: FlushListener) -> None:
        self.name = name
        self.listener = listener
        self.entries: OrderedDict[Any, tuple[Record, int]] = OrderedDict()
        self.size_bytes = 0
        self.hits = 0  # updates absorbed by an entry already cached

    def put(self, record: Record) -> None:
        previous = self.entries.pop(record.key, None)
        if previous is not None:
            self.size_bytes -= previous[1]
            self.hits += 1
        size = entry_size(record)
        self.entries[record.key] = (record, size)
        self.size_bytes += size

    def flush(self) -> int:
        """Forward every entry, in the order of their latest update; returns how many."""
        records = [record for record, _ in self.entries.values()]
        self.entries.clear()
        self.size_bytes = 0
        if records:
            self.listener(records)
        return len(records)

    def __len__(self) -> int:
        return len(self.entries)


class ThreadCache:
    """The caches of one stream thread, ``max_bytes`` in all (``ThreadCache``)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.caches: dict[str, NamedCache] = {}
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def named(self, name: str, listener: FlushListener) -> NamedCache:
        cache = self.caches.get(name)
        if cache is None:
            cache = self.caches[name] = NamedCache(name, listener)
        return cache

    def size_bytes(self) -> int:
        return sum(c.size_bytes for c in self.caches.values())

    def put(self, cache: NamedCache, record: Record) -> None:
        """Cache ``record``; if the thread's caches are now too big, flush ``cache``
        (``ThreadCache.maybeEvict`` evicts from the cache that was written to)."""
        cache.put(record)
        if self.size_bytes() > self.max_bytes and len(cache):
            self.evictions += 1
            cache.flush()

    def remove(self, name: str) -> None:
        """Forget the cache of a closed task's node (flush it first)."""
        self.caches.pop(name, None)
