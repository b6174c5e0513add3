"""``StreamsConfig``: Kafka Streams' configuration names, 4.0 defaults and validation.

The table is a :class:`sim.config.ConfigDef` like the producer's, so unknown names and bad values
are rejected the same way (closest-name hints, Kafka-style messages). Sources:
``StreamsConfig.java`` (Kafka 4.0). ``application.id`` is required and names the consumer group,
the internal topics (``<application.id>-<name>-repartition`` / ``-changelog``) and the state
directory. Under ``exactly_once_v2`` the commit interval defaults to 100 ms instead of 30,000.

**Client configs** go in the same dict, as Kafka Streams takes them: an unprefixed consumer or
producer config (``session.timeout.ms``, ``max.poll.records``, ``acks``, ``linger.ms``) goes to
every client of that kind; a prefixed one only to those clients — ``consumer.`` (all consumers),
``main.consumer.``, ``restore.consumer.``, ``global.consumer.``, ``producer.``, ``admin.``
(``StreamsConfig.getMainConsumerConfigs`` and friends; more specific prefixes win). Each client's
configs are checked by the lab's consumer / producer parsers, so an unknown name fails in one
line. What Streams must control is overridden whatever the user says, as Kafka does with a
warning (``NON_CONFIGURABLE_CONSUMER_DEFAULT_CONFIGS``: ``enable.auto.commit=false``; under EOS
``isolation.level=read_committed`` and ``enable.idempotence=true``; ``group.id`` is the
application id); ``ignored`` lists what was overridden.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from sim.config import PRODUCER, ConfigDef, ConfigKey, at_least, one_of
from sim.consumer.config import CONSUMER, parse_consumer
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
                  "add threads later, so at least 1)", at_least(1), "processing", kafka_type="INT"),
        ConfigKey("processing.guarantee", str, AT_LEAST_ONCE, "at_least_once or "
                  "exactly_once_v2 (the older exactly_once values are gone in 4.0)",
                  one_of(AT_LEAST_ONCE, EXACTLY_ONCE_V2), "processing"),
        ConfigKey("commit.interval.ms", int, DEFAULT_COMMIT_INTERVAL_MS, "how often progress "
                  "is committed (100 under exactly_once_v2 unless set)", at_least(0),
                  "processing"),
        ConfigKey("statestore.cache.max.bytes", int, 10 * 1024 * 1024, "record cache size over "
                  "all threads; 0 forwards every update", at_least(0), "state"),
        ConfigKey("num.standby.replicas", int, 0, "standby copies of each stateful task",
                  at_least(0), "state", kafka_type="INT"),
        ConfigKey("acceptable.recovery.lag", int, 10000, "changelog lag under which an instance "
                  "counts as caught up (KIP-441)", at_least(0), "state"),
        ConfigKey("max.warmup.replicas", int, 2, "warm-up replicas at a time (KIP-441)",
                  at_least(1), "state", kafka_type="INT"),
        ConfigKey("probing.rebalance.interval.ms", int, 600000, "time between probing "
                  "rebalances while warm-ups catch up (KIP-441)", at_least(60000), "state"),
        ConfigKey("state.dir", str, "", "directory of the state stores (Kafka's default is "
                  "${java.io.tmpdir}/kafka-streams; the lab's, when empty, is a temporary folder "
                  "per kernel with one sub-folder per instance)", None, "state"),
        ConfigKey("default.dsl.store", str, "rocksDB", "store type of DSL operations",
                  one_of("rocksDB", "in_memory"), "state"),
        ConfigKey("replication.factor", int, -1, "replication of internal topics; -1 = the "
                  "broker default", None, "state", kafka_type="INT"),
        ConfigKey("windowstore.changelog.additional.retention.ms", int, 86400000, "extra "
                  "retention of window store changelogs", None, "state"),
        ConfigKey("state.cleanup.delay.ms", int, 600000, "age after which unused task "
                  "directories are deleted", None, "state"),
        ConfigKey("topology.optimization", str, "none", "none, all, or a list of rewrites",
                  _topology_optimization, "processing"),
        ConfigKey("max.task.idle.ms", int, 0, "how long a task waits for data on all its "
                  "inputs before processing out of order", None, "processing"),
        ConfigKey("buffered.records.per.partition", int, 1000, "records buffered per input "
                  "partition", None, "processing", kafka_type="INT"),
        ConfigKey("task.timeout.ms", int, 300000, "how long a task may be blocked before it "
                  "fails", at_least(0), "processing"),
        ConfigKey("repartition.purge.interval.ms", int, DEFAULT_COMMIT_INTERVAL_MS, "how often "
                  "consumed repartition records are deleted", at_least(0), "processing"),
        ConfigKey("poll.ms", int, 100, "how long a thread blocks waiting for input (at least 1 "
                  "in the lab: a 0 ms poll loop would not let simulated time pass)", at_least(1),
                  "processing"),
    ),
)


CONSUMER_PREFIX = "consumer."
MAIN_CONSUMER_PREFIX = "main.consumer."
RESTORE_CONSUMER_PREFIX = "restore.consumer."
GLOBAL_CONSUMER_PREFIX = "global.consumer."
PRODUCER_PREFIX = "producer."
ADMIN_CLIENT_PREFIX = "admin."
_PREFIXES = (MAIN_CONSUMER_PREFIX, RESTORE_CONSUMER_PREFIX, GLOBAL_CONSUMER_PREFIX,
             CONSUMER_PREFIX, PRODUCER_PREFIX, ADMIN_CLIENT_PREFIX)
CONSUMER_DEFAULT_OVERRIDES = {"auto.offset.reset": "earliest", "max.poll.records": 1000}
"""Streams' consumer defaults a user may change (``CONSUMER_DEFAULT_OVERRIDES``)."""
PRODUCER_DEFAULT_OVERRIDES = {"linger.ms": 100}
"""Streams' producer default a user may change (``PRODUCER_DEFAULT_OVERRIDES``)."""
EOS_TRANSACTION_TIMEOUT_MS = 10000
"""Streams' ``transaction.timeout.ms`` under EOS, which a user may change
(``PRODUCER_EOS_OVERRIDES``, ``DEFAULT_TRANSACTION_TIMEOUT``)."""


def thread_client_id(client_id: str, index: int) -> str:
    """A stream thread's name and the prefix of its clients' ids (``StreamThread.create``)."""
    return f"{client_id}-StreamThread-{index}"


def consumer_client_id(thread_client_id: str) -> str:
    """The thread's main consumer (``ClientUtils.consumerClientId``)."""
    return f"{thread_client_id}-consumer"


def restore_consumer_client_id(thread_client_id: str) -> str:
    """The thread's restore consumer (``ClientUtils.restoreConsumerClientId``)."""
    return f"{thread_client_id}-restore-consumer"


def producer_client_id(thread_client_id: str) -> str:
    """The thread's producer (``ClientUtils.producerClientId``)."""
    return f"{thread_client_id}-producer"


def global_consumer_client_id(client_id: str) -> str:
    """The global thread's consumer (``StreamsConfig.getGlobalConsumerConfigs``)."""
    return f"{client_id}-global-consumer"


_CONSUMER_NAMES = {k.name for k in CONSUMER}
_PRODUCER_NAMES = {k.name for k in PRODUCER} - {"lab.kafka.version"}


class StreamsConfig:
    """A validated Streams configuration (``StreamsConfig``); read values with ``config[name]``.

    Raises:
        ConfigError: an unknown name, a bad value, or a missing ``application.id``.
    """

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"A streams config is a dict of config names to values, got "
                              f"{values!r}.")
        given = dict(values or {})
        self._originals = dict(given)
        self.clients: dict[str, dict[str, Any]] = {prefix: {} for prefix in ("", *_PREFIXES)}
        for name in [n for n in given if not (isinstance(n, str) and n in STREAMS._by_name)]:
            self._take_client_config(str(name), given.pop(name))
        self.values = STREAMS.parse(given)
        if self.values["application.id"] is None:
            raise ConfigError('Missing required configuration "application.id" which has no '
                              'default value (streams config; name your application, e.g. '
                              '{"application.id": "wordcount"}).')
        exactly_once = self.values["processing.guarantee"] == EXACTLY_ONCE_V2
        if exactly_once and "commit.interval.ms" not in (values or {}):
            self.values["commit.interval.ms"] = EOS_DEFAULT_COMMIT_INTERVAL_MS
        self.ignored: list[str] = []
        self.main_consumer_configs("check")  # every client's configs fail now, not at start()
        self.restore_consumer_configs("check")
        self.global_consumer_configs("check")
        self.producer_configs("check")

    def originals(self) -> dict[str, Any]:
        """The configs as given, client configs included (``AbstractConfig.originals()``): what
        a new instance with the same configuration is built from."""
        return dict(self._originals)

    def _take_client_config(self, name: str, value: Any) -> None:
        prefix = next((p for p in _PREFIXES if name.startswith(p)), "")
        bare = name[len(prefix):]
        if prefix == ADMIN_CLIENT_PREFIX:
            self.clients[prefix][bare] = value  # kept; the lab's Streams has no admin client
            return
        known = (_PRODUCER_NAMES if prefix == PRODUCER_PREFIX else _CONSUMER_NAMES if prefix
                 else _CONSUMER_NAMES | _PRODUCER_NAMES)
        if bare not in known:
            what = {PRODUCER_PREFIX: "producer", "": "streams, consumer or producer"}.get(
                prefix, "consumer")
            close = difflib.get_close_matches(bare, sorted(known | (
                set(STREAMS._by_name) if not prefix else set())), n=3, cutoff=0.6)
            hint = f" Did you mean {prefix}{' or '.join(close)}?" if close else ""
            if not prefix:
                raise ConfigError(f"Unknown streams config {name!r}.{hint} It is not a "
                                  f"{what} config.")
            raise ConfigError(f"Unknown streams config {name!r}: {bare!r} is not a {what} "
                              f"config.{hint}")
        self.clients[prefix][bare] = value

    def _client(self, names: set[str], prefixes: tuple[str, ...]) -> dict[str, Any]:
        """Unprefixed client configs of that kind, then each prefix's, later ones winning."""
        result = {n: v for n, v in self.clients[""].items() if n in names}
        for prefix in prefixes:
            result.update(self.clients[prefix])
        return result

    def _force(self, config: dict[str, Any], name: str, value: Any, client: str) -> None:
        """A config Streams controls: a user's other value is ignored, as Kafka warns."""
        if name in config and config[name] != value:
            note = (f"{client}: {name}={config[name]!r} ignored, Kafka Streams uses "
                    f"{value!r}")
            if note not in self.ignored:
                self.ignored.append(note)
        config[name] = value

    def _consumer(self, prefix: str, client_id: str, group: bool) -> dict[str, Any]:
        config = {**CONSUMER_DEFAULT_OVERRIDES,
                  **self._client(_CONSUMER_NAMES, (CONSUMER_PREFIX, prefix))}
        client = prefix.rstrip(".")
        self._force(config, "enable.auto.commit", False, client)
        if self.values["processing.guarantee"] == EXACTLY_ONCE_V2:
            self._force(config, "isolation.level", "read_committed", client)
        config.pop("group.id", None)
        if group:
            config["group.id"] = self.values["application.id"]
        config["client.id"] = client_id
        parse_consumer(config)
        return config

    def main_consumer_configs(self, client_id: str) -> dict[str, Any]:
        """A stream thread's consumer (``getMainConsumerConfigs``): group ``application.id``."""
        return self._consumer(MAIN_CONSUMER_PREFIX, client_id, group=True)

    def restore_consumer_configs(self, client_id: str) -> dict[str, Any]:
        """A thread's restore consumer (``getRestoreConsumerConfigs``): no group."""
        return self._consumer(RESTORE_CONSUMER_PREFIX, client_id, group=False)

    def global_consumer_configs(self, client_id: str) -> dict[str, Any]:
        """The global thread's consumer (``getGlobalConsumerConfigs``): no group."""
        return self._consumer(GLOBAL_CONSUMER_PREFIX, client_id, group=False)

    def producer_configs(self, client_id: str) -> dict[str, Any]:
        """A stream thread's producer (``getProducerConfigs``); under EOS idempotent, with
        ``transaction.timeout.ms`` 10,000 unless set (the thread adds ``transactional.id``)."""
        config = {**PRODUCER_DEFAULT_OVERRIDES, **self._client(_PRODUCER_NAMES,
                                                               (PRODUCER_PREFIX,))}
        if self.values["processing.guarantee"] == EXACTLY_ONCE_V2:
            config.setdefault("transaction.timeout.ms", EOS_TRANSACTION_TIMEOUT_MS)
            self._force(config, "enable.idempotence", True, "producer")
        if config.pop("transactional.id", None) is not None:
            note = ("producer: transactional.id ignored, Kafka Streams sets it under "
                    "exactly_once_v2 and leaves it unset otherwise")
            if note not in self.ignored:
                self.ignored.append(note)
        config["client.id"] = client_id
        PRODUCER.parse(config)
        return config

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __repr__(self) -> str:
        return f"StreamsConfig({self.values!r})"
