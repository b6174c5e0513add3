"""The high watermark waits for a follower about to join the ISR (Kafka 4.0).

``Partition.maybeIncrementLeaderHW`` takes the smallest log end offset of the ISR *and* of every
follower outside it that is caught up and may join (``shouldWaitForReplicaToJoinIsr``): caught
up is ``Replica.isCaughtUp`` (at the leader's log end, or caught up within
``replica.lag.time.max.ms``), may join is ``Partition.isReplicaIsrEligible`` (unfenced, and its
last fetch carried its current broker epoch). Without the wait a returning follower can chase a
high watermark that moves on with every append. When a broker becomes leader,
``Replica.resetReplicaState`` marks the followers in the ISR caught up at that moment and the
others never, so a follower that was already out does not hold the new leader's HW back.
"""

from __future__ import annotations

from sim import faults
from sim.broker.cluster import Partition
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import UniformKeys, Workload

LAG_MAX_MS = 30_000  # replica.lag.time.max.ms, Kafka's default
RATE = 5000  # records per second: appends keep coming while the follower catches up


def _busy_partition(crash_ms: float, restart_ms: float, brokers: int = 3
                    ) -> tuple[Kernel, Partition]:
    """Topic ``t`` on all ``brokers``, led by 0, under steady acks=1 load; follower 2 crashes
    at ``crash_ms`` (it is fenced and leaves the ISR a session timeout later) and restarts at
    ``restart_ms``."""
    kernel = Kernel(seed=0, brokers=brokers)
    kernel.cluster.create_topic("t", replica_assignment=[list(range(brokers))])
    workload = Workload.generate(kernel.spawn_rng(), "t", RATE * 60, RATE,
                                 keys=UniformKeys(100), value_bytes=100)
    Producer(kernel, {"acks": "1"}, workload=workload)
    faults.schedule(kernel, crash_ms, faults.CrashBroker(2))
    faults.schedule(kernel, restart_ms, faults.RestartBroker(2))
    return kernel, kernel.cluster.partition("t", 0)


def _first_fetch_after_restart(kernel: Kernel, part: Partition, restart_ms: float) -> None:
    """Run until restarted follower 2's first fetch has reached leader 0."""
    kernel.run(until_ms=restart_ms)
    assert 2 not in part.isr  # fenced while it was down
    assert kernel.run_until(
        lambda k: part.followers[2].broker_epoch == k.cluster.brokers[2].incarnation > 0,
        max_ms=restart_ms + 5_000)


def test_the_hw_waits_for_a_returning_follower_caught_up_within_the_lag():
    """Follower 2 is down from 10 s to 20 s, its last caught-up time about 10 s: back within
    replica.lag.time.max.ms, it may join, so from its first fetch until it is back in the ISR
    the HW does not pass its log end offset, although the leader appends and the ISR [0, 1]
    alone would let the HW move on."""
    kernel, part = _busy_partition(10_000, 20_000)
    _first_fetch_after_restart(kernel, part, 20_000)
    follower = part.followers[2]
    assert kernel.now_ms - follower.last_caught_up_ms <= LAG_MAX_MS
    start_leo, start_hw = part.log.log_end_offset, part.log.high_watermark
    assert follower.log_end_offset < start_leo  # it missed the records of its downtime
    held_back = []  # moments where the ISR alone would have allowed a higher HW

    def joined(k: Kernel) -> bool:
        hw = part.log.high_watermark
        assert hw <= max(start_hw, follower.log_end_offset)
        isr_min = min(part.log.log_end_offset,
                      *(part.followers[b].log_end_offset for b in part.isr if b != 0))
        if isr_min > hw:
            held_back.append(k.now_ms)
        return 2 in part.isr

    assert kernel.run_until(joined, max_ms=25_000)
    assert part.log.log_end_offset > start_leo  # appends went on meanwhile
    assert held_back  # and the wait made a difference


def test_a_follower_back_after_the_lag_does_not_hold_the_hw():
    """Down from 10 s to 50 s: its last caught-up time is 40 s old when it fetches again, so
    it is not caught up and the HW moves on with the ISR while it catches up."""
    kernel, part = _busy_partition(10_000, 50_000)
    _first_fetch_after_restart(kernel, part, 50_000)
    follower = part.followers[2]
    assert kernel.now_ms - follower.last_caught_up_ms > LAG_MAX_MS
    start_hw = part.log.high_watermark
    passed = []  # moments where the HW is past both where it was and the follower's log end

    def joined(k: Kernel) -> bool:
        if part.log.high_watermark > max(start_hw, follower.log_end_offset):
            passed.append(k.now_ms)
        return 2 in part.isr

    assert kernel.run_until(joined, max_ms=55_000)
    assert passed


def test_a_restarted_follower_holds_nothing_before_its_first_fetch():
    """Between its registration and its first fetch the leader knows only its old process's
    fetches (``isBrokerEpochIsrEligible`` compares broker epochs): the HW moves on without
    waiting for the log end offset it had before the crash. Follower 2 restarts at 20 s cut
    off from leader 0 until 22 s, so it registers long before it can fetch."""
    kernel, part = _busy_partition(10_000, 20_000)
    faults.schedule(kernel, 19_999, faults.NetworkPartition((2,), (0,)))
    faults.schedule(kernel, 22_000, faults.HealNetwork((2,), (0,)))
    kernel.run(until_ms=20_000)
    follower = part.followers[2]
    assert kernel.run_until(lambda k: k.controller.may_join_isr(2), max_ms=25_000)
    assert follower.broker_epoch < kernel.cluster.brokers[2].incarnation
    assert kernel.now_ms - follower.last_caught_up_ms <= LAG_MAX_MS
    start_hw = part.log.high_watermark
    assert kernel.run_until(lambda k: part.log.high_watermark > start_hw
                            or follower.broker_epoch == k.cluster.brokers[2].incarnation,
                            max_ms=25_000)
    assert part.log.high_watermark > start_hw
    assert follower.broker_epoch < kernel.cluster.brokers[2].incarnation


def test_a_new_leader_counts_only_isr_followers_as_caught_up():
    """``Replica.resetReplicaState``: on [0, 1, 2, 3], follower 2 is out of the ISR when
    leader 0 crashes; for the new leader 1, follower 3 (in the ISR) is caught up at the
    election, 2 and the fenced 0 never."""
    kernel, part = _busy_partition(10_000, 100_000, brokers=4)
    kernel.run(until_ms=20_000)
    assert part.isr == [0, 1, 3]
    faults.schedule(kernel, 21_000, faults.CrashBroker(0))
    assert kernel.run_until(lambda k: part.leader == 1, max_ms=40_000)
    assert part.isr == [1, 3]
    assert part.followers[3].last_caught_up_ms == kernel.now_ms
    assert part.followers[2].last_caught_up_ms == part.followers[0].last_caught_up_ms == 0.0


def test_a_fenced_follower_that_still_fetches_does_not_hold_the_hw():
    """Follower 2 loses the controller at 10 s but keeps fetching from leader 0: fenced a
    session timeout later and out of the ISR, it may not join, so the HW runs ahead of its
    fetches although it is caught up."""
    kernel, part = _busy_partition(1_000_000, 1_000_001)  # no crash within the test
    faults.schedule(kernel, 10_000, faults.NetworkPartition((2,), ("controller",)))
    assert kernel.run_until(lambda k: 2 not in part.isr, max_ms=30_000)
    follower = part.followers[2]
    assert not kernel.controller.may_join_isr(2)
    assert kernel.run_until(lambda k: part.log.high_watermark > follower.log_end_offset
                            and k.now_ms - follower.last_caught_up_ms <= LAG_MAX_MS
                            and follower.broker_epoch == k.cluster.brokers[2].incarnation,
                            max_ms=40_000)


def test_a_follower_that_crashes_while_it_catches_up_holds_the_hw_until_it_is_fenced():
    """Follower 2 crashes again just after its first fetch from its restarted process. The
    leader's metadata still holds the registration of that process, unfenced until its session
    times out (``KRaftMetadataCache.getAliveBrokerEpoch``), and it is still caught up within
    replica.lag.time.max.ms: ``isReplicaIsrEligible`` holds, so the HW stays where it was until
    the controller fences the broker, then moves on with the ISR."""
    kernel, part = _busy_partition(10_000, 20_000)
    _first_fetch_after_restart(kernel, part, 20_000)
    follower = part.followers[2]
    assert follower.log_end_offset < part.log.high_watermark  # it holds the HW where it is
    faults.schedule(kernel, kernel.now_ms + 1, faults.CrashBroker(2))
    kernel.run(until_ms=kernel.now_ms + 2)
    held_hw, crashed_ms = part.log.high_watermark, kernel.now_ms
    assert kernel.run_until(lambda k: 2 in k.controller.fenced, max_ms=crashed_ms + 10_000)
    assert kernel.now_ms - crashed_ms >= 8_000  # broker.session.timeout.ms after the crash
    assert part.log.high_watermark == held_hw  # appends went on: the ISR alone was ahead
    assert kernel.now_ms - follower.last_caught_up_ms <= LAG_MAX_MS  # caught up all along
    kernel.run(until_ms=kernel.now_ms + 500)
    assert part.log.high_watermark > held_hw


def test_a_follower_cut_off_after_its_first_fetch_holds_the_hw_until_its_lag_runs_out():
    """Follower 2's first fetch after its restart reaches leader 0, then the link between them
    is cut. Its last caught-up time is that of its last fetch before the crash (a fetch at or
    past the leader's log end at the previous fetch, ``Replica.updateFetchStateOrThrow``), so
    the HW stays held until replica.lag.time.max.ms after that time, not after the restart,
    and moves on with the next append."""
    kernel, part = _busy_partition(10_000, 20_000)
    _first_fetch_after_restart(kernel, part, 20_000)
    faults.schedule(kernel, kernel.now_ms + 0.1, faults.NetworkPartition((2,), (0,)))
    follower = part.followers[2]
    caught_up_ms = follower.last_caught_up_ms
    assert caught_up_ms < 10_000  # before the crash
    held_hw = part.log.high_watermark
    kernel.run(until_ms=caught_up_ms + LAG_MAX_MS - 1)
    assert part.log.high_watermark == held_hw
    assert follower.last_caught_up_ms == caught_up_ms  # nothing reached the leader since
    kernel.run(until_ms=caught_up_ms + LAG_MAX_MS + 100)  # appends come every millisecond
    assert part.log.high_watermark > held_hw
