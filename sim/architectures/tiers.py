"""Reading a topic as data: following it as it grows, and reading it whole across both tiers.

- :class:`TopicFollower` reads what a topic gained since the last look, below each partition's
  high watermark (what a consumer with ``isolation.level=read_uncommitted`` may read), from the
  leaders' logs. Sinks and serving layers use it to keep a table of the latest value per key.
- :func:`read_topic` reads a topic's history the way a streaming data lake does: the **cold**
  records from the remote tier's Parquet objects (``sim.broker.remote_storage``: one file per
  copied segment, read with pandas), the **hot** ones from the brokers' disks, optionally from
  a time on, found with ``offsets_for_times`` — the earliest offset whose timestamp is ≥ the
  time. Every record with a later timestamp sits at or after that offset; records stamped
  earlier may sit after it too (timestamps are not in offset order), so a reader still filters
  by timestamp.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.broker.remote_log_manager import remote_state
from sim.consumer import Consumer
from sim.kernel import Kernel
from sim.payloads import payload
from sim.records import TopicPartition

READ_COLUMNS = ["partition", "offset", "timestamp_ms", "key", "value", "tier"]


class TopicFollower:
    """Follows one topic: :meth:`poll` returns the records added below the high watermark
    since the previous call, as ``(partition, offset, key, value, timestamp_ms)`` tuples."""

    def __init__(self, kernel: Kernel, topic: str) -> None:
        self.kernel = kernel
        self.topic = topic
        self.positions = [0] * len(kernel.cluster.topics[topic].partitions)

    def poll(self) -> list[tuple[int, int, Any, Any, int]]:
        """The new records, partition by partition in offset order."""
        out = []
        for p, partition in enumerate(self.kernel.cluster.topics[self.topic].partitions):
            log = partition.log
            start = max(self.positions[p], log.log_start_offset)
            stop = log.high_watermark
            if stop <= start:
                continue
            ids = log.column("record_id", start, stop)
            stamps = log.column("timestamp_ms", start, stop)
            for i, (record_id, stamp) in enumerate(zip(ids, stamps, strict=True)):
                key, value = payload(self.kernel, int(record_id))
                out.append((p, start + i, key, value, int(stamp)))
            self.positions[p] = stop
        return out


def _decode(data: Any) -> Any:
    return data.decode("utf-8") if isinstance(data, bytes) else data


def start_offsets(kernel: Kernel, topic: str, from_ms: int | None) -> dict[int, int]:
    """Per partition, where a read from ``from_ms`` starts: ``offsets_for_times`` (the
    partition's end, its high watermark, when no record is that recent), or the log start
    offset (remote tier included) without a time."""
    consumer = Consumer(kernel, {"client.id": f"lake-reader-{topic}"})
    partitions = [TopicPartition(topic, p)
                  for p in range(len(kernel.cluster.topics[topic].partitions))]
    if from_ms is None:
        return {tp.partition: offset
                for tp, offset in consumer.beginning_offsets(partitions).items()}
    found = consumer.offsets_for_times(dict.fromkeys(partitions, int(from_ms)))
    ends = consumer.end_offsets(partitions)
    return {tp.partition: (hit.offset if hit is not None else ends[tp])
            for tp, hit in found.items()}


def read_topic(kernel: Kernel, topic: str, from_ms: int | None = None) -> pd.DataFrame:
    """Every record of ``topic`` below the high watermark from ``from_ms`` on (module
    docstring): ``partition``, ``offset``, ``timestamp_ms``, ``key``, ``value`` and ``tier``
    (``"remote"`` when read from a Parquet object, ``"local"`` from a broker's disk). Keys and
    values of remote records are decoded from UTF-8 (the lab's string serializer)."""
    starts = start_offsets(kernel, topic, from_ms)
    parts = []
    for p, partition in enumerate(kernel.cluster.topics[topic].partitions):
        log, first = partition.log, starts[p]
        local_start = max(first, log.log_start_offset)
        state = remote_state(kernel.cluster, partition)
        if state is not None and first < log.log_start_offset:
            segments = [s for s in state.segments()
                        if s.end_offset >= first and s.base_offset < log.log_start_offset]
            for segment in segments:
                cold = pd.read_parquet(state.rsm.root / segment.object_name,
                                       columns=["offset", "timestamp_ms", "key", "value"])
                cold = cold[(cold["offset"] >= first) & (cold["offset"] < log.log_start_offset)]
                parts.append(pd.DataFrame({
                    "partition": p, "offset": cold["offset"].to_numpy(np.int64),
                    "timestamp_ms": cold["timestamp_ms"].to_numpy(np.int64),
                    "key": [_decode(k) for k in cold["key"]],
                    "value": [_decode(v) for v in cold["value"]], "tier": "remote"}))
        stop = log.high_watermark
        if stop > local_start:
            ids = log.column("record_id", local_start, stop)
            pairs = [payload(kernel, int(i)) for i in ids]
            parts.append(pd.DataFrame({
                "partition": p, "offset": np.arange(local_start, stop, dtype=np.int64),
                "timestamp_ms": log.column("timestamp_ms", local_start, stop).astype(np.int64),
                "key": [k for k, _ in pairs],
                "value": [v for _, v in pairs], "tier": "local"}))
    if not parts:
        return pd.DataFrame(columns=READ_COLUMNS)
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(["partition", "offset"], ignore_index=True)[READ_COLUMNS]
