"""Consumer and group-coordinator configs: Kafka's names and Kafka 4.0's defaults.

``CONSUMER`` mirrors ``org.apache.kafka.clients.consumer.ConsumerConfig`` for the settings the
simulator models; ``GROUP_COORDINATOR`` holds the broker settings of the classic group
coordinator (``GroupCoordinatorConfig``) and of the offsets topic. Settings Kafka does not have
start with ``lab.``.
"""

from __future__ import annotations

from typing import Any

from sim.config import ConfigDef, ConfigKey, Validator, at_least, between, one_of
from sim.consumer import offset_reset
from sim.consumer.assignors import ASSIGNORS, assignor_for
from sim.errors import ConfigError

OFFSETS_TOPIC = "__consumer_offsets"
"""Kafka's internal topic that stores committed offsets (``Topic.GROUP_METADATA_TOPIC_NAME``)."""

DEFAULT_ASSIGNORS = ("range", "cooperative-sticky")
"""``partition.assignment.strategy`` default since Kafka 3.0: range is used, and listing
cooperative-sticky second allows a rolling switch to it (kafka-facts §4.5)."""


def _assignor_list() -> Validator:
    def check(value: Any) -> str | None:
        names = value if isinstance(value, list | tuple) else [value]
        if not names:
            return "must name at least one assignor"
        for name in names:
            try:
                assignor_for(name)
            except ConfigError:
                return (f"names unknown assignor {name!r}; use {', '.join(ASSIGNORS)} (or the "
                        "Java class names), as a list in order of preference")
        return None

    return check


def assignor_names(value: Any) -> list[str]:
    """``partition.assignment.strategy`` as a list of short names (accepts a comma list)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    return [assignor_for(name).name for name in value]


CONSUMER = ConfigDef(
    "consumer",
    (
        ConfigKey("group.id", str, None, "the consumer group; needed by subscribe() and by "
                  "offset commits", None, "group", nullable=True),
        ConfigKey("group.instance.id", str, None, "makes this a static member (KIP-345): no "
                  "LeaveGroup on close, and a rejoin within session.timeout.ms keeps the "
                  "assignment without a rebalance", None, "group", nullable=True),
        ConfigKey("client.id", str, "", "name in the trace; empty = consumer-<group.id>-<n> "
                  "as Kafka generates it", None, "general"),
        ConfigKey("session.timeout.ms", int, 45000, "a member silent this long is removed "
                  "(45000 since Kafka 3.0, KIP-735)", at_least(1), "group", kafka_type="INT"),
        ConfigKey("heartbeat.interval.ms", int, 3000, "time between heartbeats; must be lower "
                  "than session.timeout.ms", at_least(1), "group", kafka_type="INT"),
        ConfigKey("max.poll.interval.ms", int, 300000, "longest time between polls before the "
                  "member leaves the group; also its rebalance timeout", at_least(1), "group",
                  kafka_type="INT"),
        ConfigKey("max.poll.records", int, 500, "records one poll() returns at most",
                  at_least(1), "fetch", kafka_type="INT"),
        ConfigKey("enable.auto.commit", bool, True, "commit the offsets of earlier polls "
                  "inside poll() every auto.commit.interval.ms", None, "offsets"),
        ConfigKey("auto.commit.interval.ms", int, 5000, "time between automatic commits",
                  at_least(0), "offsets", kafka_type="INT"),
        ConfigKey("auto.offset.reset", str, "latest", "where to start without a committed "
                  "offset: earliest, latest, none (= an error) or by_duration:PnDTnHnMn.nS "
                  "(the first record at most that old, KIP-1106)",
                  offset_reset.validate, "offsets"),
        ConfigKey("partition.assignment.strategy", (list, tuple, str), list(DEFAULT_ASSIGNORS),
                  "assignors in order of preference: range, roundrobin, sticky, "
                  "cooperative-sticky", _assignor_list(), "group"),
        ConfigKey("isolation.level", str, "read_uncommitted", "read_committed stops at the "
                  "last stable offset; without transactions both read up to the high "
                  "watermark", one_of("read_uncommitted", "read_committed"), "fetch"),
        ConfigKey("group.protocol", str, "classic", "rebalance protocol; only the classic "
                  "protocol is modelled (KIP-848's 'consumer' protocol is not)",
                  one_of("classic"), "group"),
        ConfigKey("lab.poll.check.ms", (int, float), 10, "an empty poll looks at the leaders "
                  "again after this long (Kafka's broker answers a waiting fetch as soon as "
                  "data arrives)", between(0.001, 1000), "lab"),
    ),
)

GROUP_COORDINATOR = ConfigDef(
    "broker",
    (
        ConfigKey("group.initial.rebalance.delay.ms", int, 3000, "how long the first rebalance "
                  "of an empty group waits for more members", at_least(0), "group",
                  kafka_type="INT"),
        ConfigKey("group.min.session.timeout.ms", int, 6000, "smallest session.timeout.ms a "
                  "member may ask for", at_least(0), "group", kafka_type="INT"),
        ConfigKey("group.max.session.timeout.ms", int, 1800000, "largest session.timeout.ms a "
                  "member may ask for", at_least(0), "group", kafka_type="INT"),
        ConfigKey("offsets.topic.num.partitions", int, 50, "partitions of __consumer_offsets",
                  at_least(1), "offsets", kafka_type="INT"),
        ConfigKey("offsets.topic.replication.factor", int, 3, "replicas of __consumer_offsets "
                  "(capped at the number of brokers in the lab)", at_least(1), "offsets",
                  kafka_type="SHORT"),
        ConfigKey("offsets.retention.minutes", int, 10080, "how long committed offsets of an "
                  "empty group are kept (not enforced by the lab)", at_least(1), "offsets",
                  kafka_type="INT"),
    ),
)


def parse_consumer(values: dict[str, Any] | None) -> dict[str, Any]:
    """Validate consumer configs, including the rules Kafka checks across settings.

    Raises:
        ConfigError: for an unknown name, a bad value, heartbeat.interval.ms not below
            session.timeout.ms, or enable.auto.commit=true without a group.id.
    """
    config = CONSUMER.parse(values)
    config["partition.assignment.strategy"] = assignor_names(
        config["partition.assignment.strategy"])
    if config["heartbeat.interval.ms"] >= config["session.timeout.ms"]:
        raise ConfigError(
            f"heartbeat.interval.ms ({config['heartbeat.interval.ms']}) must be lower than "
            f"session.timeout.ms ({config['session.timeout.ms']}) (consumer config; Kafka's "
            "Heartbeat rejects it too); a third of the session timeout is usual."
        )
    if config["group.id"] is None:
        if (values or {}).get("enable.auto.commit") in (True, "true"):
            raise ConfigError("enable.auto.commit=true needs a group.id (consumer config): "
                              "offsets are committed for a group. Set group.id or leave "
                              "enable.auto.commit unset.")
        config["enable.auto.commit"] = False  # Kafka's default without a group
    if config["group.id"] == "":
        raise ConfigError("group.id must not be empty (consumer config); use None for a "
                          "consumer without a group.")
    return config
