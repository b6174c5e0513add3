"""``StreamsConfig``: Kafka Streams' names and 4.0 defaults, validated like the producer's.

Defaults from ``StreamsConfig.java`` (Kafka 4.0 trunk) and kafka-facts §5.
"""

from __future__ import annotations

import pytest

from sim.errors import ConfigError
from sim.streams import StreamsConfig
from sim.streams.config import STREAMS


def test_defaults_are_kafka_4_0s() -> None:
    """num.stream.threads 1, commit 30 s, at_least_once, 10 MiB cache, no standbys, KIP-441's
    10,000 / 2 / 10 min."""
    config = StreamsConfig({"application.id": "app"})
    assert {name: config[name] for name in (
        "num.stream.threads", "commit.interval.ms", "processing.guarantee",
        "statestore.cache.max.bytes", "num.standby.replicas", "acceptable.recovery.lag",
        "max.warmup.replicas", "probing.rebalance.interval.ms", "replication.factor",
        "topology.optimization", "max.task.idle.ms", "default.dsl.store",
    )} == {
        "num.stream.threads": 1, "commit.interval.ms": 30000,
        "processing.guarantee": "at_least_once", "statestore.cache.max.bytes": 10485760,
        "num.standby.replicas": 0, "acceptable.recovery.lag": 10000,
        "max.warmup.replicas": 2, "probing.rebalance.interval.ms": 600000,
        "replication.factor": -1, "topology.optimization": "none", "max.task.idle.ms": 0,
        "default.dsl.store": "rocksDB",
    }


def test_exactly_once_v2_commits_every_100_ms_unless_set() -> None:
    """``StreamsConfig.postProcessParsedConfig``: EOS defaults commit.interval.ms to 100."""
    assert StreamsConfig({"application.id": "a", "processing.guarantee": "exactly_once_v2"}
                         )["commit.interval.ms"] == 100
    assert StreamsConfig({"application.id": "a", "processing.guarantee": "exactly_once_v2",
                          "commit.interval.ms": 30000})["commit.interval.ms"] == 30000


def test_application_id_is_required() -> None:
    """Kafka: 'Missing required configuration "application.id" which has no default value.'"""
    with pytest.raises(ConfigError, match=r'Missing required configuration "application\.id"'):
        StreamsConfig({})
    with pytest.raises(ConfigError, match=r"application\.id: must not be empty"):
        StreamsConfig({"application.id": " "})


@pytest.mark.parametrize(("values", "message"), [
    ({"num.streams.threads": 2}, "Unknown streams config 'num.streams.threads'. Did you mean "
                                 "num.stream.threads"),
    ({"processing.guarantee": "exactly_once"}, "must be one of 'at_least_once', "
                                               "'exactly_once_v2'"),
    ({"max.warmup.replicas": 0}, "must be at least 1"),
    ({"probing.rebalance.interval.ms": 59999}, "must be at least 60000"),
    ({"commit.interval.ms": -1}, "must be at least 0"),
    ({"statestore.cache.max.bytes": "ten"}, "expected int"),
    ({"topology.optimization": "fast"}, "must be none, all or"),
])
def test_bad_names_and_values_are_one_line_errors(values: dict, message: str) -> None:
    """Unknown names and bad values fail with one line naming the config and the rule."""
    with pytest.raises(ConfigError) as info:
        StreamsConfig({"application.id": "app", **values})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_values_are_coerced_like_the_producers() -> None:
    """Strings of numbers are parsed as Kafka parses properties files."""
    config = StreamsConfig({"application.id": "a", "num.standby.replicas": "1",
                            "topology.optimization": "reuse.ktable.source.topics,"
                                                     "merge.repartition.topics"})
    assert config["num.standby.replicas"] == 1


def test_table_names_are_kafka_names() -> None:
    """Every key is a dotted Kafka name (no lab-only settings yet)."""
    assert all(not key.name.startswith("lab.") for key in STREAMS)
    assert "application.id" in STREAMS.defaults()


def test_public_names_are_exported_and_sorted() -> None:
    """sim.streams exports its learner-facing names with an explicit, sorted __all__."""
    import sim.streams

    assert sim.streams.__all__ == sorted(sim.streams.__all__)
    assert all(hasattr(sim.streams, name) for name in sim.streams.__all__)
    assert {"StreamsBuilder", "Topology", "TopologyTestDriver", "StreamsConfig", "Processor",
            "TimeWindows", "SessionWindows", "Materialized"} <= set(sim.streams.__all__)
