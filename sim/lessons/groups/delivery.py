"""A consumer crash under three commit strategies: the records it skips or processes twice.

Part of ``sim.lessons.groups`` (lesson 03); the package docstring has the vocabulary.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from sim import faults, scenarios
from sim.audit import AuditReport, audit_kernel
from sim.consumer import Consumer
from sim.consumer import events as consumer_events
from sim.consumer import metrics as group_metrics
from sim.consumer.apps import APPS, AUTO_COMMIT
from sim.consumer.group import group_coordinator
from sim.consumer.scenario import make_fault
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.lessons.whole_text import WholeTextFrame

CRASH_SCENARIO = "consumer-crash-at-least-once"
"""The scenario whose cluster, workload, group and crash the crash runs reuse."""

STRATEGIES = {
    "at-most-once": "commit, then process",
    "at-least-once": "process, then commit",
    "auto-commit": "process; enable.auto.commit commits inside poll()",
}
"""The ready-made applications of ``sim.consumer.apps``, with what each one does."""

OnRecords = Callable[[Any, Any], Any]


def crash_kernel(on_records: OnRecords, *, enable_auto_commit: bool = False,
                 scenario: str = CRASH_SCENARIO, hang_ms: float | None = None) -> Kernel:
    """Run the crash scenario's world with ``on_records`` as every consumer's application.

    The cluster, producer, group configs, the crash (consumer-billing-1 at 9 s) and the run's
    length all come from the scenario file, so the run is the scenario's own whenever
    ``on_records`` is the app the file names. With ``hang_ms`` the consumer freezes for that
    long at the crash's time instead of crashing.
    """
    base = copy.deepcopy(scenarios.load(scenario))
    specs, base.consumers = base.consumers, []
    fault_specs, base.faults = base.faults, []
    kernel = base.build()
    group_coordinator(kernel, base.group_coordinator)
    for spec in specs:
        config = {**spec["config"], "enable.auto.commit": enable_auto_commit}
        consumer = Consumer(kernel, config, on_records, spec["processing_ms_per_record"])
        consumer.subscribe(spec["topics"])
        consumer.run()
    for fault in fault_specs:
        if hang_ms is not None and "crash" in fault:
            fault = {"at_ms": fault["at_ms"], "hang": {**fault["crash"], "duration_ms": hang_ms}}
        faults.schedule(kernel, fault.get("at_ms", 0.0), make_fault(fault))
    kernel.run(base.duration_ms)
    return kernel


def crash_run(strategy: str, hang_ms: float | None = None) -> Kernel:
    """:func:`crash_kernel` with one of the ready-made applications (:data:`STRATEGIES`)."""
    if strategy not in APPS:
        raise ConfigError(f"Unknown commit strategy {strategy!r}; choose one of "
                          f"{', '.join(APPS)}.")
    return crash_kernel(APPS[strategy], enable_auto_commit=AUTO_COMMIT[strategy],
                        hang_ms=hang_ms)


def zombie_summary(kernels: Mapping[str, Kernel]) -> pd.DataFrame:
    """One row per run of a hang: when the group removed the frozen member, its refused
    commits, when it gave its partitions up as lost, and the audit's counts."""
    rows = []
    for name, kernel in kernels.items():
        report = audit_kernel(kernel)
        frozen = group_metrics.consumers(kernel)[0]
        removed = kernel.trace.frame(consumer_events.GROUP_MEMBER_REMOVED)
        lost = kernel.trace.frame(consumer_events.CONSUMER_LOST)
        lost = lost[lost["component"] == frozen.client_id]
        commits = frozen.commits()
        refused = commits[commits["error"] != ""]
        rows.append({
            "strategy": name, "removed at (ms)": float(removed["time_ms"].iloc[0]),
            "refused commits": ", ".join(f"{r.topic}-{r.partition}@{r.offset} {r.error} at "
                                         f"{r.time_ms:g} ms" for r in refused.itertuples()),
            "partitions lost at (ms)": float(lost["time_ms"].iloc[0]) if len(lost) else None,
            "skipped": report.skipped, "processed twice": report.processed_twice})
    return WholeTextFrame(rows).set_index("strategy")


def _cause(entry: Mapping[str, Any]) -> str:
    """``consumer_crash of consumer-billing-1 at 9000 ms`` (the event's first detail word)."""
    cause = entry.get("cause")
    if not cause:
        return ""
    words = str(cause.get("detail") or "").split()
    what = words[0] if words else cause["kind"]
    return f"{what} of {cause['component']} at {cause['time_ms']:g} ms (trace seq {cause['seq']})"


def delivery_summary(kernels: Mapping[str, Kernel]) -> pd.DataFrame:
    """One row per commit strategy: its commit order, skipped and processed-twice records
    (sentences read from the left, run names on one line)."""
    rows = []
    for name, kernel in kernels.items():
        report = audit_kernel(kernel)
        consumers = group_metrics.consumers(kernel)
        crash = kernel.trace.frame(consumer_events.CONSUMER_LEFT)
        crash_ms = _whole(float(crash["time_ms"].iloc[0])) if len(crash) else None
        rows.append({"strategy": name, "what it does": STRATEGIES.get(name, ""),
                     "enable.auto.commit": bool(consumers[0].config["enable.auto.commit"]),
                     "crash at (ms)": crash_ms, "processed": report.processed,
                     "skipped": report.skipped, "processed twice": report.processed_twice})
    return WholeTextFrame(rows).set_index("strategy")


def _whole(ms: float) -> int | float:
    """``ms`` as an int when it is one, so that a table shows 9000, not 9000.0."""
    return int(ms) if ms.is_integer() else ms


def anomalies(report: AuditReport | Kernel) -> pd.DataFrame:
    """The audit's skipped and processed-twice ranges, each with the event that caused it
    (its sentence shown whole in a notebook)."""
    if isinstance(report, Kernel):
        report = audit_kernel(report)
    rows = []
    for kind in ("skipped", "processed-twice"):
        for entry in report.anomalies[kind]:
            who = entry.get("read_by") or f"{entry.get('first_by')} → {entry.get('second_by')}"
            rows.append({"kind": kind, "topic": entry["topic"], "partition": entry["partition"],
                         "first_offset": entry["first_offset"],
                         "last_offset": entry["last_offset"], "count": entry["count"],
                         "consumers": who, "cause": _cause(entry)})
    return WholeTextFrame(rows, columns=["kind", "topic", "partition", "first_offset",
                                         "last_offset", "count", "consumers", "cause"])


def all_anomalies(kernels: Mapping[str, Kernel]) -> pd.DataFrame:
    """:func:`anomalies` of several named runs in one frame, with a ``run`` column first."""
    parts = [anomalies(kernel).assign(run=name) for name, kernel in kernels.items()]
    parts = [part for part in parts if len(part)]  # an empty part would make every column text
    frame = pd.concat(parts, ignore_index=True) if parts else anomalies_frame()
    return WholeTextFrame(frame[["run", *[c for c in frame.columns if c != "run"]]])


def anomalies_frame() -> pd.DataFrame:
    """An empty :func:`anomalies` frame (with a ``run`` column)."""
    return pd.DataFrame(columns=["run", "kind", "topic", "partition", "first_offset",
                                 "last_offset", "count", "consumers", "cause"])


def processed_records(kernel: Kernel) -> pd.DataFrame:
    """Every record processed in a run (all consumers): consumer, partition, offset, time."""
    parts = [c.processed() for c in group_metrics.consumers(kernel)]
    parts = [p for p in parts if len(p)]
    columns = ["consumer", "topic", "partition", "offset", "processed_ms"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]
