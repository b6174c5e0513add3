"""Plain-text run summaries for the command line and for golden-output tests.

Every summary says which Kafka version's behaviour and which key configs were in force, so a
reader never has to guess whether acks=1 or acks=all was simulated.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pandas as pd

from sim import config, metrics

KEY_PRODUCER_CONFIGS = ("acks", "enable.idempotence", "linger.ms", "batch.size",
                        "compression.type", "partitioner.adaptive.partitioning.enable",
                        "partitioner.ignore.keys")


def summary(kernel: Any, title: str = "", description: str = "") -> str:
    """A deterministic text report of a finished run: configs, partitions, producers, brokers."""
    lines = []
    if title:
        lines.append(f"Scenario: {title}")
    if description:
        lines.extend(textwrap.wrap(description, 96))
    lines.append(f"Kafka {config.KAFKA_VERSION} defaults · seed {kernel.seed} · simulated "
                 f"{kernel.now_ms:.1f} ms · {len(kernel.trace)} events")
    for producer in kernel.clients:
        if not hasattr(producer, "config"):
            continue
        shown = " ".join(f"{k}={_fmt(producer.config[k])}" for k in KEY_PRODUCER_CONFIGS)
        lines.append(f"Producer {producer.client_id} (client behaviour of Kafka "
                     f"{producer.config['lab.kafka.version']}): partitioner="
                     f"{producer.partitioner_name}")
        lines.extend(textwrap.wrap(shown, 96, initial_indent="  ", subsequent_indent="  "))
    lines.append("")
    lines.append("Partitions")
    parts = metrics.partition_metrics(kernel)
    lines.append(_table(parts[["topic", "partition", "leader", "records", "share", "batches",
                               "records_per_batch"]]))
    lines.append("")
    lines.append("Producers")
    lines.append(_table(metrics.producer_metrics(kernel).drop(columns=["partitioner", "acks"])))
    lines.append("")
    lines.append("Brokers")
    lines.append(_table(metrics.broker_metrics(kernel)))
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "  (none)"
    return frame.to_string(index=False, float_format=lambda v: f"{v:.3f}")
