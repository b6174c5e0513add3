"""The Streams runtime under random broker and network faults: at-least-once holds.

Each example draws a few faults (a broker crash and restart, a broker cut from the controller,
a stream thread's producer cut from a broker, a slow broker, a stream thread frozen for up to a
minute, long enough to be removed from the group), all undone by 90 s, runs two instances of a
stateless application through them, and checks that every input record's result reached the
output (duplicates are allowed under at-least-once: a removed thread's tasks are reprocessed
from their last commit) and nothing else did, and that both instances are RUNNING again.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.faults import (
    CrashBroker,
    HealNetwork,
    NetworkPartition,
    RestartBroker,
    SlowBroker,
    schedule,
)
from sim.kernel import Kernel
from sim.streams import KafkaStreams, StreamsBuilder
from tests.streams_runtime_helpers import key_values, produce

FAULT = st.tuples(st.sampled_from(["crash", "controller-cut", "producer-cut", "slow",
                                   "thread-hang"]),
                  st.integers(0, 2), st.integers(2_000, 30_000), st.integers(1_000, 15_000))


def inject(kernel: Kernel, apps: list[KafkaStreams], kind: str, broker: int, at: int,
           duration: int) -> None:
    if kind == "crash":
        schedule(kernel, at, CrashBroker(broker))
        schedule(kernel, at + duration, RestartBroker(broker))
    elif kind == "thread-hang":  # a long GC pause: past session.timeout.ms it is kicked out
        thread = apps[broker % 2].threads[0]
        kernel.env.timeout(at).callbacks.append(
            lambda _event: thread.consumer.hang(duration * 4))
    elif kind == "slow":
        schedule(kernel, at, SlowBroker(broker, 20.0))
        schedule(kernel, at + duration, SlowBroker(broker, 1.0))
    else:
        other = "controller" if kind == "controller-cut" else apps[0].threads[0].producer.client_id
        schedule(kernel, at, NetworkPartition((broker,), (other,)))
        schedule(kernel, at + duration, HealNetwork((broker,), (other,)))


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(faults=st.lists(FAULT, min_size=1, max_size=3), seed=st.integers(0, 3))
def test_at_least_once_through_random_faults(faults, seed):
    """``processing.guarantee=at_least_once``: no input record is lost whatever the faults."""
    kernel = Kernel(seed=seed, brokers=3, broker_configs={"replica.lag.time.max.ms": 5000})
    for topic in ("in", "out"):
        kernel.cluster.create_topic(topic, 3, 3, {"min.insync.replicas": 2})
    builder = StreamsBuilder()
    builder.stream("in").map_values(lambda v: v + 1000).to("out")
    apps = [KafkaStreams(kernel, builder.build(), {"application.id": "faults",
                                                   "commit.interval.ms": 1000})
            for _ in range(2)]
    for app in apps:
        app.start()
    for kind, broker, at, duration in faults:
        inject(kernel, apps, kind, broker, at, duration)
    for i in range(30):
        produce(kernel, "in", [(f"k{j}", i * 10 + j, None) for j in range(10)])
        kernel.run(until_ms=kernel.now_ms + 1_000)
    kernel.run(until_ms=150_000)
    assert len(set(v for _, v in key_values(kernel, "in"))) == 300  # the input itself got in
    out = [v for _, v in key_values(kernel, "out")]
    assert set(out) == set(range(1000, 1300))
    assert [app.state for app in apps] == [KafkaStreams.State.RUNNING] * 2


def test_a_frozen_thread_loses_its_tasks_and_they_are_reprocessed_elsewhere():
    """A stream thread frozen past ``session.timeout.ms`` is removed from the group; its tasks
    move to the other instance, which resumes from their last committed offsets: at-least-once,
    so some results are written twice but none is missing, and the frozen instance rejoins."""
    kernel = Kernel(seed=1, brokers=3)
    for topic in ("in", "out"):
        kernel.cluster.create_topic(topic, 3, 3)
    builder = StreamsBuilder()
    builder.stream("in").map_values(lambda v: v + 1000).to("out")
    apps = [KafkaStreams(kernel, builder.build(), {"application.id": "hang",
                                                   "commit.interval.ms": 5000})
            for _ in range(2)]
    for app in apps:
        app.start()
    kernel.run(until_ms=8_000)
    frozen_tasks = {t.task_id for m in apps[0].metadata_for_local_threads()
                    for t in m.active_tasks}
    for i in range(30):
        if i == 10:
            apps[0].threads[0].consumer.hang(60_000)
        produce(kernel, "in", [(f"k{j}", i * 10 + j, None) for j in range(10)])
        kernel.run(until_ms=kernel.now_ms + 1_000)
    kernel.run(until_ms=72_000)  # frozen at 18 s, removed at 63 s, still frozen until 78 s
    taken_over = {t.task_id for m in apps[1].metadata_for_local_threads() for t in m.active_tasks}
    assert frozen_tasks <= taken_over
    kernel.run(until_ms=150_000)
    out = [v for _, v in key_values(kernel, "out")]
    assert set(out) == set(range(1000, 1300))
    assert len(out) > 300  # reprocessed since the last commit
    assert [app.state for app in apps] == [KafkaStreams.State.RUNNING] * 2
