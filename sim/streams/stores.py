"""State stores: the small interface processors use, and in-memory implementations.

Mirrors ``org.apache.kafka.streams.state``: a :class:`KeyValueStore` (``get`` / ``put`` /
``delete`` / ``all``) and a :class:`WindowStore` (one value per key and window start). The DSL's
aggregations keep a value *and its timestamp* (``TimestampedKeyValueStore``,
``ValueAndTimestamp``); :class:`~sim.streams.TopologyTestDriver` shows them as plain values, as
Kafka's driver does. A :class:`SessionStore` keeps one value per key and session. Stores are
built by a :class:`StoreBuilder` (``Stores`` makes them) so that each task gets its own instance.

Each kind comes **in-memory** (a dict) or **persistent**: the same logic over a real RocksDB
database in the task's state directory (``sim.streams.rocksdb``), as Kafka's
``Stores.persistentKeyValueStore`` / ``persistentWindowStore`` / ``persistentSessionStore``. DSL
stores follow ``default.dsl.store`` (``rocksDB`` unless set to ``in_memory``); a store built
without a directory (the ``TopologyTestDriver``) is in-memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import StreamsError
from sim.streams.windows import SessionWindow, TimeWindow, Windowed


@dataclass(frozen=True)
class ValueAndTimestamp:
    """A stored value and the timestamp of the record that last changed it."""

    value: Any
    timestamp: int


class StateStore:
    """Anything a processor can get with ``context.get_state_store(name)``."""

    name: str
    persistent: bool = False
    timestamped: bool = False
    """Whether the store keeps ``ValueAndTimestamp`` values (the DSL's timestamped key-value and
    window stores): its changelog then holds the plain value with the timestamp as the record's,
    and a restore puts the two together again (``RecordConverters``)."""
    _data: Any
    logger: Callable[[Any, Any], None] | None = None
    """Hears (changelog key, value) for every change while the store is logged."""

    def close(self) -> None:
        """Release resources: a persistent store closes its RocksDB database."""
        close = getattr(self._data, "close", None)
        if close is not None:
            close()

    def wipe(self) -> None:
        """Forget every entry (a corrupted or stale copy about to be restored from scratch)."""
        self._data.clear()

    def restore(self, key: Any, value: Any) -> None:
        """Apply one changelog record (``StateRestoreCallback.restore``)."""
        raise NotImplementedError

    def restore_record(self, key: Any, value: Any, timestamp: int) -> None:
        """Apply one changelog record as read from the log: a timestamped store gets the value
        back with the record's timestamp (``RecordConverters.rawValueToTimestampedValue``; a
        tombstone stays a delete), any other store the value as it is."""
        if self.timestamped and value is not None:
            value = ValueAndTimestamp(value, int(timestamp))
        self.restore(key, value)


class KeyValueStore(StateStore):
    """A key → value map (``KeyValueStore``); ``put(key, None)`` deletes, as in Kafka."""

    def get(self, key: Any) -> Any:
        raise NotImplementedError

    def put(self, key: Any, value: Any) -> None:
        raise NotImplementedError

    def delete(self, key: Any) -> Any:
        raise NotImplementedError

    def all(self) -> list[tuple[Any, Any]]:
        """Every (key, value), ordered by key as Kafka's stores order their bytes."""
        raise NotImplementedError

    def approximate_num_entries(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.all())


class InMemoryKeyValueStore(KeyValueStore):
    """``Stores.inMemoryKeyValueStore``: a dict, iterated in key order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value
        if self.logger is not None:
            self.logger(key, value)

    def delete(self, key: Any) -> Any:
        old = self._data.pop(key, None)
        if self.logger is not None:
            self.logger(key, None)
        return old

    def all(self) -> list[tuple[Any, Any]]:
        return sorted(self._data.items(), key=lambda item: key_order(item[0]))

    def approximate_num_entries(self) -> int:
        return len(self._data)

    def restore(self, key: Any, value: Any) -> None:
        self.put(key, value)


class RocksDBKeyValueStore(InMemoryKeyValueStore):
    """``Stores.persistentKeyValueStore``: the entries live in a RocksDB database at ``path``;
    ``all()`` iterates RocksDB in byte order, which is the in-memory store's key order."""

    persistent = True

    def __init__(self, name: str, path: Path) -> None:
        from sim.streams.rocksdb import RocksDBMap

        self.name = name
        self.path = path
        self._data = RocksDBMap(path)

    def all(self) -> list[tuple[Any, Any]]:
        return self._data.items()


class WindowStore(StateStore):
    """Values per key and window start (``WindowStore``); windows have a fixed size."""

    window_size_ms: int
    retention_ms: int

    def put(self, key: Any, value: Any, window_start: int) -> None:
        raise NotImplementedError

    def fetch(self, key: Any, window_start: int) -> Any:
        """The value of one window, or None."""
        raise NotImplementedError

    def fetch_range(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, Any]]:
        """(window start, value) of ``key``'s windows starting in [time_from, time_to]."""
        raise NotImplementedError

    def all(self) -> list[tuple[Windowed, Any]]:
        raise NotImplementedError


class InMemoryWindowStore(WindowStore):
    """``Stores.inMemoryWindowStore``. Windows older than the retention (the newest window
    start seen minus ``retention_ms``) are dropped, as Kafka's segments expire."""

    def __init__(self, name: str, retention_ms: int, window_size_ms: int,
                 retain_duplicates: bool = False) -> None:
        self.name = name
        self.retention_ms = retention_ms
        self.window_size_ms = window_size_ms
        self.retain_duplicates = retain_duplicates  # join stores keep every record
        self._data: dict[tuple[Any, int], Any] = {}
        self._seq = 0
        self._observed_ms = -1

    def put(self, key: Any, value: Any, window_start: int) -> None:
        advanced = window_start > self._observed_ms
        self._observed_ms = max(self._observed_ms, window_start)
        if window_start <= self._observed_ms - self.retention_ms:
            return  # expired: Kafka skips writes into expired segments
        if self.retain_duplicates:
            if value is not None:
                self._seq += 1
                self._data[(key, window_start, self._seq)] = value
        elif value is None:
            self._data.pop((key, window_start), None)
        else:
            self._data[(key, window_start)] = value
        if self.logger is not None and (value is not None or not self.retain_duplicates):
            self.logger(self.changelog_key(key, window_start), value)
        if advanced:  # only a newer window can make older ones expire
            for expired in [k for k in self._data
                            if k[1] <= self._observed_ms - self.retention_ms]:
                del self._data[expired]

    def restore(self, key: Any, value: Any) -> None:
        """A changelog record's key is (key, window start[, sequence number])."""
        if self.retain_duplicates and len(key) == 3:
            self._seq = max(self._seq, key[2] - 1)
        self.put(key[0], value, key[1])

    def changelog_key(self, key: Any, window_start: int) -> tuple[Any, ...]:
        """The changelog record key of the latest put (``WindowKeySchema.toStoreKeyBinary``:
        key, window start, and the sequence number of a store keeping duplicates)."""
        return (key, window_start, self._seq) if self.retain_duplicates else (key, window_start)

    def fetch(self, key: Any, window_start: int) -> Any:
        return self._data.get((key, window_start))

    def fetch_range(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, Any]]:
        found = [(k[1:], value) for k, value in self._data.items()
                 if k[0] == key and time_from <= k[1] <= time_to]
        return [(position[0], value) for position, value in sorted(found, key=lambda f: f[0])]

    def all(self) -> list[tuple[Windowed, Any]]:
        items = sorted(self._data.items(), key=lambda item: (key_order(item[0][0]), item[0][1:]))
        return [(Windowed(k[0], TimeWindow(k[1], k[1] + self.window_size_ms)), value)
                for k, value in items]


class RocksDBWindowStore(InMemoryWindowStore):
    """``Stores.persistentWindowStore``: (key, window start) entries in a RocksDB database."""

    persistent = True

    def __init__(self, name: str, path: Path, retention_ms: int, window_size_ms: int,
                 retain_duplicates: bool = False) -> None:
        from sim.streams.rocksdb import RocksDBMap

        super().__init__(name, retention_ms, window_size_ms, retain_duplicates)
        self.path = path
        self._data = RocksDBMap(path)
        keys = self._data.keys()
        self._observed_ms = max((k[1] for k in keys), default=-1)
        self._seq = max((k[2] for k in keys if len(k) == 3), default=0)

    def fetch_range(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, Any]]:
        found = []
        for stored, value in self._data.items_with_prefix((key,)):
            if stored[1] > time_to:
                break
            if stored[1] >= time_from:
                found.append((stored[1], value))
        return found


class SessionStore(StateStore):
    """Sessions per key (``SessionStore``): each a :class:`Windowed` key with a SessionWindow."""

    retention_ms: int

    def find_sessions(self, key: Any, earliest_end_ms: int, latest_start_ms: int
                      ) -> list[tuple[Windowed, Any]]:
        """Sessions of ``key`` ending at or after ``earliest_end_ms`` and starting at or before
        ``latest_start_ms``, by end time."""
        raise NotImplementedError

    def put(self, session: Windowed, value: Any) -> None:
        raise NotImplementedError

    def remove(self, session: Windowed) -> None:
        raise NotImplementedError

    def fetch(self, key: Any) -> list[tuple[Windowed, Any]]:
        """Every session of ``key``, by end time."""
        return self.find_sessions(key, -(2**63), 2**63 - 1)


class InMemorySessionStore(SessionStore):
    """``Stores.inMemorySessionStore``; sessions ending more than ``retention_ms`` before the
    latest session end seen are dropped."""

    def __init__(self, name: str, retention_ms: int) -> None:
        self.name = name
        self.retention_ms = retention_ms
        self._data: dict[tuple[Any, int, int], Any] = {}
        self._observed_ms = -(2**63)

    def find_sessions(self, key: Any, earliest_end_ms: int, latest_start_ms: int
                      ) -> list[tuple[Windowed, Any]]:
        found = [(end, start, value) for (k, start, end), value in self._data.items()
                 if k == key and end >= earliest_end_ms and start <= latest_start_ms]
        return [(Windowed(key, SessionWindow(start, end)), value)
                for end, start, value in sorted(found, key=lambda item: item[:2])]

    def put(self, session: Windowed, value: Any) -> None:
        window = session.window
        self._observed_ms = max(self._observed_ms, window.end_ms)
        if window.end_ms <= self._observed_ms - self.retention_ms:
            return
        if value is None:
            self.remove(session)
        else:
            self._data[(session.key, window.start_ms, window.end_ms)] = value
            if self.logger is not None:
                self.logger((session.key, window.start_ms, window.end_ms), value)
        limit = self._observed_ms - self.retention_ms
        for expired in [k for k in self._data if k[2] <= limit]:
            del self._data[expired]

    def remove(self, session: Windowed) -> None:
        key = (session.key, session.window.start_ms, session.window.end_ms)
        self._data.pop(key, None)
        if self.logger is not None:
            self.logger(key, None)

    def restore(self, key: Any, value: Any) -> None:
        """A changelog record's key is (key, session start, session end)."""
        self.put(Windowed(key[0], SessionWindow(key[1], key[2])), value)

    def all(self) -> list[tuple[Windowed, Any]]:
        """Every session, by key then start and end."""
        items = sorted(self._data.items(), key=lambda item: (key_order(item[0][0]), item[0][1:]))
        return [(Windowed(k[0], SessionWindow(k[1], k[2])), value) for k, value in items]


class RocksDBSessionStore(InMemorySessionStore):
    """``Stores.persistentSessionStore``: (key, start, end) entries in a RocksDB database."""

    persistent = True

    def __init__(self, name: str, path: Path, retention_ms: int) -> None:
        from sim.streams.rocksdb import RocksDBMap

        super().__init__(name, retention_ms)
        self.path = path
        self._data = RocksDBMap(path)
        self._observed_ms = max((k[2] for k in self._data), default=-(2**63))

    def find_sessions(self, key: Any, earliest_end_ms: int, latest_start_ms: int
                      ) -> list[tuple[Windowed, Any]]:
        found = [(end, start, value) for (_, start, end), value
                 in self._data.items_with_prefix((key,))
                 if end >= earliest_end_ms and start <= latest_start_ms]
        return [(Windowed(key, SessionWindow(start, end)), value)
                for end, start, value in sorted(found, key=lambda item: item[:2])]


def key_order(key: Any) -> tuple[str, Any]:
    """Sort key that never compares values of different types (None, str and int keys mix)."""
    return (type(key).__name__, key if key is not None else 0)


@dataclass(frozen=True)
class StoreBuilder:
    """How to make one store per task (``StoreBuilder``); ``Stores`` makes these.

    ``persistent``: True (RocksDB), False (in-memory) or None for a DSL store, which follows
    ``default.dsl.store``. ``logging_enabled``: whether changes go to the changelog topic.
    ``timestamped``: the store keeps ``ValueAndTimestamp`` values, as the DSL's aggregations
    and materialized tables do (``TimestampedKeyValueStore``, ``TimestampedWindowStore``).
    """

    name: str
    kind: str  # "key_value", "window" or "session"
    retention_ms: int = 0
    window_size_ms: int = 0
    logging_enabled: bool = True
    retain_duplicates: bool = False
    persistent: bool | None = None
    timestamped: bool = False

    def is_persistent(self, default_dsl_store: str = "rocksDB") -> bool:
        """Whether the store is kept in RocksDB, given ``default.dsl.store``."""
        if self.persistent is None:
            return default_dsl_store == "rocksDB"
        return self.persistent

    def build(self, directory: Path | None = None,
              default_dsl_store: str = "rocksDB") -> StateStore:
        """A new store; persistent ones need ``directory``, the task's ``rocksdb`` folder
        (without it, as in the ``TopologyTestDriver``, the store is in-memory)."""
        store = self._build(directory, default_dsl_store)
        store.timestamped = self.timestamped and self.kind != "session"
        return store

    def _build(self, directory: Path | None, default_dsl_store: str) -> StateStore:
        if directory is not None and self.is_persistent(default_dsl_store):
            path = directory / self.name
            if self.kind == "window":
                return RocksDBWindowStore(self.name, path, self.retention_ms,
                                          self.window_size_ms, self.retain_duplicates)
            if self.kind == "session":
                return RocksDBSessionStore(self.name, path, self.retention_ms)
            return RocksDBKeyValueStore(self.name, path)
        if self.kind == "window":
            return InMemoryWindowStore(self.name, self.retention_ms, self.window_size_ms,
                                       self.retain_duplicates)
        if self.kind == "session":
            return InMemorySessionStore(self.name, self.retention_ms)
        return InMemoryKeyValueStore(self.name)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise StreamsError(f"A store needs a non-empty name, got {name!r}.")
    return name


class Stores:
    """Factory of store builders (Kafka's ``Stores``)."""

    @staticmethod
    def in_memory_key_value_store(name: str) -> StoreBuilder:
        return StoreBuilder(_check_name(name), "key_value", persistent=False)

    @staticmethod
    def in_memory_window_store(name: str, retention_ms: int, window_size_ms: int) -> StoreBuilder:
        return StoreBuilder(_check_name(name), "window", retention_ms, window_size_ms,
                            persistent=False)

    @staticmethod
    def in_memory_session_store(name: str, retention_ms: int) -> StoreBuilder:
        return StoreBuilder(_check_name(name), "session", retention_ms, persistent=False)

    @staticmethod
    def persistent_key_value_store(name: str) -> StoreBuilder:
        return StoreBuilder(_check_name(name), "key_value", persistent=True)

    @staticmethod
    def persistent_window_store(name: str, retention_ms: int,
                                window_size_ms: int) -> StoreBuilder:
        return StoreBuilder(_check_name(name), "window", retention_ms, window_size_ms,
                            persistent=True)

    @staticmethod
    def persistent_session_store(name: str, retention_ms: int) -> StoreBuilder:
        return StoreBuilder(_check_name(name), "session", retention_ms, persistent=True)
