"""A broker handles one client connection's produce requests one at a time, in order.

Kafka's ``SocketServer.Processor`` mutes a connection once it has read a complete request
(``KafkaChannel.ChannelMuteState.MUTED_AND_RESPONSE_PENDING``) and unmutes it when the response
has been sent (``processCompletedSends``), or for acks=0 when the request was handled
(``NoOpResponse``; an error closes the connection instead: ``KafkaApis.handleProduceRequest``).
A producer may have ``max.in.flight.requests.per.connection`` requests on the wire, but the
broker reads the next only after answering the previous one (``sim.broker.cluster.Channel``).
"""

from __future__ import annotations

import pandas as pd

from sim import faults
from sim import trace as events
from sim.broker.cluster import Channel
from sim.kernel import Kernel
from sim.producer import Producer

LATENCY_MS = 20.0  # a long round trip: requests pipeline, and acks=all waits ≥ 2 of them


def run(acks: str, n: int = 60, crash_at_ms: float | None = None) -> Kernel:
    """One producer sending ``n`` small records to a one-partition, RF-3 topic, one batch
    per request, five requests in flight."""
    kernel = Kernel(seed=0, brokers=3, broker_configs={"lab.network.latency.ms": LATENCY_MS})
    kernel.cluster.create_topic("t", partitions=1, replication_factor=3)
    producer = Producer(kernel, {"acks": acks, "linger.ms": 0, "batch.size": 1000,
                                 "max.in.flight.requests.per.connection": 5})
    for i in range(n):
        producer.send("t", key=f"k{i}", value=b"x" * 100)
    if crash_at_ms is not None:
        kernel.run(crash_at_ms)
        faults.CrashBroker(kernel.cluster.partition("t", 0).leader).apply(kernel)
    producer.flush()
    kernel.run()
    return kernel


def appends(kernel: Kernel, node: int | None = None) -> pd.DataFrame:
    frame = kernel.trace.frame(events.LOG_APPEND)
    frame = frame[frame["component"] == f"broker-{node}"] if node is not None else frame
    return frame[frame["producer"] >= 0].reset_index(drop=True)


def test_acks_all_next_request_is_appended_only_after_the_previous_response_was_sent():
    """The leader appends request k+1's batch only once request k's response left it (its
    arrival at the producer minus the one-way latency), although the producer had sent it long
    before: the requests were pipelined on the network, not in the broker."""
    kernel = run("all")
    sent = kernel.trace.frame(events.REQUEST_SENT)["time_ms"].to_numpy()
    completed = kernel.trace.frame(events.REQUEST_COMPLETED)["time_ms"].to_numpy()
    appended = appends(kernel)["time_ms"].to_numpy()
    assert len(sent) == len(completed) == len(appended) > 5  # one batch per request
    assert (sent[1:] < completed[:-1]).sum() >= 4  # requests really were in flight together
    response_sent = completed - LATENCY_MS
    assert (appended[1:] >= response_sent[:-1] - 1e-9).all()


def test_acks_1_requests_still_pipeline():
    """acks=1 answers right after the append, so the connection is unmuted at once: the
    broker appends the next request while the previous response is still on its way back."""
    kernel = run("1")
    completed = kernel.trace.frame(events.REQUEST_COMPLETED)["time_ms"].to_numpy()
    appended = appends(kernel)["time_ms"].to_numpy()
    assert len(completed) == len(appended) > 5
    assert (appended[1:] < completed[:-1]).sum() >= 4
    assert (appended[1:] >= completed[:-1] - LATENCY_MS - 1e-9).all()


def test_acks_all_takes_a_round_of_replication_per_request():
    """In order, acks=all costs each request its own replication round trip: the producer's
    60 records take much longer than with acks=1, where requests overlap at the broker."""
    finish = {acks: kernel.now_ms for acks in ("1", "all") for kernel in [run(acks)]}
    assert finish["all"] > 3 * finish["1"]


def test_a_crash_loses_the_requests_the_broker_had_not_read():
    """The leader crashes while request 1 waits for replication and requests 2–5 wait on the
    muted connection: only request 1 was ever appended there; the others are lost with the
    connection and retried (idempotently) to the new leader, and no record is lost."""
    kernel = run("all", crash_at_ms=LATENCY_MS * 1.5)
    crashed = int(kernel.trace.frame(events.FAULT)["node"].iloc[0])
    assert len(appends(kernel, crashed)) == 1
    part = kernel.cluster.partition("t", 0)
    assert part.leader != crashed
    assert part.log.high_watermark == 60
    ids = part.log.column("record_id", 0, part.log.high_watermark)
    assert len(set(ids.tolist())) == 60  # nothing twice


def test_channel_reads_one_request_until_its_response_is_sent():
    """The mute states, step by step: read, wait, unmute on the response, close."""
    channel = Channel()
    assert channel.receive("r1")  # read at once: now MUTED_AND_RESPONSE_PENDING
    assert not channel.receive("r2")  # waits in the socket
    assert not channel.receive("r3")
    assert channel.response_sent() == "r2"  # r1 answered: r2 read, muted again
    assert channel.response_sent() == "r3"
    assert channel.response_sent() is None
    assert not channel.response_pending  # unmuted
    assert channel.receive("r4")
    assert not channel.receive("r5")
    channel.close()  # the connection is gone: r5 is never read
    assert channel.response_sent() is None


def test_acks_0_error_closes_the_connection_and_loses_the_requests_behind_it():
    """acks=0 has no response: the broker unmutes once it handled the request (NoOpResponse),
    but an error closes the connection (KafkaApis.handleProduceRequest: CloseConnectionResponse).
    A keyless record in a compacted topic is refused (INVALID_RECORD): the four keyed requests
    that arrived behind it are never read. Later requests open a new connection."""
    kernel = Kernel(seed=0, brokers=1)
    kernel.cluster.create_topic("c", configs={"cleanup.policy": "compact"})
    producer = Producer(kernel, {"acks": "0", "linger.ms": 0, "batch.size": 1000})
    producer.send("c", value=b"x" * 900)  # one record a batch, one batch a request
    for i in range(4):
        producer.send("c", key=f"k{i}", value=b"x" * 900)
    producer.flush()
    kernel.run(1_000)
    for i in range(3):
        producer.send("c", key=f"later{i}", value=b"x" * 900)
    producer.flush()
    kernel.run()
    sent = kernel.trace.frame(events.REQUEST_SENT)["time_ms"].tolist()
    assert sent == [0.0] * 5 + [1_000.0] * 3
    appended = appends(kernel)
    assert (appended["time_ms"] > 1_000).all()
    assert appended["offset"].tolist() == [0, 1, 2]
