"""A stream thread's consumers are ``<client.id>-StreamThread-<n>-consumer`` and
``-restore-consumer``, the global thread's ``<client.id>-global-consumer`` (``ClientUtils``,
``StreamsConfig.getGlobalConsumerConfigs``), in every incarnation of the instance: a network
fault that names one of them reaches it after a restart too, although the lab numbers the
restarted instance's clients apart (``Network.name_client``)."""

from __future__ import annotations

import pytest
import yaml

from sim import scenarios
from sim.faults import HealNetwork, NetworkPartition, schedule
from sim.kernel import Kernel
from sim.streams import KafkaStreams, StreamsBuilder
from sim.streams.materialized import Materialized
from tests.streams_runtime_helpers import key_values, produce

THREAD = "app-1-StreamThread-1"
CONSUMER = f"{THREAD}-consumer"
RESTORE_CONSUMER = f"{THREAD}-restore-consumer"
CUT_AT_MS = 5_000
HEAL_AT_MS = 60_000


def kernel_with(*topics: str) -> Kernel:
    kernel = Kernel(seed=1, brokers=1)
    for topic in topics:
        kernel.cluster.create_topic(topic, 1, 1)
    return kernel


def mapping_app(kernel: Kernel) -> KafkaStreams:
    builder = StreamsBuilder()
    builder.stream("in").map_values(lambda v: v + 1000).to("out")
    app = KafkaStreams(kernel, builder.build(), {
        "application.id": "app", "client.id": "app-1", "commit.interval.ms": 1000})
    app.start()
    return app


def counting_app(kernel: Kernel) -> KafkaStreams:
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(Materialized.as_("counts")).to_stream().to("out")
    app = KafkaStreams(kernel, builder.build(), {
        "application.id": "app", "client.id": "app-1", "commit.interval.ms": 1000,
        "statestore.cache.max.bytes": 0})
    app.start()
    return app


def cut(kernel: Kernel, name: str) -> None:
    """Cut broker 0 from the client named ``name`` now, and heal it at ``HEAL_AT_MS``."""
    NetworkPartition((0,), (name,)).apply(kernel)
    schedule(kernel, HEAL_AT_MS, HealNetwork((0,), (name,)))


def test_the_thread_and_global_consumers_have_kafkas_client_ids_after_a_restart():
    """A restarted instance's clients get lab ids of their own (``…-consumer-7``); their
    ``client.id`` and what ``metadata_for_local_threads`` reports are Kafka's names."""
    kernel = kernel_with("in", "out", "customers")
    builder = StreamsBuilder()
    customers = builder.global_table("customers")
    builder.stream("in").join(customers, lambda key, value: key,
                              lambda value, customer: f"{value}/{customer}").to("out")
    app = KafkaStreams(kernel, builder.build(), {"application.id": "app", "client.id": "app-1"})
    app.start()
    kernel.run(5_000)
    app.crash()
    restarted = app.restart()
    kernel.run(10_000)
    thread = restarted.threads[0]
    assert thread.consumer.client_id != CONSUMER
    assert thread.consumer.config["client.id"] == CONSUMER
    assert restarted._global_consumer is not None
    assert restarted._global_consumer.client_id != "app-1-global-consumer"
    assert restarted._global_consumer.config["client.id"] == "app-1-global-consumer"
    (metadata,) = restarted.metadata_for_local_threads()
    assert (metadata.thread_name, metadata.consumer_client_id,
            metadata.restore_consumer_client_id, metadata.producer_client_ids) == (
        THREAD, CONSUMER, RESTORE_CONSUMER, (f"{THREAD}-producer",))
    network = kernel.cluster.network
    for name, client in ((CONSUMER, thread.consumer),
                         ("app-1-global-consumer", restarted._global_consumer)):
        NetworkPartition((0,), (name,)).apply(kernel)
        assert not network.connected(client.client_id, 0), name


def test_a_cut_by_client_id_reaches_the_restarted_instance_consumer():
    """The broker is cut from the thread consumer's ``client.id``; the instance crashes and
    restarts while the cut lasts. Its new consumer cannot join the group nor fetch, so no
    input is processed until the heal; then every record gets its result."""
    kernel = kernel_with("in", "out")
    app = mapping_app(kernel)
    kernel.run(CUT_AT_MS)
    cut(kernel, CONSUMER)
    kernel.run(CUT_AT_MS + 1_000)
    app.crash()
    restarted = app.restart()
    consumer = restarted.threads[0].consumer
    assert consumer.client_id != CONSUMER
    assert not kernel.cluster.network.connected(consumer.client_id, 0)
    produce(kernel, "in", [(f"k{i}", i, None) for i in range(5)])
    kernel.run(HEAL_AT_MS - 1)
    assert key_values(kernel, "out") == []
    kernel.run(HEAL_AT_MS + 60_000)
    assert sorted(v for _, v in key_values(kernel, "out")) == [1000, 1001, 1002, 1003, 1004]


def test_a_cut_by_client_id_stalls_the_restore_consumer_until_the_heal():
    """The instance loses its state directory and restarts; its restore consumer is cut from
    the changelog's leader, so the count store is not restored, and nothing is counted, until
    the heal; then the store is restored in full and counting goes on from it."""
    kernel = kernel_with("in", "out")
    app = counting_app(kernel)
    produce(kernel, "in", [("k", i, None) for i in range(30)])
    kernel.run(CUT_AT_MS)
    assert key_values(kernel, "out")[-1] == ("k", 30)
    app.crash(lose_state=True)
    cut(kernel, RESTORE_CONSUMER)
    restarted = app.restart()
    produce(kernel, "in", [("k", 30 + i, None) for i in range(3)])
    kernel.run(HEAL_AT_MS - 1)
    assert key_values(kernel, "out")[-1] == ("k", 30)
    (waiting,) = restarted.restore_frame().itertuples()
    assert (waiting.state, waiting.restored, waiting.remaining) == ("REGISTERED", 0, 30)
    kernel.run(HEAL_AT_MS + 30_000)
    (restored,) = restarted.restore_frame().itertuples()
    assert (restored.state, restored.restored) == ("COMPLETED", 30)
    assert restored.start_ms < HEAL_AT_MS <= restored.end_ms
    assert key_values(kernel, "out")[-1] == ("k", 33)


SCENARIO = {
    "name": "s", "seed": 1, "duration_ms": 30000,
    "topics": [{"name": "in", "partitions": 1}, {"name": "out", "partitions": 1}],
    "producers": [{"workload": {"topic": "in", "records": 20, "rate_per_s": 20,
                                "keys": {"uniform": 4}}}],
    "streams": [{"application.id": "app", "app": "tag", "input": "in", "output": "out",
                 "instances": 1}],
}


@pytest.mark.parametrize("client", [CONSUMER, RESTORE_CONSUMER, f"{THREAD}-producer"])
def test_a_scenario_may_cut_each_thread_client_by_its_client_id(client):
    """Scenario files name nodes by ``client.id``: each of a thread's three clients is one."""
    data = {**SCENARIO, "faults": [
        {"at_ms": 1000, "network_partition": {"a": [0], "b": [client]}},
        {"at_ms": 2000, "heal_network": {"a": [0], "b": [client]}}]}
    scenario = scenarios.parse(yaml.safe_dump(data), "s.yaml")
    assert scenario.faults
