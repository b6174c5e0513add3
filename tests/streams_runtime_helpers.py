"""Helpers shared by the Streams runtime tests: a cluster with topics, input, output."""

from __future__ import annotations

import re
from typing import Any

from sim.kernel import Kernel
from sim.payloads import payload
from sim.producer import Producer

QUICKSTART_LINES = ["all streams lead to kafka", "hello kafka streams", "join kafka summit"]
"""The three lines typed in Kafka Streams' quickstart (``docs/streams/quickstart.html``)."""


def java_split_words(line: str) -> list[str]:
    """``line.toLowerCase().split("\\\\W+")``: Java drops trailing empty strings."""
    words = re.split(r"\W+", line.lower())
    while words and words[-1] == "":
        words.pop()
    return words


def cluster(topics: dict[str, int], seed: int = 1, brokers: int = 1) -> Kernel:
    """A kernel whose cluster has ``topics`` (name -> partitions)."""
    kernel = Kernel(seed=seed, brokers=brokers)
    for name, partitions in topics.items():
        kernel.cluster.create_topic(name, partitions)
    return kernel


def produce(kernel: Kernel, topic: str, records: list[tuple[Any, Any, int | None]]) -> Producer:
    """Send (key, value, timestamp) records now, in order, with one producer."""
    producer = Producer(kernel, {"client.id": f"input-{topic}"})
    for key, value, timestamp in records:
        producer.send(topic, key, value, timestamp=timestamp)
    return producer


def read_topic(kernel: Kernel, topic: str) -> list[tuple[int, Any, Any, int]]:
    """Every committed record of ``topic``: (partition, key, value, timestamp), partition by
    partition in offset order."""
    rows = []
    for p, partition in enumerate(kernel.cluster.topics[topic].partitions):
        log = partition.log
        end = log.high_watermark
        ids = log.column("record_id", 0, end)
        stamps = log.column("timestamp_ms", 0, end)
        for record_id, timestamp in zip(ids, stamps, strict=True):
            key, value = payload(kernel, int(record_id))
            rows.append((p, key, value, int(timestamp)))
    return rows


def key_values(kernel: Kernel, topic: str) -> list[tuple[Any, Any]]:
    return [(key, value) for _, key, value, _ in read_topic(kernel, topic)]
