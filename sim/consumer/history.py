"""What one consumer read, processed and committed, kept for frames and for the audit.

Reads and processing are stored per chunk (a run of consecutive offsets of one partition), not
per record, and expanded into one row per record only when a frame is asked for.

*Processing* takes ``processing_ms_per_record`` per record, one record after another, so
record ``i`` of a ``process()`` call that starts at ``start_ms`` is done at
``start_ms + (i + 1) * per_ms``. A hang that begins at ``t`` pushes every record not yet done at
``t`` back by the hang's length; a crash at ``t`` leaves every record not yet done at ``t``
unprocessed. Example: 5 records at 2 ms from 100 ms finish at 102, 104, 106, 108, 110; a crash
at 105 leaves 2 of them processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.consumer.fetcher import Chunk

READ_COLUMNS = ["consumer", "group", "incarnation", "poll", "poll_seq", "time_ms", "topic",
                "partition", "offset", "record_id"]
PROCESSED_COLUMNS = ["consumer", "group", "incarnation", "poll_seq", "topic", "partition",
                     "offset", "record_id", "timestamp_ms", "processed_ms", "latency_ms"]
COMMIT_COLUMNS = ["consumer", "group", "member", "generation", "sent_ms", "time_ms", "topic",
                  "partition", "offset", "error", "kind", "seq"]


@dataclass
class ProcessedBatch:
    """One ``process()`` call: its chunks, start time, time per record, and crash time if any."""

    chunks: list[Chunk]
    start_ms: float
    per_ms: float
    incarnation: int
    poll_seq: int
    crash_ms: float | None = None

    @property
    def count(self) -> int:
        return sum(c.count for c in self.chunks)

    def completion_ms(self, hangs: list[tuple[float, float]], now_ms: float) -> np.ndarray:
        """When each record was done (NaN if it never was, by a crash or not yet by now)."""
        done = self.start_ms + self.per_ms * np.arange(1, self.count + 1, dtype=np.float64)
        for hang_ms, length_ms in hangs:
            if hang_ms >= self.start_ms:
                done[done > hang_ms] += length_ms
        limit = now_ms if self.crash_ms is None else min(now_ms, self.crash_ms)
        done[done > limit] = np.nan
        return done

    def projected_end_ms(self, hangs: list[tuple[float, float]]) -> float:
        """When the last record will be done, counting the hangs so far."""
        end = self.start_ms + self.per_ms * self.count
        for hang_ms, length_ms in hangs:
            if self.start_ms <= hang_ms < end:
                end += length_ms
        return end


@dataclass
class ConsumerHistory:
    """Reads, processing, commits and position changes of one consumer (all incarnations)."""

    consumer: str
    group: str | None
    reads: list[tuple[int, int, int, float, Chunk]] = field(default_factory=list)
    batches: list[ProcessedBatch] = field(default_factory=list)
    commits: list[dict[str, object]] = field(default_factory=list)
    positions: list[tuple[float, str, int, int]] = field(default_factory=list)
    hangs: list[tuple[float, float]] = field(default_factory=list)
    polls: int = 0

    def record_read(self, incarnation: int, seq: int, time_ms: float,
                    chunks: list[Chunk]) -> None:
        self.polls += 1
        for chunk in chunks:
            self.reads.append((incarnation, self.polls, seq, time_ms, chunk))

    def read_frame(self) -> pd.DataFrame:
        """One row per record a poll returned."""
        if not self.reads:
            return _stack([], READ_COLUMNS)
        counts = np.array([c.count for *_, c in self.reads])
        chunks = [c for *_, c in self.reads]
        return pd.DataFrame({
            "consumer": self.consumer, "group": self.group,
            "incarnation": np.repeat([r[0] for r in self.reads], counts),
            "poll": np.repeat([r[1] for r in self.reads], counts),
            "poll_seq": np.repeat([r[2] for r in self.reads], counts),
            "time_ms": np.repeat(np.array([r[3] for r in self.reads], np.float64), counts),
            "topic": np.repeat(np.array([c.tp.topic for c in chunks], object), counts),
            "partition": np.repeat([c.tp.partition for c in chunks], counts),
            "offset": _offsets(chunks),
            "record_id": np.concatenate([c.columns["record_id"] for c in chunks]),
        })[READ_COLUMNS]

    def processed_frame(self, now_ms: float) -> pd.DataFrame:
        """One row per record whose processing was finished by ``now_ms``.

        ``latency_ms`` runs from the record's CreateTime to the end of its processing.
        """
        chunks = [c for batch in self.batches for c in batch.chunks]
        if not chunks:
            return _stack([], PROCESSED_COLUMNS)
        counts = np.array([c.count for c in chunks])
        per_batch = np.array([batch.count for batch in self.batches])
        done = np.concatenate([batch.completion_ms(self.hangs, now_ms)
                               for batch in self.batches])
        stamps = np.concatenate([c.columns["timestamp_ms"] for c in chunks])
        frame = pd.DataFrame({
            "consumer": self.consumer, "group": self.group,
            "incarnation": np.repeat([b.incarnation for b in self.batches], per_batch),
            "poll_seq": np.repeat([b.poll_seq for b in self.batches], per_batch),
            "topic": np.repeat(np.array([c.tp.topic for c in chunks], object), counts),
            "partition": np.repeat([c.tp.partition for c in chunks], counts),
            "offset": _offsets(chunks),
            "record_id": np.concatenate([c.columns["record_id"] for c in chunks]),
            "timestamp_ms": stamps, "processed_ms": done, "latency_ms": done - stamps,
        })
        return frame[~np.isnan(done)].reset_index(drop=True)[PROCESSED_COLUMNS]

    def commit_frame(self) -> pd.DataFrame:
        """One row per partition per commit attempt (``error`` empty when stored)."""
        return pd.DataFrame(self.commits, columns=COMMIT_COLUMNS)

    def position_frame(self) -> pd.DataFrame:
        """Every change of a partition's position: time, topic, partition, position."""
        return pd.DataFrame(self.positions, columns=["time_ms", "topic", "partition",
                                                     "position"]).assign(
            consumer=self.consumer, group=self.group)


def _offsets(chunks: list[Chunk]) -> np.ndarray:
    """Every chunk's offsets, one after another."""
    counts = np.array([c.count for c in chunks])
    starts = np.repeat([c.first_offset for c in chunks], counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return (starts + within).astype(np.int64)


def _stack(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in columns})
    return pd.concat(parts, ignore_index=True)[columns]


def _dtype(name: str) -> str:
    if name in ("consumer", "group", "topic", "member", "error", "kind"):
        return "object"
    return "float64" if name.endswith("_ms") else "int64"
