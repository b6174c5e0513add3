"""The consumer-group part of a run's summary, as text lines and as JSON-ready data."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pandas as pd

from sim.consumer import metrics
from sim.consumer.assignors import COOPERATIVE

KEY_CONSUMER_CONFIGS = ("partition.assignment.strategy", "enable.auto.commit",
                        "auto.offset.reset", "max.poll.records", "session.timeout.ms",
                        "heartbeat.interval.ms", "max.poll.interval.ms")


def group_info(kernel: Any, group_id: str) -> dict[str, Any]:
    """One group: coordinator, protocol, state, generations, pauses and final lag."""
    members = metrics.consumers(kernel, group_id)
    coordinator = kernel.cluster.group_coordinator
    group = coordinator.groups.get(group_id)
    protocols = {c.coordinator.rebalance_protocol for c in members if c.coordinator}
    pauses = metrics.rebalance_pauses(kernel, group_id)
    final = metrics.lag(kernel, group_id, every_ms=max(kernel.now_ms, 1.0))
    final = final[final["time_ms"] == final["time_ms"].max()] if len(final) else final
    return {
        "group": group_id,
        "coordinator": coordinator.node_for(group_id),
        "offsets_partition": coordinator.partition_for(group_id),
        "rebalance_protocol": ",".join(sorted(protocols)),
        "state": group.state if group else "Empty",
        "generation": group.generation if group else 0,
        "configs": {k: _plain(members[0].config[k]) for k in KEY_CONSUMER_CONFIGS} if members
        else {},
        "generations": metrics.generations(kernel, group_id),
        "pauses": {"count": len(pauses),
                   "max_ms": float(pauses["pause_ms"].max()) if len(pauses) else 0.0,
                   "total_ms": float(pauses["pause_ms"].sum()) if len(pauses) else 0.0},
        "lag": _records(final[["topic", "partition", "high_watermark", "committed", "position",
                               "lag", "consumer_lag"]]) if len(final) else [],
    }


def json_section(kernel: Any) -> dict[str, Any]:
    """``consumers`` (one row per consumer) and ``groups`` (``group_info`` per group)."""
    return {"consumers": _records(metrics.consumer_metrics(kernel)),
            "groups": [group_info(kernel, g) for g in metrics.group_ids(kernel)]}


def text_section(kernel: Any, audit: Any) -> list[str]:
    """Lines for the text summary (empty when the run had no consumers)."""
    if not metrics.consumers(kernel):
        return []
    lines = ["", "Consumer groups"]
    for group_id in metrics.group_ids(kernel):
        info = group_info(kernel, group_id)
        protocol = info["rebalance_protocol"]
        lines.append(f"Group {group_id}: coordinator broker {info['coordinator']} "
                     f"(__consumer_offsets-{info['offsets_partition']}), {protocol} rebalances"
                     f"{' (KIP-429)' if protocol == COOPERATIVE else ''}, state {info['state']}, "
                     f"generation {info['generation']}")
        shown = " ".join(f"{k}={_text(v)}" for k, v in info["configs"].items())
        lines.extend(_wrap(shown, 96, initial_indent="  ", subsequent_indent="  "))
        for gen in info["generations"]:
            parts = "; ".join(f"{name}: {','.join(tps) or '-'}"
                              for name, tps in gen["assignments"].items())
            lines.extend(_wrap(
                f"generation {gen['generation']} at {gen['time_ms']:.1f} ms ({gen['protocol']}): "
                f"{parts}", 96, initial_indent="  ", subsequent_indent="      "))
        pauses = info["pauses"]
        lines.append(f"  partitions without an owner: {pauses['count']} times, longest "
                     f"{pauses['max_ms']:.1f} ms, {pauses['total_ms']:.1f} ms in all")
    lines.append("")
    lines.append("Consumers")
    frame = metrics.consumer_metrics(kernel)
    lines.append(frame.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    lines.append("")
    lines.append("Delivery audit (Jepsen's anomaly names)")
    counts = ", ".join(f"{k} {n}" for k, n in audit.shown_counts.items())
    lines.extend(_wrap(
        f"{'valid' if audit.valid else 'INVALID'}: acknowledged {audit.acknowledged}, read "
        f"{audit.read}, processed {audit.processed}; {counts}", 96, initial_indent="  ",
        subsequent_indent="  "))
    return lines


def _wrap(text: str, width: int, **indents: str) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False, **indents)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN becomes null)."""
    return json.loads(frame.to_json(orient="records"))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)
