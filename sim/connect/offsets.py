"""Source offsets: the store (``offset.storage.file.filename`` in standalone) and its writer.

Keys are ``["<connector>", {source partition}]`` and values the offset maps, as JSON, as
Kafka's ``OffsetStorageWriter`` serializes them. The file store rewrites a real JSON file on
every flush (Kafka's ``FileOffsetBackingStore`` writes a Java-serialized map there instead).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.errors import ConfigError


def offset_key(connector: str, partition: dict[str, Any]) -> str:
    return json.dumps([connector, partition], separators=(",", ":"), sort_keys=True)


class OffsetBackingStore:
    """Offsets in memory (``MemoryOffsetBackingStore``); the file store persists them."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any] | None] = {}

    def get(self, connector: str, partition: dict[str, Any]) -> dict[str, Any] | None:
        return self.data.get(offset_key(connector, partition))

    def set(self, values: dict[str, dict[str, Any] | None]) -> None:
        for key, value in values.items():
            if value is None:
                self.data.pop(key, None)  # a tombstone resets the partition
            else:
                self.data[key] = value
        self.save()

    def save(self) -> None:
        """Persist (nothing to do in memory)."""

    def connector_offsets(self, connector: str) -> list[dict[str, Any]]:
        """``[{"partition", "offset"}]`` of one connector (KIP-875 ``ConnectorOffsets``)."""
        out = []
        for key in sorted(self.data):
            name, partition = json.loads(key)
            if name == connector:
                out.append({"partition": partition, "offset": self.data[key]})
        return out


class FileOffsetBackingStore(OffsetBackingStore):
    """Offsets in the file ``offset.storage.file.filename``, read at start."""

    def __init__(self, filename: str) -> None:
        super().__init__()
        self.path = Path(filename)
        if self.path.is_file() and self.path.stat().st_size:
            self.data = self._load()
        elif self.path.exists():
            raise ConfigError(f"offset.storage.file.filename {filename} is not a file.")

    def _load(self) -> dict[str, Any]:
        """The stored offsets; a file that cannot be read as them stops the worker at start
        (``FileOffsetBackingStore.load``'s ConnectException) with one line saying why."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON
            problem = getattr(exc, "strerror", None) or type(exc).__name__
            raise ConfigError(f"offset.storage.file.filename {self.path} cannot be read as "
                              f"stored offsets ({problem}).") from None
        if not isinstance(data, dict):
            raise ConfigError(f"offset.storage.file.filename {self.path} holds "
                              f"{type(data).__name__}, not the stored offsets.")
        return data

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, sort_keys=True, indent=1), encoding="utf-8")
        tmp.replace(self.path)


class OffsetStorageWriter:
    """One task's offsets waiting for the next flush (``OffsetStorageWriter``)."""

    def __init__(self, store: OffsetBackingStore, connector: str) -> None:
        self.store = store
        self.connector = connector
        self.pending: dict[str, dict[str, Any]] = {}

    def offset(self, partition: dict[str, Any] | None, offset: dict[str, Any] | None) -> None:
        if partition is not None and offset is not None:
            self.pending[offset_key(self.connector, partition)] = offset

    def flush(self) -> bool:
        if not self.pending:
            return False
        self.store.set(dict(self.pending))  # type: ignore[arg-type]
        self.pending.clear()
        return True
