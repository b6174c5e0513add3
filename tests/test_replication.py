"""Replication: ISR, high watermark, acks, elections, truncation and idempotence."""

from __future__ import annotations

import numpy as np
import pytest

from sim import faults
from sim import trace as events
from sim.broker.controller import BROKER_SESSION_TIMEOUT_MS, ELECTION
from sim.broker.replication import HW_ADVANCE, ISR_CHANGE, TRUNCATE
from sim.errors import ConfigError, ProduceError
from sim.kernel import Kernel
from sim.producer import Producer


def cluster(brokers: int = 3, rf: int = 3, seed: int = 0, **topic_configs) -> Kernel:
    kernel = Kernel(seed=seed, brokers=brokers)
    kernel.cluster.create_topic("t", partitions=1, replication_factor=rf, configs=topic_configs)
    return kernel


def roles(kernel: Kernel) -> tuple[int, list[int]]:
    part = kernel.cluster.partition("t", 0)
    return part.leader, [b for b in part.replicas if b != part.leader]


def send(producer: Producer, n: int, start: int = 0) -> list:
    futures = [producer.send("t", key=f"k{start + i}") for i in range(n)]
    producer.flush()
    return futures


def committed_ids(kernel: Kernel) -> set[int]:
    """Record ids a consumer can finally read: the leader's log below its high watermark."""
    log = kernel.cluster.partition("t", 0).log
    return set(log.column("record_id", log.log_start_offset, log.high_watermark).tolist())


def acknowledged_ids(producer: Producer) -> set[int]:
    results = producer.results()
    return set(results.loc[results["ack_ms"].notna(), "record_id"].tolist())


def test_followers_copy_the_leaders_log_exactly():
    """Every replica ends with the same records at the same offsets and epochs."""
    kernel = cluster()
    producer = Producer(kernel)
    send(producer, 200)
    kernel.run()
    part = kernel.cluster.partition("t", 0)
    frames = [log.records() for log in part.logs.values()]
    for frame in frames[1:]:
        assert frame.equals(frames[0])
    assert part.log.high_watermark == part.log.log_end_offset == 200


def test_acks_all_waits_for_the_followers():
    """acks=all answers after a follower fetch round trip; acks=1 right after the append."""
    latencies = {}
    for acks in ("1", "all"):
        kernel = cluster()
        producer = Producer(kernel, {"acks": acks, "linger.ms": 0})
        latencies[acks] = producer.send("t", key="k").get().latency_ms
    latency = kernel.cluster.brokers[0].latency_ms
    assert latencies["all"] >= latencies["1"] + 2 * latency


def test_a_parked_follower_fetch_is_answered_at_the_leader():
    """A caught-up follower's fetch waits at the leader (Kafka's DelayedFetch in the fetch
    purgatory): the leader's append completes it there and only the response travels, so the
    HW passes the record two latencies after the append (response, then the next fetch)."""
    kernel = cluster()
    producer = Producer(kernel, {"acks": "all", "linger.ms": 0})
    producer.send("t", key="a").get()
    kernel.run(kernel.now_ms + 1000)  # both followers caught up, their fetches parked
    producer.send("t", key="b").get()
    latency = kernel.cluster.brokers[0].latency_ms
    append_ms = kernel.trace.frame(events.LOG_APPEND)["time_ms"].iloc[-1]
    advances = kernel.trace.frame(HW_ADVANCE)
    assert advances["high_watermark"].iloc[-1] == 2
    assert advances["time_ms"].iloc[-1] == pytest.approx(append_ms + 2 * latency)


def test_a_parked_fetch_is_answered_once_the_whole_produce_request_is_appended():
    """Kafka completes the delayed fetches a produce request unblocks only after appending all
    of its batches (``ReplicaManager.addCompletePurgatoryAction`` puts the purgatory checks in
    the action queue that ``KafkaApis`` runs when the request is handled): a parked follower
    fetch answered by a request to two partitions carries both batches, so both high
    watermarks pass them at once, two latencies after the append."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", partitions=2, replication_factor=3,
                                replica_assignment=[[0, 1, 2], [0, 1, 2]])
    producer = Producer(kernel, {"acks": "all", "linger.ms": 5})
    producer.send("t", key="a", partition=0).get()
    producer.send("t", key="a", partition=1).get()
    kernel.run(kernel.now_ms + 1000)  # both followers caught up, their fetches parked
    futures = [producer.send("t", key="b", partition=p) for p in (0, 1)]
    producer.flush()
    assert kernel.trace.frame(events.REQUEST_SENT)["batches"].iloc[-1] == 2  # one request
    latency = kernel.cluster.brokers[0].latency_ms
    append_ms = kernel.trace.frame(events.LOG_APPEND)["time_ms"].iloc[-1]
    advances = kernel.trace.frame(HW_ADVANCE)
    last = advances[advances["high_watermark"] == 2]
    assert sorted(last["partition"]) == [0, 1]
    assert last["time_ms"].tolist() == pytest.approx([append_ms + 2 * latency] * 2)
    assert [f.get().offset for f in futures] == [1, 1]


def test_a_topic_created_later_is_fetched_by_the_running_fetchers():
    """The followers' fetchers keep their partition list per metadata version: a partition
    created while they run, with the same leader and followers, joins their fetches and is
    copied exactly, its high watermark reaching its log end offset."""
    kernel = cluster()
    producer = Producer(kernel, {"acks": "all"})
    send(producer, 20)
    kernel.run(kernel.now_ms + 1000)  # the followers' fetches are parked at the leader
    old = kernel.cluster.partition("t", 0)
    kernel.cluster.create_topic("u", partitions=1, replication_factor=3,
                                replica_assignment=[[old.leader, *roles(kernel)[1]]])
    futures = [producer.send("u", key=f"k{i}") for i in range(20)]
    producer.flush()
    kernel.run()
    assert all(f.get().offset == i for i, f in enumerate(futures))
    part = kernel.cluster.partition("u", 0)
    frames = [log.records() for log in part.logs.values()]
    for frame in frames[1:]:
        assert frame.equals(frames[0])
    assert part.log.high_watermark == part.log.log_end_offset == 20


def test_high_watermark_is_the_smallest_isr_log_end_offset():
    """A follower cut off from the leader holds the HW back while it is still in the ISR."""
    kernel = cluster()
    leader, (f1, f2) = roles(kernel)
    producer = Producer(kernel, {"acks": "1"})
    send(producer, 10)
    kernel.run(kernel.now_ms + 50)
    faults.NetworkPartition((f2,), (leader,)).apply(kernel)
    send(producer, 5, start=10)
    kernel.run(kernel.now_ms + 50)
    part = kernel.cluster.partition("t", 0)
    assert part.log.log_end_offset == 15
    assert part.logs[f1].log_end_offset == 15
    assert part.logs[f2].log_end_offset == 10
    assert part.isr == sorted(part.isr, key=part.replicas.index)
    assert f2 in part.isr
    assert part.log.high_watermark == 10


def test_a_lagging_follower_leaves_the_isr_and_rejoins():
    """After replica.lag.time.max.ms without catching up it is out; once caught up, back in."""
    kernel = cluster()
    leader, (_, lagging) = roles(kernel)
    producer = Producer(kernel, {"acks": "1"})
    faults.NetworkPartition((lagging,), (leader,)).apply(kernel)
    for second in range(50):  # checked every 15 s: out between 30 and 45 s after the cut
        send(producer, 1, start=second)
        kernel.run(kernel.now_ms + 1000)
    part = kernel.cluster.partition("t", 0)
    assert lagging not in part.isr
    assert part.log.high_watermark == part.log.log_end_offset  # the ISR no longer waits for it
    faults.HealNetwork((lagging,), (leader,)).apply(kernel)
    send(producer, 1, start=100)
    kernel.run(kernel.now_ms + 100)
    assert lagging in part.isr
    changes = kernel.trace.frame(ISR_CHANGE)["reason"].tolist()
    assert changes[0].startswith("shrink")
    assert changes[-1].startswith("expand")


def test_min_insync_replicas_rejects_writes_when_the_isr_is_too_small():
    """acks=all with min.insync.replicas=2 and one live replica: NOT_ENOUGH_REPLICAS, then fail."""
    kernel = cluster(**{"min.insync.replicas": 2})
    _, followers = roles(kernel)
    for broker in followers:
        faults.CrashBroker(broker).apply(kernel)
    kernel.run(BROKER_SESSION_TIMEOUT_MS + 1)  # both fenced: the ISR is the leader alone
    producer = Producer(kernel, {"delivery.timeout.ms": 3000, "request.timeout.ms": 2000})
    future = producer.send("t", key="k")
    with pytest.raises(ProduceError, match=r"delivery\.timeout\.ms"):
        future.get()
    errors = kernel.trace.frame(events.PRODUCE_RETRY)["error"]
    assert set(errors) == {"NOT_ENOUGH_REPLICAS"}
    assert len(kernel.cluster.partition("t", 0).log) == 0


def test_clean_election_after_a_leader_crash_loses_nothing_with_acks_all():
    """RF 3, min.insync.replicas 2, acks=all: the new leader has every acknowledged record."""
    kernel = cluster(**{"min.insync.replicas": 2})
    leader, _ = roles(kernel)
    producer = Producer(kernel)
    send(producer, 50)
    crashed_at = kernel.now_ms
    faults.CrashBroker(leader).apply(kernel)
    send(producer, 50, start=50)  # retried until the controller fences and re-elects
    kernel.run()
    part = kernel.cluster.partition("t", 0)
    assert part.leader != leader
    assert part.leader_epoch == 1
    elections = kernel.trace.frame(ELECTION)
    assert elections["election"].tolist() == ["clean"]
    assert elections["time_ms"].iloc[0] == crashed_at + BROKER_SESSION_TIMEOUT_MS
    assert acknowledged_ids(producer) <= committed_ids(kernel)
    assert producer.acked == 100


def test_acks_1_leader_crash_loses_the_unreplicated_records():
    """kafka-facts §3.4 case 1: acked by the leader alone, then the follower takes over."""
    kernel = cluster(brokers=2, rf=2)
    leader, (follower,) = roles(kernel)
    producer = Producer(kernel, {"acks": "1", "linger.ms": 0})
    send(producer, 10)
    kernel.run(kernel.now_ms + 50)  # offsets 0–9 replicated
    faults.NetworkPartition((follower,), (leader,)).apply(kernel)
    lost = send(producer, 5, start=10)  # offsets 10–14, acknowledged by the leader only
    assert [f.get().offset for f in lost] == [10, 11, 12, 13, 14]
    faults.CrashBroker(leader).apply(kernel)
    kernel.run(kernel.now_ms + BROKER_SESSION_TIMEOUT_MS + 10)
    part = kernel.cluster.partition("t", 0)
    assert part.leader == follower  # still in the ISR: 30 s had not passed
    faults.HealNetwork((follower,), (leader,)).apply(kernel)
    faults.RestartBroker(leader).apply(kernel)
    kernel.run()
    truncated = kernel.trace.frame(TRUNCATE)
    assert truncated[["node", "offset", "records"]].values.tolist() == [[leader, 10, 5]]
    missing = acknowledged_ids(producer) - committed_ids(kernel)
    assert missing == {producer.record_ids(np.arange(10, 15))[i] for i in range(5)}
    assert part.logs[leader].log_end_offset == part.log.log_end_offset == 10


def test_a_fetch_answer_whose_batches_the_leader_deleted_meanwhile_is_fetched_again():
    """The leader's retention deletes the segments a lagging follower's fetch was answered
    from while the answer travels (fuzz finding
    tiered--fetched-batches-deleted-while-the-answer-travelled). The follower appends nothing
    from that answer; its next fetch is below the leader's log start (OFFSET_OUT_OF_RANGE,
    ``ReplicaFetcherThread`` → ``truncateFullyAndStartAt``), and it ends with the leader's
    records from the leader's new log start."""
    kernel = cluster(brokers=2, rf=2, **{"lab.segment.bytes": 300})
    leader, (follower,) = roles(kernel)
    producer = Producer(kernel, {"acks": "1", "linger.ms": 0})
    send(producer, 10)
    kernel.run(kernel.now_ms + 50)  # offsets 0–9 replicated
    faults.NetworkPartition((follower,), (leader,)).apply(kernel)
    for i in range(10, 50):  # on the leader only, one batch at a time, over several segments
        send(producer, 1, start=i)
    part = kernel.cluster.partition("t", 0)
    mine, theirs = part.logs[follower], part.log
    assert mine.log_end_offset == 10
    assert len(theirs.segments) > 3
    replicas = kernel.replicas
    (answer,) = replicas._read_fetch(leader, [(part, 10, part.leader_epoch)])
    assert answer[2][0].base_offset == 10  # the answer names batches from offset 10
    theirs.delete_oldest_segments(2)  # a retention pass before the answer arrives
    assert theirs.log_start_offset > 10
    replicas._on_fetch_response(follower, leader, *answer)
    assert (mine.log_start_offset, mine.log_end_offset) == (0, 10)
    (again,) = replicas._read_fetch(leader, [(part, 10, part.leader_epoch)])
    replicas._on_fetch_response(follower, leader, *again)
    assert mine.log_start_offset == theirs.log_start_offset
    assert mine.records().equals(theirs.records())


def test_unclean_election_loses_what_the_stale_replica_never_had():
    """kafka-facts §3.4 case 2: the ISR leader dies; a stale replica becomes leader."""
    for unclean in (True, False):
        kernel = cluster(brokers=2, rf=2, **{"unclean.leader.election.enable": unclean})
        leader, (stale,) = roles(kernel)
        producer = Producer(kernel, {"linger.ms": 0})
        send(producer, 10)
        kernel.run(kernel.now_ms + 50)
        faults.NetworkPartition((stale,), (leader,)).apply(kernel)
        for second in range(50):  # the stale follower drops out of the ISR after 30–45 s
            send(producer, 1, start=10 + second)
            kernel.run(kernel.now_ms + 1000)
        faults.CrashBroker(leader).apply(kernel)
        kernel.run(kernel.now_ms + BROKER_SESSION_TIMEOUT_MS + 10)
        part = kernel.cluster.partition("t", 0)
        election = kernel.trace.frame(ELECTION)["election"].tolist()
        if unclean:
            assert election == ["unclean"]
            assert part.leader == stale
            assert part.log.log_end_offset == 10
            assert len(acknowledged_ids(producer) - committed_ids(kernel)) == 50
        else:
            assert election == ["offline"]
            assert part.leader == -1


@pytest.mark.parametrize(("idempotence", "duplicated"), [(True, False), (False, True)])
def test_retries_after_lost_responses_duplicate_only_without_idempotence(idempotence,
                                                                        duplicated):
    """A lost response makes the producer resend a batch the leader already appended."""
    kernel = cluster(brokers=3, rf=3)
    leader, _ = roles(kernel)
    producer = Producer(kernel, {"enable.idempotence": idempotence, "linger.ms": 0,
                                 "request.timeout.ms": 500, "client.id": "app"})
    faults.LinkLoss(leader, "app", 0.5).apply(kernel)
    send(producer, 40)
    kernel.run()
    ids = kernel.cluster.partition("t", 0).log.column("record_id")
    assert producer.acked == 40
    assert (len(ids) > len(set(ids.tolist()))) is duplicated
    assert set(ids.tolist()) == acknowledged_ids(producer)


def test_explicit_idempotence_conflicts_are_config_errors():
    """enable.idempotence=true with acks=1 is a ConfigException; left implicit, it turns off."""
    kernel = cluster()
    with pytest.raises(ConfigError, match=r"enable\.idempotence=true conflicts with acks=1"):
        Producer(kernel, {"enable.idempotence": True, "acks": "1"})
    assert not Producer(kernel, {"acks": "1"}).idempotent
    assert Producer(kernel).idempotent


def test_a_crash_scenario_replays_identically():
    """Same seed, same faults: identical traces, field by field."""
    frames = []
    for _ in range(2):
        kernel = cluster(**{"min.insync.replicas": 2})
        leader, _ = roles(kernel)
        producer = Producer(kernel)
        send(producer, 30)
        faults.schedule(kernel, kernel.now_ms + 5, faults.CrashBroker(leader))
        faults.schedule(kernel, kernel.now_ms + 20_000, faults.RestartBroker(leader))
        send(producer, 30, start=30)
        kernel.run()
        frames.append(kernel.trace.to_frame())
    assert frames[0].equals(frames[1])


def test_preferred_leader_election_moves_leadership_back():
    """After a restart the preferred replica can lead again."""
    kernel = cluster()
    part = kernel.cluster.partition("t", 0)
    preferred = part.replicas[0]
    faults.CrashBroker(preferred).apply(kernel)
    kernel.run(BROKER_SESSION_TIMEOUT_MS + 1)
    assert part.leader != preferred
    faults.RestartBroker(preferred).apply(kernel)
    kernel.run(kernel.now_ms + 100)
    faults.PreferredLeaderElection().apply(kernel)
    assert part.leader == preferred
    assert kernel.trace.frame(ELECTION)["election"].tolist() == ["clean", "preferred"]



def test_automatic_preferred_election_after_a_restart():
    """auto.leader.rebalance.enable: 300 s after the restart the preferred replica leads again."""
    kernel = cluster()
    part = kernel.cluster.partition("t", 0)
    preferred = part.replicas[0]
    faults.CrashBroker(preferred).apply(kernel)
    kernel.run(BROKER_SESSION_TIMEOUT_MS + 1)
    restarted_at = kernel.now_ms
    faults.RestartBroker(preferred).apply(kernel)
    assert kernel.controller.imbalance()[preferred] == 1.0
    kernel.run()
    elections = kernel.trace.frame(ELECTION)
    assert elections["election"].tolist() == ["clean", "preferred"]
    assert elections["time_ms"].iloc[-1] == restarted_at + 300_000
    assert part.leader == preferred


def test_no_automatic_rebalance_when_disabled():
    """auto.leader.rebalance.enable=false leaves leadership where the crash put it."""
    kernel = Kernel(seed=0, brokers=3, broker_configs={"auto.leader.rebalance.enable": False})
    kernel.cluster.create_topic("t", replication_factor=3)
    part = kernel.cluster.partition("t", 0)
    preferred = part.replicas[0]
    faults.CrashBroker(preferred).apply(kernel)
    kernel.run(BROKER_SESSION_TIMEOUT_MS + 1)
    faults.RestartBroker(preferred).apply(kernel)
    kernel.run()
    assert part.leader != preferred
