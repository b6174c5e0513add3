"""Kafka-style configuration: declarative tables of config keys, their defaults and validation.

Each table mirrors a Kafka ``ConfigDef`` (``ProducerConfig``, ``TopicConfig``, …): one row per
config with Kafka's dotted name, type, default, validator and doc. Validation, error messages,
documentation and widget labels all read the same rows.

Defaults are those of **Apache Kafka 4.0** (``KAFKA_VERSION``). Lab-only settings that Kafka does
not have start with ``lab.`` so they cannot be mistaken for real configs.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.errors import ConfigError

KAFKA_VERSION = "4.0"

Validator = Callable[[Any], str | None]
"""Returns None when the value is allowed, else a phrase saying what is allowed."""


def at_least(low: float) -> Validator:
    def check(value: Any) -> str | None:
        if low <= value < math.inf:
            return None
        return "must be a finite number" if value == math.inf else f"must be at least {low}"

    return check


def between(low: float, high: float) -> Validator:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}"

    return check


def one_of(*allowed: Any) -> Validator:
    def check(value: Any) -> str | None:
        shown = ", ".join(repr(a) for a in allowed)
        return None if value in allowed else f"must be one of {shown}"

    return check


JAVA_INTEGER_BITS = {"SHORT": 16, "INT": 32, "LONG": 64}
"""Width of the Java integer behind each of ``ConfigDef.Type``'s integer types."""

JAVA_BLANKS = "".join(map(chr, range(0x21)))
"""What Java's ``String.trim`` removes from both ends: every character up to the space."""

_JAVA_INTEGER = re.compile(r"[+-]?\d+")
_JAVA_DOUBLE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[fFdD]?"
                          r"|([+-]?(?:NaN|Infinity))", re.ASCII)


def java_integer(text: str) -> int | None:
    """``text`` read as ``Long.parseLong`` reads it, or None when Java would refuse it.

    A sign, then decimal digits: of any script Java's ``Character.digit`` knows (Unicode's
    Basic Multilingual Plane), but no ``_`` (``1_000``), exponent (``1e3``) or fraction
    (``1.0``), which Python's ``int`` or ``float`` take.
    """
    if _JAVA_INTEGER.fullmatch(text) and max(map(ord, text)) <= 0xFFFF:
        return int(text)
    return None


def java_double(text: str) -> float | None:
    """``text`` read as ``Double.parseDouble`` reads its decimal form, or None: ``1e3``, ``.5``,
    ``2.5d``, ``NaN``, ``-Infinity``, but not Python's ``1_0.5``, ``inf`` or ``nan``. (Java's
    hexadecimal form, ``0x1p3``, is refused here.)"""
    found = _JAVA_DOUBLE.fullmatch(text)
    return None if found is None else float(found[1] or found[2])


@dataclass(frozen=True)
class ConfigKey:
    """One row of a config table, as in Kafka's ``ConfigDef.define(...)``."""

    name: str
    type: type | tuple[type, ...]
    default: Any
    doc: str
    validator: Validator | None = None
    group: str = ""
    nullable: bool = False
    normalize: Callable[[Any], Any] | None = None
    """Turns another accepted spelling into the config's type before it is checked."""
    kafka_type: str = "LONG"
    """Kafka's ``ConfigDef.Type`` of an integer config, INT, SHORT or LONG: the range of Java
    integer its values must fit. ``lab.*`` keys, which Kafka has not, are held to LONG."""
    setting: Callable[[Any], Any] | None = None
    """Maps a parsed value to the setting Kafka acts on, where two spellings are one setting
    (acks ``all`` and ``-1``); used to compare values, never to show them."""

    def parse(self, value: Any, where: str) -> Any:
        """Convert ``value`` to this key's type and validate it, or raise ``ConfigError``."""
        if value is None and self.nullable:
            return None
        if isinstance(value, str):  # ConfigDef.parseType trims any text (String.trim)
            value = value.strip(JAVA_BLANKS)
        if self.normalize is not None:
            value = self.normalize(value)
        value = _coerce(self, value, where)
        if self.validator is not None:
            problem = self.validator(value)
            if problem:
                raise ConfigError(
                    f"Invalid value {value!r} for configuration {self.name}: {problem} "
                    f"({where} config; {self.doc})"
                )
        if isinstance(value, int) and not isinstance(value, bool):
            bits = JAVA_INTEGER_BITS[self.kafka_type]
            low, high = -2**(bits - 1), 2**(bits - 1) - 1
            if not low <= value <= high:
                raise ConfigError(
                    f"Invalid value {value!r} for configuration {self.name}: not a number of "
                    f"type {self.kafka_type} ({low} to {high}) ({where} config; {self.doc})"
                )
        return value

    def setting_of(self, value: Any) -> Any:
        """The setting a parsed ``value`` stands for, hashable: two values are the same setting
        when these are equal (``5`` and ``5.0``; acks ``all`` and ``-1``)."""
        if self.setting is not None:
            value = self.setting(value)
        return tuple(value) if isinstance(value, list) else value


def _coerce(key: ConfigKey, value: Any, where: str) -> Any:
    types = key.type if isinstance(key.type, tuple) else (key.type,)
    if bool in types and isinstance(value, str):
        text = value.strip(JAVA_BLANKS).lower()  # ConfigDef.parseType: trim, equalsIgnoreCase
        if text in ("true", "false"):
            return text == "true"
    if isinstance(value, bool) and bool not in types:
        raise _type_error(key, value, where)
    if isinstance(value, types):
        return value
    if int in types and isinstance(value, float) and value.is_integer():
        return int(value)
    if float in types and isinstance(value, int):
        return float(value)
    if (int in types or float in types) and isinstance(value, str):
        # ConfigDef.parseType: the text is trimmed, then read by Integer.parseInt (INT),
        # Long.parseLong (LONG) or Double.parseDouble (DOUBLE)
        text = value.strip(JAVA_BLANKS)
        whole = java_integer(text) if int in types else None
        if whole is not None:
            return whole  # exactly: float() rounds past 2**53
        number = java_double(text) if float in types else None
        if number is None:
            raise _type_error(key, value, where)
        return int(number) if int in types and number.is_integer() else number
    raise _type_error(key, value, where)


def _type_error(key: ConfigKey, value: Any, where: str) -> ConfigError:
    types = key.type if isinstance(key.type, tuple) else (key.type,)
    expected = " or ".join(t.__name__ for t in types)
    return ConfigError(
        f"Invalid value {value!r} for configuration {key.name}: expected {expected} "
        f"({where} config; {key.doc})"
    )


@dataclass(frozen=True)
class ConfigDef:
    """A table of config keys for one kind of client or resource (producer, topic, broker…)."""

    kind: str
    keys: tuple[ConfigKey, ...]
    check: Callable[[dict[str, Any], Mapping[str, Any]], None] | None = None
    """Rules across keys: gets the parsed values and the given ones; may adjust or raise."""
    _by_name: dict[str, ConfigKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {k.name: k for k in self.keys})

    def __iter__(self) -> Iterator[ConfigKey]:
        return iter(self.keys)

    def __getitem__(self, name: str) -> ConfigKey:
        return self._by_name[name]

    def defaults(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.keys}

    def parse(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return defaults overlaid with ``values``, each validated.

        Raises:
            ConfigError: for an unknown name (suggesting the closest known ones) or a bad value.
        """
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"{self.kind.capitalize()} configs are a mapping of config names "
                              f"to values, e.g. {{{next(iter(self._by_name))!r}: ...}}, but got "
                              f"{values!r}.")
        result = self.defaults()
        for name, value in (values or {}).items():
            key = self._by_name.get(name)
            if key is None:
                raise ConfigError(self._unknown_message(name))
            result[name] = key.parse(value, self.kind)
        if self.check is not None:
            self.check(result, values or {})
        return result

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self._by_name, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        return (
            f"Unknown {self.kind} config {name!r}.{hint} Known {self.kind} configs: "
            f"{', '.join(sorted(self._by_name))}."
        )


def _acks(value: Any) -> Any:
    """YAML and Python give ``acks: 1`` as a number; Kafka's values are the strings."""
    if isinstance(value, int) and not isinstance(value, bool) and value in (-1, 0, 1):
        return str(value)
    return value


def _acks_setting(value: str) -> str:
    """``ProducerConfig.parseAcks``: the producer acts on ``all`` as ``-1``."""
    return "-1" if value == "all" else value


def _delivery_timeout(values: dict[str, Any], given: Mapping[str, Any]) -> None:
    """``delivery.timeout.ms`` ≥ ``linger.ms`` + ``request.timeout.ms``.

    As ``KafkaProducer.configureDeliveryTimeout``: a value the user set that is smaller is a
    ConfigException; when only the other two were set, the default is raised to their sum.
    """
    floor = values["linger.ms"] + values["request.timeout.ms"]
    delivery = values["delivery.timeout.ms"]
    if delivery >= floor:
        return
    if "delivery.timeout.ms" in given:
        raise ConfigError(
            f"Invalid value {delivery!r} for configuration delivery.timeout.ms: must be at "
            f"least linger.ms + request.timeout.ms = {floor:g} (producer config; raise "
            "delivery.timeout.ms or lower request.timeout.ms)")
    values["delivery.timeout.ms"] = floor


COMPRESSION_RATIOS = {"none": 1.0, "gzip": 0.35, "snappy": 0.55, "lz4": 0.5, "zstd": 0.3}
"""Lab assumption: how much each codec shrinks a typical JSON-like payload (bytes out / in)."""

PRODUCER = ConfigDef(
    "producer",
    (
        ConfigKey("batch.size", int, 16384, "bytes per partition batch; a bigger record "
                  "travels alone (0: every record does)", at_least(0), "batching",
                  kafka_type="INT"),
        ConfigKey("linger.ms", int, 5, "how long a batch waits for more records "
                  "(default 5 since Kafka 4.0, KIP-1030; 0 before)", at_least(0), "batching",
                  kafka_type="LONG"),
        ConfigKey("acks", str, "all", "acknowledgements the leader waits for: all (= -1), 1, 0",
                  one_of("all", "-1", "0", "1"), "delivery", normalize=_acks,
                  setting=_acks_setting),
        ConfigKey("enable.idempotence", bool, True, "de-duplicate retries by producer id and "
                  "sequence (default true since Kafka 3.0)", None, "delivery"),
        ConfigKey("max.in.flight.requests.per.connection", int, 5, "unacknowledged requests "
                  "per broker connection", at_least(1), "delivery", kafka_type="INT"),
        ConfigKey("retries", int, 2147483647, "times a failed batch is retried", at_least(0),
                  "delivery", kafka_type="INT"),
        ConfigKey("delivery.timeout.ms", int, 120000, "upper bound from send() to success or "
                  "failure; at least linger.ms + request.timeout.ms", at_least(0), "delivery",
                  kafka_type="INT"),
        ConfigKey("request.timeout.ms", int, 30000, "how long to wait for a response",
                  at_least(0), "delivery", kafka_type="INT"),
        ConfigKey("retry.backoff.ms", int, 100, "wait before retrying a failed batch",
                  at_least(0), "delivery"),
        ConfigKey("max.request.size", int, 1048576, "largest produce request in bytes",
                  at_least(1), "batching", kafka_type="INT"),
        ConfigKey("buffer.memory", int, 33554432, "bytes the producer may buffer",
                  at_least(0), "batching"),
        ConfigKey("compression.type", str, "none", "codec; modelled as a size ratio "
                  f"{COMPRESSION_RATIOS}", one_of(*COMPRESSION_RATIOS), "batching"),
        ConfigKey("partitioner.class", (str, type, object), None, "custom Partitioner class, "
                  "instance or name; None = the built-in uniform sticky partitioner",
                  None, "partitioning", nullable=True),
        ConfigKey("partitioner.ignore.keys", bool, False, "spread keyed records like key-less "
                  "ones (built-in partitioner only)", None, "partitioning"),
        ConfigKey("partitioner.adaptive.partitioning.enable", bool, True, "weight the sticky "
                  "choice by partition queue sizes (KIP-794)", None, "partitioning"),
        ConfigKey("partitioner.availability.timeout.ms", int, 0, "skip partitions whose broker "
                  "has not drained ready data for this long; 0 = off", at_least(0),
                  "partitioning"),
        ConfigKey("client.id", str, "producer", "name shown in the trace", None, "general"),
        ConfigKey("transactional.id", str, None, "makes the producer transactional (implies "
                  "idempotence); instances with the same id fence each other", None,
                  "transactions", nullable=True),
        ConfigKey("transaction.timeout.ms", int, 60000, "the coordinator aborts a transaction "
                  "open longer than this", at_least(1), "transactions", kafka_type="INT"),
        ConfigKey("lab.clock.skew.ms", int, 0, "how far this producer's clock is off: its "
                  "records' CreateTime is the send time plus this (negative: behind; never "
                  "below 0); at most about 31 years either way", between(-10**12, 10**12), "lab"),
        ConfigKey("lab.kafka.version", str, KAFKA_VERSION, "client behaviour to model: 4.0, or "
                  "3.8 for onNewBatch and the partitioners that 4.0 removed",
                  one_of("4.0", "3.8"), "lab"),
    ),
    check=_delivery_timeout,
)

TIERED_BROKER_KEYS = (
    ConfigKey("remote.log.storage.system.enable", bool, False, "let topics use tiered storage "
              "(KIP-405)", None, "tiered"),
    ConfigKey("remote.log.manager.task.interval.ms", int, 30000, "how often the remote log "
              "manager copies and expires segments", at_least(1), "tiered"),
    ConfigKey("lab.remote.storage.dir", str, "", "folder standing in for object storage; "
              "empty = a temporary folder per kernel", None, "lab"),
    ConfigKey("lab.remote.copy.mb.per.s", (int, float), 100.0, "upload throughput to the "
              "remote tier in megabytes per second", at_least(1e-3), "lab"),
    ConfigKey("lab.remote.fetch.latency.ms", (int, float), 50.0, "time to first byte of a "
              "read from the remote tier", at_least(0), "lab"),
    ConfigKey("lab.remote.fetch.mb.per.s", (int, float), 50.0, "read throughput from the "
              "remote tier in megabytes per second", at_least(1e-3), "lab"),
)
"""Tiered storage's broker configs (``RemoteLogManagerConfig``) and the lab's timing model."""


def _check_tiered_topic(values: dict[str, Any], _given: Mapping[str, Any]) -> None:
    """Kafka's ``LogConfig.validateTopicLogConfigValues`` for a topic with remote storage."""
    if values["remote.storage.enable"]:
        from sim.broker.remote_log_manager import check_topic_config

        check_topic_config(values)


@functools.cache
def _split_policies(value: str) -> tuple[str, ...]:
    """``cleanup.policy`` split and sorted, once per distinct value (read on every append)."""
    return tuple(sorted(value.split(",")))


TOPIC = ConfigDef(
    "topic",
    (
        ConfigKey("min.insync.replicas", int, 1, "in-sync replicas an acks=all write needs",
                  at_least(1), "replication", kafka_type="INT"),
        ConfigKey("unclean.leader.election.enable", bool, False, "allow an out-of-sync replica "
                  "to become leader", None, "replication"),
        ConfigKey("segment.bytes", int, 1073741824, "bytes per log segment (at least 1 MiB "
                  "since Kafka 4.0)", at_least(1048576), "storage", kafka_type="INT"),
        ConfigKey("segment.ms", int, 604800000, "roll a new segment when the active one's first "
                  "record is this much older than the next batch (7 days)", at_least(1),
                  "storage"),
        ConfigKey("lab.segment.bytes", int, None, "lab-only teaching flag: bytes per segment "
                  "below Kafka's 1 MiB minimum, so that small runs show several segments; "
                  "overrides segment.bytes and is named in the run summary", at_least(1),
                  "lab", nullable=True),
        ConfigKey("retention.ms", int, 604800000, "how long records are kept; -1 = forever",
                  at_least(-1), "storage"),
        ConfigKey("retention.bytes", int, -1, "bytes kept per partition; -1 = no limit",
                  at_least(-1), "storage"),
        ConfigKey("cleanup.policy", str, "delete", "delete, compact or delete,compact",
                  one_of("delete", "compact", "delete,compact", "compact,delete"), "storage",
                  setting=_split_policies),
        ConfigKey("min.cleanable.dirty.ratio", (int, float), 0.5, "the log cleaner cleans a "
                  "log only when dirty bytes / cleanable bytes reach this", between(0, 1),
                  "storage"),
        ConfigKey("min.compaction.lag.ms", int, 0, "a record stays uncompacted at least this "
                  "long", at_least(0), "storage"),
        ConfigKey("max.compaction.lag.ms", int, 9223372036854775807, "a record is compacted "
                  "at the latest this long after it was written, whatever the dirty ratio",
                  at_least(1), "storage"),
        ConfigKey("delete.retention.ms", int, 86400000, "how long a tombstone (null value) "
                  "is kept after its segment was cleaned (24 h)", at_least(0), "storage"),
        ConfigKey("message.timestamp.type", str, "CreateTime", "CreateTime (the producer's "
                  "timestamp) or LogAppendTime (the leader's clock at append)",
                  one_of("CreateTime", "LogAppendTime"), "storage"),
        # tiered storage (KIP-405): see sim.broker.remote_log_manager
        ConfigKey("remote.storage.enable", bool, False, "copy closed segments to the remote "
                  "tier (needs the broker's remote.log.storage.system.enable)", None, "tiered"),
        ConfigKey("local.retention.ms", int, -2, "how long segments stay on the broker's disk "
                  "once tiered; -2 = retention.ms", at_least(-2), "tiered"),
        ConfigKey("local.retention.bytes", int, -2, "bytes kept on the broker's disk per "
                  "partition once tiered; -2 = retention.bytes", at_least(-2), "tiered"),
    ),
    check=_check_tiered_topic,
)


def segment_bytes(topic_config: Mapping[str, Any]) -> int:
    """The segment size a topic's logs use: ``lab.segment.bytes`` when set, else
    ``segment.bytes`` (which Kafka 4.0 keeps at 1 MiB or more, KIP-1030)."""
    lab = topic_config.get("lab.segment.bytes")
    return int(lab if lab is not None else topic_config.get("segment.bytes", 1073741824))


def cleanup_policies(topic_config: Mapping[str, Any]) -> tuple[str, ...]:
    """The topic's ``cleanup.policy`` as a tuple: ("delete",), ("compact",) or both."""
    return _split_policies(str(topic_config.get("cleanup.policy", "delete")))


BROKER = ConfigDef(
    "broker",
    (
        ConfigKey("lab.network.latency.ms", (int, float), 0.5, "one-way network latency "
                  "between a client and this broker", at_least(0), "lab"),
        ConfigKey("lab.network.bandwidth.mbps", (int, float), 10000.0, "link bandwidth in "
                  "megabits per second", at_least(1e-3), "lab"),
        ConfigKey("lab.request.time.ms", (int, float), 0.2, "fixed time to handle one produce "
                  "request", at_least(0), "lab"),
        ConfigKey("lab.append.mb.per.s", (int, float), 1000.0, "append throughput of the "
                  "request handler (disk and copy) in megabytes per second", at_least(1e-3),
                  "lab"),
        ConfigKey("lab.slowdown", (int, float), 1.0, "multiplies request handling time; >1 "
                  "makes this a slow broker", at_least(1.0), "lab"),
        ConfigKey("auto.leader.rebalance.enable", bool, True, "move leadership back to "
                  "preferred replicas when brokers are imbalanced", None, "replication"),
        ConfigKey("leader.imbalance.check.interval.seconds", int, 300, "how often the "
                  "controller checks leader imbalance", at_least(1), "replication"),
        ConfigKey("leader.imbalance.per.broker.percentage", int, 10, "share of a broker's "
                  "preferred partitions led elsewhere that triggers a preferred election",
                  between(0, 100), "replication", kafka_type="INT"),
        ConfigKey("replica.lag.time.max.ms", int, 30000, "a follower this far behind leaves "
                  "the ISR; checked every half of it, so at least 2 (Kafka's scheduler refuses a "
                  "period of 0)", at_least(2), "replication"),
        ConfigKey("log.retention.check.interval.ms", int, 300000, "how often the broker "
                  "deletes segments past retention.ms or retention.bytes", at_least(1),
                  "storage"),
        ConfigKey("log.cleaner.enable", bool, True, "run the log cleaner for compacted topics",
                  None, "storage"),
        ConfigKey("log.cleaner.backoff.ms", int, 15000, "how long the cleaner sleeps when no "
                  "log needs cleaning", at_least(0), "storage"),
        ConfigKey("log.cleaner.io.max.bytes.per.second", (int, float), 1.7976931348623157e308,
                  "the cleaner's read and write rate; makes compaction take time",
                  at_least(1e-9), "storage"),
        *TIERED_BROKER_KEYS,
    ),
)
