"""Specification of the metrics frames: they agree with the logs, the trace and the producers.

Each metric is checked against a second, independent source: partition records against the
producer's own per-record results and the trace's ``log.append`` events, broker bytes against
the partitions' logs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from sim import metrics
from sim import trace as events
from sim.broker.cluster import Cluster
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import UniformKeys


@pytest.fixture
def finished(
    kernel: Kernel, small_cluster: Cluster, make_producer: Callable[..., Producer]
) -> Kernel:
    """The small cluster after a keyed and a key-less producer sent 3000 records each."""
    small_cluster.create_topic("idle", partitions=2)
    make_producer({"client.id": "keyed"},
                  workload={"topic": "orders", "records": 3000, "rate_per_s": 20_000,
                            "keys": UniformKeys(50)})
    make_producer({"client.id": "keyless", "linger.ms": 0},
                  workload={"topic": "orders", "records": 3000, "rate_per_s": 20_000})
    small_cluster.brokers[2].set_slowdown(5)
    return kernel.run()


def test_partition_shares_sum_to_one_per_topic(finished: Kernel) -> None:
    """Within a topic that received records, partition shares sum to 1; an idle topic's are 0."""
    frame = metrics.partition_metrics(finished)
    shares = frame.groupby("topic")["share"].sum()
    assert shares["orders"] == pytest.approx(1.0)
    assert shares["idle"] == 0.0
    assert not frame["share"].isna().any()


def test_partition_records_equal_log_lengths(finished: Kernel) -> None:
    """records, bytes and batches per partition are those of the partition's log."""
    frame = metrics.partition_metrics(finished).set_index(["topic", "partition"])
    for topic in finished.cluster.topics.values():
        for part in topic.partitions:
            row = frame.loc[(topic.name, part.partition)]
            assert row["records"] == len(part.log)
            assert row["bytes"] == part.log.size_bytes
            assert row["batches"] == part.log.batch_count
            assert row["leader"] == part.leader
            assert row["log_end_offset"] == part.log.log_end_offset


def test_partition_records_match_what_producers_and_trace_saw(finished: Kernel) -> None:
    """Per partition, the records counted equal the producers' results and the appends traced."""
    frame = metrics.partition_metrics(finished)
    orders = frame[frame["topic"] == "orders"].set_index("partition")["records"]
    results = pd.concat([p.results() for p in finished.clients])
    by_results = results.groupby("partition").size()
    appends = finished.trace.frame(events.LOG_APPEND)
    by_trace = appends.groupby("partition")["records"].sum()
    for p, records in orders.items():
        assert records == by_results.get(p, 0) == by_trace.get(p, 0)
    assert orders.sum() == 6000


def test_records_per_batch_is_records_over_batches(finished: Kernel) -> None:
    """records_per_batch = records / batches, and 0 (not NaN) for a partition without batches."""
    frame = metrics.partition_metrics(finished)
    used = frame[frame["batches"] > 0]
    np.testing.assert_allclose(used["records_per_batch"], used["records"] / used["batches"])
    assert (frame.loc[frame["batches"] == 0, "records_per_batch"] == 0).all()


def test_every_record_is_acknowledged_after_a_run(finished: Kernel) -> None:
    """After running to the end, each producer's acknowledged count equals its records."""
    frame = metrics.producer_metrics(finished).set_index("producer")
    assert list(frame.index) == ["keyed", "keyless"]
    assert (frame["records"] == 3000).all()
    assert (frame["acknowledged"] == frame["records"]).all()


def test_producer_batches_and_requests_come_from_the_trace(finished: Kernel) -> None:
    """A producer's batches are its log.append events; its requests its request.sent events."""
    frame = metrics.producer_metrics(finished).set_index("producer")
    appends = finished.trace.frame(events.LOG_APPEND)
    sent = finished.trace.frame(events.REQUEST_SENT)
    for producer in finished.clients:
        row = frame.loc[producer.client_id]
        mine = appends[appends["producer"] == producer.producer_id]
        assert row["batches"] == len(mine)
        assert row["records_per_batch"] == pytest.approx(mine["records"].mean())
        assert row["requests"] == (sent["component"] == producer.client_id).sum()


def test_latency_percentiles_are_ordered(finished: Kernel) -> None:
    """For each producer p50 ≤ p99 ≤ max, all positive."""
    frame = metrics.producer_metrics(finished)
    assert (frame["latency_p50_ms"] > 0).all()
    assert (frame["latency_p50_ms"] <= frame["latency_p99_ms"]).all()
    assert (frame["latency_p99_ms"] <= frame["latency_max_ms"]).all()


def test_broker_utilisation_is_a_fraction(finished: Kernel) -> None:
    """Each broker's utilisation lies in [0, 1]; the slow broker is the busiest."""
    frame = metrics.broker_metrics(finished).set_index("broker")
    assert ((frame["utilisation"] >= 0) & (frame["utilisation"] <= 1)).all()
    assert frame["utilisation"].idxmax() == 2
    assert frame.loc[2, "slowdown"] == 5


def test_broker_bytes_and_leaderships_agree_with_the_partitions(finished: Kernel) -> None:
    """A broker's bytes appended and leaderships add up over the partitions it leads."""
    brokers = metrics.broker_metrics(finished).set_index("broker")
    parts = metrics.partition_metrics(finished)
    for broker_id, row in brokers.iterrows():
        led = parts[parts["leader"] == broker_id]
        assert row["leader_partitions"] == len(led)
        assert row["bytes_appended"] == led["bytes"].sum()
    assert brokers["produce_requests"].sum() == metrics.producer_metrics(finished)[
        "requests"].sum()


def test_metrics_of_an_idle_kernel(kernel: Kernel) -> None:
    """Before anything happens: no partitions, no producers, idle brokers."""
    assert metrics.partition_metrics(kernel).empty
    assert metrics.producer_metrics(kernel).empty
    brokers = metrics.broker_metrics(kernel)
    assert len(brokers) == 3
    assert (brokers["utilisation"] == 0).all()
    assert (brokers["produce_requests"] == 0).all()


def test_failed_produce_counts_refused_appends_and_expired_produce_the_timed_out_waits(
        produce_errors_kernel: Kernel) -> None:
    """``failed_produce`` is Kafka's ``FailedProduceRequestsPerSec``: marked for a refused
    append (NOT_ENOUGH_REPLICAS, an out-of-order sequence), not for NOT_LEADER_OR_FOLLOWER
    (``ReplicaManager.appendToLocalLog``) nor for an acks=all request that timed out waiting for
    the high watermark, which is an expired delayed produce (``expired_produce``,
    ``ExpiresPerSec``)."""
    kernel = produce_errors_kernel
    brokers = metrics.broker_metrics(kernel).set_index("broker")
    assert brokers["failed_produce"].to_dict() == {0: 2, 1: 0}
    assert brokers["expired_produce"].to_dict() == {0: 1, 1: 1}


def test_isr_shrink_leader_counts_its_refused_and_its_expired_requests_apart() -> None:
    """In ``isr-shrink`` the leader's produce errors are 2 REQUEST_TIMED_OUT (the frozen high
    watermark; it holds one request of a connection at a time), 45 NOT_ENOUGH_REPLICAS (after
    the fencing) and one OUT_OF_ORDER_SEQUENCE_NUMBER (after the followers return): 46 failed,
    2 expired."""
    from sim import scenarios

    kernel = scenarios.load("isr-shrink").run()
    errors = kernel.trace.frame(events.KINDS["produce.error"])
    per_error = errors.groupby(["node", "error"]).size().to_dict()
    brokers = metrics.broker_metrics(kernel).set_index("broker")
    assert per_error[(0, "NOT_ENOUGH_REPLICAS")] == 45
    assert per_error[(0, "OUT_OF_ORDER_SEQUENCE_NUMBER")] == 1
    assert brokers.loc[0, "failed_produce"] == 46
    assert brokers.loc[0, "expired_produce"] == per_error[(0, "REQUEST_TIMED_OUT")] == 2
    assert brokers.loc[[1, 2], ["failed_produce", "expired_produce"]].sum().sum() == 0
