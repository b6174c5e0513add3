"""Transactions (KIP-98): the coordinator's state machine, markers, the LSO, read_committed,
fencing, timeouts and coordinator failover. Facts cite Kafka 4.0's classes."""

from __future__ import annotations

import pytest

from sim.broker import transaction_coordinator as tc
from sim.broker.producer_state import INVALID_PRODUCER_EPOCH
from sim.broker.transaction_index import ABORT, COMMIT
from sim.consumer import Consumer
from sim.consumer.classic_group import COORDINATOR_NOT_AVAILABLE
from sim.consumer.config import OFFSETS_TOPIC
from sim.consumer.group import group_coordinator
from sim.errors import (
    ConfigError,
    InvalidProducerEpochError,
    ProducerFencedError,
    SimulationError,
    TransactionError,
    TransactionStateError,
)
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition

TP0 = TopicPartition("out", 0)


def cluster(brokers: int = 3, partitions: int = 1, rf: int = 3) -> Kernel:
    kernel = Kernel(seed=3, brokers=brokers)
    kernel.cluster.create_topic("out", partitions, rf)
    return kernel


def txn_producer(kernel: Kernel, tid: str = "app-1", **config) -> Producer:
    return Producer(kernel, {"transactional.id": tid, "linger.ms": 0, **config})


def in_transaction(kernel: Kernel, records: int, tid: str = "app-1", partition: int = 0,
                   **config) -> Producer:
    """A transactional producer, initialised, with a transaction begun and ``records`` records
    sent to ``out``'s ``partition`` (not flushed)."""
    producer = txn_producer(kernel, tid, **config)
    producer.init_transactions()
    producer.begin_transaction()
    send(producer, records, partition)
    return producer


def send(producer: Producer, n: int, partition: int = 0) -> None:
    for i in range(n):
        producer.send("out", key=f"k{i}", value=i, partition=partition)


def read(kernel: Kernel, level: str, tp: TopicPartition = TP0) -> list[int]:
    consumer = Consumer(kernel, {"isolation.level": level, "auto.offset.reset": "earliest"})
    consumer.assign([tp])
    offsets = []
    while records := consumer.poll(timeout_ms=5):
        offsets += [r.offset for r in records]
    return offsets


def states(kernel: Kernel, tid: str = "app-1") -> list[str]:
    trace = kernel.trace.to_frame()
    rows = trace[(trace["kind"] == "txn.state") & (trace["transactional_id"] == tid)]
    return list(rows["state"])


# --- where a transactional id lives -----------------------------------------------------------


def test_coordinator_partition_is_java_hashcode_abs_mod_50():
    """``TransactionStateManager.partitionFor``: Utils.abs(id.hashCode()) % 50, the same rule
    as __consumer_offsets: "billing".hashCode() = -109829509 → 109829509 % 50 = 9."""
    kernel = cluster()
    coordinator = tc.transaction_coordinator(kernel)
    assert coordinator.partition_for("billing") == 9
    assert len(kernel.cluster.topic(tc.TRANSACTION_STATE_TOPIC).partitions) == 50
    assert coordinator.node_for("billing") == kernel.cluster.partition(
        tc.TRANSACTION_STATE_TOPIC, 9).leader


# --- the state machine ------------------------------------------------------------------------


def test_valid_previous_states_are_kafkas():
    """``TransactionState.validPreviousStates`` (Kafka 4.0)."""
    assert tc.VALID_PREVIOUS_STATES[tc.PREPARE_COMMIT] == {tc.ONGOING}
    assert tc.VALID_PREVIOUS_STATES[tc.COMPLETE_COMMIT] == {tc.PREPARE_COMMIT}
    assert tc.VALID_PREVIOUS_STATES[tc.COMPLETE_ABORT] == {tc.PREPARE_ABORT}
    assert tc.VALID_PREVIOUS_STATES[tc.PREPARE_EPOCH_FENCE] == {tc.ONGOING}
    assert tc.ONGOING in tc.VALID_PREVIOUS_STATES[tc.ONGOING]
    assert tc.PREPARE_EPOCH_FENCE in tc.VALID_PREVIOUS_STATES[tc.PREPARE_ABORT]
    meta = tc.TransactionMetadata("t", 1, state=tc.EMPTY)
    with pytest.raises(SimulationError, match="Empty → PrepareCommit"):
        meta.transit(tc.PREPARE_COMMIT)


def test_commit_walks_ongoing_prepare_complete_and_writes_markers():
    """Init writes Empty (epoch 0); the first add makes it Ongoing; EndTxn(commit) writes
    PrepareCommit, the markers, then CompleteCommit."""
    kernel = cluster()
    p = in_transaction(kernel, 3)
    p.commit_transaction()
    kernel.run(kernel.now_ms + 50)
    assert states(kernel) == [tc.EMPTY, tc.ONGOING, tc.PREPARE_COMMIT, tc.COMPLETE_COMMIT]
    batches = kernel.cluster.partition("out", 0).log.batches()
    assert list(batches["is_control"]) == [False, True]
    assert list(batches["is_transactional"]) == [True, True]


def test_marker_takes_an_offset_and_next_transaction_continues_after_it():
    kernel = cluster()
    p = txn_producer(kernel)
    p.init_transactions()
    for _ in range(2):
        p.begin_transaction()
        send(p, 3)
        p.commit_transaction()
    kernel.run(kernel.now_ms + 50)
    log = kernel.cluster.partition("out", 0).log
    assert list(log.batches()["base_offset"]) == [0, 3, 4, 7]  # markers at 3 and 7
    assert log.log_end_offset == 8
    assert list(log.column("key_hash", 3, 4)) == [COMMIT]


# --- LSO and read_committed -------------------------------------------------------------------


def test_read_committed_skips_aborted_records_and_markers_read_uncommitted_only_markers():
    kernel = cluster()
    p = in_transaction(kernel, 3)  # offsets 0-2, committed; marker 3
    p.commit_transaction()
    p.begin_transaction()
    send(p, 2)  # offsets 4-5, aborted; marker 6
    p.flush()
    p.abort_transaction()
    p.begin_transaction()
    send(p, 1)  # offset 7, committed; marker 8
    p.commit_transaction()
    kernel.run(kernel.now_ms + 50)
    log = kernel.cluster.partition("out", 0).log
    assert [(t.first_offset, t.last_offset) for t in log.transactions.aborted] == [(4, 6)]
    assert list(log.column("key_hash", 6, 7)) == [ABORT]
    assert read(kernel, "read_committed") == [0, 1, 2, 7]
    assert read(kernel, "read_uncommitted") == [0, 1, 2, 4, 5, 7]


def test_positions_move_past_markers_so_a_commit_after_them_is_not_read_again():
    kernel = cluster()
    p = in_transaction(kernel, 2)
    p.commit_transaction()
    kernel.run(kernel.now_ms + 50)
    consumer = Consumer(kernel, {"isolation.level": "read_committed",
                                 "auto.offset.reset": "earliest"})
    consumer.assign([TP0])
    assert [r.offset for r in consumer.poll(5)] == [0, 1]
    assert consumer.position(TP0) == 3  # past the marker at offset 2


def test_open_transaction_holds_the_lso_back_until_the_timeout_aborts_it():
    """A hanging transaction: the LSO stays at its first offset; read_committed reads nothing
    past it; the coordinator aborts it once transaction.timeout.ms has passed (checked every
    transaction.abort.timed.out.transaction.cleanup.interval.ms = 10 s) with a bumped epoch."""
    kernel = cluster()
    plain = Producer(kernel, {"linger.ms": 0, "client.id": "plain"})
    p = in_transaction(kernel, 2, **{"transaction.timeout.ms": 15000})
    p.flush()
    opened = kernel.now_ms
    for i in range(3):
        plain.send("out", value=i, partition=0).get()
    log = kernel.cluster.partition("out", 0).log
    assert log.high_watermark == 5
    assert log.last_stable_offset == 0
    assert read(kernel, "read_committed") == []
    kernel.run(opened + 14_000)
    assert log.last_stable_offset == 0
    kernel.run(opened + 30_000)
    assert log.last_stable_offset == log.high_watermark == 6  # the abort marker at 5
    assert read(kernel, "read_committed") == [2, 3, 4]
    assert states(kernel)[-2:] == [tc.PREPARE_ABORT, tc.COMPLETE_ABORT]
    with pytest.raises(ProducerFencedError, match="newer producer"):
        p.commit_transaction()


def late_batch(kernel: Kernel, producer: Producer, partition: int, sequence: int) -> list:
    """A transactional batch of two records from ``producer`` (its id and epoch, base
    ``sequence``) reaching the leader of ``out``'s ``partition`` now: a request that sat in a
    slow broker's queue while its batch expired at the client and the transaction ended.
    Returns the answers."""
    import numpy as np

    from sim.broker.log import RECORD_COLUMNS

    part = kernel.cluster.partition("out", partition)
    columns = {name: np.zeros(2, dtype) for name, dtype in RECORD_COLUMNS.items()}
    txn = producer.txn
    answers: list = []
    kernel.replicas.append(part.leader, "out", partition, columns, 100, txn.producer_id,
                           sequence, "all", 30000, answers.append, txn.producer_epoch,
                           transactional=True)
    kernel.run(kernel.now_ms + 50)
    return answers


def test_a_batch_arriving_after_its_transaction_ended_is_refused_not_left_hanging():
    """KIP-890 part 1: a leader verifies with the transaction coordinator a producer's first
    transactional batch in a partition (``UnifiedLog.maybeStartTransactionVerification``,
    ``TransactionCoordinator.handleVerifyPartitionsInTransaction``). A batch delayed past its
    transaction's abort is no longer in any open transaction: it is refused
    (INVALID_TXN_STATE), instead of opening a transaction no marker ends, which would hold the
    last stable offset — and every read_committed reader and restore — back for ever."""
    kernel = cluster()
    p = in_transaction(kernel, 3)
    p.flush()
    p.abort_transaction()
    kernel.run(kernel.now_ms + 50)
    log = kernel.cluster.partition("out", 0).log
    assert log.last_stable_offset == log.high_watermark == 4  # 3 aborted records, a marker
    [answer] = late_batch(kernel, p, 0, sequence=3)
    assert answer.error == tc.INVALID_TXN_STATE
    assert not log.transactions.ongoing
    assert log.log_end_offset == log.last_stable_offset == 4


def test_a_first_batch_in_a_partition_not_added_to_the_transaction_is_refused():
    """The same verification refuses a partition the open transaction never added
    (AddPartitionsToTxn), while the partitions it added take their batches."""
    kernel = cluster(partitions=2)
    p = in_transaction(kernel, 2, partition=0)
    p.flush()
    [answer] = late_batch(kernel, p, 1, sequence=0)
    assert answer.error == tc.INVALID_TXN_STATE
    assert kernel.cluster.partition("out", 1).log.log_end_offset == 0
    p.commit_transaction()
    kernel.run(kernel.now_ms + 50)
    assert read(kernel, "read_committed") == [0, 1]


# --- fencing ----------------------------------------------------------------------------------


def test_new_instance_fences_the_old_one_and_aborts_its_transaction():
    kernel = cluster()
    old = in_transaction(kernel, 2)
    old.flush()
    new = txn_producer(kernel, **{"client.id": "new"})
    new.init_transactions()
    assert new.txn.producer_id == old.txn.producer_id
    assert new.txn.producer_epoch == old.txn.producer_epoch + 2  # fence, then init
    kernel.run(kernel.now_ms + 50)
    assert read(kernel, "read_committed") == []
    assert read(kernel, "read_uncommitted") == [0, 1]
    send(old, 1)  # a zombie write: the leader refuses its old epoch
    kernel.run(kernel.now_ms + 50)
    assert old.results()["error"].iloc[-1] == "INVALID_PRODUCER_EPOCH"
    with pytest.raises(InvalidProducerEpochError):
        old.commit_transaction()
    with pytest.raises(ProducerFencedError):
        old.abort_transaction()


# --- the API's rules --------------------------------------------------------------------------


def test_transactional_id_needs_idempotence():
    kernel = cluster()
    with pytest.raises(ConfigError, match="without also enabling idempotence"):
        txn_producer(kernel, **{"enable.idempotence": False})
    with pytest.raises(ConfigError, match="acks=1"):
        txn_producer(kernel, acks="1")


def test_send_outside_a_transaction_is_refused():
    kernel = cluster()
    p = txn_producer(kernel)
    with pytest.raises(TransactionStateError, match="init_transactions"):
        p.send("out", value=1)
    p.init_transactions()
    with pytest.raises(TransactionStateError, match="READY"):
        p.send("out", value=1)
    with pytest.raises(TransactionStateError, match="READY to state COMMITTING"):
        p.commit_transaction()


def test_transaction_timeout_above_the_broker_maximum_is_refused():
    kernel = cluster()
    p = txn_producer(kernel, **{"transaction.timeout.ms": 900_001})
    with pytest.raises(Exception, match="INVALID_TRANSACTION_TIMEOUT"):
        p.init_transactions()


# --- offsets in a transaction -----------------------------------------------------------------


def test_offsets_sent_in_a_transaction_count_only_after_commit():
    kernel = cluster()
    kernel.cluster.create_topic("in", 1, 3)
    gc = group_coordinator(kernel)
    tin = TopicPartition("in", 0)
    p = txn_producer(kernel)
    p.init_transactions()
    meta = {"group.id": "g", "member.id": "", "generation.id": -1}
    p.begin_transaction()
    send(p, 1)
    p.send_offsets_to_transaction({tin: 42}, meta)
    assert gc.fetch_offsets("g", [tin]) == {tin: None}
    assert gc.has_pending_txn_offsets("g", [tin])
    p.abort_transaction()
    kernel.run(kernel.now_ms + 50)
    assert gc.fetch_offsets("g", [tin]) == {tin: None}  # aborted: dropped
    p.begin_transaction()
    send(p, 1)
    p.send_offsets_to_transaction({tin: 43}, meta)
    p.commit_transaction()
    kernel.run(kernel.now_ms + 50)
    assert gc.fetch_offsets("g", [tin]) == {tin: 43}
    offsets_log = kernel.cluster.partition(OFFSETS_TOPIC, gc.partition_for("g")).log
    assert offsets_log.batches()["is_control"].sum() == 2  # a marker per transaction


def test_txn_offsets_are_pending_from_their_append_until_a_failure_takes_them_back():
    """Offsets sent to a transaction are pending as soon as the group coordinator appends them,
    before ``__consumer_offsets`` followers have them: a require_stable OffsetFetch then waits
    (Kafka replays a record into the coordinator's state as it appends it,
    ``OffsetMetadataManager.hasPendingTransactionalOffsets``). An append that fails takes them
    back: here a fenced epoch, refused before anything is written."""
    kernel = cluster()
    gc, p, tin, _node, _followers, answers = _txn_offsets_waiting_for_followers(kernel, [42])
    kernel.run(kernel.now_ms + 100)
    assert not answers[0].triggered  # waits for the followers
    assert gc.has_pending_txn_offsets("g", [tin])
    pid, epoch = p.txn.producer_id, p.txn.producer_epoch
    refused = gc.txn_offset_commit("g", pid, epoch - 1, "", -1, {tin: 43})
    assert refused.triggered
    assert refused.value == INVALID_PRODUCER_EPOCH
    assert gc.has_pending_txn_offsets("g", [tin])  # the first append's offset stays pending
    assert gc.pending_txn_offsets[pid][("g", tin)].offset == 42


def _txn_offsets_waiting_for_followers(kernel: Kernel, offsets: list[int]):
    """A transaction with offsets of group "g" (the first through the producer, so the
    transaction holds ``__consumer_offsets``), then more TxnOffsetCommits for the same
    partition, one per offset, appended while the coordinator's followers are cut off."""
    kernel.cluster.create_topic("in", 1, 3)
    gc = group_coordinator(kernel)
    tin = TopicPartition("in", 0)
    p = in_transaction(kernel, 1)
    meta = {"group.id": "g", "member.id": "", "generation.id": -1}
    p.send_offsets_to_transaction({tin: 41}, meta)
    node = gc.node_for("g")
    followers = [b for b in kernel.cluster.partition(OFFSETS_TOPIC, gc.partition_for("g")).replicas
                 if b != node]
    for follower in followers:
        kernel.cluster.network.cut(node, follower)
    answers = [gc.txn_offset_commit("g", p.txn.producer_id, p.txn.producer_epoch, "", -1,
                                    {tin: offset}) for offset in offsets]
    return gc, p, tin, node, followers, answers


def test_txn_offset_commit_whose_acknowledgement_timed_out_stays_pending_and_commits():
    """The TxnOffsetCommit's record is in the coordinator's log and state when its wait for
    the followers times out: Kafka's coordinator answers the error but reverts nothing
    (``CoordinatorRuntime.OperationTimeout`` only completes the deferred event; the state is
    reverted when the append itself fails, ``failCurrentBatch``). So the offset stays pending
    (a require_stable OffsetFetch waits) and the transaction's COMMIT marker makes it count."""
    kernel = cluster()
    gc, p, tin, node, followers, answers = _txn_offsets_waiting_for_followers(kernel, [42])
    kernel.run(kernel.now_ms + 6_000)  # past offsets.commit.timeout.ms (5 s)
    assert answers[0].triggered
    assert answers[0].value == COORDINATOR_NOT_AVAILABLE  # the wait timed out (retriable)
    for follower in followers:
        kernel.cluster.network.heal(node, follower)
    assert gc.has_pending_txn_offsets("g", [tin])  # the record is there: no revert
    p.commit_transaction()
    assert not gc.has_pending_txn_offsets("g", [tin])  # nothing left pending for ever
    assert gc.fetch_offsets("g", [tin]) == {tin: 42}


def test_txn_offset_commits_whose_acknowledgement_timed_out_are_dropped_by_an_abort():
    """Two TxnOffsetCommits for one partition time out waiting for the followers; the
    producer aborts: the ABORT marker drops every pending offset of the transaction, the
    earlier acknowledged one too, so no require_stable OffsetFetch waits for ever and the
    group has no committed offset."""
    kernel = cluster()
    gc, p, tin, node, followers, answers = _txn_offsets_waiting_for_followers(kernel, [42, 43])
    kernel.run(kernel.now_ms + 6_000)
    assert [a.value for a in answers if a.triggered] == [COORDINATOR_NOT_AVAILABLE] * 2
    for follower in followers:
        kernel.cluster.network.heal(node, follower)
    p.abort_transaction()
    assert not gc.has_pending_txn_offsets("g", [tin])
    assert gc.fetch_offsets("g", [tin]) == {tin: None}


def test_two_timed_out_txn_offset_commits_leave_the_later_offset_not_the_earlier():
    """Two TxnOffsetCommits for one partition (42, then 43) both wait for the followers and
    time out, the earlier first: Kafka keeps both records and the latest state, 43 (a timeout
    reverts nothing), and the transaction's commit makes 43 count, not 42."""
    kernel = cluster()
    gc, p, tin, node, followers, answers = _txn_offsets_waiting_for_followers(kernel, [42, 43])
    kernel.run(kernel.now_ms + 6_000)
    assert [a.value for a in answers if a.triggered] == [COORDINATOR_NOT_AVAILABLE] * 2
    pending = gc.pending_txn_offsets.get(p.txn.producer_id, {}).get(("g", tin))
    assert pending is not None
    assert pending.offset == 43  # the latest state: a timeout reverts nothing
    for follower in followers:
        kernel.cluster.network.heal(node, follower)
    p.commit_transaction()
    assert not gc.has_pending_txn_offsets("g", [tin])
    assert gc.fetch_offsets("g", [tin]) == {tin: 43}


def test_late_txn_offset_commit_of_a_timed_out_transaction_is_fenced_not_left_pending():
    """A TxnOffsetCommit held up by a network cut reaches the group coordinator after the
    transaction coordinator timed the transaction out (epoch bumped, ABORT marker already in
    ``__consumer_offsets``). The append checks the epoch as for any batch with a producer id
    (``ProducerAppendInfo.checkProducerEpoch``): INVALID_PRODUCER_EPOCH, which the producer
    treats as fenced (``TransactionManager.TxnOffsetCommitHandler``). Kept as pending, the
    offsets would never see a marker, and every read_committed OffsetFetch for those
    partitions would answer UNSTABLE_OFFSET_COMMIT for ever (a Streams application stalled)."""
    kernel = cluster()
    kernel.cluster.create_topic("in", 1, 3)
    gc = group_coordinator(kernel)
    tin = TopicPartition("in", 0)
    group_node = gc.node_for("g")
    coordinator = tc.transaction_coordinator(kernel)
    tid = next(f"app-{i}" for i in range(1, 50)
               if coordinator.node_for(f"app-{i}") != group_node)  # coordinators apart
    p = txn_producer(kernel, tid, **{"transaction.timeout.ms": 10_000, "client.id": "app"})
    p.init_transactions()
    assert p.txn.coordinator.node_for(tid) != group_node
    p.begin_transaction()
    send(p, 1)
    p.flush()
    kernel.cluster.network.cut("app", group_node)
    outcome: list[Exception | None] = []

    def attempt():
        try:
            yield from p.txn.send_offsets_gen({tin: 42}, {"group.id": "g", "member.id": "",
                                                          "generation.id": -1})
            outcome.append(None)
        except TransactionError as error:
            outcome.append(error)

    kernel.env.process(attempt())
    kernel.run(kernel.now_ms + 25_000)  # timed out: PrepareAbort, markers, CompleteAbort
    assert states(kernel, tid)[-1] == tc.COMPLETE_ABORT
    assert not outcome  # the TxnOffsetCommit still waits for the group coordinator
    kernel.cluster.network.heal("app", group_node)
    kernel.run(kernel.now_ms + 1_000)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ProducerFencedError)
    assert not gc.has_pending_txn_offsets("g", [tin])
    assert gc.fetch_offsets("g", [tin]) == {tin: None}


# --- coordinator failover ---------------------------------------------------------------------


def test_new_coordinator_reloads_the_state_from_transaction_state_and_commits():
    """State lives in the replicated __transaction_state partition: after the coordinator's
    broker crashes, the new leader loads it and the producer's commit goes through there."""
    kernel = cluster()
    p = in_transaction(kernel, 3)
    p.flush()
    coordinator = tc.transaction_coordinator(kernel)
    old_node = coordinator.node_for("app-1")
    out_leader = kernel.cluster.partition("out", 0).leader
    if out_leader == old_node:
        pytest.skip("seed puts the data leader on the coordinator")
    kernel.controller.crash_broker(old_node)
    p.commit_transaction()
    kernel.run(kernel.now_ms + 100)
    new_node = coordinator.node_for("app-1")
    assert new_node not in (old_node, -1)
    assert coordinator.state_of("app-1").state == tc.COMPLETE_COMMIT
    assert read(kernel, "read_committed") == [0, 1, 2]


def test_first_add_of_the_next_transaction_is_retried_after_20_ms():
    """The next transaction's first AddPartitionsToTxn finds the previous one completing
    (CONCURRENT_TRANSACTIONS) and is retried after ``ADD_PARTITIONS_RETRY_BACKOFF_MS`` = 20 ms,
    not retry.backoff.ms (``TransactionManager.AddPartitionsToTxnHandler``)."""
    kernel = cluster()
    p = txn_producer(kernel)
    p.init_transactions()
    for _ in range(2):
        p.begin_transaction()
        send(p, 1)
        p.commit_transaction()
    trace = kernel.trace.to_frame()
    rows = trace[trace["kind"] == "txn.state"]
    prepare = rows[rows["state"] == tc.PREPARE_COMMIT]["time_ms"].iloc[0]
    ongoing = rows[rows["state"] == tc.ONGOING]["time_ms"].iloc[1]
    assert 20 <= ongoing - prepare < 30


def test_latest_for_read_committed_is_the_lso():
    """ListOffsets "latest" with READ_COMMITTED answers the LSO, not the high watermark: a
    read_committed consumer starting at the end does not skip an open transaction's records."""
    kernel = cluster()
    p = in_transaction(kernel, 2)
    p.flush()
    late = {"isolation.level": "read_committed", "auto.offset.reset": "latest"}
    committed_reader = Consumer(kernel, late)
    committed_reader.assign([TP0])
    plain_reader = Consumer(kernel, {"auto.offset.reset": "latest"})
    plain_reader.assign([TP0])
    assert committed_reader.position(TP0) == 0
    assert plain_reader.position(TP0) == 2
    p.commit_transaction()
    kernel.run(kernel.now_ms + 50)
    assert [r.offset for r in committed_reader.poll(5)] == [0, 1]


def test_markers_resume_on_the_new_coordinator_after_a_crash_in_prepare_commit():
    """The coordinator's broker dies right after writing PrepareCommit: the new leader of the
    __transaction_state partition loads the Prepare state and writes the markers itself
    (``TransactionStateManager`` loading, then ``TransactionMarkerChannelManager``)."""
    kernel = cluster()
    p = in_transaction(kernel, 3)
    p.flush()
    coordinator = tc.transaction_coordinator(kernel)
    old_node = coordinator.node_for("app-1")
    if kernel.cluster.partition("out", 0).leader == old_node:
        pytest.skip("seed puts the data leader on the coordinator")
    committing = kernel.env.process(p.txn.commit_gen())
    assert kernel.run_until(lambda k: states(k)[-1] == tc.PREPARE_COMMIT)
    kernel.controller.crash_broker(old_node)
    kernel.run(kernel.now_ms + 30_000)
    assert not committing.is_alive
    assert coordinator.node_for("app-1") != old_node
    assert coordinator.state_of("app-1").state == tc.COMPLETE_COMMIT
    assert read(kernel, "read_committed") == [0, 1, 2]


def fenced_zombie() -> tuple[Kernel, Producer]:
    """A producer whose transaction holds partition 0 of two, fenced by a new instance of its
    transactional id (a zombie): returns the kernel and the fenced producer."""
    kernel = cluster(partitions=2)
    old = in_transaction(kernel, 1, partition=0)
    old.flush()
    txn_producer(kernel, **{"client.id": "new"}).init_transactions()
    return kernel, old


def test_commit_of_a_fenced_producer_with_unadded_partitions_raises_instead_of_hanging():
    """A zombie whose AddPartitionsToTxn is refused: its batches can never leave, so commit
    must raise ProducerFencedError rather than wait for them for ever."""
    _, old = fenced_zombie()
    send(old, 1, partition=1)  # a partition not yet in the transaction
    with pytest.raises(ProducerFencedError):
        old.commit_transaction()


def test_a_fenced_producer_fails_the_batches_that_wait_instead_of_leaving_them_pending():
    """Once fenced (a fatal error) nothing sends the batches still waiting for their partition
    to join the transaction: Kafka's ``Sender`` fails every incomplete batch with the fatal
    error (``Sender.maybeAbortBatches`` when ``TransactionManager.hasFatalError``), so no
    record's future is left for ever neither acknowledged nor failed."""
    kernel, old = fenced_zombie()
    send(old, 3, partition=1)  # waits for AddPartitionsToTxn, which is refused: fenced
    with pytest.raises(ProducerFencedError):
        old.commit_transaction()
    kernel.run(kernel.now_ms + 50)
    waiting = old.results().iloc[1:]  # the three records sent to partition 1
    assert len(waiting) == 3
    assert waiting["error"].notna().all(), "left neither acknowledged nor failed"


def test_blocking_producer_call_inside_on_records_is_refused():
    kernel = cluster()
    plain = Producer(kernel, {"linger.ms": 0, "client.id": "plain"})
    plain.send("out", value=1, partition=0).get()
    p = txn_producer(kernel)
    consumer = Consumer(kernel, {"group.id": "g", "auto.offset.reset": "earliest"})
    consumer.subscribe(["out"])
    consumer.run(lambda _c, _records: p.init_transactions())
    with pytest.raises(TransactionStateError, match="inside the simulation"):
        kernel.run(kernel.now_ms + 10_000)


# --- closing a transactional producer ------------------------------------------------------------


def test_closing_a_producer_aborts_its_open_transaction_at_once():
    """``Sender.run``: once closing, after the records left are sent, the Sender aborts a
    transaction still ongoing (``TransactionManager.hasOngoingTransaction``, then
    ``beginAbort``) before it stops; so a closed producer's transaction does not wait for
    transaction.timeout.ms, and read_committed readers never see its records."""
    kernel = cluster()
    p = in_transaction(kernel, 4, **{"transaction.timeout.ms": 60_000})
    p.close()
    kernel.run(kernel.now_ms + 100)  # the coordinator writes the markers after EndTxn's answer
    assert states(kernel)[-3:] == ["Ongoing", "PrepareAbort", "CompleteAbort"]
    assert p.txn.state == "READY"
    assert p.txn.aborts == 1
    log = kernel.cluster.partition("out", 0).log
    assert log.last_stable_offset == log.high_watermark == 5  # 4 records and the ABORT marker
    assert read(kernel, "read_committed") == []


def test_closing_a_fenced_producer_sends_nothing():
    """A fatal error ends the transaction for the producer (``hasOngoingTransaction`` is false
    in FATAL_ERROR): close has nothing to abort; the newer instance's init already did."""
    kernel = cluster()
    old = in_transaction(kernel, 2)
    old.flush()
    txn_producer(kernel).init_transactions()  # fences old, aborts its transaction
    with pytest.raises(ProducerFencedError):
        old.commit_transaction()
    before = states(kernel)
    old.close()
    assert old.txn.state == "FATAL_ERROR"
    assert states(kernel) == before


def test_timed_out_transactions_are_checked_every_interval_from_broker_start():
    """``TransactionCoordinator.startup`` schedules ``abortTimedOutTransactions`` every
    ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` (10 s) from the broker's
    start-up: a transaction begun at 3 s with a 1 s timeout is aborted by the check at 10 s,
    not 10 s after the coordinator's first request (13 s)."""
    kernel = cluster()
    kernel.run(3_000)
    in_transaction(kernel, 2, **{"transaction.timeout.ms": 1_000}).flush()
    kernel.run(kernel.now_ms + 12_000)
    trace = kernel.trace.to_frame()
    aborts = trace[(trace["kind"] == "txn.state") & (trace["state"] == tc.PREPARE_ABORT)]
    assert len(aborts) == 1
    assert 10_000 <= aborts["time_ms"].iloc[0] < 10_010  # the check, then the state's write
