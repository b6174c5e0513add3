"""A stream thread's producer is ``<client.id>-StreamThread-<n>-producer``
(``ClientUtils.producerClientId``) in every incarnation: a network fault that names that
``client.id`` reaches the producer of a restarted instance and a producer replaced after
fencing, which the lab numbers apart (``Network.name_client``)."""

from __future__ import annotations

from sim.faults import HealNetwork, NetworkPartition, schedule
from sim.kernel import Kernel
from sim.streams import KafkaStreams, StreamsBuilder
from tests.streams_runtime_helpers import key_values, produce

NAME = "app-1-StreamThread-1-producer"
CUT_UNTIL_MS = 40_000


def one_instance(guarantee: str = "at_least_once") -> tuple[Kernel, KafkaStreams]:
    kernel = Kernel(seed=1, brokers=1)
    for topic in ("in", "out"):
        kernel.cluster.create_topic(topic, 1, 1)
    builder = StreamsBuilder()
    builder.stream("in").map_values(lambda v: v + 1000).to("out")
    app = KafkaStreams(kernel, builder.build(), {
        "application.id": "app", "client.id": "app-1", "commit.interval.ms": 1000,
        "processing.guarantee": guarantee})
    app.start()
    return kernel, app


def test_the_thread_producer_is_named_after_the_instance_client_id():
    """Kafka's name for the thread's producer, whatever id the lab gives the instance."""
    _, app = one_instance()
    assert app.threads[0].producer.config["client.id"] == NAME


def test_a_cut_by_client_id_reaches_the_restarted_instance_producer():
    """The broker is cut from the thread producer's ``client.id``; the instance crashes and
    restarts while the cut lasts. Its new thread's producer (another lab id, same
    ``client.id``) is cut off too: nothing it sends is written until the heal."""
    kernel, app = one_instance()
    kernel.run(5_000)
    schedule(kernel, 5_000, NetworkPartition((0,), (NAME,)))
    schedule(kernel, CUT_UNTIL_MS, HealNetwork((0,), (NAME,)))
    kernel.run(6_000)
    app.crash()
    restarted = app.restart()
    producer = restarted.threads[0].producer
    assert producer.client_id != NAME
    assert producer.config["client.id"] == NAME
    assert not kernel.cluster.network.connected(producer.client_id, 0)
    produce(kernel, "in", [(f"k{i}", i, None) for i in range(5)])
    kernel.run(CUT_UNTIL_MS - 1)
    assert key_values(kernel, "out") == []
    kernel.run(CUT_UNTIL_MS + 30_000)
    assert sorted(v for _, v in key_values(kernel, "out")) == [1000, 1001, 1002, 1003, 1004]


def test_a_cut_by_client_id_reaches_the_producer_that_replaces_a_fenced_one():
    """Under exactly_once_v2 a thread whose producer must go (``StreamsProducer.resetProducer``)
    gets a new one with the same ``client.id``: a cut of that ``client.id`` reaches it."""
    kernel, app = one_instance("exactly_once_v2")
    kernel.run(5_000)
    thread = app.threads[0]
    kernel.cluster.network.cut(0, NAME)
    thread._reset_producer()
    assert len(thread.producers) == 2
    assert thread.producer.client_id != NAME
    assert not kernel.cluster.network.connected(thread.producer.client_id, 0)
