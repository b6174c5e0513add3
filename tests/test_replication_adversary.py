"""The produce and replication path under adversarial requests and faults.

A leader appends every batch of a produce request, then completes the follower fetches parked
at it (``ReplicaManager.appendRecords`` leaves ``DelayedFetch`` to the action queue that
``KafkaApis.handle`` runs once the request is handled: ``addCompletePurgatoryAction``,
``tryCompleteActions``). These tests press on that: requests spanning topics, partitions and
acks settings, requests some of whose batches are refused, fetch sessions that change, leaders
that move, crash or turn zombie around the request, followers that catch up on several
partitions at once, transaction markers, and random fault schedules checked at every step for
Kafka's promises: committed records stay, in-sync replicas agree below the high watermark, the
replicas end identical, and the same seed prints the same trace under any ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim import consistency, faults
from sim import trace as events
from sim.audit import audit_kernel
from sim.broker.cluster import Network
from sim.broker.log import RECORD_COLUMNS
from sim.broker.producer_state import OUT_OF_ORDER_SEQUENCE_NUMBER
from sim.broker.replication import (
    HW_ADVANCE,
    ISR_CHANGE,
    NONE,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    PRODUCE_ERROR,
    REPLICA_FETCH_WAIT_MAX_MS,
    TRUNCATE,
    AppendResult,
)
from sim.broker.transaction_coordinator import TXN_MARKER
from sim.invariants import replicas_agree_below_hw
from sim.kernel import Kernel
from sim.producer import Producer

ROOT = Path(__file__).resolve().parents[1]
LAG_MS = 5000  # replica.lag.time.max.ms, short so that ISRs shrink within a test


def columns(record_ids: list[int]) -> dict[str, np.ndarray]:
    """A batch's record columns (``sim.broker.log.RECORD_COLUMNS``) for a direct append."""
    out = {name: np.zeros(len(record_ids), dtype) for name, dtype in RECORD_COLUMNS.items()}
    out["record_id"] = np.asarray(record_ids, np.int64)
    return out


def led_by_zero(topics: dict[str, int], seed: int = 0, **topic_configs) -> Kernel:
    """A 3-broker kernel whose topics (name → partitions) all have replicas [0, 1, 2], so that
    broker 0 leads every partition and one request to it spans them all."""
    kernel = Kernel(seed=seed, brokers=3, broker_configs={"replica.lag.time.max.ms": LAG_MS})
    for name, partitions in topics.items():
        kernel.cluster.create_topic(name, partitions, 3, configs=topic_configs,
                                    replica_assignment=[[0, 1, 2]] * partitions)
    return kernel


def park_followers(kernel: Kernel) -> None:
    """One record in every partition, then quiet: both followers' fetches wait at broker 0."""
    producer = Producer(kernel, {"acks": "all", "linger.ms": 0, "client.id": "warm-up"})
    futures = [producer.send(t, key="warm", partition=p.partition)
               for t in kernel.cluster.topics if not t.startswith("__")
               for p in kernel.cluster.topics[t].partitions]
    producer.flush()
    assert all(f.done() for f in futures)
    kernel.run(kernel.now_ms + 1000)
    parked = kernel.replicas._delayed_fetches[0]
    assert sorted(d.follower for d in parked if not d.done) == [1, 2]


def direct_request(kernel: Kernel, batches: list[tuple], acks: str = "all",
                   producer_id: int = -1) -> dict[int, tuple[AppendResult, float]]:
    """Hand broker 0 one produce request now (``ReplicaManager.append_records``); the answers,
    by batch, with the time each came (filled in as the run goes on)."""
    answers: dict[int, tuple[AppendResult, float]] = {}
    kernel.replicas.append_records(
        0, batches, producer_id, acks, 30_000,
        lambda i, result: answers.__setitem__(i, (result, kernel.now_ms)))
    return answers


def hw_times(kernel: Kernel, since_ms: float) -> dict[tuple[str, int], list[float]]:
    """When each partition's high watermark advanced after ``since_ms``."""
    advances = kernel.trace.frame(HW_ADVANCE)
    advances = advances[advances["time_ms"] > since_ms]
    out: dict[tuple[str, int], list[float]] = {}
    for topic, partition, time_ms in zip(advances["topic"], advances["partition"],
                                         advances["time_ms"], strict=True):
        out.setdefault((topic, int(partition)), []).append(float(time_ms))
    return out


def replicas_identical(kernel: Kernel) -> list[str]:
    """Partitions where a live replica's records or high watermark differ from its leader's,
    or whose leader's high watermark is below its log end offset (for a quiet, healed cluster)."""
    problems = []
    for topic in kernel.cluster.topics.values():
        for part in topic.partitions:
            name = f"{part.topic}-{part.partition}"
            if part.leader < 0:
                problems.append(f"{name} is offline")
                continue
            leader = part.log
            if leader.high_watermark != leader.log_end_offset:
                problems.append(f"{name}: leader HW {leader.high_watermark} below LEO "
                                f"{leader.log_end_offset}")
            for broker, log in part.logs.items():
                if broker == part.leader or not kernel.cluster.brokers[broker].alive:
                    continue
                if not np.array_equal(log.column("record_id"), leader.column("record_id")):
                    problems.append(f"{name}: replica {broker}'s records differ from leader "
                                    f"{part.leader}'s")
                if log.high_watermark != leader.high_watermark:
                    problems.append(f"{name}: replica {broker}'s HW {log.high_watermark} is "
                                    f"not the leader's {leader.high_watermark}")
    return problems


# --- one request, many partitions ------------------------------------------------------------


@pytest.mark.parametrize("acks", ["all", "1", "0"])
def test_one_parked_fetch_carries_a_request_over_two_topics_whatever_its_acks(acks):
    """A request with four batches (two topics, two partitions each, one leader): the parked
    fetch of each follower is answered once all four are appended and carries them all, so the
    four high watermarks pass them at one instant, two latencies after the append — with
    acks=all, 1 or 0 alike (the acks decide the producer's answer, not replication). acks=all
    is answered then; acks=1 and 0 at the append."""
    kernel = led_by_zero({"a": 2, "b": 2})
    park_followers(kernel)
    now = kernel.now_ms
    batches = [(t, p, columns([100 + 10 * i + j for j in range(i + 1)]), 100, -1, 0)
               for i, (t, p) in enumerate([("a", 0), ("a", 1), ("b", 0), ("b", 1)])]
    answers = direct_request(kernel, batches, acks)
    kernel.run(now + 2 * REPLICA_FETCH_WAIT_MAX_MS)  # the followers learn the HW too
    latency = kernel.cluster.brokers[0].latency_ms
    times = hw_times(kernel, now)
    assert sorted(times) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert [ts[0] for ts in times.values()] == [pytest.approx(now + 2 * latency)] * 4
    answered_ms = now + 2 * latency if acks == "all" else now
    assert answers == {i: (AppendResult(NONE, 1), pytest.approx(answered_ms)) for i in range(4)}
    ends = {("a", 0): 2, ("a", 1): 3, ("b", 0): 4, ("b", 1): 5}  # a warm-up record + batch
    for (topic, p), end in ends.items():
        part = kernel.cluster.partition(topic, p)
        assert {log.high_watermark for log in part.logs.values()} == {end}
    assert replicas_identical(kernel) == []


def test_refused_batches_neither_hold_back_nor_reach_the_followers():
    """One request from an idempotent producer to broker 0 with a batch for a partition it does
    not lead (NOT_LEADER_OR_FOLLOWER), one for a partition whose ISR is below its
    min.insync.replicas (NOT_ENOUGH_REPLICAS, ``Partition.appendRecordsToLeader``), a retry of a
    batch already written (a duplicate: its first offsets, ``ProducerStateManager``), a batch
    skipping sequences (OUT_OF_ORDER_SEQUENCE_NUMBER) and a new batch. Each gets its own
    answer; only the new batch is appended, and the parked fetch of the follower still in the
    ISR carries it at once; no refused batch reaches any replica."""
    kernel = led_by_zero({"a": 2, "b": 1})
    kernel.cluster.create_topic("m", 1, 3, configs={"min.insync.replicas": 3},
                                replica_assignment=[[0, 1, 2]])
    kernel.cluster.create_topic("c", 1, 3, replica_assignment=[[1, 0, 2]])
    pid = 900
    first = direct_request(kernel, [("a", 0, columns([1, 2]), 100, 0, 0),
                                    ("a", 1, columns([3]), 100, 0, 0)], producer_id=pid)
    kernel.run(kernel.now_ms + 1000)
    assert [result for result, _ in first.values()] == [AppendResult(NONE, 0)] * 2
    faults.NetworkPartition((2,), (0,)).apply(kernel)
    # follower 2 falls out of m-0's and b-0's ISRs once they have records it lacks
    direct_request(kernel, [("m", 0, columns([4]), 100, -1, 0),
                            ("b", 0, columns([5]), 100, -1, 0)], acks="1")
    kernel.run(kernel.now_ms + 2 * LAG_MS)
    assert kernel.cluster.partition("m", 0).isr == kernel.cluster.partition("b", 0).isr == [0, 1]
    ends = {(t, p.partition): p.log.log_end_offset for t in ("a", "m", "c")
            for p in kernel.cluster.topics[t].partitions}
    now = kernel.now_ms
    answers = direct_request(kernel, [
        ("c", 0, columns([10]), 100, 0, 0),  # led by broker 1
        ("m", 0, columns([11]), 100, 0, 0),  # ISR [0, 1] < min.insync.replicas 3
        ("a", 0, columns([1, 2]), 100, 0, 0),  # a retry of sequences 0-1
        ("a", 1, columns([12]), 100, 5, 0),  # sequence 5 after 0
        ("b", 0, columns([13, 14]), 100, 0, 0),  # new
    ], producer_id=pid)
    kernel.run(now + 100)
    latency = kernel.cluster.brokers[0].latency_ms
    assert answers == {
        0: (AppendResult(NOT_LEADER_OR_FOLLOWER), now),
        1: (AppendResult(NOT_ENOUGH_REPLICAS), now),
        2: (AppendResult(NONE, 0), now),
        3: (AppendResult(OUT_OF_ORDER_SEQUENCE_NUMBER), now),
        4: (AppendResult(NONE, 1), pytest.approx(now + 2 * latency)),
    }
    b0 = kernel.cluster.partition("b", 0)
    assert hw_times(kernel, now) == {("b", 0): [pytest.approx(now + 2 * latency)]}
    assert b0.logs[1].column("record_id").tolist() == [5, 13, 14]
    for (topic, p), end in ends.items():
        for log in kernel.cluster.partition(topic, p).logs.values():
            assert log.log_end_offset <= end  # nothing refused was appended anywhere
    faults.HealNetwork((2,), (0,)).apply(kernel)
    kernel.run(kernel.now_ms + 1000)
    assert replicas_identical(kernel) == []


def test_a_single_batch_coordinator_write_completes_the_parked_fetches_too():
    """``ReplicaManager.append`` (a coordinator's write: one batch) goes through the same
    request path: the parked fetches carry its batch, and its acks=all answer comes when the
    high watermark passes it, two latencies later."""
    kernel = led_by_zero({"a": 1})
    park_followers(kernel)
    now = kernel.now_ms
    answers: list[tuple[AppendResult, float]] = []
    kernel.replicas.append(0, "a", 0, columns([7, 8, 9]), 100, -1, -1, "all", 30_000,
                           lambda result: answers.append((result, kernel.now_ms)))
    kernel.run(now + 100)
    latency = kernel.cluster.brokers[0].latency_ms
    assert answers == [(AppendResult(NONE, 1), pytest.approx(now + 2 * latency))]
    assert hw_times(kernel, now) == {("a", 0): [pytest.approx(now + 2 * latency)]}


def test_partitions_created_after_the_fetch_parked_are_replicated_within_the_fetch_wait():
    """Two topics created after the followers' fetches parked, with the same leader and
    followers, get one request of a batch each: nothing in the parked fetch's partitions moved,
    but its fetch session did, so the leader answers it (``_fetch_can_complete``) and the next
    fetch carries both batches: both high watermarks pass them at one instant, sooner than
    ``replica.fetch.wait.max.ms`` (Kafka's fetcher adds a partition at its next fetch, at the
    latest when the parked one expires)."""
    kernel = led_by_zero({"a": 1})
    park_followers(kernel)
    for topic in ("u", "v"):
        kernel.cluster.create_topic(topic, 1, 3, replica_assignment=[[0, 1, 2]])
    now = kernel.now_ms
    answers = direct_request(kernel, [("u", 0, columns([1]), 100, -1, 0),
                                      ("v", 0, columns([2, 3]), 100, -1, 0)])
    kernel.run(now + 2 * REPLICA_FETCH_WAIT_MAX_MS)  # the followers learn the HW too
    times = hw_times(kernel, now)
    assert sorted(times) == [("u", 0), ("v", 0)]
    assert times[("u", 0)] == times[("v", 0)]
    assert times[("u", 0)][0] < now + REPLICA_FETCH_WAIT_MAX_MS
    assert [result for result, _ in answers.values()] == [AppendResult(NONE, 0)] * 2
    assert replicas_identical(kernel) == []


# --- leaders that move, crash or turn zombie around a request ----------------------------------


def at_request(kernel: Kernel, batches: int, fault: faults.Fault, when: str) -> list[float]:
    """Apply ``fault`` at the instant broker 0 handles the first request of ``batches``
    batches: just ``"before"`` it appends them (a crash then loses the request with the
    broker), or just ``"after"`` (the parked fetches already answered). Returns a list that
    gets that instant."""
    handle = kernel.replicas.append_records
    done: list[float] = []

    def append_records(node, request, *args, **kwargs):
        if done or node != 0 or len(request) != batches:
            handle(node, request, *args, **kwargs)
            return
        done.append(kernel.now_ms)
        if when == "before":
            fault.apply(kernel)
            if not kernel.cluster.brokers[0].alive:
                return  # lost with the broker's process
        handle(node, request, *args, **kwargs)
        if when == "after":
            fault.apply(kernel)

    kernel.replicas.append_records = append_records
    return done


@pytest.mark.parametrize("when", ["before", "after"])
def test_leadership_moving_at_the_instant_of_a_request_keeps_each_record_once(when):
    """Broker 0 leads a-0 and a-1 (a-1's preferred leader, broker 1, came back after a crash).
    At the instant broker 0 handles a request to both, a preferred election moves a-1 to
    broker 1. Just before the append, a-1's batch is refused NOT_LEADER_OR_FOLLOWER and a-0's
    appended. Just after, the answer carrying a-1's batch to broker 1 is dropped there (its
    leader epoch is gone), broker 0 truncates the batch it can no longer commit (KIP-101) and
    its acks=all wait ends NOT_LEADER_OR_FOLLOWER
    (``completeDelayedOperationsWhenNotPartitionLeader``). Either way the producer writes the
    batch at broker 1: both records acknowledged once, at the same offsets on every replica."""
    kernel = Kernel(seed=5, brokers=3, broker_configs={"auto.leader.rebalance.enable": False,
                                                       "replica.lag.time.max.ms": LAG_MS})
    kernel.cluster.create_topic("a", 2, 3, {"min.insync.replicas": 2},
                                replica_assignment=[[0, 1, 2], [1, 0, 2]])
    a1 = kernel.cluster.partition("a", 1)
    faults.CrashBroker(1).apply(kernel)
    kernel.run(20_000)
    faults.RestartBroker(1).apply(kernel)
    kernel.run(40_000)
    assert (a1.leader, sorted(a1.isr)) == (0, [0, 1, 2])
    producer = Producer(kernel, {"acks": "all", "linger.ms": 5, "client.id": "app"})
    for p in (0, 1):
        producer.send("a", key="warm", partition=p)
    producer.flush()
    kernel.run(kernel.now_ms + 1000)
    moved = at_request(kernel, 2, faults.PreferredLeaderElection(), when)
    futures = [producer.send("a", key="x", partition=p) for p in (0, 1)]
    kernel.run(kernel.now_ms + 30_000)
    assert a1.leader == 1
    truncated = kernel.trace.frame(TRUNCATE)
    assert list(zip(truncated["time_ms"], truncated["topic"], truncated["partition"],
                    truncated["node"], strict=True)) == ([] if when == "before"
                                                         else [(moved[0], "a", 1, 0)])
    assert [(f.get().partition, f.get().offset) for f in futures] == [(0, 1), (1, 1)]
    assert replicas_identical(kernel) == []
    assert consistency.check(kernel) == []
    assert audit_kernel(kernel).duplicates == 0


@pytest.mark.parametrize(("when", "lose_disk"), [("before", False), ("after", False),
                                                 ("after", True)])
def test_a_leader_crashing_at_the_instant_of_a_request_loses_and_doubles_nothing(when,
                                                                                lose_disk):
    """An idempotent acks=all request to three partitions of broker 0, which crashes at the
    instant it handles it: just before (the request is lost with it) or just after the
    append (with or without its disk). After the append the parked fetches were already
    answered, so both followers get the batches; the producer's retries reach the new leader,
    which knows their sequences from the replicated producer state (``ProducerStateManager``)
    and answers with the same offsets. Either way every record is acknowledged once, nothing
    is stored twice, and every replica is identical once broker 0 is back."""
    kernel = led_by_zero({"a": 2, "b": 1}, seed=5, **{"min.insync.replicas": 2})
    producer = Producer(kernel, {"acks": "all", "linger.ms": 5, "client.id": "app"})
    tps = [("a", 0), ("a", 1), ("b", 0)]
    for topic, p in tps:
        producer.send(topic, key="warm", partition=p)
    producer.flush()
    kernel.run(kernel.now_ms + 1000)
    crashed = at_request(kernel, 3, faults.CrashBroker(0, lose_disk), when)
    futures = [producer.send(topic, key="x", partition=p) for topic, p in tps]
    kernel.run_until(lambda _k: bool(crashed))
    faults.schedule(kernel, crashed[0] + 20_000, faults.RestartBroker(0))
    kernel.run(crashed[0] + 10)
    sent = {f.record_id for f in futures}
    for topic, p in tps:
        logs = kernel.cluster.partition(topic, p).logs
        held = {int(logs[b].column("record_id")[-1]) for b in (1, 2)}
        assert held <= sent if when == "after" else not held & sent
    kernel.run(crashed[0] + 60_000)
    assert kernel.cluster.partition("a", 0).leader != 0
    assert [(f.get().partition, f.get().offset) for f in futures] == [(0, 1), (1, 1), (0, 1)]
    assert replicas_identical(kernel) == []
    assert consistency.check(kernel) == []
    assert audit_kernel(kernel).duplicates == 0


def test_a_zombie_leader_of_three_partitions_loses_no_acks_all_record():
    """Broker 0 leads three partitions; from 1 s it and two producers are cut off from the
    other brokers and the controller, which fences it and elects broker 1; broker 0 goes on
    as a zombie, taking both producers' multi-partition requests, until the cut heals at
    25 s. The acks=all producer loses nothing and stores nothing twice, in send order; every
    acks=1 record lost was acknowledged by the zombie and truncated from its log when it
    rejoined (the loss Kafka allows); the replicas end identical."""
    kernel = led_by_zero({"a": 2, "b": 1}, seed=7, **{"min.insync.replicas": 2})
    safe = Producer(kernel, {"acks": "all", "linger.ms": 5, "client.id": "safe",
                             "request.timeout.ms": 5000, "delivery.timeout.ms": 120_000})
    risky = Producer(kernel, {"acks": "1", "enable.idempotence": False, "linger.ms": 5,
                              "client.id": "risky"})
    tps = [("a", 0), ("a", 1), ("b", 0)]
    sides = ((0, "safe", "risky"), (1, 2, Network.CONTROLLER))
    faults.schedule(kernel, 1000, faults.NetworkPartition(*sides))
    faults.schedule(kernel, 25_000, faults.HealNetwork(*sides))

    def send_all():
        for i in range(300):
            for producer in (safe, risky):
                for topic, p in tps:
                    producer.send(topic, key=f"k{i}", partition=p)
            yield kernel.env.timeout(100)

    kernel.env.process(send_all())
    kernel.run(200_000)
    assert {kernel.cluster.partition(*tp).leader for tp in tps} == {1}
    findings = consistency.check(kernel)
    assert {f.kind for f in findings} == {"lost"}  # zombie acks=1 writes: tolerated, see below
    assert all(f.detail.startswith("risky:") for f in findings)
    report = audit_kernel(kernel)
    assert report.duplicates == 0
    assert all(a["writer"] == "risky" for a in report.anomalies["nonmonotonic-send"])
    results = risky.results()
    truncated = np.concatenate([np.asarray(r["record_id"]) for t, _, broker, r, _
                                in kernel.replicas.truncated if broker == 0 and t in ("a", "b")])
    lost = set()
    for topic, p in tps:
        log = kernel.cluster.partition(topic, p).log
        rows = results[(results["topic"] == topic) & (results["partition"] == p)]
        stored = set(log.column("record_id").tolist())
        lost |= set(rows["record_id"]) - stored
    assert lost
    assert lost <= set(truncated.tolist())
    assert safe.results()["ack_ms"].notna().all()
    assert replicas_identical(kernel) == []


def test_a_follower_catching_up_rejoins_every_isr_at_one_fetch():
    """Follower 2 is cut off from broker 0, which leads three partitions, and drops out of
    their ISRs while records keep coming. Once the cut heals, its first fetch brings the
    missing batches of all three partitions and its next fetch, at their log end offsets,
    puts it back in all three ISRs at one instant (``Partition.maybeExpandIsr`` runs for each
    partition of a fetch); the high watermarks reach the log ends on every replica."""
    kernel = led_by_zero({"a": 2, "b": 1}, **{"min.insync.replicas": 2})
    producer = Producer(kernel, {"acks": "all", "linger.ms": 5, "client.id": "app"})
    tps = [("a", 0), ("a", 1), ("b", 0)]
    faults.NetworkPartition((2,), (0,)).apply(kernel)
    for i in range(50):
        for topic, p in tps:
            producer.send(topic, key=f"k{i}", partition=p)
        kernel.run(kernel.now_ms + 200)
    producer.flush()
    assert {tuple(kernel.cluster.partition(*tp).isr) for tp in tps} == {(0, 1)}
    healed_ms = kernel.now_ms
    faults.HealNetwork((2,), (0,)).apply(kernel)
    kernel.run(healed_ms + 2 * REPLICA_FETCH_WAIT_MAX_MS)
    changes = kernel.trace.frame(ISR_CHANGE)
    expanded = changes[changes["time_ms"] >= healed_ms]
    assert sorted(zip(expanded["topic"], expanded["partition"], strict=True)) == tps
    assert expanded["time_ms"].nunique() == 1
    assert set(expanded["isr"]) == {"[0, 1, 2]"}
    assert replicas_identical(kernel) == []


# --- transaction markers -------------------------------------------------------------------------


def committed_transaction(kernel: Kernel) -> float:
    """A transactional producer writes one record to out-0 and out-1 (both led by broker 0),
    waits until the followers' fetches park, and commits; the time of the commit call."""
    producer = Producer(kernel, {"transactional.id": "app-1", "linger.ms": 0})
    producer.init_transactions()
    producer.begin_transaction()
    for p in (0, 1):
        producer.send("out", key="a", partition=p)
    producer.flush()
    kernel.run(kernel.now_ms + 1000)
    committed_ms = kernel.now_ms
    producer.commit_transaction()
    return committed_ms


def test_commit_markers_on_two_partitions_of_one_leader_end_on_every_replica():
    """The commit markers of a transaction over two partitions of one leader are replicated
    like any batch: every replica holds the record and its marker at the same offsets, and
    ends with its high watermark and last stable offset past the marker."""
    kernel = led_by_zero({"out": 2}, seed=3)
    committed_transaction(kernel)
    kernel.run(kernel.now_ms + 2 * REPLICA_FETCH_WAIT_MAX_MS)
    markers = kernel.trace.frame(TXN_MARKER)
    assert sorted(zip(markers["topic"], markers["partition"], strict=True)) == [("out", 0),
                                                                                ("out", 1)]
    for p in (0, 1):
        part = kernel.cluster.partition("out", p)
        for log in part.logs.values():
            assert log.column("record_id")[1] == -1  # the control record
            assert log.high_watermark == log.last_stable_offset == log.log_end_offset == 2
    assert replicas_identical(kernel) == []


@pytest.mark.xfail(strict=True, reason=(
    "the transaction coordinator sends each partition's marker as a request of its own, so a "
    "parked follower fetch completed by the first marker misses the second; Kafka sends one "
    "WriteTxnMarkers request per broker (TransactionMarkerChannelManager."
    "addTxnMarkersToBrokerQueue) appended by one ReplicaManager.appendRecords call whose "
    "delayed fetches complete after the whole request (tryCompleteActions)"))
def test_one_parked_fetch_carries_both_commit_markers_of_a_leader():
    """Kafka's coordinator groups a transaction's markers by the leader of their partitions
    and sends each leader one ``WriteTxnMarkers`` request (``TransactionMarkerChannelManager
    .addTxnMarkersToBrokerQueue``, ``drainQueuedTransactionMarkers``); the leader appends every
    marker of a producer in one ``ReplicaManager.appendRecords`` call
    (``KafkaApis.handleWriteTxnMarkersRequest``), and the parked follower fetches complete
    after the request (``addCompletePurgatoryAction``, ``tryCompleteActions``). So, as for a
    produce request over two partitions, both markers are appended at one instant and both
    high watermarks pass them together, two latencies later."""
    kernel = led_by_zero({"out": 2}, seed=3)
    committed_ms = committed_transaction(kernel)
    kernel.run(kernel.now_ms + 100)
    appends = kernel.trace.frame(events.LOG_APPEND)
    appends = appends[(appends["time_ms"] > committed_ms) & (appends["topic"] == "out")]
    assert appends["time_ms"].nunique() == 1  # both markers appended at one instant
    latency = kernel.cluster.brokers[0].latency_ms
    times = hw_times(kernel, committed_ms)
    assert [times[("out", p)][0] for p in (0, 1)] == [
        pytest.approx(appends["time_ms"].iloc[0] + 2 * latency)] * 2



def test_a_marker_waits_for_the_isr_to_reach_min_insync_replicas():
    """``Partition.appendRecordsToLeader`` refuses any acks=-1 append while the ISR is smaller
    than ``min.insync.replicas`` (NOT_ENOUGH_REPLICAS), and the coordinator's markers are
    acks=-1 appends (``KafkaApis.handleWriteTxnMarkersRequest``); the coordinator retries them
    (``TransactionMarkerRequestCompletionHandler``: NOT_ENOUGH_REPLICAS is retriable). So a
    commit while out-0's ISR is [0, 1] under min.insync.replicas 3 writes its marker once,
    after broker 2 is back in the ISR, and the leader's refusals are NOT_ENOUGH_REPLICAS."""
    kernel = led_by_zero({"out": 1}, seed=3, **{"min.insync.replicas": 3})
    part = kernel.cluster.partition("out", 0)
    producer = Producer(kernel, {"transactional.id": "app-1", "linger.ms": 0})
    producer.init_transactions()
    producer.begin_transaction()
    record_id = producer.send("out", key="a", partition=0).record_id
    producer.flush()
    faults.CrashBroker(2).apply(kernel)
    kernel.run(kernel.now_ms + 15_000)  # broker 2 fenced: out of the ISR
    assert part.isr == [0, 1]
    producer.commit_transaction()
    kernel.run(kernel.now_ms + 65_000)
    faults.RestartBroker(2).apply(kernel)
    kernel.run(kernel.now_ms + 20_000)
    assert part.isr == [0, 1, 2]
    for log in part.logs.values():  # the record, then one COMMIT marker
        assert log.column("record_id").tolist() == [record_id, -1]
    errors = kernel.trace.frame(PRODUCE_ERROR)
    assert set(errors.loc[errors["topic"] == "out", "error"]) == {NOT_ENOUGH_REPLICAS}


def test_min_insync_replicas_above_the_replication_factor_counts_as_the_factor():
    """Kafka puts no bound on ``min.insync.replicas``; a partition uses
    ``min(min.insync.replicas, replication factor)`` ("the effective min ISR",
    ``Partition.effectiveMinIsr``) both to accept an acks=-1 append
    (``appendRecordsToLeader``) and to advance the high watermark (``maybeIncrementLeaderHW``,
    KAFKA-15583). A topic of replication factor 2 with min.insync.replicas 3 (say, a cluster
    default of 3 meeting a topic of 2) therefore works like min.insync.replicas 2: with both
    replicas in sync an acks=all record is acknowledged and an acks=1 record committed."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", 1, 2, {"min.insync.replicas": 3})
    config = {"linger.ms": 0, "request.timeout.ms": 2000, "delivery.timeout.ms": 5000}
    safe = Producer(kernel, {**config, "acks": "all", "client.id": "safe"})
    quick = Producer(kernel, {**config, "acks": "1", "enable.idempotence": False,
                              "client.id": "quick"})
    safe.send("t", key="a")
    quick.send("t", key="b")
    kernel.run(kernel.now_ms + 10_000)
    part = kernel.cluster.partition("t", 0)
    assert sorted(part.isr) == sorted(part.replicas)
    assert safe.results()["error"].isna().all()
    assert part.log.high_watermark == part.log.log_end_offset == 2

# --- random fault schedules, watched at every step of 20 ms -------------------------------------

ASSIGNMENT = {"a": [[0, 1, 2], [0, 2, 1], [1, 0, 2], [0, 1, 2]], "b": [[0, 1, 2], [2, 0, 1]]}
"""Broker 0 leads four of six partitions, so its requests span topics and partitions."""
PRODUCERS = ("all", "1", "0")
HORIZON_MS = 30_000
FAULT_KINDS = ("crash", "crash", "cut", "controller", "zombie", "zombie", "loss", "slow",
               "preferred")
"""What a fault run draws from: crashes and zombie leaders twice as often as the rest."""


def fault_run(seed: int, disk_loss: bool = False) -> tuple[Kernel, Watch]:
    """Three producers (acks=all idempotent, acks=1, acks=0) each send three keyed records to
    random partitions of two topics every 40 ms for 30 s, while eight random faults strike (every
    crash restarted, every cut and lossy or slow link mended within the horizon); then 60 s to
    settle. RF 3, min.insync.replicas 2, no unclean election."""
    rng = np.random.default_rng(seed)
    kernel = Kernel(seed=seed, brokers=3, broker_configs={"replica.lag.time.max.ms": LAG_MS})
    for name, assignment in ASSIGNMENT.items():
        kernel.cluster.create_topic(name, len(assignment), 3, {
            "min.insync.replicas": 2, "unclean.leader.election.enable": False},
            replica_assignment=assignment)
    producers = [Producer(kernel, {"acks": acks, "linger.ms": 5, "client.id": f"acks-{acks}",
                                   "enable.idempotence": acks == "all",
                                   "request.timeout.ms": 5000, "delivery.timeout.ms": 30_000})
                 for acks in PRODUCERS]

    def send_all():
        for _ in range(HORIZON_MS // 40):
            for producer in producers:
                for _ in range(3):  # one request for several partitions and both topics
                    producer.send("a" if rng.random() < 0.6 else "b",
                                  key=f"k{int(rng.integers(40))}")
            yield kernel.env.timeout(40)

    kernel.env.process(send_all())
    clients = tuple(f"acks-{acks}" for acks in PRODUCERS)
    for _ in range(8):
        start = int(rng.integers(HORIZON_MS - 1000))
        end = int(rng.integers(start + 1, HORIZON_MS))
        broker = int(rng.integers(3))
        other = (broker + 1 + int(rng.integers(2))) % 3
        kind = FAULT_KINDS[int(rng.integers(len(FAULT_KINDS)))]
        if kind == "crash":
            pair = (faults.CrashBroker(broker, disk_loss and bool(rng.random() < 0.5)),
                    faults.RestartBroker(broker))
        elif kind in ("cut", "controller", "zombie"):
            sides = {"cut": ((broker,), (other,)),
                     "controller": ((broker,), (Network.CONTROLLER,)),
                     "zombie": ((broker, *clients), (*sorted({0, 1, 2} - {broker}),
                                                     Network.CONTROLLER))}[kind]
            pair = (faults.NetworkPartition(*sides), faults.HealNetwork(*sides))
        elif kind == "loss":
            pair = (faults.LinkLoss(broker, other, float(rng.choice([0.1, 0.3, 0.6]))),
                    faults.LinkLoss(broker, other, 0.0))
        elif kind == "slow":
            pair = (faults.SlowBroker(broker, float(rng.choice([5.0, 50.0]))),
                    faults.SlowBroker(broker, 1.0))
        else:
            pair = (faults.PreferredLeaderElection(), None)
        faults.schedule(kernel, start, pair[0])
        if pair[1] is not None:
            faults.schedule(kernel, end, pair[1])
    watch = Watch(kernel, disks_kept=not disk_loss)
    kernel.run(HORIZON_MS + 60_000)
    watch.check()
    return kernel, watch


class Watch:
    """Checks, every 20 simulated ms (a background timer: it keeps no run going):

    - no follower fetch waits at a live leader that could answer it: data past its fetch
      offset, or its leader epoch gone (a missed ``DelayedFetch`` completion would leave a
      follower behind until the next append, or for ever);
    - with ``disks_kept`` (no crash lost its disk), every in-sync replica holds the leader's
      records below the high watermark (``sim.invariants.replicas_agree_below_hw``), and every
      record once below a leader's high watermark is still at its offset in the current
      leader's log (committed data survives clean elections). A broker that restarts with an
      empty disk stays in the ISR until the controller fences its old process (KRaft), so
      neither holds then: that is the loss KIP-966 is about.
    """

    def __init__(self, kernel: Kernel, disks_kept: bool) -> None:
        self.kernel = kernel
        self.disks_kept = disks_kept
        self.committed: dict[tuple[str, int], np.ndarray] = {}
        self.problems: list[str] = []
        self._arm()

    def _arm(self) -> None:
        self.kernel.background_timeout(20).callbacks.append(self._tick)

    def _tick(self, _event: object) -> None:
        self.check()
        self._arm()

    def check(self) -> None:
        kernel = self.kernel
        at = f"at {kernel.now_ms:g} ms: "
        if self.disks_kept:
            self.problems += [at + p for p in replicas_agree_below_hw(kernel)]
            for topic in kernel.cluster.topics.values():
                for part in topic.partitions:
                    if part.leader >= 0:
                        self._committed(part, at)
        replicas = kernel.replicas
        for leader, parked in replicas._delayed_fetches.items():
            broker = kernel.cluster.brokers[leader]
            for fetch in parked:
                if fetch.done or not broker.alive or broker.incarnation != fetch.incarnation:
                    continue
                for part, offset, epoch in fetch.request:
                    if (part.leader, part.leader_epoch) != (leader, epoch) or (
                            part.logs[leader].log_end_offset > offset):
                        self.problems.append(f"{at}{fetch.follower}'s fetch of {part.topic}-"
                                             f"{part.partition} at {offset} waits at {leader}")

    def _committed(self, part, at: str) -> None:
        log = part.log  # the leader's (no retention here: the log starts at 0)
        key = (part.topic, part.partition)
        before = self.committed.get(key, np.empty(0, np.int64))
        if len(before):
            now = log.column("record_id", 0, min(len(before), log.log_end_offset))
            if len(now) < len(before) or not np.array_equal(now, before):
                self.problems.append(f"{at}{key}: committed records changed in leader "
                                     f"{part.leader}'s log")
        if log.high_watermark > len(before):
            self.committed[key] = log.column("record_id", 0, log.high_watermark)


def lost_ids(kernel: Kernel, producer: Producer) -> set[int]:
    """Records ``producer`` was told are at an offset, missing from their leader's log."""
    results = producer.results()
    acked = results[results["ack_ms"].notna() & (results["offset"] >= 0)]
    lost = set()
    for (topic, p), rows in acked.groupby(["topic", "partition"]):
        stored = set(kernel.cluster.partition(topic, int(p)).log.column("record_id").tolist())
        lost |= set(rows["record_id"]) - stored
    return lost


@pytest.mark.parametrize("seed", range(12801, 12807))
def test_random_faults_keep_kafkas_promises_at_every_step(seed):
    """Under random crashes, cuts (a leader and the producers from the rest: a zombie; a
    broker from the controller), lossy and slow links and preferred elections, watched every
    20 ms (``Watch``): in-sync replicas agree below the high watermark, committed records stay,
    no fetch waits at a leader that could answer it. At the end every replica equals its
    leader, high watermarks included; the acks=all producer lost nothing, stored nothing twice
    and kept its send order (no anomaly of the audit names it); the acks=1 producer's losses
    are records its leaders truncated."""
    kernel, watch = fault_run(seed)
    assert watch.problems == []
    assert replicas_identical(kernel) == []
    findings = consistency.check(kernel)
    assert [f for f in findings if not f.detail.startswith("acks-1:")] == []
    truncated = {int(i) for _, _, _, records, _ in kernel.replicas.truncated
                 for i in records["record_id"]}
    acks_1 = next(c for c in kernel.clients if c.client_id == "acks-1")
    assert lost_ids(kernel, acks_1) <= truncated
    anomalies = audit_kernel(kernel).anomalies  # Jepsen's kinds: lost-write, duplicate, ...
    assert [(kind, a) for kind, found in anomalies.items() for a in found
            if a.get("writer") == "acks-all"] == []


@pytest.mark.parametrize("seed", range(12807, 12810))
def test_random_faults_with_lost_disks_lose_only_what_a_disk_or_truncation_took(seed):
    """The same with crashes that may lose the disk: committed records may go (Kafka keeps
    them only on disks, and a broker back with an empty disk is in the ISR until it is
    fenced), but no fetch waits at a leader that could answer it, every replica ends equal to
    its leader, and every acknowledged record lost is one a lost disk or a truncation
    removed."""
    kernel, watch = fault_run(seed, disk_loss=True)
    assert watch.problems == []
    assert replicas_identical(kernel) == []
    removed = {int(i) for _, _, _, records, _ in kernel.replicas.truncated
               for i in records["record_id"]}
    for producer in kernel.clients:
        assert lost_ids(kernel, producer) <= removed


DETERMINISM = """
import hashlib, sys
from tests.test_replication_adversary import fault_run
kernel, _ = fault_run(int(sys.argv[1]), disk_loss=True)
print(hashlib.sha256(kernel.trace.to_frame().to_csv().encode()).hexdigest())
"""


def test_a_fault_run_prints_the_same_trace_under_any_hash_seed():
    """One fault run, in two fresh interpreters with different ``PYTHONHASHSEED``: the same
    trace, byte for byte (client ids and the controller are strings in the cuts' sides)."""
    procs = []
    for hash_seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed,
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        procs.append(subprocess.Popen([sys.executable, "-c", DETERMINISM, "12810"], cwd=ROOT,
                                      env=env, stdout=subprocess.PIPE))
    digests = [proc.communicate(timeout=300)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert digests[0] == digests[1] != b""
