"""Plain-text run summaries for the command line and for golden-output tests.

Every summary says which Kafka version's behaviour and which key configs were in force, so a
reader never has to guess whether acks=1 or acks=all was simulated.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from sim import config, metrics
from sim.audit import LEGEND, STORAGE_KINDS

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
        if producer.config.get("transactional.id") is not None:
            shown += (f" transactional.id={producer.config['transactional.id']} "
                      f"transaction.timeout.ms={producer.config['transaction.timeout.ms']}")
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
    lines.extend(storage_section(kernel))
    lines.extend(tiered_lines(kernel))
    from sim.streams.restore_timeline import restore_lines

    lines.extend(restore_lines(kernel))
    from sim.audit import audit_kernel
    from sim.consumer.report import text_section

    report = audit_kernel(kernel)
    lines.extend(text_section(kernel, report))
    lines.extend(audit_lines(report, with_counts=not text_section(kernel, report)))
    from sim.scenarios.architecture import summary_lines

    lines.extend(summary_lines(kernel))
    return "\n".join(lines) + "\n"


def storage_section(kernel: Any) -> list[str]:
    """Segments, log start offsets and dirty ratios, for runs whose topics set storage configs
    (with a note when a lab-only flag stands in for a Kafka limit)."""
    from sim.broker.log_metrics import log_metrics, storage_settings

    topics = {t.name: storage_settings(t.config) for t in kernel.cluster.topics.values()
              if not t.name.startswith("__")}
    skewed = any(getattr(c, "config", {}).get("lab.clock.skew.ms", 0) for c in kernel.clients
                 if hasattr(c, "partitioner_name"))
    if not any(topics.values()) and not skewed:
        return []
    lines = ["", "Storage (per partition, leader's log)"]
    for name, settings in topics.items():
        if settings:
            shown = " ".join(f"{k}={_fmt(v)}" for k, v in settings.items())
            lines += _wrap(f"topic {name}: {shown}", "  ", "    ")
        if "lab.segment.bytes" in settings:
            lines += _wrap(f"note: {name} uses lab.segment.bytes, a lab-only teaching flag: "
                           "Kafka 4.0 refuses segment.bytes below 1 MiB (KIP-1030)", "  ",
                           "    ")
    frame = log_metrics(kernel.cluster, kernel.now_ms)
    frame = frame[frame["topic"].isin([t for t, s in topics.items() if s or skewed])]
    lines.append(_table(frame.drop(columns=["cleanup_policy"]).round({"dirty_ratio": 3})))
    if skewed:
        lines.extend(time_lookup_lines(kernel, list(topics)))
    return lines


def time_lookup_lines(kernel: Any, topics: list[str]) -> list[str]:
    """offsets_for_times at five whole seconds across each partition's timestamps (the first
    four partitions), for runs with producers whose clocks are skewed."""
    from sim.broker.list_offsets import time_lookup_frame

    lines = []
    parts = [p for name in topics for p in kernel.cluster.topic(name).partitions][:4]
    for part in parts:
        stamps = part.log.column("timestamp_ms", part.log.log_start_offset,
                                 part.log.high_watermark)
        if not len(stamps):
            continue
        low, high = int(stamps.min()) // 1000, int(stamps.max()) // 1000 + 1
        times = sorted({1000 * int(t) for t in np.linspace(low, high, 5)})
        lines.append(f"  time lookup, {part.topic}-{part.partition} (offsets_for_times; "
                     "older_after: later offsets stamped before the time)")
        lines.append(_table(time_lookup_frame(part.log, times)))
    return lines


def tiered_lines(kernel: Any) -> list[str]:
    """Tiered storage (KIP-405): each tiered partition's two start offsets, sizes per tier,
    the remote reads with their latency, and a month's cost at these sizes."""
    from sim.broker import remote_log_manager as rlm
    from sim.broker.storage_cost import cluster_cost

    manager = kernel.cluster.remote_log_manager
    if manager is None:
        return []
    lines = ["", "Tiered storage (KIP-405): the remote tier is a folder of Parquet files, one "
             "per segment"]
    frame = manager.metrics()
    frame["latest_tiered"] = frame["highest_copied_offset"]
    lines.append(_table(frame[["topic", "partition", "log_start_offset",
                               "local_log_start_offset", "latest_tiered", "high_watermark",
                               "RemoteLogMetadataCount", "RemoteLogSizeBytes",
                               "LocalLogSizeBytes", "RemoteCopyLagBytes"]]))
    reads = kernel.trace.frame(rlm.REMOTE_READ)
    if len(reads):
        lines.append(f"  remote reads: {len(reads)} fetches, {int(reads['records'].sum())} "
                     f"records, {int(reads['bytes'].sum())} bytes; latency "
                     f"{reads['latency_ms'].min():.1f}–{reads['latency_ms'].max():.1f} ms each")
    else:
        lines.append("  remote reads: none (every fetch was at or above the local log start)")
    lines.extend(f"  cost of a month at these sizes (lab prices): {row.topic}: disk "
                 f"${row.disk_usd:.6f}, object storage ${row.object_storage_usd:.6f}, "
                 f"requests ${row.requests_usd:.6f}"
                 for row in cluster_cost(kernel.cluster).itertuples())
    return lines


PARTITION_LINES = 12  # lost-record lines per summary; the JSON lists every partition


def audit_lines(report: Any, with_counts: bool = True) -> list[str]:
    """The audit in a few lines: counts, a legend, lost records per partition, unavailability."""
    lines = []
    if with_counts:
        lines += ["", "Delivery audit (Jepsen's anomaly names)"]
        counts = ", ".join(f"{k} {n}" for k, n in report.shown_counts.items())
        lines += _wrap(f"{'valid' if report.valid else 'INVALID'}: acknowledged "
                       f"{report.acknowledged}; {counts}", "  ", "  ")
    lines.append(f"  legend: {LEGEND}")
    lines += transaction_lines(report.transactions)
    partitions = lost_by_partition(report.lost_records)
    if partitions:
        lines.append(f"  lost: {report.lost} acknowledged records")
    for part in partitions[:PARTITION_LINES]:
        offsets = (f"offsets {part['first_offset']}–{part['last_offset']}"
                   if part["first_offset"] >= 0 else "offsets unknown (acks=0)")
        causes = "; ".join(f"{_cause_text(cause, behind)}"
                           + (f" ({count})" if len(part["causes"]) > 1 else "")
                           for cause, behind, count in part["causes"])
        lines += _wrap(f"{part['topic']}-{part['partition']}: {part['count']} records, "
                       f"{offsets}; {causes}", "    ", "      ")
    if len(partitions) > PARTITION_LINES:
        lines.append(f"    … and {len(partitions) - PARTITION_LINES} more partitions "
                     "(--json lists them all)")
    lines.extend(storage_lines(report))
    for window in report.unavailable[:5]:
        cause = window["cause"] or {}
        until = (f"to {window['end_ms']:.1f} ms" if not window["open"]
                 else "on, still open at the end of the run")
        lines += _wrap(f"unavailable: {window['topic']}-{window['partition']} from "
                       f"{window['start_ms']:.1f} ms {until} ({', '.join(window['errors'])}; "
                       f"after {cause.get('kind', '?')} event {cause.get('seq', '?')})",
                       "  ", "    ")
    if len(report.unavailable) > 5:
        lines.append(f"  … and {len(report.unavailable) - 5} more unavailability windows")
    return lines


def transaction_lines(found: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The transaction anomalies: a count per kind, and the event behind the first of each."""
    if not found:
        return []
    from sim.audit import TRANSACTION_KINDS

    counts = ", ".join(f"{kind} {sum(e.get('count', 1) for e in found[kind])}"
                       for kind in TRANSACTION_KINDS)
    lines = _wrap(f"transactions: {counts}", "  ", "  ")
    for wait in found.get("read-committed-wait", []):
        lines += _wrap(f"read_committed {wait['consumer']}: records waited up to "
                       f"{wait['max_latency_ms']:.1f} ms (median {wait['median_latency_ms']:.1f}"
                       f" ms), longest at {wait['topic']}-{wait['partition']} offset "
                       f"{wait['offset']}: an open transaction holds the LSO back",
                       "    ", "      ")
    for kind in TRANSACTION_KINDS:
        entries = found[kind]
        if entries:
            cause = entries[0].get("cause") or {}
            where = (f"{entries[0]['topic']}-{entries[0]['partition']}"
                     if "partition" in entries[0] else entries[0]["topic"])
            lines += _wrap(f"{kind}: first in {where}, after {cause.get('kind', '?')} event "
                           f"{cause.get('seq', '?')} ({cause.get('component', '?')})",
                           "    ", "      ")
    return lines


def storage_lines(report: Any) -> list[str]:
    """Unread records retention or the log cleaner removed, per partition and cause."""
    lines = []
    for kind in STORAGE_KINDS:
        runs = report.anomalies.get(kind, [])
        if not runs:
            continue
        lines.append(f"  {kind}: {report.counts[kind]} acknowledged records never read")
        by_cause: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        for run in runs:
            by_cause.setdefault((run["topic"], run["partition"], run["cause"]["seq"]),
                                []).append(run)
        for (topic, partition, seq), mine in list(by_cause.items())[:PARTITION_LINES]:
            cause = mine[0]["cause"]
            lines += _wrap(f"{topic}-{partition}: {sum(r['count'] for r in mine)} records, "
                           f"offsets {mine[0]['first_offset']}–{mine[-1]['last_offset']}; "
                           f"{cause['text']} (event {seq} at {cause['time_ms']:.1f} ms)",
                           "    ", "      ")
        if len(by_cause) > PARTITION_LINES:
            lines.append(f"    … and {len(by_cause) - PARTITION_LINES} more (--json lists "
                         "them all)")
    return lines


def lost_by_partition(lost: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lost records per partition: count, lowest and highest offset, and each cause's count.

    ``causes`` holds ``(cause, left_behind_by, count)`` in order of the cause's trace event.
    """
    parts: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in lost:
        key = (entry["topic"], entry["partition"])
        part = parts.setdefault(key, {"topic": key[0], "partition": key[1], "count": 0,
                                      "first_offset": entry["offset"],
                                      "last_offset": entry["offset"], "by_cause": {}})
        part["count"] += 1
        part["first_offset"] = min(part["first_offset"], entry["offset"])
        part["last_offset"] = max(part["last_offset"], entry["offset"])
        cause, behind = entry.get("cause"), entry.get("left_behind_by")
        seqs = (_seq(cause), _seq(behind))
        found = part["by_cause"].setdefault(seqs, [cause, behind, 0])
        found[2] += 1
    out = []
    for key in sorted(parts):
        part = parts.pop(key)
        by_cause = part.pop("by_cause")
        part["causes"] = [tuple(by_cause[k]) for k in sorted(
            by_cause, key=lambda k: tuple(-1 if s is None else s for s in k))]
        out.append(part)
    return out


def _seq(event: dict[str, Any] | None) -> int | None:
    return None if event is None else event.get("seq")


def _cause_text(cause: dict[str, Any] | None, behind: dict[str, Any] | None) -> str:
    if cause is None:
        return "cause unknown"
    verb = "left behind by" if cause["kind"] == "leader.election" else "removed by"
    text = f"{verb} {_event_text(cause)}"
    if behind is not None:
        text += f", after {_event_text(behind)}"
    return text


def _event_text(event: dict[str, Any]) -> str:
    node = event.get("node", -1)
    if event["kind"] == "leader.election":
        what = f"the {event['detail'].split(' ', 1)[0]} election of broker {node}"
    elif event["kind"] == "log.truncate":
        what = f"log.truncate on broker {node}"
    elif event["kind"] == "log.lost":
        what = f"log.lost on broker {node}, restarted with an empty disk"
    else:
        what = str(event["kind"])
    return f"{what} (event {event['seq']} at {event['time_ms']:.1f} ms)"


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, 96, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False)


def summary_json(kernel: Any, title: str = "", description: str = "") -> dict[str, Any]:
    """The run's summary as one JSON-ready object; ``audit`` holds the delivery audit."""
    from sim.audit import audit_kernel
    from sim.consumer.report import json_section
    from sim.scenarios.architecture import summary_json as architecture_json

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
        **({"tiered": records(kernel.cluster.remote_log_manager.metrics())}
           if kernel.cluster.remote_log_manager is not None else {}),
        **consumers, "audit": audit, **architecture_json(kernel),
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
