"""The remote tier: one Parquet file per copied log segment, in a folder standing in for S3.

Kafka's tiered storage (KIP-405) copies closed log segments through a ``RemoteStorageManager``
plugin into object storage, and keeps what it copied in a ``RemoteLogMetadataManager``: one
``RemoteLogSegmentMetadata`` per segment (base and end offset, largest timestamp, size, the
leader epochs inside it, and its state, ``COPY_SEGMENT_STARTED`` → ``COPY_SEGMENT_FINISHED`` →
``DELETE_SEGMENT_STARTED`` → ``DELETE_SEGMENT_FINISHED``).

Here the object store is a real folder that a learner can open::

    <root>/<topic>-<partition>/00000000000000000170.parquet   one object per segment
    <root>/_index/<topic>-<partition>.parquet                 the segment metadata

Each segment file holds one row per record (``offset``, ``timestamp_ms``, ``key``, ``value``,
``key_hash``, ``value_size``, ``record_id``; keys and values as the bytes Kafka's default
serializers make, null where the producer kept only a size), so ``pandas.read_parquet`` shows
the data outside Kafka — one segment, or the whole partition with
``pandas.read_parquet("<root>/<topic>-<partition>")`` (the index lives apart, in ``_index``,
a folder Parquet readers skip). Names come from offsets only — never the wall clock or
randomness — so the same run writes the same files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

COPY_SEGMENT_STARTED = "COPY_SEGMENT_STARTED"
COPY_SEGMENT_FINISHED = "COPY_SEGMENT_FINISHED"
DELETE_SEGMENT_STARTED = "DELETE_SEGMENT_STARTED"
DELETE_SEGMENT_FINISHED = "DELETE_SEGMENT_FINISHED"
"""Kafka's ``RemoteLogSegmentState`` values, in the order a segment goes through them."""

INDEX_FOLDER = "_index"

SCHEMA = pa.schema([
    ("offset", pa.int64()), ("timestamp_ms", pa.int64()), ("key", pa.binary()),
    ("value", pa.binary()), ("key_hash", pa.int32()), ("value_size", pa.int32()),
    ("record_id", pa.int64()), ("control", pa.bool_()), ("aborted", pa.bool_()),
])
"""The columns of a segment object (one row per record). ``control`` marks transaction
markers and ``aborted`` the records of aborted transactions (Kafka uploads the segment's
transaction index with it), so that a read from the remote tier hides them as a local one does."""


@dataclass(frozen=True)
class RemoteLogSegmentMetadata:
    """Kafka's ``RemoteLogSegmentMetadata``: what the remote tier holds for one segment.

    ``segment_leader_epochs`` maps each leader epoch in the segment to its first offset there.
    The segment id is the partition and the base offset (Kafka draws a random UUID; a
    deterministic lab names objects by offset, so one segment is always one object).
    """

    topic: str
    partition: int
    base_offset: int
    end_offset: int
    max_timestamp_ms: int
    size_bytes: int
    broker_id: int
    event_timestamp_ms: float
    segment_leader_epochs: dict[int, int] = field(default_factory=dict)
    state: str = COPY_SEGMENT_STARTED

    @property
    def records(self) -> int:
        return self.end_offset - self.base_offset + 1

    @property
    def object_name(self) -> str:
        """Where the segment lives under the remote root (deterministic, from offsets only)."""
        return f"{self.topic}-{self.partition}/{self.base_offset:020d}.parquet"


class RemoteStorageManager:
    """Kafka's ``RemoteStorageManager`` and a per-partition index, on a local folder.

    ``copy_log_segment_data`` writes a segment's records as one Parquet object;
    ``fetch_log_segment`` reads records back from it; ``delete_log_segment_data`` removes it.
    The metadata of every segment (in any state) is kept in order of base offset and written
    to ``_index/<topic>-<partition>.parquet`` after every change.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._segments: dict[tuple[str, int], list[RemoteLogSegmentMetadata]] = {}

    def __repr__(self) -> str:
        count = sum(len(s) for s in self._segments.values())
        return f"RemoteStorageManager({self.root}, segments={count})"

    def clear_partition(self, topic: str, partition: int) -> None:
        """Start a partition's folder empty: objects of an earlier run (a reset, or a folder
        given by ``lab.remote.storage.dir`` and used before) must not mix with this run's."""
        folder = self.root / f"{topic}-{partition}"
        if folder.is_dir():
            for path in sorted(folder.glob("*.parquet")):
                path.unlink()
        (self.root / INDEX_FOLDER / f"{topic}-{partition}.parquet").unlink(missing_ok=True)
        self._segments.pop((topic, partition), None)

    # -- the metadata (RemoteLogMetadataManager) ---------------------------------------------

    def segments(self, topic: str, partition: int,
                 state: str | None = COPY_SEGMENT_FINISHED) -> list[RemoteLogSegmentMetadata]:
        """The partition's segments in ``state`` (all of them for None), by base offset."""
        return [s for s in self._segments.get((topic, partition), [])
                if state is None or s.state == state]

    def add(self, metadata: RemoteLogSegmentMetadata) -> None:
        """Record a segment whose copy starts (``addRemoteLogSegmentMetadata``)."""
        mine = self._segments.setdefault((metadata.topic, metadata.partition), [])
        mine[:] = [s for s in mine if s.base_offset != metadata.base_offset]
        mine.append(metadata)
        mine.sort(key=lambda s: s.base_offset)
        self._write_index(metadata.topic, metadata.partition)

    def update(self, metadata: RemoteLogSegmentMetadata, state: str,
               event_timestamp_ms: float) -> RemoteLogSegmentMetadata:
        """Move a segment to ``state`` (``updateRemoteLogSegmentMetadata``)."""
        updated = replace(metadata, state=state, event_timestamp_ms=event_timestamp_ms)
        mine = self._segments[(metadata.topic, metadata.partition)]
        mine[:] = [updated if s.base_offset == metadata.base_offset else s for s in mine]
        if state == DELETE_SEGMENT_FINISHED:
            mine[:] = [s for s in mine if s.base_offset != metadata.base_offset]
        self._write_index(metadata.topic, metadata.partition)
        return updated

    def index(self, topic: str, partition: int) -> pd.DataFrame:
        """The partition's segment metadata as a DataFrame (what its ``_index`` file holds)."""
        columns = ["base_offset", "end_offset", "max_timestamp_ms", "size_bytes", "records",
                   "state", "broker_id", "event_timestamp_ms", "segment_leader_epochs",
                   "object_name"]
        rows = [{**{k: v for k, v in asdict(s).items() if k in columns},
                 "records": s.records, "object_name": s.object_name,
                 "segment_leader_epochs": str(sorted(s.segment_leader_epochs.items()))}
                for s in self.segments(topic, partition, None)]
        return pd.DataFrame(rows, columns=columns)

    def _write_index(self, topic: str, partition: int) -> None:
        folder = self.root / INDEX_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        self.index(topic, partition).to_parquet(folder / f"{topic}-{partition}.parquet",
                                                index=False)

    # -- the objects --------------------------------------------------------------------------

    def copy_log_segment_data(self, metadata: RemoteLogSegmentMetadata,
                              records: pd.DataFrame) -> Path:
        """Write one segment's records (columns of ``SCHEMA``) as its Parquet object."""
        table = pa.Table.from_pandas(records[SCHEMA.names], schema=SCHEMA, preserve_index=False)
        path = self.root / metadata.object_name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        return path

    def fetch_log_segment(self, metadata: RemoteLogSegmentMetadata, start: int,
                          stop: int) -> dict[str, np.ndarray]:
        """Columns of records ``start … stop-1`` of a segment, read from its Parquet object."""
        table = pq.read_table(self.root / metadata.object_name,
                              filters=[("offset", ">=", start), ("offset", "<", stop)])
        return {name: table.column(name).to_numpy() for name in table.column_names
                if name not in ("key", "value")}

    def delete_log_segment_data(self, metadata: RemoteLogSegmentMetadata) -> None:
        """Remove a segment's object (a missing one is fine: deletion is retried safely)."""
        (self.root / metadata.object_name).unlink(missing_ok=True)

    def read_partition(self, topic: str, partition: int) -> pd.DataFrame:
        """Every record of the partition's copied segments, in offset order (for learners)."""
        parts = [pd.read_parquet(self.root / s.object_name)
                 for s in self.segments(topic, partition)]
        if not parts:
            return SCHEMA.empty_table().to_pandas()
        frame = pd.concat(parts, ignore_index=True)
        return frame.drop_duplicates("offset").sort_values("offset", ignore_index=True)
