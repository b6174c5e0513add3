"""``StreamsConfig``: Kafka Streams' configuration names, 4.0 defaults and validation.

The table is a :class:`sim.config.ConfigDef` like the producer's, so unknown names and bad values
are rejected the same way (closest-name hints, Kafka-style messages). Sources:
``StreamsConfig.java`` (Kafka 4.0). ``application.id`` is required and names the consumer group,
the internal topics (``<application.id>-<name>-repartition`` / ``-changelog``) and the state
directory. Under ``exactly_once_v2`` the commit interval defaults to 100 ms instead of 30,000.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.config import ConfigDef, ConfigKey, at_least, one_of
from sim.errors import ConfigError

AT_LEAST_ONCE = "at_least_once"
EXACTLY_ONCE_V2 = "exactly_once_v2"
DEFAULT_COMMIT_INTERVAL_MS = 30000
EOS_DEFAULT_COMMIT_INTERVAL_MS = 100
_OPTIMIZATIONS = ("reuse.ktable.source.topics", "merge.repartition.topics",
                  "single.store.self.join")


def _topology_optimization(value: Any) -> str | None:
    if value in ("none", "all"):
        return None
    parts = [p.strip() for p in str(value).split(",")]
    if parts and all(p in _OPTIMIZATIONS for p in parts):
        return None
    return f"must be none, all or a comma-separated list of {', '.join(_OPTIMIZATIONS)}"


def _non_empty(value: Any) -> str | None:
    return None if value.strip() else "must not be empty"


STREAMS = ConfigDef(
    "streams",
    (
        ConfigKey("application.id", str, None, "identifier of the application: consumer group "
                  "id, prefix of internal topic names; required", _non_empty, "general"),
        ConfigKey("bootstrap.servers", str, "", "brokers to connect to (the lab's clients use "
                  "the kernel's cluster)", None, "general"),
        ConfigKey("client.id", str, "", "prefix of the client ids of the internal clients",
                  None, "general"),
        ConfigKey("num.stream.threads", int, 1, "stream threads per instance (the lab cannot "
                  "add threads later, so at least 1)", at_least(1), "processing"),
        ConfigKey("processing.guarantee", str, AT_LEAST_ONCE, "at_least_once or "
                  "exactly_once_v2 (the older exactly_once values are gone in 4.0)",
                  one_of(AT_LEAST_ONCE, EXACTLY_ONCE_V2), "processing"),
        ConfigKey("commit.interval.ms", int, DEFAULT_COMMIT_INTERVAL_MS, "how often progress "
                  "is committed (100 under exactly_once_v2 unless set)", at_least(0),
                  "processing"),
        ConfigKey("statestore.cache.max.bytes", int, 10 * 1024 * 1024, "record cache size over "
                  "all threads; 0 forwards every update", at_least(0), "state"),
        ConfigKey("num.standby.replicas", int, 0, "standby copies of each stateful task",
                  at_least(0), "state"),
        ConfigKey("acceptable.recovery.lag", int, 10000, "changelog lag under which an instance "
                  "counts as caught up (KIP-441)", at_least(0), "state"),
        ConfigKey("max.warmup.replicas", int, 2, "warm-up replicas at a time (KIP-441)",
                  at_least(1), "state"),
        ConfigKey("probing.rebalance.interval.ms", int, 600000, "time between probing "
                  "rebalances while warm-ups catch up (KIP-441)", at_least(60000), "state"),
        ConfigKey("state.dir", str, "", "directory of the state stores (Kafka's default is "
                  "${java.io.tmpdir}/kafka-streams; the lab's, when empty, is a temporary folder "
                  "per kernel with one sub-folder per instance)", None, "state"),
        ConfigKey("default.dsl.store", str, "rocksDB", "store type of DSL operations",
                  one_of("rocksDB", "in_memory"), "state"),
        ConfigKey("replication.factor", int, -1, "replication of internal topics; -1 = the "
                  "broker default", None, "state"),
        ConfigKey("windowstore.changelog.additional.retention.ms", int, 86400000, "extra "
                  "retention of window store changelogs", None, "state"),
        ConfigKey("state.cleanup.delay.ms", int, 600000, "age after which unused task "
                  "directories are deleted", None, "state"),
        ConfigKey("topology.optimization", str, "none", "none, all, or a list of rewrites",
                  _topology_optimization, "processing"),
        ConfigKey("max.task.idle.ms", int, 0, "how long a task waits for data on all its "
                  "inputs before processing out of order", None, "processing"),
        ConfigKey("buffered.records.per.partition", int, 1000, "records buffered per input "
                  "partition", None, "processing"),
        ConfigKey("task.timeout.ms", int, 300000, "how long a task may be blocked before it "
                  "fails", at_least(0), "processing"),
        ConfigKey("repartition.purge.interval.ms", int, DEFAULT_COMMIT_INTERVAL_MS, "how often "
                  "consumed repartition records are deleted", at_least(0), "processing"),
        ConfigKey("poll.ms", int, 100, "how long a thread blocks waiting for input (at least 1 "
                  "in the lab: a 0 ms poll loop would not let simulated time pass)", at_least(1),
                  "processing"),
    ),
)


class StreamsConfig:
    """A validated Streams configuration (``StreamsConfig``); read values with ``config[name]``.

    Raises:
        ConfigError: an unknown name, a bad value, or a missing ``application.id``.
    """

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"A streams config is a dict of config names to values, got "
                              f"{values!r}.")
        self.values = STREAMS.parse(values)
        if self.values["application.id"] is None:
            raise ConfigError('Missing required configuration "application.id" which has no '
                              'default value (streams config; name your application, e.g. '
                              '{"application.id": "wordcount"}).')
        exactly_once = self.values["processing.guarantee"] == EXACTLY_ONCE_V2
        if exactly_once and "commit.interval.ms" not in (values or {}):
            self.values["commit.interval.ms"] = EOS_DEFAULT_COMMIT_INTERVAL_MS

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __repr__(self) -> str:
        return f"StreamsConfig({self.values!r})"
