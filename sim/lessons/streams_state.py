"""Lesson computations for Kafka Streams state: where a count lives, and how it comes back.

Used by lesson 07 and exercise 07. The application is one running aggregation, *payments per
customer*: ``payments`` (keyed by customer) → ``groupByKey().count()`` into the persistent
(RocksDB) store ``payments-per-customer`` → ``payment-counts``. Its changelog topic is
``payments-app-payments-per-customer-changelog`` (``cleanup.policy=compact``).

Vocabulary (kafka-facts §5):

- *state directory*: ``state.dir/<application.id>/<task id>/`` on the instance's disk, with the
  store's RocksDB files under ``rocksdb/<store>`` and the ``.checkpoint`` file (the changelog
  offsets the local store is known to hold).
- *restore*: reading a store's changelog into the store before the task processes anything —
  from the checkpointed offset + 1 when local state survived, from the start otherwise. The
  restore consumer fetches up to 1,000 records a round trip (``StoreChangelogReader``).
- *standby replica*: a copy of a task's store kept up to date on another instance
  (``num.standby.replicas``); on failover it is promoted and restores almost nothing.

Every state directory lives in the kernel's temporary folder, never in the repository.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from sim.kernel import Kernel
from sim.payloads import payload
from sim.producer import Producer
from sim.streams import KafkaStreams, StreamsBuilder
from sim.streams.changelog import changelog_topic
from sim.streams.changelog_reader import MAX_POLL_RECORDS, RECORD_OVERHEAD_BYTES
from sim.streams.materialized import Materialized
from sim.streams.stores import ValueAndTimestamp

APPLICATION_ID = "payments-app"
STORE = "payments-per-customer"
INPUT = "payments"
OUTPUT = "payment-counts"
CHANGELOG = changelog_topic(APPLICATION_ID, STORE)
STARTUP_MS = 4_000.0  # long enough for the group to form and tasks to start

__all__ = [
    "APPLICATION_ID", "CHANGELOG", "INPUT", "MAX_POLL_RECORDS", "OUTPUT",
    "RECORD_OVERHEAD_BYTES", "STORE", "changelog_config", "changelog_stats", "changelog_tail",
    "checkpoint_after_restart", "checkpoint_text", "crash_counts", "failover",
    "failover_kernel", "feed", "payments_app", "payments_world", "restore_figure",
    "restore_sweep", "state_tree", "store_contents",
]


def payments_world(partitions: int = 1, seed: int = 7, bandwidth_mbps: float = 10_000.0,
                   latency_ms: float = 0.5) -> Kernel:
    """A one-broker cluster with ``payments`` and ``payment-counts`` (``partitions`` each), its
    link at ``bandwidth_mbps`` with ``latency_ms`` one way."""
    kernel = Kernel(seed=seed, brokers=1, broker_configs={
        "lab.network.bandwidth.mbps": bandwidth_mbps, "lab.network.latency.ms": latency_ms})
    for topic in (INPUT, OUTPUT):
        kernel.cluster.create_topic(topic, partitions)
    return kernel


def payments_app(kernel: Kernel, config: Mapping[str, Any] | None = None,
                 instances: int = 1) -> list[KafkaStreams]:
    """Start ``instances`` instances of the payments-per-customer count and let them settle."""
    builder = StreamsBuilder()
    builder.stream(INPUT).group_by_key().count(Materialized.as_(STORE)).to_stream().to(OUTPUT)
    settings = {"application.id": APPLICATION_ID, "commit.interval.ms": 1_000,
                **(config or {})}
    apps = [KafkaStreams(kernel, builder.build(), settings) for _ in range(instances)]
    for app in apps:
        app.start()
    kernel.run(until_ms=kernel.now_ms + STARTUP_MS)
    return apps


def feed(kernel: Kernel, rounds: int, customers: int = 10, step_ms: float = 200.0,
         amount: int = 25) -> Counter:
    """``rounds`` rounds of one payment per customer (``customer-0`` …), ``step_ms`` apart;
    returns how many payments each customer made (the true counts)."""
    producer = Producer(kernel, {"client.id": "checkout"})
    for _ in range(rounds):
        for c in range(customers):
            producer.send(INPUT, f"customer-{c}", amount)
        kernel.run(until_ms=kernel.now_ms + step_ms)
    return Counter({f"customer-{c}": rounds for c in range(customers)})


def store_contents(app: KafkaStreams) -> dict[Any, Any]:
    """The instance's ``payments-per-customer`` store as {customer: count}, in key order."""
    return {k: v.value if isinstance(v, ValueAndTimestamp) else v
            for k, v in app.store(STORE).all()}


def state_tree(app: KafkaStreams) -> str:
    """The instance's state directory as an indented tree (RocksDB's own files included)."""
    root = Path(app.state_dir)
    lines = [f"{root.name}/"]

    def walk(folder: Path, depth: int) -> None:
        for path in sorted(folder.iterdir()):
            lines.append("    " * depth + path.name + ("/" if path.is_dir() else ""))
            if path.is_dir():
                walk(path, depth + 1)

    if root.exists():
        walk(root, 1)
    return "\n".join(lines)


def checkpoint_text(app: KafkaStreams, task: str = "0_0") -> str:
    """The text of one task's ``.checkpoint`` file, or "" when there is none."""
    path = Path(app.state_dir) / APPLICATION_ID / task / ".checkpoint"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def changelog_config(kernel: Kernel) -> dict[str, Any]:
    """The changelog topic's partitions and ``cleanup.policy`` as the cluster holds them."""
    topic = kernel.cluster.topics[CHANGELOG]
    return {"topic": CHANGELOG, "partitions": len(topic.partitions),
            "cleanup.policy": topic.config["cleanup.policy"]}


def changelog_stats(kernel: Kernel, partition: int = 0) -> dict[str, int]:
    """Records and bytes in one changelog partition, as the restore consumer counts bytes
    (value sizes plus ``RECORD_OVERHEAD_BYTES`` a record)."""
    log = kernel.cluster.partition(CHANGELOG, partition).log
    end = log.high_watermark
    start = log.log_start_offset
    size = int(log.column("value_size", start, end).clip(min=0).sum())
    return {"records": end - start, "bytes": size + RECORD_OVERHEAD_BYTES * (end - start)}


def changelog_tail(kernel: Kernel, partition: int = 0, records: int = 3) -> pd.DataFrame:
    """The last ``records`` records of one changelog partition: offset, key, value and the
    record's timestamp. The value is the plain count; the timestamp that the store keeps beside
    it travels as the record's own timestamp (``ChangeLoggingTimestampedKeyValueBytesStore``)."""
    log = kernel.cluster.partition(CHANGELOG, partition).log
    end = log.high_watermark
    start = max(log.log_start_offset, end - records)
    rows = []
    for offset, record_id, stamp in zip(range(start, end),
                                        log.column("record_id", start, end).tolist(),
                                        log.column("timestamp_ms", start, end).tolist(),
                                        strict=True):
        key, value = payload(kernel, record_id)
        rows.append({"offset": offset, "key": key, "value": value, "timestamp": int(stamp)})
    return pd.DataFrame(rows)


def _restored(app: KafkaStreams, after_ms: float) -> dict[str, Any]:
    frame = app.restore_frame()
    done = frame[(frame.kind == "active") & (frame.state == "COMPLETED")
                 & (frame.start_ms >= after_ms)]
    row = done.sort_values("start_ms").iloc[0]
    return {"partition": int(row.partition), "start_offset": int(row.start_offset),
            "end_offset": int(row.end_offset), "restored": int(row.restored),
            "restore_ms": float(row.end_ms - row.start_ms)}


def failover(rounds: int = 65, customers: int = 200, lose_state: bool = True,
             standbys: int = 0, bandwidth_mbps: float = 10.0, latency_ms: float = 0.5,
             instances: int | None = None, seed: int = 7) -> dict[str, Any]:
    """Crash the instance that owns ``payments-0`` and measure the restore that follows.

    With ``standbys=0`` one instance runs (unless ``instances`` says more) and restarts after
    the crash (its state directory kept or lost); with standbys, ``standbys + 1`` instances run
    and a survivor takes the task over.
    Record caching is off, so every count update reaches the changelog (``rounds`` ×
    ``customers`` records). Returns the restore's row (start / end offset, records restored,
    ``restore_ms``) with the changelog's records and bytes.
    """
    kernel = payments_world(seed=seed, bandwidth_mbps=bandwidth_mbps, latency_ms=latency_ms)
    config = {"statestore.cache.max.bytes": 0, "num.standby.replicas": standbys}
    apps = payments_app(kernel, config, instances=instances or standbys + 1)
    feed(kernel, rounds, customers=customers, step_ms=100.0)
    changelog = kernel.cluster.partition(CHANGELOG, 0).log
    for _ in range(120):  # on a slow link the count updates reach the changelog late
        kernel.run(until_ms=kernel.now_ms + 1_000)
        if changelog.high_watermark >= rounds * customers:
            break
    stats = changelog_stats(kernel)
    owner = next(a for a in apps if any(m.active_tasks for m in a.metadata_for_local_threads()))
    crash_ms = kernel.now_ms
    owner.crash(lose_state=lose_state)
    survivors = [a for a in apps if a is not owner] or [owner.restart()]
    kernel.run(until_ms=kernel.now_ms + 120_000)
    survivor = next(a for a in survivors if any(m.active_tasks
                                                for m in a.metadata_for_local_threads()))
    return {**_restored(survivor, crash_ms), "changelog_records": stats["records"],
            "changelog_bytes": stats["bytes"], "counts": store_contents(survivor)}


def restore_sweep(rounds: Sequence[int], customers: int = 200,
                  bandwidth_mbps: float = 10.0, latency_ms: float = 0.5) -> pd.DataFrame:
    """Restore time from scratch (state directory lost) for changelogs of different lengths:
    one row per run with the changelog's records and bytes and the restore time."""
    rows = []
    for n in rounds:
        run = failover(n, customers, lose_state=True, bandwidth_mbps=bandwidth_mbps,
                       latency_ms=latency_ms)
        rows.append({"changelog_records": run["changelog_records"],
                     "changelog_bytes": run["changelog_bytes"],
                     "restored": run["restored"], "restore_ms": run["restore_ms"]})
    return pd.DataFrame(rows)


def restore_figure(sweep: pd.DataFrame, title: str = "") -> Figure:
    """Restore time against changelog records: a small line chart of a sweep."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
    ax.plot(sweep.changelog_records, sweep.restore_ms, marker="o")
    ax.set_xlabel("changelog records restored")
    ax.set_ylabel("restore time (ms)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    plt.close(fig)
    return fig


def crash_counts(before: int = 10, after: int = 5, customers: int = 5,
                 commit_interval_ms: float = 5_000.0, lose_state: bool = False,
                 seed: int = 7, processing_guarantee: str = "at_least_once") -> pd.DataFrame:
    """One crash under ``processing_guarantee``. One instance counts ``before`` payments per
    customer and commits (``commit.interval.ms`` passes), counts ``after`` more, then crashes
    before its next commit and restarts. One row per customer: payments made and payments
    counted once the restarted instance has caught up.

    ``at_least_once``: the store comes back from the changelog with every count it had; the
    input offsets committed last are the ones from before the ``after`` payments, so those are
    read and counted again. ``exactly_once_v2``: the ``after`` payments' changelog writes,
    outputs and offsets were in a transaction the crash left open; it is aborted, the store
    (data but no checkpoint) is wiped and restored from the committed changelog records only,
    and the ``after`` payments are counted once."""
    kernel = payments_world(seed=seed)
    config = {"statestore.cache.max.bytes": 0, "commit.interval.ms": commit_interval_ms,
              "processing.guarantee": processing_guarantee}
    [app] = payments_app(kernel, config)
    truth = feed(kernel, before, customers=customers)
    kernel.run(until_ms=kernel.now_ms + commit_interval_ms + 1_000)  # one commit passes
    truth += feed(kernel, after, customers=customers)
    app.crash(lose_state=lose_state)
    restarted = app.restart()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    counted = store_contents(restarted)
    return pd.DataFrame([{"customer": k, "paid": truth[k], "counted": counted.get(k, 0)}
                         for k in sorted(truth)])


def checkpoint_after_restart(processing_guarantee: str, rounds: int = 3,
                             customers: int = 3, seed: int = 7) -> dict[str, str]:
    """The ``.checkpoint`` of task ``0_0`` after a clean close, and again once the instance has
    restarted and restored: under ``at_least_once`` it is still there; under
    ``exactly_once_v2`` it is deleted right after it is read at start-up
    (``ProcessorStateManager``), so a crash from then on leaves a store with data and no
    checkpoint, which Kafka wipes and restores from scratch."""
    kernel = payments_world(seed=seed)
    [app] = payments_app(kernel, {"statestore.cache.max.bytes": 0,
                                  "processing.guarantee": processing_guarantee})
    feed(kernel, rounds, customers=customers)
    kernel.run(until_ms=kernel.now_ms + 2_000)
    app.close()
    kernel.run(until_ms=kernel.now_ms + 3_000)
    closed = checkpoint_text(app, "0_0")
    restarted = app.restart()
    kernel.run(until_ms=kernel.now_ms + STARTUP_MS)
    return {"after clean close": closed, "after restart": checkpoint_text(restarted, "0_0")}


def failover_kernel(rounds: int = 65, customers: int = 200, lose_state: bool = False,
                    bandwidth_mbps: float = 10.0, latency_ms: float = 0.5,
                    seed: int = 7) -> Kernel:
    """:func:`failover`'s single-instance run, ready to step: the payments are counted, then
    the instance's crash (its state directory kept unless ``lose_state``) and its restart are
    scheduled 1 s later; the kernel is not run past that (a stepper factory)."""
    from sim.faults import schedule
    from sim.streams.faults import StreamsCrash, StreamsRestart

    kernel = payments_world(seed=seed, bandwidth_mbps=bandwidth_mbps, latency_ms=latency_ms)
    [app] = payments_app(kernel, {"statestore.cache.max.bytes": 0})
    feed(kernel, rounds, customers=customers, step_ms=100.0)
    changelog = kernel.cluster.partition(CHANGELOG, 0).log
    for _ in range(120):  # on a slow link the count updates reach the changelog late
        kernel.run(until_ms=kernel.now_ms + 1_000)
        if changelog.high_watermark >= rounds * customers:
            break
    crash_ms = kernel.now_ms + 1_000
    schedule(kernel, crash_ms, StreamsCrash(app.client_id, lose_state=lose_state))
    schedule(kernel, crash_ms, StreamsRestart(app.client_id))
    return kernel
