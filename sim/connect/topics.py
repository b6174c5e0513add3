"""Reading a topic's records back with their payloads: what a console consumer would print."""

from __future__ import annotations

from typing import Any

from sim.payloads import RECORD_INDEX_BITS, payload, producer_of


def record_headers(kernel: Any, record_id: int) -> list[tuple[str, Any]]:
    """The headers a record was sent with (``Producer.send(headers=...)``)."""
    if record_id < 0:
        return []
    producer = producer_of(kernel, record_id)
    return producer.headers_of(int(record_id) & ((1 << RECORD_INDEX_BITS) - 1))


def topic_records(kernel: Any, topic: str) -> list[dict[str, Any]]:
    """Every record below the high watermark: partition, offset, key, value, headers."""
    out = []
    for part in kernel.cluster.topics[topic].partitions:
        log = part.log
        ids = log.column("record_id", log.log_start_offset, log.high_watermark)
        kept = log.retained(log.log_start_offset, log.high_watermark)  # compaction leaves gaps
        for i, record_id in enumerate(ids):
            if not kept[i]:
                continue
            key, value = payload(kernel, int(record_id))
            out.append({"partition": part.partition, "offset": log.log_start_offset + i,
                        "key": key, "value": value,
                        "headers": record_headers(kernel, int(record_id))})
    return out
