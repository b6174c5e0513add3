"""Metrics as DataFrames: per partition, per producer and per broker.

These are read-outs a Kafka operator knows (records and bytes per partition, batch sizes,
request latency, broker busy time), computed from the cluster's logs, the trace and the
producers' per-record results. Nothing here changes the simulation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim import trace as events

NOT_FAILED_PRODUCE_REQUESTS = frozenset({
    "UNKNOWN_TOPIC_OR_PARTITION", "NOT_LEADER_OR_FOLLOWER", "MESSAGE_TOO_LARGE",
    "RECORD_LIST_TOO_LARGE", "CORRUPT_MESSAGE", "KAFKA_STORAGE_ERROR", "REQUEST_TIMED_OUT"})
"""Produce errors Kafka leaves out of ``FailedProduceRequestsPerSec``: the append errors
``ReplicaManager.appendToLocalLog`` answers without marking the meter, and an acks=all request
whose wait for the high watermark ran out, which counts as expired (``DelayedProduceMetrics``
``ExpiresPerSec``)."""

EXPIRED_PRODUCE_REQUEST = "REQUEST_TIMED_OUT"
"""The error of an acks=all request whose ``DelayedProduce`` expired before the high watermark
reached its records."""


def partition_metrics(kernel: Any) -> pd.DataFrame:
    """One row per partition: leader, records, bytes, batches, mean batch records, share."""
    rows = []
    for topic in kernel.cluster.topics.values():
        for part in topic.partitions:
            log = part.log
            rows.append({
                "topic": topic.name, "partition": part.partition, "leader": part.leader,
                "records": len(log), "bytes": log.size_bytes, "batches": log.batch_count,
                "log_end_offset": log.log_end_offset, "high_watermark": log.high_watermark,
            })
    frame = pd.DataFrame(rows, columns=["topic", "partition", "leader", "records", "bytes",
                                        "batches", "log_end_offset", "high_watermark"])
    batches = frame["batches"].where(frame["batches"] > 0)
    frame["records_per_batch"] = (frame["records"] / batches).fillna(0.0)
    totals = frame.groupby("topic")["records"].transform("sum")
    frame["share"] = (frame["records"] / totals.where(totals > 0)).fillna(0.0)
    return frame


def producer_metrics(kernel: Any,
                     results: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per producer: records, acknowledged, failed, in flight (neither: still batched or
    awaiting a response when the run ended), requests, batches and latency percentiles.

    ``results`` may hold producers' ``results()`` frames already built, by client id, so that a
    caller that needs them too builds each only once.
    """
    built = results or {}
    rows = []
    appends = kernel.trace.frame(events.LOG_APPEND)
    for producer in kernel.clients:
        if not hasattr(producer, "results"):
            continue
        records = built.get(producer.client_id)
        if records is None:
            records = producer.results()
        latency = records["latency_ms"].dropna().to_numpy()
        mine = appends[appends["producer"] == producer.producer_id]
        rows.append({
            "producer": producer.client_id,
            "partitioner": producer.partitioner_name,
            "acks": producer.config["acks"],
            "records": len(records),
            "acknowledged": int(np.isfinite(records["ack_ms"]).sum()),
            "failed": int(records["error"].notna().sum()),
            "in_flight": int((~np.isfinite(records["ack_ms"]) & records["error"].isna()).sum()),
            "requests": producer.sender.requests_sent,
            "batches": len(mine),
            "records_per_batch": float(mine["records"].mean()) if len(mine) else 0.0,
            "latency_p50_ms": _percentile(latency, 50),
            "latency_p99_ms": _percentile(latency, 99),
            "latency_max_ms": float(latency.max()) if len(latency) else float("nan"),
        })
    return pd.DataFrame(rows)


def broker_metrics(kernel: Any) -> pd.DataFrame:
    """One row per broker: leaderships, produce requests, bytes appended, busy time, and the
    replication read-outs an operator watches: ISR shrinks and expansions (as leader), the
    partitions it leads that are under-replicated now, and its failed and expired produce
    requests, counted as Kafka counts them.

    ``failed_produce`` is ``FailedProduceRequestsPerSec``: appends the broker refused, such as
    ``NOT_ENOUGH_REPLICAS`` (not ``NOT_LEADER_OR_FOLLOWER`` and the other errors in
    :data:`NOT_FAILED_PRODUCE_REQUESTS`). ``expired_produce`` is the delayed produce requests'
    ``ExpiresPerSec``: acks=all requests that waited for the high watermark until their
    ``request.timeout.ms`` ran out (``REQUEST_TIMED_OUT``)."""
    appends = kernel.trace.frame(events.LOG_APPEND)
    sent = kernel.trace.frame(events.REQUEST_SENT)
    isr = kernel.trace.frame(events.KINDS["isr.change"])
    errors = kernel.trace.frame(events.KINDS["produce.error"])
    now = max(kernel.now_ms, 1e-9)
    # Count per node once (one pass over each frame), then read the counts per broker.
    requests = sent["node"].value_counts()
    appended = appends.groupby("node")["bytes"].sum()
    shrinks = isr.loc[isr["reason"].str.startswith("shrink"), "node"].value_counts()
    expands = isr.loc[isr["reason"].str.startswith("expand"), "node"].value_counts()
    failed = errors.loc[~errors["error"].isin(NOT_FAILED_PRODUCE_REQUESTS), "node"].value_counts()
    expired = errors.loc[errors["error"] == EXPIRED_PRODUCE_REQUEST, "node"].value_counts()
    partitions = [p for t in kernel.cluster.topics.values() for p in t.partitions]
    rows = []
    for broker_id, broker in kernel.cluster.brokers.items():
        rows.append({
            "broker": broker_id, "slowdown": broker.slowdown,
            "leader_partitions": sum(p.leader == broker_id for p in partitions),
            "produce_requests": int(requests.get(broker_id, 0)),
            "bytes_appended": int(appended.get(broker_id, 0)),
            "busy_ms": broker.busy_ms, "utilisation": min(1.0, broker.busy_ms / now),
            "isr_shrinks": int(shrinks.get(broker_id, 0)),
            "isr_expands": int(expands.get(broker_id, 0)),
            "failed_produce": int(failed.get(broker_id, 0)),
            "expired_produce": int(expired.get(broker_id, 0)),
            "under_replicated": sum(p.leader == broker_id and len(p.isr) < len(p.replicas)
                                    for p in partitions),
        })
    return pd.DataFrame(rows)


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def consumer_metrics(kernel: Any) -> pd.DataFrame:
    """One row per consumer: state, assignment, polls, records read and processed, commits."""
    from sim.consumer.metrics import consumer_metrics as per_consumer

    return per_consumer(kernel)


def consumer_lag(kernel: Any, group_id: str, every_ms: float = 100.0) -> pd.DataFrame:
    """Per partition over time: ``lag`` (high watermark − committed, as kafka-consumer-groups.sh
    shows it) and ``consumer_lag`` (high watermark − position, the consumer's own metric)."""
    from sim.consumer.metrics import lag

    return lag(kernel, group_id, every_ms)
