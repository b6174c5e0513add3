"""Client configs in a Streams config, as ``StreamsConfig`` hands them to its clients.

Kafka: ``StreamsConfig.getMainConsumerConfigs`` / ``getRestoreConsumerConfigs`` /
``getGlobalConsumerConfigs`` / ``getProducerConfigs`` (unprefixed client configs to every client
of their kind, ``consumer.`` to all consumers, ``main.consumer.`` & co. to one of them, more
specific prefixes winning), ``NON_CONFIGURABLE_CONSUMER_DEFAULT_CONFIGS`` (``enable.auto.commit``
false), ``NON_CONFIGURABLE_CONSUMER_EOS_CONFIGS`` (``isolation.level`` read_committed),
``NON_CONFIGURABLE_PRODUCER_EOS_CONFIGS`` (``enable.idempotence`` true).
"""

from __future__ import annotations

import pytest

from sim.errors import ConfigError
from sim.streams import KafkaStreams
from sim.streams.config import StreamsConfig
from tests.streams_runtime_helpers import cluster
from tests.test_streams_state_restore import counting_app


def test_unprefixed_client_configs_go_to_the_clients_of_their_kind():
    c = StreamsConfig({"application.id": "app", "session.timeout.ms": 10_000,
                       "max.poll.records": 50, "acks": "1", "linger.ms": 5})
    main = c.main_consumer_configs("m")
    assert main["session.timeout.ms"] == 10_000
    assert main["max.poll.records"] == 50
    assert "acks" not in main
    assert c.restore_consumer_configs("r")["max.poll.records"] == 50
    producer = c.producer_configs("p")
    assert producer["acks"] == "1"
    assert producer["linger.ms"] == 5
    assert "session.timeout.ms" not in producer


def test_prefixed_configs_go_only_to_their_clients_and_the_most_specific_wins():
    c = StreamsConfig({"application.id": "app", "max.poll.records": 10,
                       "consumer.max.poll.records": 20, "main.consumer.max.poll.records": 30,
                       "producer.linger.ms": 7, "admin.retries": 3})
    assert c.main_consumer_configs("m")["max.poll.records"] == 30
    assert c.restore_consumer_configs("r")["max.poll.records"] == 20
    assert c.global_consumer_configs("g")["max.poll.records"] == 20
    assert c.producer_configs("p")["linger.ms"] == 7
    assert c.clients["admin."] == {"retries": 3}


def test_streams_defaults_for_clients_apply_unless_set():
    c = StreamsConfig({"application.id": "app"})
    main = c.main_consumer_configs("m")
    assert main["auto.offset.reset"] == "earliest"
    assert main["max.poll.records"] == 1000
    assert main["group.id"] == "app"
    assert c.producer_configs("p")["linger.ms"] == 100
    assert "group.id" not in c.restore_consumer_configs("r")


def test_configs_streams_controls_are_overridden_and_listed():
    c = StreamsConfig({"application.id": "app", "enable.auto.commit": True,
                       "processing.guarantee": "exactly_once_v2",
                       "consumer.isolation.level": "read_uncommitted",
                       "producer.enable.idempotence": False, "group.id": "mine"})
    main = c.main_consumer_configs("m")
    assert main["enable.auto.commit"] is False
    assert main["isolation.level"] == "read_committed"
    assert main["group.id"] == "app"
    assert c.producer_configs("p")["enable.idempotence"] is True
    assert c.producer_configs("p")["transaction.timeout.ms"] == 10_000
    assert any("enable.auto.commit=True ignored" in note for note in c.ignored)
    assert any("isolation.level='read_uncommitted' ignored" in note for note in c.ignored)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("sesion.timeout.ms", 1, "Did you mean session.timeout.ms"),
    ("consumer.acks", "1", "'acks' is not a consumer config"),
    ("producer.max.poll.records", 5, "'max.poll.records' is not a producer config"),
    ("main.consumer.session.timeout.ms", -5, "session.timeout.ms"),
    ("heartbeat.interval.ms", 60_000, "must be lower than session.timeout.ms"),
])
def test_unknown_or_bad_client_configs_fail_in_one_line(name, value, message):
    with pytest.raises(ConfigError, match=message) as error:
        StreamsConfig({"application.id": "app", name: value})
    assert "\n" not in str(error.value)


def test_the_threads_clients_get_the_configs():
    kernel = cluster({"in": 1, "out": 1})
    [app] = counting_app(kernel, {"session.timeout.ms": 10_000, "producer.linger.ms": 5,
                                  "processing.guarantee": "exactly_once_v2"}, instances=1)
    [thread] = app.threads
    assert thread.consumer.config["session.timeout.ms"] == 10_000
    assert thread.producer.config["linger.ms"] == 5
    assert thread.producer.config["transactional.id"] == f"app-{app.process_id}-1"
    assert isinstance(app, KafkaStreams)
