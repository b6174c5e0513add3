"""Lesson computations for replication: who leads, who is in sync, what was lost and when.

Used by lesson 02 and exercise 02. Vocabulary (kafka-facts §3):

- *replica*: one broker's copy of a partition's log. The *leader* takes writes; *followers*
  fetch from it. The *ISR* (in-sync replicas) are the replicas the leader counts as caught up.
- *LEO* (log end offset): the next offset a replica will write. *HW* (high watermark): the
  smallest LEO among the ISR; consumers read only below it. Worked example: leader LEO 5,
  followers 5 and 3, all in the ISR → HW 3, so offsets 0–2 are committed.
- *under-replicated*: a partition whose ISR is smaller than its replica list; *offline*: a
  partition without a leader (``leader`` −1).
- *failed write*: a record the producer could not get acknowledged: it reported an error, or it
  was still waiting when the run ended. The unavailability a configuration costs is counted in
  failed writes.
- *lost*: an acknowledged record that a final read of its partition (every offset below the
  high watermark, as Jepsen's final polls do) does not find — the audit's ``lost-write`` plus
  ``unseen`` records when no consumer ran.

A *snapshot* (:func:`replication_snapshot`) is one row per replica at the current moment; the
figures in :mod:`sim.viz` draw it. A *replication run* (:func:`replication_kernel`) is one topic
``payments`` with all its replicas on brokers 0, 1, 2, … (broker 0 the preferred leader), one
producer and a fault schedule; :mod:`sim.lessons.replication_tables` summarises and compares
runs.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sim import config
from sim import faults as fault_kinds
from sim import trace as events
from sim.audit import audit_kernel, final_reads_of
from sim.broker.cluster import Network
from sim.errors import ConfigError, SimulationError
from sim.kernel import Kernel
from sim.lessons.whole_text import WholeTextFrame, breakable_labels
from sim.metrics import EXPIRED_PRODUCE_REQUEST, NOT_FAILED_PRODUCE_REQUESTS
from sim.producer import Producer
from sim.workloads import Workload

__all__ = [
    "METRIC_COLUMNS",
    "OUTCOME_COLUMNS",
    "REPLICATION_KINDS",
    "REPLICATION_TOPIC",
    "SNAPSHOT_COLUMNS",
    "advance",
    "breakable_labels",
    "broker_metric_changes",
    "broker_state",
    "delivery_outcome",
    "loss_report",
    "metric_totals",
    "replication_bookmarks",
    "replication_events",
    "replication_kernel",
    "replication_snapshot",
    "replication_timeline",
]

REPLICATION_TOPIC = "payments"
"""The topic of a replication run (as in the built-in replication scenarios)."""

REPLICATION_KINDS = ("fault", "broker.state", "leader.election", "isr.change", "log.truncate")
"""The trace event kinds that tell a replication story (produce traffic left out)."""

SNAPSHOT_COLUMNS = (
    "topic", "partition", "broker", "role", "leader", "leader_epoch", "in_isr", "alive",
    "fenced", "broker_state", "believes_leader", "connected_to_leader", "log_end_offset",
    "high_watermark", "replica_high_watermark",
)
"""Columns of :func:`replication_snapshot`, one row per replica."""

OUTCOME_COLUMNS = ("sent", "acknowledged", "failed", "waiting", "lost", "duplicates",
                   "latency_p99_ms")
"""What :func:`delivery_outcome` reports for a run."""

METRIC_COLUMNS = ("isr_shrinks", "isr_expands", "failed_produce_requests",
                  "expired_produce_requests", "under_replicated_max", "under_replicated_end",
                  "unclean_elections", "offline_partitions_end")
"""Cluster-wide broker metric changes of a run (:func:`metric_totals`)."""


class MetricsFrame(pd.DataFrame):
    """A DataFrame whose notebook display lets a column label break after an underscore, so
    a table of long metric names fits a JupyterLab output (about 850 pixels) instead of hiding
    its last columns behind a scroll bar; everything else about it is pandas'."""

    @property
    def _constructor(self) -> Any:
        return MetricsFrame

    def _repr_html_(self) -> str | None:
        html = super()._repr_html_()
        return None if html is None else breakable_labels(html)


STALL_STEPS = 100_000
"""Events in a row at one instant after which :func:`advance` calls the simulation stalled."""


# --- The cluster at a moment --------------------------------------------------------------


def broker_state(kernel: Kernel, broker_id: int) -> str:
    """``up``, ``down`` (crashed), ``fenced`` (alive, but the controller fenced it) or
    ``isolated`` (alive and not yet fenced, but cut off from the controller or from every other
    broker)."""
    broker = kernel.cluster.brokers[broker_id]
    if not broker.alive:
        return "down"
    if broker_id in kernel.controller.fenced:
        return "fenced"
    network = kernel.cluster.network
    peers = [b for b in kernel.cluster.brokers if b != broker_id]
    alone = bool(peers) and not any(network.connected(broker_id, b) for b in peers)
    if alone or not network.connected(broker_id, Network.CONTROLLER):
        return "isolated"
    return "up"


def replication_snapshot(kernel: Kernel) -> pd.DataFrame:
    """One row per replica of every (non-internal) partition, now.

    Columns (:data:`SNAPSHOT_COLUMNS`): ``role`` is ``leader`` or ``follower`` as the controller
    sees it, or ``offline`` for every replica of a partition without a leader; ``leader`` and
    ``in_isr`` are the controller's too (``Controller.registration``), and so is
    ``leader_epoch`` (``Controller.registered_epoch``); ``believes_leader`` is True for a
    broker that still thinks it leads (a cut-off *zombie* leader the controller has replaced
    differs from ``role``);
    ``connected_to_leader`` says whether the replica can reach the leader to fetch (the one the
    replicas still follow while the controller cannot reach it);
    ``high_watermark`` is the partition's (the leader's HW, the last leader's while offline) and
    ``replica_high_watermark`` what this replica knows of it.
    """
    network = kernel.cluster.network
    states = {b: broker_state(kernel, b) for b in kernel.cluster.brokers}
    rows = []
    for topic in kernel.cluster.topics.values():
        if topic.name.startswith("__"):
            continue
        for part in topic.partitions:
            hw = part.log.high_watermark
            leader, isr = kernel.controller.registration(part)
            for b in part.replicas:
                broker = kernel.cluster.brokers[b]
                if leader < 0:
                    role = "offline"
                else:
                    role = "leader" if b == leader else "follower"
                log = part.logs[b]
                rows.append({
                    "topic": topic.name, "partition": part.partition, "broker": b, "role": role,
                    "leader": leader, "leader_epoch": kernel.controller.registered_epoch(part),
                    "in_isr": b in isr, "alive": broker.alive,
                    "fenced": b in kernel.controller.fenced, "broker_state": states[b],
                    "believes_leader": (topic.name, part.partition) in broker.leads,
                    "connected_to_leader": part.leader >= 0 and network.connected(b, part.leader),
                    "log_end_offset": log.log_end_offset, "high_watermark": hw,
                    "replica_high_watermark": log.high_watermark,
                })
    return pd.DataFrame(rows, columns=list(SNAPSHOT_COLUMNS))


# --- Runs with a fault schedule ---------------------------------------------------------------


FaultSchedule = Sequence[tuple[float, Any]]
"""``[(at_ms, fault), ...]`` with faults from :mod:`sim.faults`."""


def _split_configs(configs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Producer configs, topic configs and the replication factor, by Kafka's config tables."""
    producer: dict[str, Any] = {}
    topic: dict[str, Any] = {}
    rf = 3
    known = {k.name for k in config.PRODUCER} | {k.name for k in config.TOPIC}
    for name, value in configs.items():
        if name == "replication.factor":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"replication.factor must be a whole number of replicas but got "
                                  f"{value!r}.")
            rf = value
        elif any(k.name == name for k in config.PRODUCER):
            producer[name] = value
        elif any(k.name == name for k in config.TOPIC):
            topic[name] = value
        else:
            close = difflib.get_close_matches(str(name), [*known, "replication.factor"], n=2)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(f"Unknown config {name!r}.{hint} Use producer configs (acks, "
                              "enable.idempotence, …), topic configs (min.insync.replicas, "
                              "unclean.leader.election.enable, …) or replication.factor.")
    return producer, topic, rf


def replication_kernel(
    configs: Mapping[str, Any] | None = None,
    *,
    faults: FaultSchedule = (),
    seed: int = 42,
    brokers: int = 3,
    rate_per_s: float = 200,
    traffic_ms: Sequence[tuple[float, float]] = ((0.0, 20_000.0),),
    value_bytes: int = 100,
    broker_configs: Mapping[str, Any] | None = None,
) -> Kernel:
    """A kernel with topic ``payments``, one producer ``app`` and a fault schedule (not yet run).

    Its setup builds everything, so ``reset()`` and a stepper replay the identical run.

    Args:
        configs: Kafka's names, each sent where it belongs — producer configs (``acks``,
            ``enable.idempotence``, ``delivery.timeout.ms``, …) to the producer, topic configs
            (``min.insync.replicas``, ``unclean.leader.election.enable``, …) to the topic — plus
            ``replication.factor`` (default 3; replicas on brokers 0, 1, … in that order).
        faults: ``[(at_ms, fault), ...]`` applied at those simulated times.
        rate_per_s: records per second while traffic flows.
        traffic_ms: ``(start_ms, end_ms)`` windows in which the producer sends, e.g.
            ``[(0, 35_000), (50_000, 58_000)]`` for a pause.
        broker_configs: applied to every broker (``replica.lag.time.max.ms``, …).

    Raises:
        ConfigError: for an unknown config name, a bad value, a replication factor the brokers
            cannot hold, or configs Kafka refuses together (``enable.idempotence=true`` with
            ``acks=1``).
    """
    producer_cfg, topic_cfg, rf = _split_configs(configs or {})
    if not 1 <= rf <= brokers:
        raise ConfigError(f"replication.factor must be between 1 and the number of brokers "
                          f"({brokers}) but got {rf}.")
    windows = [(float(a), float(b)) for a, b in traffic_ms]
    if any(b < a or a < 0 for a, b in windows):
        raise ConfigError(f"traffic_ms windows must be (start_ms, end_ms) with 0 ≤ start ≤ end, "
                          f"but got {list(traffic_ms)}.")
    schedule = list(faults)

    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic(REPLICATION_TOPIC, configs=topic_cfg,
                                    replica_assignment=[list(range(rf))])
        producer = Producer(kernel, {"client.id": "app", **producer_cfg})
        for start, end in windows:
            records = round((end - start) * rate_per_s / 1000)
            if records:
                producer.add_workload(Workload.generate(
                    kernel.spawn_rng(), REPLICATION_TOPIC, records, rate_per_s,
                    value_bytes=value_bytes, start_ms=start))
        for at_ms, fault in schedule:
            fault_kinds.schedule(kernel, at_ms, fault)

    return Kernel(seed=seed, brokers=brokers,
                  broker_configs=dict(broker_configs) if broker_configs else None, setup=setup)


def advance(kernel: Kernel, until_ms: float, stall_steps: int = STALL_STEPS) -> Kernel:
    """Run ``kernel`` to simulated time ``until_ms``, refusing to spin forever at one instant.

    Raises:
        SimulationError: when ``stall_steps`` events in a row happen at the same simulated time
            (the clock would never reach ``until_ms``).
    """
    seen = {"time": kernel.now_ms, "repeats": 0}

    def stalled(k: Kernel) -> bool:
        if k.now_ms == seen["time"]:
            seen["repeats"] += 1
            if seen["repeats"] > stall_steps:
                raise SimulationError(
                    f"The simulation stopped advancing at {k.now_ms:.3f} ms: {stall_steps:,} "
                    "events in a row at the same instant. It happens when a partition has no "
                    "leader while records wait for it; stop earlier, or restart a broker first.")
        else:
            seen["time"], seen["repeats"] = k.now_ms, 0
        return False

    kernel.run_until(stalled, max_ms=until_ms)
    return kernel.run(until_ms)  # nothing is left before until_ms: this only moves the clock


# --- What a run did ------------------------------------------------------------------------------


def delivery_outcome(kernel: Kernel) -> dict[str, float]:
    """What the producers got so far: records sent, acknowledged, failed, waiting, lost,
    duplicated, and the p99 latency of the acknowledged ones.

    ``sent`` counts records whose send time has come; ``failed`` those the producer reported
    as failed (``delivery.timeout.ms`` ran out, or an error it does not retry); ``waiting``
    those with no answer yet. ``lost`` counts acknowledged records missing from a final read
    of their partition below the high watermark (the audit's ``lost-write`` plus ``unseen``
    when no consumer ran; mid-run, an acks=1 record not yet replicated also counts).
    ``duplicates`` counts records stored at more than one offset of that final read.
    """
    frames = [c.results() for c in kernel.clients if hasattr(c, "results")]
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"send_ms": [], "ack_ms": [], "error": [], "record_id": [], "latency_ms": []})
    sent = results[results["send_ms"].to_numpy(dtype=float) <= kernel.now_ms]
    acked = np.isfinite(sent["ack_ms"].to_numpy(dtype=float))
    failed = sent["error"].notna().to_numpy()
    final = final_reads_of(kernel)
    present = sent["record_id"].isin(final["record_id"]).to_numpy()
    copies = final["record_id"].value_counts()
    latency = sent["latency_ms"].dropna().to_numpy(dtype=float)
    return {
        "sent": len(sent), "acknowledged": int(acked.sum()), "failed": int(failed.sum()),
        "waiting": int((~acked & ~failed).sum()), "lost": int((acked & ~present).sum()),
        "duplicates": int((copies > 1).sum()),
        "latency_p99_ms": float(np.percentile(latency, 99)) if len(latency) else math.nan,
    }


def _isr_size(text: Any) -> int:
    try:
        return len(ast.literal_eval(str(text)))
    except (ValueError, SyntaxError):
        return 0


def _frame(kernel: Kernel, name: str) -> pd.DataFrame:
    kind = events.KINDS.get(name)
    return kernel.trace.frame(kind) if kind is not None else pd.DataFrame()


def broker_metric_changes(kernel: Kernel) -> pd.DataFrame:
    """The broker metrics an operator watches, per broker, for the run so far.

    Kafka's names: ``UnderReplicatedPartitions`` (a gauge: partitions this broker leads whose
    ISR is smaller than their replica list, now), ``IsrShrinksPerSec`` / ``IsrExpandsPerSec``
    (counted here as totals, including the controller removing a fenced broker), and
    ``FailedProduceRequestsPerSec`` (batches the broker refused, such as ``NOT_ENOUGH_REPLICAS``;
    not ``NOT_LEADER_OR_FOLLOWER``, see ``NOT_FAILED_PRODUCE_REQUESTS``) and, apart from them,
    ``expired_produce_requests``: acks=all batches whose wait for the high watermark outlasted
    the request's timeout (``REQUEST_TIMED_OUT``; Kafka's ``DelayedProduceMetrics``
    ``ExpiresPerSec``). ``leader_elections`` counts the times the broker became a leader and
    ``records_truncated`` the records it dropped.
    """
    isr = _frame(kernel, "isr.change")
    errors = _frame(kernel, "produce.error")
    elections = _frame(kernel, "leader.election")
    truncations = _frame(kernel, "log.truncate")
    rows = []
    for b in kernel.cluster.brokers:
        led = [p for t in kernel.cluster.topics.values() if not t.name.startswith("__")
               for p in t.partitions if p.leader == b]
        mine = isr[isr["node"] == b] if len(isr) else isr
        reasons = mine["reason"].astype(str) if len(mine) else pd.Series(dtype=str)
        rows.append({
            "broker": b, "state": broker_state(kernel, b), "leader_partitions": len(led),
            "under_replicated_partitions": sum(len(p.isr) < len(p.replicas) for p in led),
            "isr_shrinks": int(reasons.str.startswith("shrink").sum()),
            "isr_expands": int(reasons.str.startswith("expand").sum()),
            "failed_produce_requests": int(((errors["node"] == b) & ~errors["error"].isin(
                NOT_FAILED_PRODUCE_REQUESTS)).sum()) if len(errors) else 0,
            "expired_produce_requests": int(((errors["node"] == b) & (
                errors["error"] == EXPIRED_PRODUCE_REQUEST)).sum()) if len(errors) else 0,
            "leader_elections": int((elections["leader"] == b).sum()) if len(elections) else 0,
            "records_truncated": int(truncations.loc[truncations["node"] == b, "records"].sum())
            if len(truncations) else 0,
        })
    return MetricsFrame(rows)


def metric_totals(kernel: Kernel) -> dict[str, int]:
    """Cluster-wide metric changes: ISR shrinks and expands, failed and expired produce
    requests, the most and the last under-replicated partitions, unclean elections, offline
    partitions now."""
    per_broker = broker_metric_changes(kernel)
    elections = _frame(kernel, "leader.election")
    rf = {t.name: t.replication_factor for t in kernel.cluster.topics.values()}
    sizes = {(t.name, p.partition): len(p.replicas) for t in kernel.cluster.topics.values()
             if not t.name.startswith("__") for p in t.partitions}
    worst = 0
    frames = [f for f in (_frame(kernel, "isr.change"), elections) if len(f)]
    changes = pd.concat(frames) if frames else pd.DataFrame()
    if len(changes):
        for row in changes.sort_values("seq").itertuples(index=False):
            key = (row.topic, int(row.partition))
            if key in sizes:
                sizes[key] = _isr_size(row.isr)
                worst = max(worst, sum(n < rf[t] for (t, _p), n in sizes.items()))
    parts = [p for t in kernel.cluster.topics.values() if not t.name.startswith("__")
             for p in t.partitions]
    return {
        "isr_shrinks": int(per_broker["isr_shrinks"].sum()),
        "isr_expands": int(per_broker["isr_expands"].sum()),
        "failed_produce_requests": int(per_broker["failed_produce_requests"].sum()),
        "expired_produce_requests": int(per_broker["expired_produce_requests"].sum()),
        "under_replicated_max": worst,
        "under_replicated_end": sum(len(p.isr) < len(p.replicas) for p in parts),
        "unclean_elections": int((elections["election"] == "unclean").sum())
        if len(elections) else 0,
        "offline_partitions_end": sum(p.leader < 0 for p in parts),
    }


def replication_events(kernel: Kernel, kinds: Sequence[str] = REPLICATION_KINDS
                       ) -> pd.DataFrame:
    """The replication story so far: one row per event of ``kinds``, with a sentence each
    (shown whole in a notebook).

    Columns: ``seq`` (the trace's event number), ``time_ms``, ``kind`` and ``what``.
    """
    frame = kernel.trace.to_frame()
    if frame.empty:
        return WholeTextFrame(columns=["seq", "time_ms", "kind", "what"])
    frame = frame[frame["kind"].isin(kinds)]
    what = [_describe(row) for row in frame.to_dict("records")]
    return WholeTextFrame({"seq": frame["seq"].to_numpy(),
                           "time_ms": frame["time_ms"].to_numpy(),
                           "kind": frame["kind"].to_numpy(), "what": what})


def _describe(row: Mapping[str, Any]) -> str:
    kind = row["kind"]
    where = f"{row.get('topic')}-{row.get('partition')}"
    if kind == "fault":
        node = row.get("node")
        target = f" broker {node}" if node is not None and node != -1 else ""
        detail = f" ({row['detail']})" if row.get("detail") else ""
        return f"fault: {row['fault']}{target}{detail}"
    if kind == "broker.state":
        detail = f" ({row['detail']})" if row.get("detail") else ""
        return f"broker {row['node']} {row['state']}{detail}"
    if kind == "leader.election":
        if row["leader"] == -1:
            return f"{where}: offline, no eligible replica (ISR {row['isr']})"
        return (f"{where}: {row['election']} election of broker {row['leader']}, leader epoch "
                f"{row['leader_epoch']}, ISR {row['isr']}")
    if kind == "isr.change":
        return f"{where}: ISR {row['isr']} ({row['reason']})"
    if kind == "log.truncate":
        return (f"{where}: broker {row['node']} truncated its log to offset {row['offset']}, "
                f"dropping {row['records']} records")
    return str(kind)


def loss_report(kernel: Kernel) -> pd.DataFrame:
    """Acknowledged records lost, grouped by the event the audit blames (Jepsen's lost-write).

    Returns:
        One row per cause: ``cause_seq``, ``time_ms``, ``kind``, ``broker`` (whose log lost
        them, or whom the election that left them behind made leader), ``topic``,
        ``partition``, ``records``, ``first_offset``, ``last_offset``. Empty when nothing was
        lost.
    """
    columns = ["cause_seq", "time_ms", "kind", "broker", "topic", "partition", "records",
               "first_offset", "last_offset"]
    lost = audit_kernel(kernel).lost_records
    if not lost:
        return pd.DataFrame(columns=columns)
    causes = {r["cause"]["seq"]: r["cause"] for r in lost if r.get("cause")}
    frame = pd.DataFrame([{**{k: r[k] for k in ("topic", "partition", "offset")},
                           "cause_seq": (r.get("cause") or {}).get("seq", -1)} for r in lost])
    rows = []
    for (seq, topic, partition), group in frame.groupby(["cause_seq", "topic", "partition"],
                                                        sort=True):
        cause = causes.get(seq)
        rows.append({
            "cause_seq": int(seq), "time_ms": cause["time_ms"] if cause else math.nan,
            "kind": cause["kind"] if cause else "unknown",
            "broker": cause["node"] if cause else -1,
            "topic": topic, "partition": int(partition), "records": len(group),
            "first_offset": int(group["offset"].min()), "last_offset": int(group["offset"].max()),
        })
    return pd.DataFrame(rows, columns=columns)


def replication_bookmarks(kernel: Kernel, losses: pd.DataFrame | None = None
                          ) -> dict[str, int]:
    """Named moments of a finished run, for a stepper's "go to" list: label → trace ``seq``.

    Every fault, broker state change, election and truncation, and the event the audit blames
    for lost acknowledged records (``losses``: a :func:`loss_report` already computed).
    """
    story = replication_events(kernel, ("fault", "broker.state", "leader.election",
                                        "log.truncate"))
    marks = {f"#{seq} · {t:,.0f} ms · {what}": int(seq)
             for seq, t, what in zip(story["seq"], story["time_ms"], story["what"], strict=True)}
    losses = loss_report(kernel) if losses is None else losses
    for row in losses.itertuples(index=False):
        marks[f"#{row.cause_seq} · acknowledged records lost: {row.records} "
              f"(offsets {row.first_offset}–{row.last_offset})"] = int(row.cause_seq)
    return dict(sorted(marks.items(), key=lambda item: item[1]))


def replication_timeline(kernel: Kernel, topic: str = REPLICATION_TOPIC, partition: int = 0
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Log end offsets of the leaders and the high watermark over time, and the story's marks.

    Returns:
        ``(series, marks)``: ``series`` has ``time_ms``, ``series`` ("LEO broker 0", "HW") and
        ``value``, from the ``log.append``, ``log.truncate`` and ``hw.advance`` events (a
        follower's progress is not traced, only what leaders append and truncations); ``marks``
        has ``time_ms`` and ``label`` for faults, elections and ISR changes.
    """
    rows: list[tuple[float, str, int]] = []
    appends = _frame(kernel, "log.append")
    if len(appends):
        mine = appends[(appends["topic"] == topic) & (appends["partition"] == partition)]
        rows += [(t, f"LEO broker {n}", o + r) for t, n, o, r in zip(
            mine["time_ms"], mine["node"], mine["offset"], mine["records"], strict=True)]
    truncations = _frame(kernel, "log.truncate")
    if len(truncations):
        mine = truncations[(truncations["topic"] == topic)
                           & (truncations["partition"] == partition)]
        rows += [(t, f"LEO broker {n}", o) for t, n, o in zip(
            mine["time_ms"], mine["node"], mine["offset"], strict=True)]
    hw = _frame(kernel, "hw.advance")
    if len(hw):
        mine = hw[(hw["topic"] == topic) & (hw["partition"] == partition)]
        rows += [(t, "HW", v) for t, v in zip(mine["time_ms"], mine["high_watermark"],
                                              strict=True)]
    series = pd.DataFrame(rows, columns=["time_ms", "series", "value"]).sort_values(
        "time_ms", kind="stable").reset_index(drop=True)
    story = replication_events(kernel, ("fault", "leader.election", "isr.change"))
    marks = pd.DataFrame({"time_ms": story["time_ms"], "label": story["what"]})
    return series, marks
