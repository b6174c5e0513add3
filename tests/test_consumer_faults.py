"""Consumers under faults: no run hangs, and each commit strategy keeps its promise.

- The heartbeat thread compares times one way only (a float livelock once hung 1 run in 6).
- A member that was removed from its group learns it at its next heartbeat or commit: its
  ``commit_sync`` raises ``CommitFailedError``, it loses its partitions (``onPartitionsLost``)
  and rejoins, so an at-most-once application never processes a record twice.
- A fault aimed at a consumer that is crashed by then is refused when the scenario loads.
- A small stress test: random crash / hang / leave / restart schedules under each commit
  strategy all end, commit-after-processing never skips, commit-before-processing never
  processes a record twice.
"""

from __future__ import annotations

import itertools
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import faults, scenarios
from sim.audit import audit_kernel
from sim.consumer import (
    CommitFailedError,
    CommitTimeoutError,
    Consumer,
    LogTruncationError,
    OffsetAndMetadata,
    metrics,
)
from sim.consumer import events as ev
from sim.consumer.apps import at_least_once, at_most_once
from sim.consumer.faults import ConsumerHang
from sim.errors import ScenarioError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition
from sim.workloads import Workload
from tests.truncation_support import TP, leader_ahead_of_its_follower, offsets_read

# -- the heartbeat thread never waits 0 ms in a loop -------------------------------------------

# A float pair where the two ways of asking "is a heartbeat due?" disagree: last + 3000 rounds
# down to exactly NOW, while NOW - last rounds to just under 3000.
LAST_HEARTBEAT_MS, NOW_MS = 13436.424411240123, 16436.42441124012


def test_heartbeat_due_exactly_at_a_rounding_boundary_is_sent_not_spun_on():
    """heartbeat.interval.ms after the last heartbeat (to the last bit), the heartbeat thread
    sends one and waits a whole interval; it used to wait 0 ms at that instant for ever."""
    assert NOW_MS - LAST_HEARTBEAT_MS < 3000
    assert LAST_HEARTBEAT_MS + 3000 <= NOW_MS
    kernel = Kernel(seed=0, brokers=1)
    kernel.cluster.create_topic("t", partitions=1)
    consumer = Consumer(kernel, {"group.id": "g", "enable.auto.commit": False}, at_least_once)
    consumer.subscribe(["t"])
    consumer.run()
    at = []

    def rewind_last_heartbeat(_event):
        at.append(kernel.now_ms)
        consumer.coordinator.last_heartbeat_ms = LAST_HEARTBEAT_MS
        consumer.notify_state()  # the heartbeat thread looks again, at this very instant

    kernel.env.timeout(NOW_MS).callbacks.append(rewind_last_heartbeat)
    kernel.run(NOW_MS + 1000)
    assert at == [NOW_MS]
    assert consumer.coordinator.last_heartbeat_ms == NOW_MS
    assert consumer.coordinator.state == "STABLE"


# -- a member removed from its group: CommitFailedError, onPartitionsLost, rejoin --------------

def trickle(records: int = 3000, rate: float = 50.0) -> Kernel:
    """One broker, topic t with 2 partitions fed slowly, so that consumers wait in poll()."""
    kernel = Kernel(seed=1, brokers=1)
    kernel.cluster.create_topic("t", partitions=2)
    producer = Producer(kernel, {"partitioner.class": "RoundRobinPartitioner"})
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", records, rate))
    return kernel


def pair(kernel: Kernel, app) -> list[Consumer]:
    """Two members of group g (session.timeout.ms 10 s, 1 ms a record), started at once."""
    members = []
    for name in ("c0", "c1"):
        consumer = Consumer(kernel, {"group.id": "g", "client.id": name,
                                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                     "session.timeout.ms": 10000}, app, 1.0)
        consumer.subscribe(["t"])
        members.append(consumer.run())
    return members


def hung_pair(app) -> tuple[Kernel, Consumer]:
    """c0 freezes from 20 s to 35 s, waiting in poll(); the group drops it at about 27 s."""
    kernel = trickle()
    zombie, _ = pair(kernel, app)
    faults.schedule(kernel, 20000, ConsumerHang("c0", 15000))
    kernel.run(70000)
    return kernel, zombie


def test_at_most_once_member_removed_during_a_hang_never_processes_twice():
    """c0 wakes in poll() and gets records of partitions the group gave c1 meanwhile; its
    commit fails (UNKNOWN_MEMBER_ID), so it processes none of them (once 375 twice)."""
    kernel, zombie = hung_pair(at_most_once)
    report = audit_kernel(kernel)
    assert report.processed_twice == 0
    refused = zombie.commits()
    refused = refused[refused["error"] == "UNKNOWN_MEMBER_ID"]
    assert len(refused) > 0
    sent_ms = float(refused["sent_ms"].min())
    polled = zombie.reads()
    late = polled[polled["time_ms"] >= 35000]
    first_poll = late[late["poll"] == late["poll"].min()]
    done = zombie.processed()
    assert first_poll["time_ms"].iloc[0] <= sent_ms
    assert not done["record_id"].isin(first_poll["record_id"]).any()


def test_a_fenced_member_loses_its_partitions_and_rejoins():
    """KIP-429: after the refused commit, c0's next poll gives its partitions up as *lost*
    (not revoked), then it joins again and gets a share in a new generation."""
    kernel, zombie = hung_pair(at_most_once)
    lost = kernel.trace.frame(ev.CONSUMER_LOST)
    lost = lost[lost["component"] == "c0"]
    assert len(lost) == 1
    assert lost["time_ms"].iloc[0] >= 35000
    joins = kernel.trace.frame(ev.GROUP_JOIN)
    assert (joins[joins["component"] == "c0"]["time_ms"] >= lost["time_ms"].iloc[0]).any()
    assert zombie.generation > 1
    assert len(zombie.assignment()) == 1


def test_at_least_once_member_removed_during_a_hang_never_skips():
    """The same hang under process-then-commit: the refused commit means c1 reprocesses what
    c0 processed after waking, and nothing is skipped."""
    kernel, _ = hung_pair(at_least_once)
    report = audit_kernel(kernel)
    assert report.skipped == 0
    assert report.processed_twice > 0


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[TopicPartition]]] = []

    def on_partitions_assigned(self, partitions):
        self.calls.append(("assigned", sorted(partitions)))

    def on_partitions_revoked(self, partitions):
        self.calls.append(("revoked", sorted(partitions)))

    def on_partitions_lost(self, partitions):
        self.calls.append(("lost", sorted(partitions)))


def test_commit_sync_from_a_notebook_raises_commit_failed_after_a_poll_timeout():
    """A consumer driven by hand that stops polling for max.poll.interval.ms leaves the
    group; commit_sync() raises CommitFailedError, and the next poll() calls
    on_partitions_lost, not on_partitions_revoked, then rejoins."""
    kernel = trickle()
    listener = Listener()
    consumer = Consumer(kernel, {"group.id": "g", "enable.auto.commit": False,
                                 "auto.offset.reset": "earliest",
                                 "max.poll.interval.ms": 10000})
    consumer.subscribe(["t"], listener)
    while not consumer.assignment():
        consumer.poll(100)
    both = [TopicPartition("t", 0), TopicPartition("t", 1)]
    assert listener.calls == [("assigned", both)]
    consumer.poll(100)
    kernel.run(kernel.now_ms + 15000)  # no poll: the heartbeat thread leaves the group
    with pytest.raises(CommitFailedError, match=r"max\.poll\.interval\.ms"):
        consumer.commit_sync()
    consumer.poll(100)
    assert listener.calls[1] == ("lost", both)
    assert consumer.assignment() == []
    while not consumer.assignment():
        consumer.poll(100)
    assert listener.calls[2:] == [("assigned", both)]


def test_at_most_once_in_a_cooperative_rebalance_reads_refused_batches_again():
    """Commit-before-processing while cooperative rebalances run: a commit refused with
    REBALANCE_IN_PROGRESS raises, the batch is not processed, the partitions kept are read
    again from that batch once the group is stable: nothing skipped, nothing twice (the
    commit error used to be ignored and 888 records were processed twice)."""
    text = (Path(scenarios.__file__).parent / "rebalance-cooperative.yaml").read_text()
    assert text.count("app: auto-commit") == 3
    scenario = scenarios.parse(text.replace("app: auto-commit", "app: at-most-once"), "x.yaml")
    kernel = scenario.run()
    refused = pd.concat([c.commits() for c in metrics.consumers(kernel)])
    assert (refused["error"] == "REBALANCE_IN_PROGRESS").any()
    report = audit_kernel(kernel)
    assert (report.skipped, report.processed_twice) == (0, 0)
    assert report.processed > 6000


# -- faults that do not fit the consumer's state are refused at load time ----------------------

FAULT_BASE = """\
name: bad
duration_ms: 30000
topics: [{name: t, partitions: 2}]
producers: [{workload: {topic: t, records: 1000, rate_per_s: 100}}]
consumers: [{group: g, topics: [t], count: 2}, {group: g, topics: [t], name: late, start_ms: null}]
faults:
"""


@pytest.mark.parametrize(("faults_yaml", "message"), [
    ("  - {at_ms: 5000, crash: {consumer: consumer-g-1}}\n"
     "  - {at_ms: 8000, crash: {consumer: consumer-g-1}}",
     r"faults\[1\]\.crash\.consumer aims a crash at consumer-g-1 at 8000 ms, but it has crashed "
     r"at 5000 ms \(faults\[0\]\); restart it first"),
    # listed out of order: the run applies them by time
    ("  - {at_ms: 9000, hang: {consumer: consumer-g-2, duration_ms: 100}}\n"
     "  - {at_ms: 4000, leave: {consumer: consumer-g-2}}",
     r"faults\[0\]\.hang\.consumer aims a hang at consumer-g-2 at 9000 ms, but it has left at "
     r"4000 ms \(faults\[1\]\)"),
    ("  - {at_ms: 5000, restart: {consumer: consumer-g-1}}",
     r"faults\[0\]\.restart\.consumer restarts consumer-g-1 at 5000 ms, but it is running then"),
    ("  - {at_ms: 5000, crash: {consumer: consumer-g-1}}\n"
     "  - {at_ms: 6000, join: {consumer: consumer-g-1}}",
     r"faults\[1\]\.join\.consumer aims a join at consumer-g-1 .* but it has crashed"),
    ("  - {at_ms: 5000, leave: {consumer: late}}",
     r"faults\[0\]\.leave\.consumer makes late leave at 5000 ms, but it has not started"),
])
def test_a_fault_aimed_at_a_consumer_in_the_wrong_state_is_refused_at_load(faults_yaml,
                                                                          message):
    """A crash of a crashed consumer (and the like) used to pass validation and abort the run
    with IllegalStateError; now loading the scenario names the fault, its time and why."""
    with pytest.raises(ScenarioError, match=message):
        scenarios.parse(FAULT_BASE + faults_yaml, "bad.yaml")


def test_faults_that_fit_the_consumer_state_load_and_run():
    """Crash, restart, crash again; join a late consumer, then make it leave and restart it
    at the same instant: accepted, and the run ends without an error."""
    text = FAULT_BASE + (
        "  - {at_ms: 5000, crash: {consumer: consumer-g-1}}\n"
        "  - {at_ms: 7000, restart: {consumer: consumer-g-1}}\n"
        "  - {at_ms: 9000, crash: {consumer: consumer-g-1}}\n"
        "  - {at_ms: 6000, join: {consumer: late}}\n"
        "  - {at_ms: 12000, leave: {consumer: late}}\n"
        "  - {at_ms: 12000, restart: {consumer: late}}\n"
        "  - {at_ms: 13000, slow: {consumer: consumer-g-1, factor: 2}}")
    kernel = scenarios.parse(text, "ok.yaml").run()
    late = next(c for c in kernel.clients if getattr(c, "client_id", "") == "late")
    assert late.state == "running"
    assert late.incarnation == 1


# -- a small stress test: random consumer-fault schedules --------------------------------------

STRESS_RUNS = 12  # schedules per commit strategy
STRESS_WALL_S = 60  # a run that takes longer than this has hung: the harness stops it

STRESS_BASE = """\
name: stress-{seed}
seed: {seed}
duration_ms: 40000
cluster: {{brokers: 1}}
topics: [{{name: t, partitions: 4}}]
producers:
  - config: {{client.id: p}}
    workload: {{topic: t, records: 1200, rate_per_s: 100, keys: {{uniform: 200}}}}
group_coordinator: {{group.initial.rebalance.delay.ms: 500}}
consumers:
  - group: g
    topics: [t]
    count: 3
    app: {app}
    processing_ms_per_record: {per_ms}
    config: {{max.poll.records: 50, session.timeout.ms: 6000, heartbeat.interval.ms: 2000,
              max.poll.interval.ms: 20000, auto.offset.reset: earliest,
              auto.commit.interval.ms: 1000, partition.assignment.strategy: [{assignor}]}}
faults:
"""


def stress_schedule(app: str, seed: int) -> str:
    """A random, valid consumer-fault schedule as scenario YAML (replay it with
    ``python -m sim run FILE.yaml``): crashes, hangs, leaves and restarts in the first 16 s,
    then every consumer that is down restarts, so that the group finishes the topic."""
    rng = np.random.default_rng(seed)
    names = [f"consumer-g-{k}" for k in (1, 2, 3)]
    text = STRESS_BASE.format(seed=seed, app=app, per_ms=float(rng.choice([1, 3, 8])),
                              assignor=rng.choice(["range", "cooperative-sticky"]))
    up = dict.fromkeys(names, True)
    times = np.sort(rng.uniform(1000, 16000, int(rng.integers(2, 7)))).round()
    for at_ms in times:
        name = names[int(rng.integers(len(names)))]
        if up[name]:
            kind = str(rng.choice(["crash", "hang", "hang", "leave"]))
        else:
            kind = "restart"
        body = f"consumer: {name}"
        if kind == "hang":
            body += f", duration_ms: {int(rng.choice([500, 4000, 9000, 15000]))}"
        text += f"  - {{at_ms: {int(at_ms)}, {kind}: {{{body}}}}}\n"
        up[name] = kind in ("hang", "restart")
    for name in names:
        if not up[name]:
            text += f"  - {{at_ms: 18000, restart: {{consumer: {name}}}}}\n"
    return text


class Hung(Exception):  # noqa: N818 - what the harness reports
    """The wall-clock bound of one stress run passed."""


def run_bounded(text: str, seed: int) -> Kernel:
    """Run a scenario text; raise ``Hung`` if it takes more than STRESS_WALL_S seconds."""
    def alarm(_signum, _frame):
        raise Hung(f"stress run {seed} did not end within {STRESS_WALL_S} s:\n{text}")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(STRESS_WALL_S)
    try:
        return scenarios.parse(text, f"stress-{seed}.yaml").run()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("app", ["at-most-once", "at-least-once", "auto-commit"])
def test_random_consumer_fault_schedules_end_and_keep_the_commit_promise(app):
    """Random crash / hang / leave / restart schedules, eager and cooperative: every run ends,
    and processes every record; commit-before-processing never processes a record twice;
    commit-after-processing (by hand or automatic) never skips one."""
    for seed in range(STRESS_RUNS):
        text = stress_schedule(app, seed)
        report = audit_kernel(run_bounded(text, seed))
        where = f"seed {seed}, {app}:\n{text}"
        assert report.read == report.acknowledged == 1200, where
        if app == "at-most-once":
            assert report.processed_twice == 0, where
        else:
            assert report.skipped == 0, where
            assert report.processed == 1200, where


# -- commit_sync and a coordinator that cannot store offsets -------------------------------------

def stable_member() -> tuple[Kernel, Consumer]:
    kernel = trickle()
    consumer = Consumer(kernel, {"group.id": "g", "enable.auto.commit": False,
                                 "auto.offset.reset": "earliest"})
    consumer.subscribe(["t"])
    while not consumer.assignment():
        consumer.poll(100)
    consumer.poll(100)
    return kernel, consumer


def unavailable_for(consumer: Consumer, attempts: float) -> None:
    """The coordinator answers COORDINATOR_NOT_AVAILABLE to the next ``attempts`` commits."""
    gc = consumer.group_coordinator
    real = gc.commit_offsets
    left = [attempts]

    def commit_offsets(*args):
        if left[0] > 0:
            left[0] -= 1
            return gc.kernel.env.event().succeed("COORDINATOR_NOT_AVAILABLE")
        return real(*args)

    gc.commit_offsets = commit_offsets


def test_commit_sync_retries_while_the_coordinator_is_unavailable():
    """commitOffsetsSync: a retriable error is retried every retry.backoff.ms (100 ms) until
    the commit is stored; the application sees no error."""
    _, consumer = stable_member()
    unavailable_for(consumer, 3)
    consumer.commit_sync()
    commits = consumer.commits()
    assert commits.groupby("seq")["error"].first().tolist()[-4:] == [
        "COORDINATOR_NOT_AVAILABLE"] * 3 + [""]
    sent = commits.groupby("seq")["sent_ms"].first().to_numpy()[-4:]
    assert (np.diff(sent) >= 100).all()
    assert consumer.committed()[TopicPartition("t", 0)].offset == consumer.position(
        TopicPartition("t", 0))


def test_commit_sync_gives_up_after_default_api_timeout_ms():
    """No working coordinator for ever: after default.api.timeout.ms (60 s) commit_sync raises
    CommitTimeoutError (Kafka's TimeoutException) and nothing was stored."""
    kernel, consumer = stable_member()
    unavailable_for(consumer, float("inf"))
    start_ms = kernel.now_ms
    with pytest.raises(CommitTimeoutError, match=r"default\.api\.timeout\.ms"):
        consumer.commit_sync()
    assert 59_900 <= kernel.now_ms - start_ms <= 60_000
    assert consumer.committed()[TopicPartition("t", 0)] is None


# -- KIP-320: a position past a truncation -----------------------------------------------------

def _ahead_of_a_truncated_leader(reset: str, new_records: int = 5
                                 ) -> tuple[Kernel, Consumer, TopicPartition]:
    """A consumer that read 60 records of ``t-0``, 50 of them only the old leader had; an
    unclean election makes the stale replica (10 records) leader, which then takes
    ``new_records`` more (``tests.truncation_support``)."""
    world = leader_ahead_of_its_follower(brokers=2)
    consumer = Consumer(world.kernel, {"auto.offset.reset": reset})
    consumer.assign([TP])
    consumer.seek(TP, 0)
    world.read_all(consumer)
    world.elect_stale_replica(new_records)
    return world.kernel, consumer, TP


@pytest.mark.parametrize("reset", ["earliest", "latest"])
def test_a_consumer_ahead_of_a_truncated_leader_resumes_at_the_divergence_point(reset):
    """KIP-320: after the leader change the consumer validates its position (60) against the
    new leader's epoch cache; its last record's epoch ends at 10 there, so it resumes at 10,
    reading the 5 new records once, not from 0 (earliest) nor from 15 (latest)."""
    kernel, consumer, _ = _ahead_of_a_truncated_leader(reset)
    assert offsets_read(consumer, polls=20) == [10, 11, 12, 13, 14]
    resets = kernel.trace.frame(ev.CONSUMER_OFFSET_RESET)
    assert resets[["from_offset", "offset"]].values.tolist() == [[60, 10]]
    assert resets["reason"].str.contains("truncation detected").all()


def test_a_consumer_ahead_of_a_truncated_leader_without_a_reset_policy_raises():
    """With auto.offset.reset=none the truncation is an error naming the partition, its
    position and the divergence point (``LogTruncationException.offsetOutOfRangePartitions``
    and ``divergentOffsets``)."""
    _, consumer, tp = _ahead_of_a_truncated_leader("none")
    with pytest.raises(LogTruncationError, match="truncation detected") as raised:
        consumer.poll(100)
    error = raised.value
    assert (error.partition, error.fetch_offset, error.divergent_offset) == (tp, 60, 10)
    assert error.divergent_offsets() == {tp: OffsetAndMetadata(10, error.divergent_epoch)}
    assert error.divergent_epoch is not None


def test_after_a_log_truncation_error_the_partition_is_not_read_until_the_application_seeks():
    """``SubscriptionState.maybeCompleteValidation`` returns the ``LogTruncation`` and leaves
    the partition in AWAIT_VALIDATION: not fetchable, its position not valid (``position()``
    does not return it) and not committed (``allConsumed`` takes valid positions only). The
    log has grown past the position again (65 records), so reading on from 60 would skip the
    50 records that replaced the truncated ones."""
    _, consumer, tp = _ahead_of_a_truncated_leader("none", new_records=55)
    with pytest.raises(LogTruncationError):
        consumer.poll(100)
    assert offsets_read(consumer, polls=100) == []  # 10 s, within request.timeout.ms
    with pytest.raises(LogTruncationError, match="at position 60"):
        consumer.position(tp)
    assert tp not in consumer.consumed_offsets()


def test_a_log_truncation_is_raised_again_each_time_the_validation_is_retried():
    """The partitions of an OffsetsForLeaderEpoch request may be validated again
    ``request.timeout.ms`` (30 s) after it (``OffsetFetcher.validatePositionsAsync``:
    ``setNextAllowedRetry``); the answer shows the same truncation, so ``poll()`` throws
    ``LogTruncationException`` again, and keeps doing so until the application seeks."""
    kernel, consumer, _ = _ahead_of_a_truncated_leader("none", new_records=55)
    raised: list[tuple[float, int | None]] = []
    while len(raised) < 3:
        try:
            assert not consumer.poll(100)
        except LogTruncationError as error:
            raised.append((kernel.now_ms, error.divergent_offset))
    times = [at_ms for at_ms, _ in raised]
    assert [later - earlier for earlier, later in itertools.pairwise(times)] \
        == [pytest.approx(30_000, abs=100)] * 2
    assert [divergent for _, divergent in raised] == [10, 10, 10]


@pytest.mark.parametrize(("seek_to", "expected"), [
    ("divergent", list(range(10, 65))),
    (0, list(range(65))),
])
def test_a_seek_after_a_log_truncation_error_resumes_reading(seek_to, expected):
    """A seek ends the wait for validation: to an offset (``seekValidated``), or to the
    ``divergentOffsets()`` entry, an ``OffsetAndMetadata`` with its leader epoch
    (``KafkaConsumer.seek(TopicPartition, OffsetAndMetadata)`` → ``seekUnvalidated``), which
    validates and reads the 55 records that replaced the truncated ones, once."""
    _, consumer, tp = _ahead_of_a_truncated_leader("none", new_records=55)
    with pytest.raises(LogTruncationError) as raised:
        consumer.poll(100)
    consumer.seek(tp, raised.value.divergent_offsets()[tp] if seek_to == "divergent"
                  else seek_to)
    assert offsets_read(consumer) == expected
    assert consumer.consumed_offsets() == {tp: 65}


def test_a_position_awaiting_validation_after_a_leader_change_is_not_committed():
    """``SubscriptionState.allConsumed`` commits only positions whose fetch state
    ``hasValidPosition``: after the leader change ``maybeValidatePosition`` moves the position
    (60, with its epoch) to AWAIT_VALIDATION, and while the consumer cannot reach the new
    leader a ``commitSync()`` leaves it out, so the group keeps its last commit (30) instead
    of 60, past the truncation. Once the leader answers, the position is validated (reset to
    the divergence, 10) and committed again."""
    world = leader_ahead_of_its_follower(brokers=3)
    consumer = Consumer(world.kernel, {"group.id": "g", "enable.auto.commit": False,
                                       "client.id": "c", "auto.offset.reset": "earliest"})
    consumer.assign([TP])
    consumer.seek(TP, 0)
    while consumer.position(TP) < 30:
        consumer.poll(100)
    consumer.commit_sync({TP: 30})
    world.read_all(consumer)
    faults.NetworkPartition(("c",), (world.stale,)).apply(world.kernel)
    world.elect_stale_replica(new_records=5)
    assert offsets_read(consumer, polls=10) == []  # the new leader is out of reach
    assert TP not in consumer.consumed_offsets()
    consumer.commit_sync()
    assert consumer.committed([TP])[TP].offset == 30
    faults.HealNetwork(("c",), (world.stale,)).apply(world.kernel)
    assert offsets_read(consumer, polls=10) == [10, 11, 12, 13, 14]
    consumer.commit_sync()
    assert consumer.committed([TP])[TP].offset == 15


def test_a_position_is_awaiting_validation_from_the_leader_change_not_from_the_next_fetch():
    """Kafka moves the position to AWAIT_VALIDATION as soon as the metadata shows the new
    leader epoch (``maybeValidatePositionForCurrentLeader``), so a commit right after the
    leader change, before any poll, leaves the position out too."""
    world = leader_ahead_of_its_follower(brokers=3)
    consumer = Consumer(world.kernel, {"group.id": "g", "enable.auto.commit": False,
                                       "auto.offset.reset": "earliest"})
    consumer.assign([TP])
    consumer.seek(TP, 0)
    world.read_all(consumer)
    assert consumer.consumed_offsets() == {TP: 60}
    world.elect_stale_replica(new_records=5)
    assert consumer.consumed_offsets() == {}
