"""The idempotent producer end to end: broker producer state, client sequences, timeouts.

Kafka's rules pinned here: ``ProducerStateEntry.findDuplicateBatch`` (producer id, epoch, exact
first and last sequence, last ``NUM_BATCHES_TO_RETAIN`` = 5 batches), ``ProducerAppendInfo``
(``checkProducerEpoch``, ``checkSequence``), the state rebuilt with the log
(``ProducerStateManager.truncateAndReload``) and the client's ``TransactionManager`` (KIP-360).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import faults, scenarios
from sim import trace as events
from sim.audit import audit_kernel
from sim.broker.log import PartitionLog
from sim.broker.producer_state import (
    INVALID_PRODUCER_EPOCH,
    NUM_BATCHES_TO_RETAIN,
    OUT_OF_ORDER_SEQUENCE_NUMBER,
    ProducerStateManager,
    last_sequence,
)
from sim.kernel import Kernel
from sim.producer import Producer
from sim.producer.accumulator import ProducerBatch
from sim.producer.transaction_manager import TransactionManager
from tests.strategies import producer_batches

SCENARIOS = Path(__file__).parent / "data" / "scenarios"
PID = 7


def columns(n: int) -> dict[str, np.ndarray]:
    return {"timestamp_ms": np.zeros(n, np.int64), "key_hash": np.zeros(n, np.int32),
            "value_size": np.zeros(n, np.int32), "record_id": np.arange(n, dtype=np.int64)}


def write(log: PartitionLog, first_seq: int, records: int, epoch: int = 0) -> int:
    return log.append_batch(columns(records), 100, PID, 0, first_seq, epoch)


# --- Defect 1: a sequence collision is not a duplicate -------------------------------------------

def test_sequence_collision_scenario_loses_nothing():
    """Issue 12's minimal case (seed 67): no acknowledged record lost, none written twice."""
    kernel = scenarios.load(SCENARIOS / "idempotent-sequence-collision.yaml").run()
    report = audit_kernel(kernel)
    assert report.acknowledged > 0
    assert report.lost == 0
    assert report.duplicates == 0
    assert report.counts["inconsistent-offsets"] == 0
    assert report.counts["nonmonotonic-send"] == 0


def test_duplicate_needs_the_exact_first_and_last_sequence():
    """A retry matches a kept batch only on epoch, first and last sequence (findDuplicateBatch)."""
    state = ProducerStateManager()
    state.update(PID, 0, 0, 3, 10)  # sequences 0-2 at offsets 10-12
    state.update(PID, 0, 3, 2, 13)  # sequences 3-4 at offsets 13-14
    hit = state.find_duplicate_batch(PID, 0, 3, 4)
    assert (hit.first_offset, hit.last_offset) == (13, 14)
    assert state.find_duplicate_batch(PID, 0, 3, 5) is None  # same base, other batch
    assert state.find_duplicate_batch(PID, 1, 3, 4) is None  # same sequences, new epoch
    assert state.find_duplicate_batch(PID + 1, 0, 3, 4) is None


def test_only_the_last_five_batches_are_kept():
    """ProducerStateEntry.NUM_BATCHES_TO_RETAIN: the sixth batch pushes the first out."""
    state = ProducerStateManager()
    for i in range(NUM_BATCHES_TO_RETAIN + 1):
        state.update(PID, 0, i, 1, i)
    assert NUM_BATCHES_TO_RETAIN == 5
    assert state.find_duplicate_batch(PID, 0, 0, 0) is None
    assert state.find_duplicate_batch(PID, 0, 1, 1) is not None
    assert len(state.last_entry(PID).batches) == 5


def test_sequence_rules_of_producer_append_info():
    """In order within an epoch; a new epoch starts at 0; an older epoch is refused."""
    state = ProducerStateManager()
    assert state.check_append(PID, 0, 42) is None  # unknown producer: any sequence
    state.update(PID, 1, 0, 5, 0)  # sequences 0-4 of epoch 1
    assert state.check_append(PID, 1, 5) is None
    assert state.check_append(PID, 1, 6) == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state.check_append(PID, 1, 4) == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state.check_append(PID, 2, 0) is None
    assert state.check_append(PID, 2, 5) == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state.check_append(PID, 0, 5) == INVALID_PRODUCER_EPOCH


@given(history=st.lists(producer_batches, max_size=12), batch=producer_batches)
def test_the_leaders_one_pass_check_agrees_with_its_two_steps(history, batch):
    """``analyze_and_validate`` answers as ``find_duplicate_batch`` then ``check_append``."""
    state = ProducerStateManager()
    for offset, (pid, epoch, first_seq, records) in enumerate(history):
        state.update(pid, epoch, first_seq, records, 10 * offset)
    pid, epoch, first_seq, records = batch
    duplicate = state.find_duplicate_batch(pid, epoch, first_seq,
                                           last_sequence(first_seq, records))
    error = None if duplicate is not None else state.check_append(pid, epoch, first_seq)
    assert state.analyze_and_validate(pid, epoch, first_seq, records) == (duplicate, error)


def test_a_new_epoch_forgets_the_old_epochs_batches():
    """ProducerStateEntry.maybeUpdateProducerEpoch clears the kept batches."""
    state = ProducerStateManager()
    state.update(PID, 0, 0, 3, 0)
    state.update(PID, 1, 0, 3, 3)
    assert state.find_duplicate_batch(PID, 0, 0, 2) is None
    assert state.find_duplicate_batch(PID, 1, 0, 2).first_offset == 3


# --- Defect 9: the producer state travels with the log -------------------------------------------

def test_a_follower_knows_the_producer_state_it_replicated():
    """A follower that becomes leader rejects a gap and spots a retry, like the old leader."""
    leader, follower = PartitionLog(), PartitionLog()
    write(leader, 0, 3)
    write(leader, 3, 2)
    follower.copy_batches_from(leader, leader.batches_from(0))
    state = follower.producer_state
    assert state.check_append(PID, 0, 9) == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state.check_append(PID, 0, 5) is None
    assert state.find_duplicate_batch(PID, 0, 3, 4).first_offset == 3


def test_truncation_rebuilds_the_producer_state_from_the_log():
    """After truncating a batch away, its sequences are expected again and no longer a duplicate."""
    log = PartitionLog()
    for i in range(7):
        write(log, 2 * i, 2)  # sequences 0-13 at offsets 0-13
    log.truncate_to(10)
    state = log.producer_state
    assert state.find_duplicate_batch(PID, 0, 10, 11) is None
    assert state.check_append(PID, 0, 10) is None
    assert state.check_append(PID, 0, 12) == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert [b.first_seq for b in state.last_entry(PID).batches] == [0, 2, 4, 6, 8]
    log.truncate_to(0)
    assert state.last_entry(PID) is None or log.producer_state.last_entry(PID) is None


# --- The client: TransactionManager --------------------------------------------------------------

def batch(records: int) -> ProducerBatch:
    b = ProducerBatch(0, 0.0, 16384)
    b.records = records
    return b


def test_epoch_bump_renumbers_in_flight_batches_of_that_partition_only():
    """KIP-360: the bumped partition's in-flight batches restart at 0 under the new epoch;
    another partition keeps its epoch until its in-flight batches are done."""
    tm = TransactionManager()
    a1, a2, b1 = batch(3), batch(2), batch(4)
    tm.assign_sequence(("t", 0), a1)
    tm.assign_sequence(("t", 0), a2)
    tm.assign_sequence(("t", 1), b1)
    tm.handle_failed_batch(("t", 0), a1, "REQUEST_TIMEOUT", adjust_sequences=True)
    assert tm.bump_epoch_if_needed()
    assert (a2.producer_epoch, a2.base_sequence, a2.sequence_reset) == (1, 0, True)
    assert (b1.producer_epoch, b1.base_sequence) == (0, 0)
    b2 = batch(1)
    assert tm.should_stop_drain(("t", 1), b2)  # old-epoch batch in flight: wait
    tm.handle_completed_batch(("t", 1), b1)
    assert not tm.should_stop_drain(("t", 1), b2)
    tm.assign_sequence(("t", 1), b2)
    assert (b2.producer_epoch, b2.base_sequence) == (1, 0)


def test_a_retry_waits_until_it_is_the_first_in_flight():
    """shouldStopDrainBatchesForPartition: retried batches go back in sequence order."""
    tm = TransactionManager()
    first, second = batch(2), batch(2)
    tm.assign_sequence(("t", 0), first)
    tm.assign_sequence(("t", 0), second)
    assert tm.should_stop_drain(("t", 0), second)
    assert not tm.should_stop_drain(("t", 0), first)


def test_out_of_order_after_the_last_acknowledged_batch_bumps_the_epoch():
    """canRetry: OUT_OF_ORDER_SEQUENCE_NUMBER for the next batch is a gap; for a later one, not."""
    tm = TransactionManager()
    first, second = batch(2), batch(2)
    tm.assign_sequence(("t", 0), first)
    tm.assign_sequence(("t", 0), second)
    assert tm.can_retry(("t", 0), second, OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert not tm.epoch_bump_required
    assert tm.can_retry(("t", 0), first, OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert tm.epoch_bump_required


def test_out_of_order_after_the_last_acknowledged_batch_fails_a_transactional_batch():
    """canRetry: for a transactional producer the gap is not retried (OutOfOrderSequence is
    no RetriableException), so the batch fails and the transaction must abort; a later batch
    still waits for the earlier one. Retried, it would be refused until delivery.timeout.ms
    while commitTransaction() waits for it."""
    tm = TransactionManager(transactional=True)
    first, second = batch(2), batch(2)
    tm.assign_sequence(("t", 0), first)
    tm.assign_sequence(("t", 0), second)
    assert tm.can_retry(("t", 0), second, OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert not tm.can_retry(("t", 0), first, OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert tm.can_retry(("t", 0), first, "NOT_LEADER_OR_FOLLOWER")

def test_an_expired_retry_leaves_the_sequence_unresolved_until_nothing_is_in_flight():
    """maybeResolveSequences: later batches acknowledged resolve it; otherwise bump the epoch."""
    tm = TransactionManager()
    first, second = batch(2), batch(2)
    tm.assign_sequence(("t", 0), first)
    tm.assign_sequence(("t", 0), second)
    tm.handle_failed_batch(("t", 0), first, "expired", adjust_sequences=False)
    tm.mark_sequence_unresolved(("t", 0), first)
    assert tm.should_stop_drain(("t", 0), batch(1))
    tm.handle_completed_batch(("t", 0), second)  # the leader had the expired batch after all
    tm.maybe_resolve_sequences()
    assert not tm.has_unresolved(("t", 0))
    assert not tm.epoch_bump_required


# --- Defect 4, producer side: timeouts need no other event ---------------------------------------

def test_requests_and_batches_time_out_in_an_idle_cluster():
    """Both followers crash; the acks=all request times out at request.timeout.ms and the record
    fails at delivery.timeout.ms, although nothing else happens meanwhile."""
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("t", 1, 3)
    part = kernel.cluster.partition("t", 0)
    for broker in part.replicas[1:]:
        faults.CrashBroker(broker).apply(kernel)
    producer = Producer(kernel, {"linger.ms": 0, "request.timeout.ms": 1000,
                                 "delivery.timeout.ms": 2500, "retry.backoff.ms": 100})
    producer.send("t", key="k")
    kernel.run(3000)  # the followers are not fenced before 9 s
    retries = kernel.trace.frame(events.PRODUCE_RETRY)
    assert retries["error"].iloc[0] == "REQUEST_TIMEOUT"
    assert retries["time_ms"].iloc[0] == pytest.approx(1000, abs=2)
    failed = kernel.trace.frame(events.PRODUCE_FAILED)
    assert failed["error"].tolist() == ["TimeoutException: delivery.timeout.ms expired"]
    assert failed["time_ms"].iloc[0] == pytest.approx(2500, abs=1)


def test_an_answered_request_leaves_no_timer_behind():
    """A run to the end stops when the last answer arrives, not request.timeout.ms later."""
    kernel = Kernel(seed=1, brokers=1)
    kernel.cluster.create_topic("t", 1, 1)
    producer = Producer(kernel, {"linger.ms": 0})
    producer.send("t", key="k").get()
    kernel.run()
    assert kernel.now_ms < 100


def test_a_lost_message_stops_its_connection_until_the_request_times_out():
    """A connection is ordered (TCP): after a lost request nothing later on it gets through;
    at request.timeout.ms the producer closes it and every request on it fails
    (NetworkClient.handleTimedOutRequests), so later batches are never written first."""
    kernel = Kernel(seed=1, brokers=1)
    kernel.cluster.create_topic("t", 1, 1)
    producer = Producer(kernel, {"linger.ms": 0, "request.timeout.ms": 1000,
                                 "client.id": "app"})
    kernel.cluster.network.set_loss(0, "app", 1.0)
    first = producer.send("t", key="a")
    kernel.cluster.network.set_loss(0, "app", 0.0)
    kernel.run(10)
    second = producer.send("t", key="b")
    kernel.run(999)
    assert not first.done()
    assert not second.done()  # stuck behind the first
    kernel.run(5000)
    completed = kernel.trace.frame(events.KINDS["request.completed"])
    assert completed["time_ms"].iloc[:2].tolist() == [1000, 1000]  # both cancelled at once
    assert [first.get().offset, second.get().offset] == [0, 1]


def test_a_timed_out_connection_fails_all_its_requests_before_a_new_batch_is_drained():
    """Five requests to one broker are lost (the first for partition 0, four for partition 1)
    and a fifth batch of partition 1 waits. When they time out, every request of the closed
    connection fails before the sender drains again: the waiting batch (no sequence yet) must
    not go out ahead of partition 1's earlier batches, which the broker, knowing nothing of
    the producer yet, would accept — the earlier ones would then be written after it, or
    twice."""
    kernel = Kernel(seed=1, brokers=1)
    kernel.cluster.create_topic("t", 2, 1)
    producer = Producer(kernel, {"linger.ms": 0, "request.timeout.ms": 1000,
                                 "client.id": "app"})
    kernel.cluster.network.set_loss(0, "app", 1.0)
    futures = [producer.send("t", key="a", partition=0)]
    kernel.cluster.network.set_loss(0, "app", 0.0)
    for i in range(5):
        kernel.run(kernel.now_ms + 10)
        futures.append(producer.send("t", key=f"b{i}", partition=1))
    kernel.run(kernel.now_ms + 10)
    sent = kernel.trace.frame(events.KINDS["request.sent"])
    assert len(sent) == 5  # max.in.flight.requests.per.connection: b4 waits
    kernel.run(10_000)
    assert [f.get().offset for f in futures[1:]] == [0, 1, 2, 3, 4]
    assert futures[0].get().offset == 0
    log = kernel.cluster.topic("t").partitions[1].log
    assert log.log_end_offset == 5
    assert audit_kernel(kernel).duplicates == 0


def test_a_crashed_producer_does_not_retry_a_request_that_times_out_after_the_crash():
    """A request is lost, then the producer's process crashes: when the request would have
    timed out nothing is retried — a dead process sends nothing — so the record is never
    written (a stream thread's stale count written after its task's new owner wrote the
    right one was this)."""
    kernel = Kernel(seed=1, brokers=1)
    kernel.cluster.create_topic("t", 1, 1)
    producer = Producer(kernel, {"linger.ms": 0, "request.timeout.ms": 1000,
                                 "client.id": "app"})
    kernel.cluster.network.set_loss(0, "app", 1.0)
    producer.send("t", key="a")
    kernel.run(10)
    kernel.cluster.network.set_loss(0, "app", 0.0)
    producer.crash()
    kernel.run()  # to the last event
    sent = kernel.trace.frame(events.KINDS["request.sent"])
    assert sent["time_ms"].tolist() == [0]
    assert kernel.trace.frame(events.KINDS["produce.retry"]).empty
    assert kernel.cluster.topic("t").partitions[0].log.log_end_offset == 0
    assert kernel.now_ms < 2000  # the timed-out request left no timer behind


def test_a_crashed_producer_ends_a_retried_batch_with_its_request_not_its_delivery_timeout():
    """A batch cut off from its leader is retried until its last request outlives
    ``delivery.timeout.ms`` (created at 0, sent again near 90 s, due at 120 s), and the process
    crashes in between. Only the sender thread expires batches in flight
    (``Sender.getExpiredInflightBatches``) and a dead process has none: the batch fails when its
    request times out. Waking the dead producer at the expiry, which it never carries out, woke
    it at that instant again and again without the clock moving."""
    kernel = Kernel(seed=1, brokers=1)
    kernel.cluster.create_topic("t", 1, 1)
    producer = Producer(kernel, {"client.id": "app"})  # request 30 s, delivery 120 s
    kernel.cluster.network.cut("app", 0)
    producer.send("t", key="a")
    kernel.run(100_000)
    sent = kernel.trace.frame(events.KINDS["request.sent"])["time_ms"].tolist()
    assert len(sent) == 4
    assert sent[-1] < 100_000  # in flight at the crash
    assert sent[-1] + 30_000 > 120_000  # due after the batch's delivery timeout
    producer.crash()
    kernel.run(200_000)
    (failed,) = kernel.trace.frame(events.KINDS["produce.failed"]).itertuples()
    assert failed.error == "REQUEST_TIMEOUT"
    assert failed.time_ms == sent[-1] + 30_000
    assert len(kernel.trace.frame(events.KINDS["request.sent"])) == 4  # nothing after the crash


def test_leader_change_with_a_lossy_link_keeps_order_and_writes_once():
    """A leader crash and a lossy client link (seed 1): no duplicate, no nonmonotonic-send."""
    kernel = scenarios.load(SCENARIOS / "idempotent-leader-change-lossy-link.yaml").run()
    report = audit_kernel(kernel)
    assert report.acknowledged > 2000
    assert report.valid
    assert report.duplicates == report.counts["nonmonotonic-send"] == 0
    assert report.lost == 0
