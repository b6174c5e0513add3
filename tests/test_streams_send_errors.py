"""A stream thread whose producer fails to send: nothing of the task is committed past them.

Kafka classes pinned here: ``RecordCollectorImpl`` (the send callback keeps a task's error,
``flush`` / ``checkForException`` throw it), ``DefaultProductionExceptionHandler`` (RETRY for
a ``RetriableException`` such as the ``TimeoutException`` of an expired
``delivery.timeout.ms``: ``TaskCorruptedException``), ``TaskManager.handleCorruption`` /
``closeDirtyAndRevive`` (the task is closed and created again; it reads its input from the last
committed offsets).
"""

from __future__ import annotations

import pytest

from sim.errors import StreamsError
from sim.faults import HealNetwork, NetworkPartition, schedule
from sim.streams import KafkaStreams, StreamsBuilder
from sim.streams.events import STREAMS_COMMIT, STREAMS_TASK
from tests.streams_runtime_helpers import cluster, key_values, produce
from tests.test_streams_state_restore import counting_app, feed

CUT_MS = (4_000, 40_000)


def test_expired_sends_are_not_committed_past_and_counts_never_end_low():
    """The thread's producer is cut from the broker longer than ``delivery.timeout.ms`` while
    input arrives: changelog and output batches expire. Committing the input offsets all the
    same (and going on) would leave the changelog and the output without those counts; the
    commit throws ``TaskCorruptedException`` instead, the task is revived and reprocesses from
    its last commit once the cut heals: every final count is at least the true one
    (at_least_once may count twice)."""
    kernel = cluster({"in": 2, "out": 2})
    [app] = counting_app(kernel, {"producer.delivery.timeout.ms": 5_000,
                                  "producer.request.timeout.ms": 2_000}, instances=1)
    producer = app.threads[0].producer.client_id
    schedule(kernel, CUT_MS[0], NetworkPartition((0,), (producer,)))
    schedule(kernel, CUT_MS[1], HealNetwork((0,), (producer,)))
    truth = feed(kernel, 100, keys=6, step_ms=200)  # input until 20 s, inside the cut
    kernel.run(until_ms=90_000)

    assert sum(p.failed for p in app.threads[0].producers) > 0  # batches did expire
    tasks = kernel.trace.frame(STREAMS_TASK)
    assert tasks.action.astype(str).str.startswith("corrupted: send failed").any()
    for topic in ("app-counts-changelog", "out"):
        final = dict(key_values(kernel, topic))  # the last value per key
        low = {k: (final.get(k, 0), n) for k, n in truth.items() if final.get(k, 0) < n}
        assert not low, f"{topic}: counts below the truth (final, true): {low}"


def test_a_non_retriable_send_error_ends_the_thread():
    """A null key written to a compacted topic is refused (``INVALID_RECORD``, an
    ``InvalidRecordException``: not retriable): the default handler answers FAIL, the commit
    throws a ``StreamsException``: the instance goes to ERROR, nothing committed, and the
    error reaches the caller."""
    kernel = cluster({"in": 1})
    kernel.cluster.create_topic("out", 1, 1, {"cleanup.policy": "compact"})
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    app = KafkaStreams(kernel, builder.build(), {"application.id": "app",
                                                "commit.interval.ms": 1000})
    app.start()
    produce(kernel, "in", [(None, i, None) for i in range(5)])
    with pytest.raises(StreamsError, match="INVALID_RECORD"):
        kernel.run(until_ms=30_000)

    assert app.state == KafkaStreams.State.ERROR
    assert kernel.trace.frame(STREAMS_COMMIT).empty


def test_a_revoked_task_is_not_committed_past_its_failed_sends():
    """``TaskManager.handleRevocation`` prepares a revoked task's commit like any other:
    ``RecordCollectorImpl.flush`` waits for the producer and throws the send error it kept.
    A second instance joins while the first one's sends are failing; the task handed to it
    must not be committed past the records whose outputs were lost, or the new owner resumes
    after them with a store restored without them."""
    kernel = cluster({"in": 2, "out": 2})
    config = {"producer.delivery.timeout.ms": 5_000, "producer.request.timeout.ms": 2_000,
              "commit.interval.ms": 120_000}
    [first] = counting_app(kernel, config, instances=1)
    producer = first.threads[0].producer.client_id
    schedule(kernel, CUT_MS[0], NetworkPartition((0,), (producer,)))
    schedule(kernel, CUT_MS[1], HealNetwork((0,), (producer,)))
    truth = feed(kernel, 100, keys=6, step_ms=200)
    kernel.run(until_ms=25_000)  # the cut still holds; most of the sends have expired
    [second] = counting_app(kernel, config, instances=1)
    kernel.run(until_ms=300_000)

    assert second.threads[0].tasks, "the second instance took no task"
    assert sum(p.failed for p in first.threads[0].producers) > 0
    for topic in ("app-counts-changelog", "out"):
        final = dict(key_values(kernel, topic))
        low = {k: (final.get(k, 0), n) for k, n in truth.items() if final.get(k, 0) < n}
        assert not low, f"{topic}: counts below the truth (final, true): {low}"


def test_a_thread_that_died_leaves_the_group_so_its_tasks_move_at_once():
    """``StreamThread.run`` requests a leave on an uncaught exception and ``completeShutdown``
    unsubscribes the consumer: a dynamic member sends LeaveGroup, so the other instance takes
    the dead thread's tasks at once, not after ``max.poll.interval.ms`` (300 s) or the
    session timeout (45 s)."""
    from sim.producer import Producer

    kernel = cluster({"in": 2})
    kernel.cluster.create_topic("out", 2, 1, {"cleanup.policy": "compact"})
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    config = {"application.id": "app", "commit.interval.ms": 1000}
    apps = [KafkaStreams(kernel, builder.build(), config) for _ in range(2)]
    for app in apps:
        app.start()
    kernel.run(until_ms=10_000)
    [failing_task] = apps[0].threads[0].tasks  # one task each
    assert len(apps[1].threads[0].tasks) == 1
    Producer(kernel, {"client.id": "bad"}).send("in", key=None, value=1,
                                               partition=failing_task.partition)
    with pytest.raises(StreamsError, match="INVALID_RECORD"):
        kernel.run(until_ms=20_000)
    assert apps[0].state == KafkaStreams.State.ERROR
    # (the new owner reads the same record again: it will fail too, as Kafka's would)
    assert kernel.run_until(lambda k: len(apps[1].threads[0].tasks) == 2,
                            max_ms=kernel.now_ms + 5_000)
    assert failing_task in apps[1].threads[0].tasks
