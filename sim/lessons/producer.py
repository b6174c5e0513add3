"""Lesson computations for producer runs: partitioners, batching, keys, the line of configs.

Used by lessons 00 and 01 (and the header line by every lesson); re-exported by
:mod:`sim.lessons`.

Vocabulary:

- *run*: one seeded producer simulation (:func:`producer_kernel`, :func:`run`), summarised as
  DataFrames in a :class:`RunSummary`.
- *partitioner choice*: a short name for a ``partitioner.class`` together with the Kafka client
  version whose behaviour it shows (:data:`PARTITIONERS`).
- *key move*: a key whose partition changes when a topic's partition count changes
  (:func:`key_moves`). Keyed placement is ``toPositive(murmur2(key)) % N``, so going from ``N``
  to ``M`` partitions keeps a key in place only when both remainders agree; for uniformly spread
  hashes that happens for a fraction ``min(N, M) / lcm(N, M)`` of keys. Worked example: 6 → 12
  keeps ``6 / 12`` = half; 12 → 13 keeps ``12 / 156`` = 1 in 13.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim import config, metrics, report
from sim import trace as events
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.lessons.whole_text import breakable_labels
from sim.murmur2 import murmur2, partitions_for_keys, to_positive
from sim.producer import Producer
from sim.workloads import KeySpec, NoKeys, UniformKeys, Workload, ZipfKeys, vip_customers

__all__ = [
    "KEY_DISTRIBUTIONS",
    "PARTITIONERS",
    "REPLICATION_PRODUCER_CONFIGS",
    "REPLICATION_TOPIC_CONFIGS",
    "Comparison",
    "PartitionerChoice",
    "RunSummary",
    "cluster_state",
    "compare",
    "config_header",
    "expected_moved_fraction",
    "key_moves",
    "key_route",
    "moved_fractions",
    "partitions_at",
    "producer_kernel",
    "run",
    "summarise",
]


@dataclass(frozen=True)
class PartitionerChoice:
    """A ``partitioner.class`` value and the Kafka client version whose behaviour it shows."""

    label: str
    partitioner_class: str | None
    kafka_version: str


PARTITIONERS: dict[str, PartitionerChoice] = {
    "built-in": PartitionerChoice("uniform sticky, built in (KIP-794, Kafka 3.3+)", None, "4.0"),
    "round-robin": PartitionerChoice("RoundRobinPartitioner (Kafka 4.0)",
                                     "RoundRobinPartitioner", "4.0"),
    "round-robin-3.8": PartitionerChoice("RoundRobinPartitioner (3.8, KAFKA-9965)",
                                         "RoundRobinPartitioner", "3.8"),
    "kip-480": PartitionerChoice("KIP-480 sticky: DefaultPartitioner (Kafka 3.8)",
                                 "DefaultPartitioner", "3.8"),
    "vip": PartitionerChoice("VipPartitioner: VIPs on 0–7 (Kafka 4.0)",
                             "VipPartitioner", "4.0"),
}
"""The partitioners the lessons compare, by short name. A label is at most about 290 pixels of
13-pixel text: the playground's drop-down cut the longer ones off."""

KEY_DISTRIBUTIONS = ("none", "uniform", "zipf", "vip")
"""Key distributions by name: key-less, uniform over ``key_count`` keys, Zipf-skewed, VIP mix."""

VIP_PARTITIONS = 8  # VipPartitioner's default vip.partitions


# --- Keyed placement -----------------------------------------------------------------------------


def _key_bytes(key: str | bytes | int) -> bytes:
    """Serialize a key as Kafka's default serializers do (String: UTF-8; Integer: 4 bytes)."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, bool):
        raise ConfigError(f"Use a str, bytes or int key, not {key!r}.")
    if isinstance(key, int):
        return key.to_bytes(4, "big", signed=True)
    if isinstance(key, str):
        return key.encode("utf-8")
    raise ConfigError(f"Use a str, bytes or int key, not {type(key).__name__} {key!r}.")


def key_route(key: str | bytes | int, partitions: int) -> dict[str, Any]:
    """Each step of keyed partitioning for one key: bytes → murmur2 → toPositive → % N.

    Returns:
        A dict with ``key``, ``key_bytes`` (hex), ``murmur2`` (signed, as Java prints it),
        ``to_positive`` (sign bit cleared, not ``abs``), ``partitions`` and ``partition``.

    Raises:
        ConfigError: for a key type Kafka's default serializers do not handle, or fewer than
            one partition.
    """
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise ConfigError(f"A topic needs at least 1 partition but got {partitions!r}.")
    data = _key_bytes(key)
    h = murmur2(data)
    positive = to_positive(h)
    return {"key": key, "key_bytes": data.hex(" "), "murmur2": h, "to_positive": positive,
            "partitions": partitions, "partition": positive % partitions}


def key_moves(keys: Iterable[str | bytes], old_n: int, new_n: int) -> pd.DataFrame:
    """Where each key goes with ``old_n`` and with ``new_n`` partitions, and whether it moved.

    Returns:
        One row per key: ``key``, ``old_partition``, ``new_partition``, ``moved``.
    """
    keys = list(keys)
    data = [_key_bytes(k) for k in keys]
    old = partitions_for_keys(data, old_n) if data else np.empty(0, np.int32)
    new = partitions_for_keys(data, new_n) if data else np.empty(0, np.int32)
    return pd.DataFrame({"key": keys, "old_partition": old, "new_partition": new,
                         "moved": old != new})


def expected_moved_fraction(old_n: int, new_n: int) -> float:
    """Share of uniformly hashed keys that change partition from ``old_n`` to ``new_n``.

    A key stays when ``h % old_n == h % new_n``; over one period of ``lcm(old_n, new_n)`` hash
    values that holds for exactly ``min(old_n, new_n)`` of them.
    """
    if old_n < 1 or new_n < 1:
        raise ConfigError(f"Partition counts must be at least 1 but got {old_n} and {new_n}.")
    return 1.0 - min(old_n, new_n) / math.lcm(old_n, new_n)


def moved_fractions(keys: Iterable[str | bytes], old_n: int,
                    new_ns: Iterable[int]) -> pd.DataFrame:
    """For each new partition count: keys moved, their fraction, and the expected fraction."""
    keys = list(keys)
    rows = []
    for new_n in new_ns:
        moves = key_moves(keys, old_n, new_n)
        moved = int(moves["moved"].sum())
        rows.append({"old_partitions": old_n, "new_partitions": new_n, "keys": len(keys),
                     "moved": moved, "moved_fraction": moved / len(keys) if keys else 0.0,
                     "expected_fraction": expected_moved_fraction(old_n, new_n)})
    return pd.DataFrame(rows)


# --- Producer runs -------------------------------------------------------------------------------


def _key_spec(keys: str | KeySpec, key_count: int, zipf_s: float) -> KeySpec:
    if not isinstance(keys, str):
        return keys
    if keys == "none":
        return NoKeys()
    if keys == "uniform":
        return UniformKeys(key_count)
    if keys == "zipf":
        return ZipfKeys(key_count, zipf_s)
    if keys == "vip":
        return vip_customers()
    raise ConfigError(f"Unknown key distribution {keys!r}; use one of "
                      f"{', '.join(KEY_DISTRIBUTIONS)}.")


def producer_kernel(
    *,
    seed: int = 42,
    brokers: int = 3,
    partitions: int = 12,
    topic: str = "clicks",
    records: int = 100_000,
    rate_per_s: float = 100_000,
    keys: str | KeySpec = "none",
    key_count: int = 1000,
    zipf_s: float = 1.1,
    value_bytes: int = 100,
    partitioner: str = "built-in",
    config: Mapping[str, Any] | None = None,
    slow_broker: int | None = None,
    slowdown: float = 10.0,
) -> Kernel:
    """A kernel with one topic and one producer sending a generated workload (not yet run).

    The kernel's setup builds everything, so ``reset()`` (and a stepper's "step back") rebuilds
    the identical run.

    Args:
        partitioner: a key of :data:`PARTITIONERS`; it sets ``partitioner.class`` and
            ``lab.kafka.version``.
        keys: a name from :data:`KEY_DISTRIBUTIONS` or a key spec from ``sim.workloads``.
        config: further producer configs (``batch.size``, ``linger.ms``, …), applied last.
        slow_broker: a broker id whose request handling is ``slowdown`` times slower, or None.

    Raises:
        ConfigError: for an unknown name, a bad config value, a slow broker that does not exist,
            or the VIP partitioner on a topic with too few partitions.
    """
    choice = PARTITIONERS.get(partitioner)
    if choice is None:
        raise ConfigError(f"Unknown partitioner {partitioner!r}; use one of "
                          f"{', '.join(PARTITIONERS)}.")
    if partitioner == "vip" and partitions <= VIP_PARTITIONS:
        raise ConfigError(
            f"VipPartitioner keeps {VIP_PARTITIONS} partitions for VIP customers and needs at "
            f"least {VIP_PARTITIONS + 1}, but the topic has {partitions}. Use 10 partitions, as "
            "the lesson does."
        )
    if slow_broker is not None and not 0 <= slow_broker < brokers:
        raise ConfigError(f"There is no broker {slow_broker} to slow down: the cluster has "
                          f"brokers 0..{brokers - 1}. Pick one of those, or none.")
    spec = _key_spec(keys, key_count, zipf_s)
    producer_config = {"partitioner.class": choice.partitioner_class,
                       "lab.kafka.version": choice.kafka_version, **(config or {})}

    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic(topic, partitions=partitions)
        if slow_broker is not None:
            kernel.cluster.brokers[slow_broker].set_slowdown(slowdown)
        workload = Workload.generate(kernel.spawn_rng(), topic, records, rate_per_s,
                                     keys=spec, value_bytes=value_bytes)
        Producer(kernel, producer_config, workload=workload)

    return Kernel(seed=seed, brokers=brokers, setup=setup)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


REPLICATION_PRODUCER_CONFIGS = ("acks", "enable.idempotence", "delivery.timeout.ms")
"""The producer configs a replication panel names (acks and idempotence decide durability)."""

REPLICATION_TOPIC_CONFIGS = ("min.insync.replicas", "unclean.leader.election.enable")
"""The topic configs a replication panel names, after the replication factor."""


def config_header(kernel: Kernel, focus: str = "partitioning") -> str:
    """One line naming the Kafka version's behaviour and the key configs in force.

    Args:
        focus: ``"partitioning"`` names the partitioner and the batching configs (the
            ``partitioner.*`` ones only for the built-in partitioner: Kafka ignores them when
            ``partitioner.class`` is set);
            ``"replication"`` names acks and idempotence (as in force: Kafka turns its default
            idempotence off when acks is not all), each replicated topic's replication factor,
            ``min.insync.replicas`` and unclean election, and ``replica.lag.time.max.ms``.
    """
    if focus == "replication":
        return _replication_header(kernel)
    if focus != "partitioning":
        raise ConfigError(f"Unknown header focus {focus!r}; use 'partitioning' or "
                          "'replication'.")
    parts = []
    for producer in _producers(kernel):
        cfg = producer.config
        keys = [*report.KEY_PRODUCER_CONFIGS, "partitioner.availability.timeout.ms"]
        if cfg["partitioner.class"] is not None:  # partitioner.* tune only the built-in one
            keys = [k for k in keys if not k.startswith("partitioner.")]
        shown = " ".join(f"{k}={_fmt(cfg[k])}" for k in keys)
        parts.append(f"Kafka {cfg['lab.kafka.version']} client · partitioner="
                     f"{producer.partitioner_name} · {shown}")
    slow = [f"broker {b} ×{broker.slowdown:g} slower"
            for b, broker in kernel.cluster.brokers.items() if broker.slowdown > 1]
    if slow:
        parts.append("slow: " + ", ".join(slow))
    return " · ".join(parts) if parts else "no producer"


def _producers(kernel: Kernel) -> list[Any]:
    return [client for client in kernel.clients if hasattr(client, "partitioner_name")]


def _replication_header(kernel: Kernel) -> str:
    parts = [f"Kafka {config.KAFKA_VERSION}"]
    for producer in _producers(kernel):
        cfg = producer.config
        shown = []
        for key in REPLICATION_PRODUCER_CONFIGS:
            value = _fmt(cfg[key])
            if key == "enable.idempotence" and cfg[key] and not producer.idempotent:
                value = f"false (off with acks={cfg['acks']})"
            shown.append(f"{key}={value}")
        client = cfg["lab.kafka.version"]
        version = "" if client == config.KAFKA_VERSION else f" (Kafka {client} client)"
        parts.append(f"producer {producer.client_id}{version}: {' '.join(shown)}")
    for topic in kernel.cluster.topics.values():
        if topic.name.startswith("__"):
            continue
        shown = " ".join(f"{k}={_fmt(topic.config[k])}" for k in REPLICATION_TOPIC_CONFIGS)
        parts.append(f"topic {topic.name}: replication.factor={topic.replication_factor} "
                     f"{shown}")
    lags = sorted({b.config["replica.lag.time.max.ms"] for b in kernel.cluster.brokers.values()})
    parts.append("brokers: replica.lag.time.max.ms=" + "/".join(str(lag) for lag in lags))
    return " · ".join(parts)


@dataclass
class RunSummary:
    """The frames a lesson plots after a run, plus the line of configs in force.

    ``partitions``, ``producer`` and ``brokers`` come from ``sim.metrics``; ``batches`` is the
    ``log.append`` trace (one row per stored batch); ``records`` is the per-record result of the
    (first) producer, with ``latency_ms``.
    """

    header: str
    partitions: pd.DataFrame
    producer: pd.DataFrame
    brokers: pd.DataFrame
    batches: pd.DataFrame
    records: pd.DataFrame
    end_ms: float
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def slow_brokers(self) -> dict[int, float]:
        """Broker id → slowdown factor, for brokers slower than normal."""
        slow = self.brokers[self.brokers["slowdown"] > 1]
        return {int(b): float(s) for b, s in zip(slow["broker"], slow["slowdown"], strict=True)}


def _stats(partitions: pd.DataFrame, producer: pd.DataFrame,
           slow: Iterable[int]) -> dict[str, float]:
    total = int(partitions["records"].sum())
    n = max(len(partitions), 1)
    row = producer.iloc[0] if len(producer) else None
    slow = set(slow)
    stats = {
        "records": float(total),
        "batches": float(row["batches"]) if row is not None else 0.0,
        "records_per_batch": float(row["records_per_batch"]) if row is not None else 0.0,
        "requests": float(row["requests"]) if row is not None else 0.0,
        "latency_p50_ms": float(row["latency_p50_ms"]) if row is not None else math.nan,
        "latency_p99_ms": float(row["latency_p99_ms"]) if row is not None else math.nan,
        "max_share": float(partitions["share"].max()) if total else 0.0,
        "min_share": float(partitions["share"].min()) if total else 0.0,
        "even_share": 1.0 / n,
        "partitions_used": float((partitions["records"] > 0).sum()),
    }
    stats["max_over_even"] = stats["max_share"] / stats["even_share"]
    if slow:
        on_slow = partitions["leader"].isin(slow)
        stats["slow_share"] = float(partitions.loc[on_slow, "records"].sum() / total) if total \
            else 0.0
        stats["slow_even_share"] = float(on_slow.mean())
    return stats


def summarise(kernel: Kernel) -> RunSummary:
    """Collect the frames of a (finished or paused) run."""
    clients = [c for c in kernel.clients if hasattr(c, "results")]
    records = clients[0].results() if clients else pd.DataFrame(columns=["latency_ms"])
    partitions = metrics.partition_metrics(kernel)
    producer = metrics.producer_metrics(
        kernel, {clients[0].client_id: records} if clients else None)
    brokers = metrics.broker_metrics(kernel)
    batches = kernel.trace.frame(events.LOG_APPEND)
    summary = RunSummary(config_header(kernel), partitions, producer, brokers, batches, records,
                         kernel.now_ms)
    summary.stats = _stats(partitions, producer, summary.slow_brokers)
    return summary


def run(**kwargs: Any) -> RunSummary:
    """Build a :func:`producer_kernel` with ``kwargs``, run it to the end and summarise it."""
    kernel = producer_kernel(**kwargs)
    kernel.run()
    return summarise(kernel)


STAT_COLUMNS = ("batches", "records_per_batch", "requests", "latency_p50_ms", "latency_p99_ms",
                "max_over_even", "partitions_used")


@dataclass
class Comparison:
    """Several runs side by side: ``table`` has one row per run, ``runs`` the full summaries.

    ``caption``, when set, is shown above the table (the Kafka version and what all runs share).
    Its column labels may break after an underscore (``latency_`` / ``p99_ms``), so that eight
    statistics fit a notebook output with the last ones, such as ``slow_broker_share``, in view.
    """

    table: pd.DataFrame
    runs: dict[str, Any]
    caption: str = ""

    def _repr_html_(self) -> str:
        head, tbody, body = self.table._repr_html_().partition("<tbody>")  # type: ignore[operator]
        table = breakable_labels(head) + tbody + body
        if not self.caption:
            return table
        return f"<div style='font-size:90%;color:#333'>{html.escape(self.caption)}</div>{table}"

    def __repr__(self) -> str:
        text = self.table.to_string()
        return f"{self.caption}\n{text}" if self.caption else text


def compare(runs: Mapping[str, Mapping[str, Any]], **common: Any) -> Comparison:
    """Run each named variant (``common`` arguments overlaid by the variant's own) and tabulate.

    Example: ``compare({"sticky": {}, "round robin": {"partitioner": "round-robin"}},
    records=50_000)``.
    """
    summaries: dict[str, RunSummary] = {}
    rows = []
    for name, variant in runs.items():
        summary = run(**{**common, **variant})
        summaries[name] = summary
        row = {"run": name, **{c: summary.stats[c] for c in STAT_COLUMNS}}
        if "slow_share" in summary.stats:
            row["slow_broker_share"] = summary.stats["slow_share"]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("run")
    for column in ("batches", "requests", "partitions_used"):
        table[column] = table[column].astype(int)
    return Comparison(table.round(3), summaries)


# --- The cluster at a moment -----------------------------------------------------------------


def cluster_state(kernel: Kernel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cluster now: (partitions with leader and log end offset, brokers with slowdown)."""
    partitions = metrics.partition_metrics(kernel)
    brokers = pd.DataFrame(
        [{"broker": b, "slowdown": broker.slowdown, "alive": broker.alive}
         for b, broker in kernel.cluster.brokers.items()]
    )
    return partitions, brokers


def partitions_at(partitions: pd.DataFrame, appends: pd.DataFrame, time_ms: float) -> pd.DataFrame:
    """``partitions`` with ``log_end_offset`` as it was at ``time_ms``, from the append trace."""
    out = partitions.copy()
    done = appends[appends["time_ms"] <= time_ms]
    leo = done.groupby(["topic", "partition"])["records"].sum()
    keys = pd.MultiIndex.from_frame(out[["topic", "partition"]])
    out["log_end_offset"] = leo.reindex(keys).fillna(0).astype(int).to_numpy()
    return out
