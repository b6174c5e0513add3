"""Plain-text run summaries for the command line and for golden-output tests.

Every summary says which Kafka version's behaviour and which key configs were in force, so a
reader never has to guess whether acks=1 or acks=all was simulated.
"""

from __future__ import annotations

import json
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
        if not hasattr(producer, "partitioner_name"):  # consumers are summarised below
            continue
        shown = " ".join(f"{k}={_fmt(producer.config[k])}" for k in KEY_PRODUCER_CONFIGS)
        if producer.config["enable.idempotence"] and not producer.idempotent:
            shown = shown.replace("enable.idempotence=true",
                                  "enable.idempotence=true (off: conflicts with acks)")
        lines.append(f"Producer {producer.client_id} (client behaviour of Kafka "
                     f"{producer.config['lab.kafka.version']}): partitioner="
                     f"{producer.partitioner_name}")
        lines.extend(textwrap.wrap(shown, 96, initial_indent="  ", subsequent_indent="  "))
    lines.append("")
    lines.append("Partitions")
    parts = metrics.partition_metrics(kernel)
    parts = parts[~parts["topic"].astype(str).str.startswith("__")]  # internal topics
    lines.append(_table(parts[["topic", "partition", "leader", "records", "share", "batches",
                               "records_per_batch"]]))
    lines.append("")
    lines.append("Producers")
    lines.append(_table(metrics.producer_metrics(kernel).drop(columns=["partitioner", "acks"])))
    lines.append("")
    lines.append("Brokers")
    lines.append(_table(metrics.broker_metrics(kernel)))
    from sim.audit import audit_kernel
    from sim.consumer.report import text_section

    report = audit_kernel(kernel)
    lines.extend(text_section(kernel, report))
    lines.extend(audit_lines(report, with_counts=not text_section(kernel, report)))
    return "\n".join(lines) + "\n"


def audit_lines(report: Any, with_counts: bool = True) -> list[str]:
    """The audit in a few lines: counts, the first lost records, unavailability windows."""
    lines = []
    if with_counts:
        lines += ["", "Delivery audit (Jepsen's anomaly names)"]
        counts = ", ".join(f"{k} {n}" for k, n in report.counts.items())
        lines += textwrap.wrap(
            f"{'valid' if report.valid else 'INVALID'}: acknowledged {report.acknowledged}; "
            f"{counts}", 96, initial_indent="  ", subsequent_indent="  ",
            break_on_hyphens=False)
    if report.lost_records:
        first, last = report.lost_records[0], report.lost_records[-1]
        cause = first.get("cause") or {}
        lines += textwrap.wrap(
            f"lost: {report.lost} acknowledged records, {first['topic']}-{first['partition']} "
            f"offsets {first['offset']}–{last['offset']}; removed by {cause.get('kind', '?')} "
            f"(event {cause.get('seq', '?')} at {cause.get('time_ms', float('nan')):.1f} ms)",
            96, initial_indent="  ", subsequent_indent="    ")
    for window in report.unavailable[:5]:
        cause = window["cause"] or {}
        lines += textwrap.wrap(
            f"unavailable: {window['topic']}-{window['partition']} from "
            f"{window['start_ms']:.1f} to {window['end_ms']:.1f} ms "
            f"({', '.join(window['errors'])}; after {cause.get('kind', '?')} event "
            f"{cause.get('seq', '?')})", 96, initial_indent="  ", subsequent_indent="    ")
    if len(report.unavailable) > 5:
        lines.append(f"  … and {len(report.unavailable) - 5} more unavailability windows")
    return lines


def summary_json(kernel: Any, title: str = "", description: str = "") -> dict[str, Any]:
    """The run's summary as one JSON-ready object; ``audit`` holds the delivery audit."""
    from sim.audit import audit_kernel
    from sim.consumer.report import json_section

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return json.loads(frame.to_json(orient="records"))

    parts = metrics.partition_metrics(kernel)
    consumers = json_section(kernel)
    audit = audit_kernel(kernel).to_json()
    audit["generations"] = [{"group": g["group"], **gen} for g in consumers["groups"]
                            for gen in g["generations"]]
    return {
        "scenario": title, "description": description, "kafka_version": config.KAFKA_VERSION,
        "seed": kernel.seed, "simulated_ms": round(kernel.now_ms, 6), "events": len(kernel.trace),
        "partitions": records(parts[~parts["topic"].astype(str).str.startswith("__")]),
        "producers": records(metrics.producer_metrics(kernel)),
        "brokers": records(metrics.broker_metrics(kernel)),
        **consumers, "audit": audit,
    }


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
