"""Helpers for lesson 04 (where Kafka keeps your data) and exercise 04.

Small, deterministic logs built with the lab's producer and broker: segments and their offsets,
the retention scenario with its audit, what the log cleaner keeps of a key sequence, and lookup
by time (``offsets_for_times``). Nothing here writes into the repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim.audit import AuditReport, audit_kernel
from sim.broker.list_offsets import OffsetAndTimestamp, offset_for_timestamp
from sim.broker.log import PartitionLog
from sim.broker.log_cleaner import clean
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.scenarios import load

TOPIC = "t"
_QUIET = {"log.cleaner.enable": False, "lab.network.latency.ms": 0}


def build_log(keys: Sequence[str | None], per_segment: int = 2,
              timestamps: Sequence[int] | None = None,
              configs: dict[str, object] | None = None,
              values: Sequence[object | None] | None = None) -> tuple[Kernel, PartitionLog]:
    """A one-partition topic holding one record per key in ``keys`` (one batch each), with
    ``per_segment`` batches to a segment; the broker's cleaner and retention stay idle."""
    if per_segment < 1:
        raise ConfigError(f"per_segment must be at least 1, got {per_segment}")
    if timestamps is not None and len(timestamps) != len(keys):
        raise ConfigError("timestamps must give one timestamp per key")
    topic_configs = dict(configs or {})

    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic(TOPIC, 1, 1, topic_configs)

    kernel = Kernel(seed=0, brokers=1, broker_configs=_QUIET, setup=setup)
    producer = Producer(kernel, {"linger.ms": 0, "max.in.flight.requests.per.connection": 1})
    log = kernel.cluster.partition(TOPIC, 0).log
    for k, key in enumerate(keys):
        ts = 1000 + k if timestamps is None else int(timestamps[k])
        value = k if values is None else values[k]
        producer.send(TOPIC, key=key, value=value, partition=0, timestamp=ts)
        producer.flush()
        if k == 0:
            log.segment_bytes = log.size_bytes * per_segment
    return kernel, log


def segments_table(log: PartitionLog) -> pd.DataFrame:
    """One row per segment: its file name, offsets, bytes and whether it is the active one."""
    frame = log.segments_frame()
    return frame[["file", "base_offset", "end_offset", "size_bytes", "active"]]


def segments_figure(log: PartitionLog, title: str = "one partition's log"):
    """The segments as blocks on an offset axis, with log start offset, HW and LEO marked."""
    fig, ax = plt.subplots(figsize=(7.5, 1.9))
    for seg in log.segments:
        width = max(seg.end_offset - seg.base_offset, 0.4)
        color = "#f2b134" if seg is log.active_segment else "#6aa4d9"
        ax.barh(0, width, left=seg.base_offset, height=0.6, color=color, edgecolor="black")
        ax.text(seg.base_offset + width / 2, 0, f"{seg.base_offset:020d}.log"[-8:],
                ha="center", va="center", fontsize=8)
    marks = (("log start", log.log_start_offset, 0.55), ("HW", log.high_watermark, -0.55),
             ("LEO", log.log_end_offset, 0.55))
    for label, offset, y in marks:
        ax.axvline(offset, color="black", lw=1, ls="--")
        ax.text(offset, y, f"{label} = {offset}", ha="center", fontsize=8,
                va="bottom" if y > 0 else "top",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})  # over the line
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.set_xlim(log.log_start_offset - 1, log.log_end_offset + 1.5)
    ax.set_xlabel("offset (blue: closed segments, orange: the active segment)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def retention_run(until_ms: float = 60_000) -> tuple[Kernel, AuditReport]:
    """The ``retention-overtakes-consumer`` scenario, run, with its delivery audit."""
    kernel = load("retention-overtakes-consumer").build()
    kernel.run(until_ms=until_ms)
    return kernel, audit_kernel(kernel)


def retention_counts(report: AuditReport) -> dict[str, int]:
    """The audit's counts the retention section discusses, by name: records retention deleted
    before the group read them, records it skipped, acknowledged records lost (lost-write)."""
    return {"deleted-by-retention": report.counts["deleted-by-retention"],
            "skipped": report.skipped, "lost": report.lost}


def retention_deletions(kernel: Kernel) -> pd.DataFrame:
    """The ``log.segment.delete`` events of the clicks partition's final leader (times in
    whole ms: retention runs on the broker's check interval)."""
    events = kernel.trace.to_frame()
    deletes = events[events["kind"] == "log.segment.delete"]
    leader = kernel.cluster.partition("clicks", 0).leader
    deletes = deletes[deletes["node"] == leader]
    frame = deletes[["time_ms", "base_offset", "end_offset"]].reset_index(drop=True)
    return frame.astype({"time_ms": "int64"})


def compaction(keys: Sequence[str | None], per_segment: int = 2,
               tombstones: Sequence[int] = (), delete_retention_ms: int = 86_400_000,
               again_after_ms: float | None = None) -> pd.DataFrame:
    """What a cleaning pass keeps of ``keys`` (one record each): offset, key, tombstone, kept.

    Offsets listed in ``tombstones`` carry a null value. The pass cleans up to the active
    segment, as the log cleaner does. With ``again_after_ms`` a second pass runs that much
    later, and ``kept_later`` says what it keeps.
    """
    if any(key is None for key in keys):
        raise ConfigError("a compacted topic takes only records with a key "
                          "(Kafka rejects keyless records with InvalidRecordException)")
    dead = set(tombstones)
    values = [None if k in dead else k for k in range(len(keys))]
    kernel, log = build_log(list(keys), per_segment, values=values,
                            configs={"cleanup.policy": "compact"})
    before = log.records()["offset"].to_numpy()
    end = log.active_segment.base_offset
    clean(log, kernel, end, kernel.now_ms, delete_retention_ms)
    kept = set(log.records()["offset"].tolist())
    table = pd.DataFrame({"offset": before, "key": list(keys),
                          "tombstone": [k in dead for k in range(len(keys))],
                          "kept": [int(o) in kept for o in before]})
    if again_after_ms is not None:
        clean(log, kernel, end, kernel.now_ms + again_after_ms, delete_retention_ms)
        later = set(log.records()["offset"].tolist())
        table["kept_later"] = [int(o) in later for o in before]
    return table


def surviving_offsets(keys: Sequence[str | None], per_segment: int = 2) -> list[int]:
    """The offsets one cleaning pass keeps (records in the active segment always stay)."""
    table = compaction(keys, per_segment)
    return table.loc[table["kept"], "offset"].tolist()


def time_log(timestamps: Sequence[int]) -> PartitionLog:
    """A log with one record per timestamp (in the order given), all committed."""
    return build_log([None] * len(timestamps), per_segment=1_000_000,
                     timestamps=list(timestamps))[1]


def lookup(timestamps: Sequence[int], target_ms: int) -> OffsetAndTimestamp | None:
    """``offsets_for_times`` for one target on a log of ``timestamps``."""
    return offset_for_timestamp(time_log(timestamps), target_ms)


def offsets_between(timestamps: Sequence[int], t1: int, t2: int) -> list[int]:
    """The offsets whose timestamp lies in [t1, t2): not always a range of offsets."""
    stamps = np.asarray(timestamps)
    return np.flatnonzero((stamps >= t1) & (stamps < t2)).tolist()


def tiered_run() -> Kernel:
    """The ``tiered-read`` scenario, run; its remote tier lives in a temporary folder."""
    return load("tiered-read").run()


def tiers_table(kernel: Kernel, topic: str = "clicks", partition: int = 0) -> pd.DataFrame:
    """Each segment of the partition with where it lives now: local, remote, or both."""
    log = kernel.cluster.partition(topic, partition).log
    state = kernel.cluster.remote_log_manager.states[(topic, partition)]
    rows: dict[int, dict[str, object]] = {}
    for seg in state.segments():
        rows[seg.base_offset] = {"base_offset": seg.base_offset, "end_offset": seg.end_offset + 1,
                                 "remote": True, "local": False}
    for seg in log.segments:
        row = rows.setdefault(seg.base_offset, {"base_offset": seg.base_offset,
                                                "end_offset": seg.end_offset, "remote": False})
        row["local"] = True
    return pd.DataFrame([rows[k] for k in sorted(rows)])


def remote_folder(kernel: Kernel, topic: str = "clicks", partition: int = 0):
    """The folder of Parquet objects standing in for the partition's remote tier."""
    return kernel.cluster.remote_log_manager.root / f"{topic}-{partition}"


class CostFrame(pd.DataFrame):
    """A cost table whose notebook display gives every amount to the cent: pandas shows a
    column of whole amounts as 84.0 beside 8.05 in the next one, and the text says 84.00 USD."""

    @property
    def _constructor(self) -> type[CostFrame]:
        return CostFrame

    def _repr_html_(self) -> str:
        money = {c: "{:.2f}".format for c in self.columns if str(c).endswith("_usd")}
        return self.to_html(border=0, formatters=money)  # type: ignore[arg-type]


def cost_table(ingest_gb_per_day: float, retention_days: float, replication_factor: int,
               local_days: Sequence[float | None]) -> pd.DataFrame:
    """Monthly cost (lab prices) of keeping ``retention_days``, for each local retention.

    A local retention of None is the topic without tiered storage: ``tiered`` is False and
    ``local_retention_days`` is the whole retention, since every day stays on the brokers'
    disks (None would show as NaN in a float column).
    """
    from sim.broker.storage_cost import retention_plan

    rows = [{**retention_plan(ingest_gb_per_day * 1e9, retention_days, replication_factor,
                              local),
             "tiered": local is not None,
             "local_retention_days": float(retention_days if local is None else local)}
            for local in local_days]
    return CostFrame(rows)[["retention_days", "tiered", "local_retention_days", "disk_usd",
                            "object_storage_usd", "requests_usd", "total_usd"]].round(2)


def remote_reads(kernel: Kernel) -> pd.DataFrame:
    """The consumer's reads from the remote tier: offset, records and latency of each (the
    time in whole ms, the latency to 0.1 ms)."""
    from sim.broker.remote_log_manager import REMOTE_READ

    frame = kernel.trace.frame(REMOTE_READ)
    frame = frame[["time_ms", "offset", "records", "latency_ms"]].reset_index(drop=True)
    return frame.astype({"time_ms": "int64"}).round({"latency_ms": 1})


RETENTION_NOW_MS = 12_000
"""The clock of the retention preview: ten records stamped 0, 1,000, … 9,000 ms, two a segment."""


def retention_preview(retention_ms: int, now_ms: int = RETENTION_NOW_MS) -> PartitionLog:
    """The preview log after one retention check at ``now_ms`` with this ``retention.ms``."""
    from sim.broker.retention import delete_old_segments

    if retention_ms < 0:
        raise ConfigError(f"retention.ms for the preview must be at least 0, got {retention_ms}")
    _, log = build_log(["k"] * 10, per_segment=2, timestamps=[1000 * k for k in range(10)])
    delete_old_segments(log, {"cleanup.policy": "delete", "retention.ms": retention_ms}, now_ms)
    return log


def retention_slider():
    """A retention.ms slider redrawing the preview log's segments after a retention check."""
    import ipywidgets as widgets

    def show(retention_ms: int) -> None:
        log = retention_preview(retention_ms)
        segments_figure(log, f"retention.ms={retention_ms} checked at {RETENTION_NOW_MS} ms: "
                             f"log start offset {log.log_start_offset}")
        plt.show()

    slider = widgets.IntSlider(value=7000, min=0, max=RETENTION_NOW_MS, step=500,
                               description="retention.ms", continuous_update=False,
                               style={"description_width": "initial"})
    return widgets.interactive(show, retention_ms=slider)


# -- the log view and the cleaner's dirty ratio ---------------------------------------------------

DIRTY_TOPIC = "prices"
DIRTY_RUN_MS = 30_000
"""The dirty-ratio runs: a compacted topic of 500 keys written at 200 records/s for 30 s."""


def compaction_figure(keys: Sequence[str], **kwargs: object):
    """The ``compaction`` table of ``keys`` drawn before and after cleaning (one box per
    offset, gaps dashed)."""
    from sim.widgets.log_view import compaction_figure as draw

    return draw(compaction(keys, **kwargs))  # type: ignore[arg-type]


def tiered_view(kernel: Kernel, topic: str = "clicks", partition: int = 0):
    """The log view of a tiered partition: each broker's segments and the remote tier's."""
    from sim.widgets.log_view import log_view, log_view_figure

    return log_view_figure(log_view(kernel.cluster, topic, partition, kernel.now_ms))


def dirty_ratio_kernel(min_ratio: float) -> Kernel:
    """A compacted topic (2 replicas, ~10 KB segments) with ``min.cleanable.dirty.ratio`` =
    ``min_ratio``; 500 keys written at 200 records/s; each broker's cleaner looks every
    second (``log.cleaner.backoff.ms``=1000). Not run yet."""
    from sim.workloads import UniformKeys, Workload

    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic(DIRTY_TOPIC, 1, 2, {
            "cleanup.policy": "compact", "lab.segment.bytes": 10_000,
            "min.cleanable.dirty.ratio": min_ratio})
        producer = Producer(kernel, {"client.id": "prices"})
        producer.add_workload(Workload.generate(kernel.spawn_rng(), DIRTY_TOPIC, 6_000, 200,
                                                keys=UniformKeys(500), value_bytes=60))

    return Kernel(seed=4, brokers=2, setup=setup,
                  broker_configs={"log.cleaner.backoff.ms": 1000})


def dirty_ratio_run(min_ratio: float, until_ms: float = DIRTY_RUN_MS) -> Kernel:
    """:func:`dirty_ratio_kernel`, run to ``until_ms``."""
    return dirty_ratio_kernel(min_ratio).run(until_ms=until_ms)


def cleanings(kernel: Kernel) -> pd.DataFrame:
    """The leader's cleanings: when, from which first dirty offset to where, how many records
    each removed, and the dirty ratio that let it run."""
    from sim.broker.log_cleaner import LOG_CLEAN

    frame = kernel.trace.frame(LOG_CLEAN)
    leader = kernel.cluster.partition(DIRTY_TOPIC, 0).leader
    frame = frame[frame["node"] == leader]
    return frame[["time_ms", "first_dirty_offset", "end_offset", "removed",
                  "dirty_ratio"]].reset_index(drop=True)


def dirty_ratio_table(ratios: Sequence[float] = (0.5, 0.9)) -> pd.DataFrame:
    """Per ``min.cleanable.dirty.ratio``: how many cleanings the leader ran in the run, the
    first and the last one's time (whole ms), the lowest dirty ratio a cleaning started at,
    and the log's bytes at the end."""
    rows = []
    for ratio in ratios:
        kernel = dirty_ratio_run(ratio)
        done = cleanings(kernel)
        times = done["time_ms"].astype("int64").tolist()
        rows.append({"min.cleanable.dirty.ratio": ratio, "cleanings": len(done),
                     "first_at_ms": times[0] if times else None,
                     "last_at_ms": times[-1] if times else None,
                     "lowest_ratio_cleaned": float(done["dirty_ratio"].min()) if len(done)
                     else None,
                     "log_bytes_at_end": kernel.cluster.partition(DIRTY_TOPIC, 0).log.size_bytes})
    return pd.DataFrame(rows)


def dirty_ratio_views(min_ratio: float, times_ms: Sequence[float] = tuple(
        range(4_000, DIRTY_RUN_MS + 1, 4_000))) -> list:
    """Log views of a dirty-ratio run every 4 s, for ``sim.widgets.log_view.log_view_panel``."""
    from sim.widgets.log_view import snapshots

    return snapshots(dirty_ratio_kernel(min_ratio), DIRTY_TOPIC, 0, times_ms)


# -- a retention plan, run ---------------------------------------------------------------------

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SIM_RECORD_EVERY_MS = 1_800_000  # the plan's topic: a record every 30 minutes
SIM_DAYS = 16
SIM_SEGMENT_MS = 6 * HOUR_MS  # segments of 6 hours (12 records)
SIM_TASK_MS = 600_000  # retention and remote log manager tasks every 10 minutes


@dataclass(frozen=True)
class PlanRun:
    """Where a plan left the simulated topic's records, at the hour it did worst."""

    now_ms: float
    log_start_offset: int  # the oldest offset anywhere, remote tier included
    first_of_replay: int  # the first offset younger than the replay days
    replay_at_ms: float  # when the replay need was worst met
    local_log_start_offset: int  # the oldest on the leader's disk
    first_of_last_day: int  # the first offset younger than the local days
    local_at_ms: float

    @property
    def replay_ok(self) -> bool:
        return self.log_start_offset <= self.first_of_replay

    @property
    def local_ok(self) -> bool:
        return self.local_log_start_offset <= self.first_of_last_day


@lru_cache(maxsize=32)
def plan_run(retention_ms: int, local_retention_ms: int, replay_days: float = 14,
             local_days: float = 1) -> PlanRun:
    """A retention plan run on the simulator: a tiered topic (one replica, 6-hour segments)
    takes a 1 KB record every 30 simulated minutes for 16 days, its broker checking retention
    and tiering every 10 minutes; every hour of the last day, where the log (remote tier
    included) and the local log start, against the first records younger than
    ``replay_days`` and ``local_days``. Retention deletes whole segments, so a need can hold at
    one hour and not at the next: the worst hour of each is kept."""
    from sim.broker import remote_log_manager as rlm
    from sim.workloads import Workload

    records = SIM_DAYS * DAY_MS // SIM_RECORD_EVERY_MS
    topic_config = {"remote.storage.enable": True, "segment.ms": SIM_SEGMENT_MS,
                    "retention.ms": retention_ms, "local.retention.ms": local_retention_ms}

    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("events", 1, 1, topic_config)
        producer = Producer(kernel, {"client.id": "events", "linger.ms": 0})
        producer.add_workload(Workload.generate(kernel.spawn_rng(), "events", records,
                                                1000 / SIM_RECORD_EVERY_MS, value_bytes=1000))

    kernel = Kernel(seed=0, brokers=1, setup=setup, broker_configs={
        "remote.log.storage.system.enable": True, "log.retention.check.interval.ms": SIM_TASK_MS,
        "remote.log.manager.task.interval.ms": SIM_TASK_MS})
    sent = np.arange(records) * SIM_RECORD_EVERY_MS  # record k is offset k (one producer)
    end = (records - 1) * SIM_RECORD_EVERY_MS
    replay: tuple[int, int, float] | None = None
    local: tuple[int, int, float] | None = None
    for now in range(end - DAY_MS + HOUR_MS, end + 1, HOUR_MS):
        kernel.run(until_ms=now)
        part = kernel.cluster.partition("events", 0)
        start = rlm.log_start_offset(kernel.cluster, part)
        needed = int(np.searchsorted(sent, now - replay_days * DAY_MS, side="right"))
        if replay is None or start - needed > replay[0] - replay[1]:
            replay = (start, needed, float(now))
        local_start = part.log.log_start_offset
        needed = int(np.searchsorted(sent, now - local_days * DAY_MS, side="right"))
        if local is None or local_start - needed > local[0] - local[1]:
            local = (local_start, needed, float(now))
    assert replay is not None
    assert local is not None
    return PlanRun(float(end), *replay, *local)
