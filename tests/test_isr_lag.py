"""When a follower leaves the ISR: Kafka 4.0's follower-lag bookkeeping.

The leader moves a follower's ``lastCaughtUpTimeMs`` only when one of its fetches arrives
(``Replica.updateFetchStateOrThrow``, called from ``Partition.fetchRecords``; a fetch answered
from the purgatory, ``DelayedFetch.onComplete``, updates nothing), to the fetch's time if it
asked for the leader's log end offset. Each fetch updates every partition of the follower's
fetch session (``IncrementalFetchContext.foreachPartition``), and a caught-up follower's fetch
expires after ``replica.fetch.wait.max.ms``, so a healthy follower's time is never older than
that wait and a round trip. The ISR check (``Partition.maybeShrinkIsr`` →
``getOutOfSyncReplicas`` → ``Replica.isCaughtUp``) keeps a follower whose log end offset equals
the leader's, or whose last caught-up time is within ``replica.lag.time.max.ms``; it runs every
``replica.lag.time.max.ms / 2`` (``ReplicaManager``'s isr-expiration task).

So a follower cut off from its leader while the partition is idle stays in the ISR as long as
nothing is appended, and leaves it at the first check after an append once its LAST FETCH is
more than ``replica.lag.time.max.ms`` old, however long the partition was idle.
"""

from __future__ import annotations

from sim import faults
from sim.broker.replication import ISR_CHANGE, REPLICA_FETCH_WAIT_MAX_MS
from sim.kernel import Kernel
from sim.producer import Producer

LAG_MAX_MS = 30_000  # replica.lag.time.max.ms, Kafka's default
CHECK_MS = LAG_MAX_MS / 2  # the isr-expiration period


def _cluster() -> tuple[Kernel, Producer]:
    """Three brokers, topic ``t`` on [0, 1, 2] led by 0; one record, so that every follower
    has fetched and waits, caught up, at the leader."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]])
    producer = Producer(kernel, {"acks": "1", "linger.ms": 0})
    producer.send("t", key="k")
    kernel.run(until_ms=1000)
    part = kernel.cluster.partition("t", 0)
    assert part.isr == [0, 1, 2]
    assert part.logs[2].log_end_offset == part.log.log_end_offset
    return kernel, producer


def _refetch_period(kernel: Kernel) -> float:
    """How often a caught-up follower's fetch reaches an idle leader in Kafka: the parked
    fetch expires after replica.fetch.wait.max.ms, its answer and the next fetch travel."""
    return REPLICA_FETCH_WAIT_MAX_MS + 2 * kernel.cluster.brokers[0].latency_ms


def _produce_at(kernel: Kernel, producer: Producer, at_ms: float) -> float:
    """Send one record at ``at_ms``; return when the leader appended it."""
    kernel.run(until_ms=at_ms)
    part = kernel.cluster.partition("t", 0)
    end = part.log.log_end_offset
    producer.send("t", key="k")
    assert kernel.run_until(lambda k: part.log.log_end_offset > end, max_ms=at_ms + 1000)
    return kernel.now_ms


def _isr_changes(kernel: Kernel) -> list[tuple[float, str]]:
    frame = kernel.trace.frame(ISR_CHANGE)
    return list(zip(frame["time_ms"].tolist(), frame["isr"].tolist(), strict=True))


def test_a_cut_off_follower_leaves_at_the_first_check_past_the_lag_since_its_last_fetch():
    """Follower 2 is cut off from leader 0 at 50 s, the partition idle since its first record
    (a few ms in); the next record comes at 61 s. Kafka's follower fetched every wait + round
    trip until the cut, so its last fetch is at most that long before 50 s: it leaves at the
    first check past 80 s, at 90 s. Counting from the append (61 s) would keep it until 105 s;
    counting from the last fetch that found the first record would drop it at 75 s."""
    kernel, producer = _cluster()
    cut_ms = 50_000
    faults.schedule(kernel, cut_ms, faults.NetworkPartition((2,), (0,)))
    appended = _produce_at(kernel, producer, 61_000)
    state = kernel.cluster.partition("t", 0).followers[2]
    assert cut_ms - _refetch_period(kernel) < state.last_fetch_ms <= cut_ms
    assert state.last_caught_up_ms == state.last_fetch_ms
    kernel.run(until_ms=120_000)
    first_check = (state.last_caught_up_ms + LAG_MAX_MS) // CHECK_MS * CHECK_MS + CHECK_MS
    assert first_check == 90_000 > appended
    assert _isr_changes(kernel) == [(first_check, "[0, 1]")]


def test_a_long_idle_spell_then_an_append_shrinks_at_the_next_check():
    """Cut at 10 s, the next record at 100 s: the follower's last fetch is 90 s old, so the
    first check after the append (105 s) removes it, not the one 30 s after the append."""
    kernel, producer = _cluster()
    faults.schedule(kernel, 10_000, faults.NetworkPartition((2,), (0,)))
    appended = _produce_at(kernel, producer, 100_000)
    kernel.run(until_ms=150_000)
    assert _isr_changes(kernel) == [(105_000, "[0, 1]")]
    assert 105_000 - appended < LAG_MAX_MS


def test_a_cut_off_follower_stays_in_the_isr_while_nothing_is_appended():
    """``Replica.isCaughtUp``: a follower with the leader's log end offset is caught up, however
    old its last fetch. Cut off at 10 s on an idle partition, follower 2 is still in the ISR
    after 200 s, though it has not fetched for far longer than replica.lag.time.max.ms."""
    kernel, _producer = _cluster()
    faults.schedule(kernel, 10_000, faults.NetworkPartition((2,), (0,)))
    kernel.run(until_ms=200_000)
    part = kernel.cluster.partition("t", 0)
    state = part.followers[2]
    assert kernel.now_ms - state.last_caught_up_ms > LAG_MAX_MS
    assert state.log_end_offset == part.log.log_end_offset
    assert part.isr == [0, 1, 2]
    assert _isr_changes(kernel) == []


def test_a_healthy_follower_is_caught_up_when_an_idle_partition_gets_a_record():
    """After 100 s without appends, an ISR check at the very instant of the next append (before
    any follower fetched it) keeps every follower: each one's last fetch is at most a wait and
    a round trip old, as Kafka's parked fetches expire and come again."""
    kernel, producer = _cluster()
    appended = _produce_at(kernel, producer, 100_000)
    part = kernel.cluster.partition("t", 0)
    for follower in (1, 2):
        state = part.followers[follower]
        assert state.log_end_offset < part.log.log_end_offset  # not fetched yet
        assert appended - _refetch_period(kernel) < state.last_caught_up_ms <= appended
    kernel.replicas.shrink_isr(appended)
    assert part.isr == [0, 1, 2]


def test_healthy_followers_under_steady_load_never_leave_the_isr():
    """A record every 100 ms for 120 s, links healthy: no ISR change, and at every moment the
    followers' last caught-up time is recent."""
    kernel, producer = _cluster()
    part = kernel.cluster.partition("t", 0)
    oldest = 0.0
    while kernel.now_ms < 120_000:
        producer.send("t", key=f"k{int(kernel.now_ms)}")
        kernel.run(until_ms=kernel.now_ms + 100)
        oldest = max(oldest, *(kernel.now_ms - part.followers[b].last_caught_up_ms
                               for b in (1, 2)))
    assert _isr_changes(kernel) == []
    assert oldest < _refetch_period(kernel)


def test_a_lagging_first_fetch_keeps_the_caught_up_time_a_new_leader_gave():
    """``Replica.resetReplicaState``: a new leader starts an ISR follower's caught-up time at its
    election; ``updateFetchStateOrThrow`` only ever moves it forward (``max``). Follower 2, cut
    off from leader 0 at 5 s under load, is behind leader 1 elected when 0 (crashed at 6 s) is
    fenced: its first fetch from 1 is behind and leaves that time as it was, not the 0 of a
    previous fetch it never made."""
    kernel, producer = _cluster()
    faults.schedule(kernel, 5_000, faults.NetworkPartition((2,), (0,)))
    faults.schedule(kernel, 6_000, faults.CrashBroker(0))
    while kernel.now_ms < 6_000:
        producer.send("t", key=f"k{int(kernel.now_ms)}")
        kernel.run(until_ms=kernel.now_ms + 100)
    part = kernel.cluster.partition("t", 0)
    assert kernel.run_until(lambda k: part.leader == 1, max_ms=30_000)
    elected = kernel.now_ms
    assert 2 in part.isr
    assert part.logs[2].log_end_offset < part.logs[1].log_end_offset
    assert kernel.run_until(lambda k: part.followers[2].last_fetch_ms > 0, max_ms=31_000)
    assert part.followers[2].log_end_offset < part.logs[1].log_end_offset  # a lagging fetch
    assert part.followers[2].last_caught_up_ms == elected
