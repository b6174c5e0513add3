"""A partition's log, stored column-wise.

Kafka stores a partition as a sequence of record batches in segment files. Here a log keeps one
entry per batch (base offset, producer, leader epoch, size) and per-record columns (timestamp,
key hash, value size) in fixed-size numpy blocks, so that millions of records fit in memory
(about 16 bytes per record) and nothing is copied when the log grows.

Vocabulary:

- *log start offset*: the first offset still in the log (retention moves it forward later).
- *log end offset* (LEO): the offset the next appended record will get.
- *high watermark* (HW): records below it are committed and visible to consumers. Until
  replication is modelled, the leader's HW follows its LEO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BLOCK_RECORDS = 1 << 16
"""Records per storage block: big enough to amortise, small enough not to waste memory."""

RECORD_COLUMNS = {"timestamp_ms": np.int64, "key_hash": np.int32, "value_size": np.int32}
BATCH_COLUMNS = ("base_offset", "records", "size_bytes", "producer_id", "leader_epoch")


@dataclass(frozen=True)
class Segment:
    """A log segment: named by its base offset, as Kafka's 00000000000000000170.log files are."""

    base_offset: int

    @property
    def file_name(self) -> str:
        return f"{self.base_offset:020d}.log"


class PartitionLog:
    """The records of one replica of one partition.

    Records are appended a batch at a time; offsets are consecutive from ``log_start_offset``.
    ``segment_bytes`` decides when a new segment starts (Kafka rolls a segment when the next
    batch would not fit).
    """

    def __init__(self, segment_bytes: int = 1 << 30) -> None:
        self._blocks: list[dict[str, np.ndarray]] = []
        self._fill = BLOCK_RECORDS  # records used in the last block; forces a first block
        self._batches: list[tuple[int, int, int, int, int]] = []
        self.segment_bytes = segment_bytes
        self.segments: list[Segment] = [Segment(0)]
        self._segment_size = 0
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.high_watermark = 0
        self.size_bytes = 0

    def __len__(self) -> int:
        return self.log_end_offset - self.log_start_offset

    def append_batch(
        self,
        timestamps_ms: np.ndarray,
        key_hashes: np.ndarray,
        value_sizes: np.ndarray,
        size_bytes: int,
        producer_id: int = -1,
        leader_epoch: int = 0,
    ) -> int:
        """Append one record batch and return its base offset."""
        n = len(timestamps_ms)
        base = self.log_end_offset
        if self._segment_size and self._segment_size + size_bytes > self.segment_bytes:
            self.segments.append(Segment(base))
            self._segment_size = 0
        self._segment_size += size_bytes
        done = 0
        while done < n:
            if self._fill == BLOCK_RECORDS:
                self._blocks.append(
                    {name: np.empty(BLOCK_RECORDS, dtype) for name, dtype in RECORD_COLUMNS.items()}
                )
                self._fill = 0
            take = min(n - done, BLOCK_RECORDS - self._fill)
            block = self._blocks[-1]
            stop = self._fill + take
            block["timestamp_ms"][self._fill : stop] = timestamps_ms[done : done + take]
            block["key_hash"][self._fill : stop] = key_hashes[done : done + take]
            block["value_size"][self._fill : stop] = value_sizes[done : done + take]
            self._fill = stop
            done += take
        self._batches.append((base, n, size_bytes, producer_id, leader_epoch))
        self.log_end_offset += n
        self.size_bytes += size_bytes
        return base

    @property
    def batch_count(self) -> int:
        return len(self._batches)

    def column(self, name: str) -> np.ndarray:
        """One record column for every record in the log, in offset order."""
        if not self._blocks:
            return np.empty(0, RECORD_COLUMNS[name])
        parts = [block[name] for block in self._blocks[:-1]]
        parts.append(self._blocks[-1][name][: self._fill])
        return np.concatenate(parts)

    def records(self) -> pd.DataFrame:
        """The records as a DataFrame with an ``offset`` column."""
        offsets = np.arange(self.log_start_offset, self.log_end_offset, dtype=np.int64)
        return pd.DataFrame({"offset": offsets, **{n: self.column(n) for n in RECORD_COLUMNS}})

    def batches(self) -> pd.DataFrame:
        """One row per stored record batch."""
        return pd.DataFrame(self._batches, columns=list(BATCH_COLUMNS))

    def nbytes(self) -> int:
        """Memory held by the stored columns and the batch index."""
        blocks = sum(a.nbytes for block in self._blocks for a in block.values())
        return blocks + 5 * 8 * len(self._batches)
