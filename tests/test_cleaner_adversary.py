"""The log cleaner against Kafka's guarantees, where compaction meets the rest of the log.

Each test states one rule Kafka keeps (``LogCleanerManager.cleanableOffsets``,
``Cleaner.buildOffsetMap`` / ``cleanSegments`` with ``CleanedTransactionMetadata``, KIP-98,
KIP-534) and checks the simulator keeps it too:

- the cleaner never cleans at or past the last stable offset: an open transaction's records,
  and the records it might supersede, wait until the transaction is decided;
- records of aborted transactions never enter the key → last-offset map and are removed, so a
  ``read_committed`` reader sees the same latest-value table before and after cleaning;
- a tombstone is kept ``delete.retention.ms`` after the first cleaning that saw it, even when
  its offset was written again after a truncation;
- offsets never change; a reader moves over gaps; ``offsets_for_times`` skips removed records;
- replicas clean independently and agree, except that a replica down for longer than
  ``delete.retention.ms`` may miss a delete, as any reader lagging that long may.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import scenarios
from sim.audit import audit_kernel
from sim.broker.list_offsets import offset_for_timestamp
from sim.broker.log import PartitionLog
from sim.broker.log_cleaner import LogCleaner, clean, log_to_clean
from sim.consumer import Consumer
from sim.consumer.fetcher import _visible
from sim.fuzz import PROFILES, check_scenario, generate, to_yaml
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition

TP = TopicPartition("t", 0)
NO_CLEANER = {"log.cleaner.enable": False, "lab.network.latency.ms": 0}
DAY_MS = 86_400_000
INDEX_BITS = 40  # a record id is producer id << 40 | the record's index in its producer


def kernel_with_topic(configs: dict[str, object] | None = None) -> tuple[Kernel, PartitionLog]:
    """One broker, compacted topic t (one partition), every batch in its own segment."""

    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("t", 1, 1, {"cleanup.policy": "compact", **(configs or {})})

    kernel = Kernel(seed=0, brokers=1, broker_configs=NO_CLEANER, setup=setup)
    log = kernel.cluster.partition("t", 0).log
    log.segment_bytes = 1  # a non-empty active segment rolls at the next batch
    return kernel, log


def txn_producer(kernel: Kernel, tid: str = "tx") -> Producer:
    producer = Producer(kernel, {"transactional.id": tid, "linger.ms": 0})
    producer.init_transactions()
    return producer


def plain_producer(kernel: Kernel) -> Producer:
    return Producer(kernel, {"linger.ms": 0, "max.in.flight.requests.per.connection": 1})


def transaction(kernel: Kernel, producer: Producer, writes: list[tuple[str, Any]],
                commit: bool = True) -> None:
    """One transaction of ``writes``, each flushed as its own batch; then commit or abort."""
    producer.begin_transaction()
    for key, value in writes:
        producer.send("t", key=key, value=value, partition=0)
        producer.flush()
    if commit:
        producer.commit_transaction()
    else:
        producer.abort_transaction()
    kernel.run(kernel.now_ms + 50)  # the markers are written


def decode(kernel: Kernel, record_id: int) -> tuple[Any, Any]:
    """The key and value a producer sent as record ``record_id`` (None for a tombstone)."""
    producer = kernel.clients[record_id >> INDEX_BITS]
    index = record_id & ((1 << INDEX_BITS) - 1)
    return producer.keys[int(producer.buffer.key_id[index])], producer.values.get(index)


def read_all(kernel: Kernel, level: str) -> list[tuple[int, Any, Any]]:
    """(offset, key, value) of everything one consumer reads from offset 0, in order."""
    consumer = Consumer(kernel, {"isolation.level": level, "auto.offset.reset": "earliest"})
    consumer.assign([TP])
    out = []
    while records := consumer.poll(timeout_ms=5):
        out += [(r.offset, *decode(kernel, r.record_id)) for r in records]
    consumer.close()
    return out


def table(kernel: Kernel, level: str = "read_committed") -> dict[Any, Any]:
    """The latest value per key a reader from offset 0 builds (a tombstone deletes)."""
    latest = {key: value for _offset, key, value in read_all(kernel, level)}
    return {k: v for k, v in latest.items() if v is not None}


def clean_cleanable(kernel: Kernel, log: PartitionLog, now_ms: float | None = None,
                    delete_retention_ms: int = DAY_MS) -> None:
    """One cleaning up to where the cleaner may clean (``log_to_clean``)."""
    now = kernel.now_ms if now_ms is None else now_ms
    ltc = log_to_clean(log, kernel.cluster.topic("t").config, now)
    clean(log, kernel, ltc.first_uncleanable_offset, now, delete_retention_ms)


# --- transactions --------------------------------------------------------------------------------


def test_aborted_records_do_not_supersede_a_committed_value() -> None:
    """``buildOffsetMap`` skips aborted batches, ``cleanSegments`` discards them: A=1 stays."""
    kernel, log = kernel_with_topic()
    producer = txn_producer(kernel)
    transaction(kernel, producer, [("A", 1)])
    transaction(kernel, producer, [("A", 2)], commit=False)  # offset 2, abort marker 3
    transaction(kernel, producer, [("B", 1)])
    assert [(t.first_offset, t.last_offset) for t in log.transactions.aborted] == [(2, 3)]
    before = table(kernel)
    assert before == {"A": 1, "B": 1}
    clean_cleanable(kernel, log)
    assert log.clean_offset > 3
    assert table(kernel) == before
    assert not log.retained(2, 3)[0]  # the aborted record itself is removed
    assert table(kernel, "read_uncommitted") == before  # so no reader sees it any more


def test_an_open_transaction_is_not_cleaned_and_may_still_abort() -> None:
    """``cleanableOffsets``: the first uncleanable offset is at most the last stable offset.

    While a transaction is open, its A=2 must neither be cleaned nor supersede A=1: it may
    still abort, and then A=1 is the latest committed value."""
    kernel, log = kernel_with_topic()
    producer = txn_producer(kernel)
    other = plain_producer(kernel)
    transaction(kernel, producer, [("A", 1)])  # offsets 0, marker 1
    producer.begin_transaction()
    producer.send("t", key="A", value=2, partition=0)  # offset 2, still open
    producer.flush()
    for k in range(3):
        other.send("t", key=f"C{k}", value=k, partition=0).get()
    assert log.last_stable_offset == 2
    ltc = log_to_clean(log, kernel.cluster.topic("t").config, kernel.now_ms)
    assert ltc.first_uncleanable_offset <= log.last_stable_offset
    clean(log, kernel, ltc.first_uncleanable_offset, kernel.now_ms, DAY_MS)
    assert log.retained(0, 3).tolist() == [True, True, True]
    producer.abort_transaction()
    kernel.run(kernel.now_ms + 50)
    assert table(kernel) == {"A": 1, "C0": 0, "C1": 1, "C2": 2}
    clean_cleanable(kernel, log)
    assert table(kernel) == {"A": 1, "C0": 0, "C1": 1, "C2": 2}


def test_the_cleaner_thread_stops_at_the_last_stable_offset() -> None:
    """The background cleaner, too: it chooses and cleans below the LSO only."""
    kernel, log = kernel_with_topic()
    producer = txn_producer(kernel)
    other = plain_producer(kernel)
    transaction(kernel, producer, [("A", 1)])
    producer.begin_transaction()
    producer.send("t", key="A", value=2, partition=0)
    producer.flush()
    for k in range(4):
        other.send("t", key="A", value=10 + k, partition=0).get()
    cleaner = LogCleaner(kernel)
    found = cleaner.grab_filthiest(0)
    assert found is not None
    assert found.first_uncleanable_offset <= log.last_stable_offset == 2
    cleaner.clean_now(found)
    assert log.retained(0, 3).all()


def test_markers_stay_while_their_transaction_has_data_then_go_after_delete_retention() -> None:
    """KIP-98 markers (``CleanedTransactionMetadata``): a marker is kept while its
    transaction's records remain, including through the cleaning that removes the last of
    them; the first cleaning that finds the transaction empty sets the marker's delete horizon
    to now + ``delete.retention.ms``; a cleaning after that horizon removes it."""
    kernel, log = kernel_with_topic()
    producer = txn_producer(kernel)
    transaction(kernel, producer, [("A", 1)])  # 0, commit marker 1
    transaction(kernel, producer, [("A", 2)], commit=False)  # 2, abort marker 3
    transaction(kernel, producer, [("A", 3)])  # 4, commit marker 5
    transaction(kernel, producer, [("B", 1)])  # 6, commit marker 7 (active segment)
    end = log.active_segment.base_offset
    assert end == 7
    clean(log, kernel, end, now_ms=10_000, delete_retention_ms=1000)
    assert log.retained(0, end).tolist() == [False, True, False, True, True, True, True]
    clean(log, kernel, end, now_ms=10_500, delete_retention_ms=1000)  # horizons: 11 500
    clean(log, kernel, end, now_ms=11_499, delete_retention_ms=1000)
    assert log.retained(0, end).tolist() == [False, True, False, True, True, True, True]
    clean(log, kernel, end, now_ms=11_500, delete_retention_ms=1000)
    assert log.retained(0, end).tolist() == [False, False, False, False, True, True, True]
    assert table(kernel) == {"A": 3, "B": 1}
    assert [offset for offset, _k, _v in read_all(kernel, "read_committed")] == [4, 6]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.sampled_from("ABCD"),
                                             st.one_of(st.none(), st.integers(0, 9))),
                                   min_size=1, max_size=3),
                          st.booleans()),
                min_size=1, max_size=8),
       st.lists(st.integers(0, 8), max_size=3))
def test_read_committed_table_is_the_same_before_and_after_any_cleaning(txns, clean_after):
    """Transactions committed or aborted, cleanings between them: the latest committed value
    per key a read_committed reader builds from offset 0 never changes because of cleaning,
    and no reader ever sees a key's older value after a newer one."""
    kernel, log = kernel_with_topic()
    producer = txn_producer(kernel)
    now = 0.0
    for i, (writes, commit) in enumerate(txns):
        before = table(kernel)
        if i in clean_after:
            now = max(now, kernel.now_ms)
            clean_cleanable(kernel, log, now, delete_retention_ms=0)
            assert table(kernel) == before
        transaction(kernel, producer, writes, commit)
    before = table(kernel)
    clean_cleanable(kernel, log, kernel.now_ms, delete_retention_ms=0)
    clean_cleanable(kernel, log, kernel.now_ms + 1, delete_retention_ms=0)
    assert table(kernel) == before
    offsets = [offset for offset, _k, _v in read_all(kernel, "read_uncommitted")]
    assert offsets == sorted(set(offsets))


# --- tombstones, truncation, gaps, time lookup ----------------------------------------------------


def test_a_tombstone_written_again_after_truncation_gets_its_own_delete_horizon() -> None:
    """A cleaning before a truncation says nothing of the records written after it: a
    tombstone at a re-written offset is kept ``delete.retention.ms`` after the first
    cleaning that sees *it* (KIP-534)."""
    kernel, log = kernel_with_topic()
    first = plain_producer(kernel)
    for k in range(6):
        first.send("t", key=f"K{k}", value=k, partition=0).get()
    clean(log, kernel, 5, now_ms=0, delete_retention_ms=1000)  # covers offsets 0-4
    log.truncate_to(2)  # e.g. a follower truncating after an unclean election
    second = plain_producer(kernel)
    second.send("t", key="A", value=None, partition=0).get()  # tombstone at offset 2
    second.send("t", key="B", value=1, partition=0).get()
    assert log.column("value_size", 2, 3).tolist() == [-1]
    end = log.active_segment.base_offset
    clean(log, kernel, end, now_ms=5_000, delete_retention_ms=1000)
    assert log.retained(2, 3).tolist() == [True]  # first seen at 5000: kept until 6000
    clean(log, kernel, end, now_ms=6_000, delete_retention_ms=1000)
    assert log.retained(2, 3).tolist() == [False]


def test_with_zero_delete_retention_a_tombstone_outlives_the_cleaning_that_first_sees_it() -> None:
    """``shouldRetainDeletes``: a batch without a delete horizon keeps its tombstones; the
    cleaning sets the horizon (now + 0) and only a later cleaning removes them."""
    kernel, log = kernel_with_topic({"delete.retention.ms": 0})
    producer = plain_producer(kernel)
    for key, value in [("A", 1), ("A", None), ("B", 1)]:
        producer.send("t", key=key, value=value, partition=0).get()
    clean(log, kernel, 2, now_ms=1_000, delete_retention_ms=0)
    assert log.records()["offset"].tolist() == [1, 2]
    clean(log, kernel, 2, now_ms=1_000, delete_retention_ms=0)
    assert log.records()["offset"].tolist() == [2]


def test_offsets_for_times_skips_records_the_cleaner_removed() -> None:
    """Kafka rebuilds the time index of cleaned segments: a lookup lands on a kept record."""
    kernel, log = kernel_with_topic()
    producer = plain_producer(kernel)
    for k, key in enumerate("ABAB"):
        producer.send("t", key=key, value=k, partition=0, timestamp=1000 + 100 * k).get()
    producer.send("t", key="C", value=0, partition=0, timestamp=2000).get()
    clean(log, kernel, log.active_segment.base_offset, kernel.now_ms, DAY_MS)
    assert log.records()["offset"].tolist() == [2, 3, 4]
    assert offset_for_timestamp(log, 1000) == (2, 1200)
    assert offset_for_timestamp(log, 1250) == (3, 1300)
    consumer = Consumer(kernel, {"auto.offset.reset": "earliest"})
    consumer.assign([TP])
    consumer.seek(TP, 1)  # a position in a gap reads from the next kept offset
    assert [r.offset for r in consumer.poll(5)] == [2, 3, 4]


def test_compact_delete_retention_and_cleaning_together_keep_offsets_in_order() -> None:
    """``compact,delete``: retention deletes whole old segments, the cleaner removes
    superseded records; offsets never move and the cleaner never cleans below the start."""
    kernel, log = kernel_with_topic({"cleanup.policy": "compact,delete"})
    producer = plain_producer(kernel)
    for k in range(8):
        producer.send("t", key="AB"[k % 2], value=k, partition=0).get()
    log.delete_oldest_segments(3)
    assert log.log_start_offset == 3
    clean(log, kernel, log.active_segment.base_offset, kernel.now_ms, DAY_MS)
    # the map covers 3-6 (the active segment holds 7): A's last is 6, B's 5
    assert log.records()["offset"].tolist() == [5, 6, 7]
    assert table(kernel, "read_uncommitted") == {"A": 6, "B": 7}
    assert np.all(log.column("record_id", 3, 8) >= 0)


# --- replicas, the cleaner thread, a leader change ------------------------------------------------


def replica_table(kernel: Kernel, log: PartitionLog) -> dict[Any, Any]:
    """What a read_committed reader from offset 0 would build on this replica's log."""
    latest: dict[Any, Any] = {}
    for chunk in _visible(log, TP, log.log_start_offset, log.last_stable_offset, True):
        for rid in chunk.columns["record_id"]:
            key, value = decode(kernel, int(rid))
            latest[key] = value
    return {k: v for k, v in latest.items() if v is not None}


@settings(max_examples=6, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.sampled_from("ABCDEF"),
                                             st.one_of(st.none(), st.integers(0, 99))),
                                   min_size=1, max_size=4),
                          st.booleans()),
                min_size=4, max_size=16),
       st.integers(0, 15))
def test_replicas_clean_independently_through_a_leader_change(txns, crash_at):
    """Three replicas, each broker's cleaner thread cleaning its own copy as it likes, the
    leader crashing mid-workload: every replica that kept fetching, and a read_committed reader
    from offset 0, ends with the committed table; the crashed replica may miss only deletes
    (see ``_clean_through_a_leader_change``); offsets keep their records on every replica."""
    _clean_through_a_leader_change(txns, crash_at)


def test_a_follower_learns_the_high_watermark_past_the_last_marker():
    """Once producers stop, a follower parked at its leader with an old high watermark gets
    the empty answer after ``replica.fetch.wait.max.ms`` carrying the leader's, so its last
    stable offset passes the last transaction's marker (``DelayedFetch`` expiry)."""
    _clean_through_a_leader_change([([("A", None)], False)] * 3 + [([("A", 0)], True)], 0)


def test_a_replica_down_longer_than_delete_retention_can_miss_a_delete():
    """The compaction guarantee covers a reader that reaches the head within
    ``delete.retention.ms``, and a follower is such a reader: the old leader crashes holding
    D=1; its successor writes D's tombstone, cleans D=1 away and, ``delete.retention.ms``
    later, the tombstone too. The old leader comes back, fetches the cleaned log from where
    its own ends, and never sees the delete: its copy keeps D=1 for good, while the leader's
    readers see no D. Every other key agrees."""
    fill = [("B", 1), ("C", 1), ("E", 1), ("F", 1)]
    txns = [([("D", 1)], True), ([("D", None), ("B", 1), ("C", 1)], True),
            (fill, True), (fill, True)]
    kernel, crashed = _clean_through_a_leader_change(txns, 1)
    part = kernel.cluster.partition("t", 0)
    assert part.leader != crashed
    assert table(kernel) == {"B": 1, "C": 1, "E": 1, "F": 1}
    assert replica_table(kernel, part.logs[crashed]) == {"B": 1, "C": 1, "D": 1, "E": 1, "F": 1}
    tombstone = 2  # D=1 at 0, its commit marker at 1
    assert part.logs[crashed].column("value_size", tombstone, tombstone + 1).tolist() == [-1]
    assert part.log.retained(0, tombstone + 1).tolist()[::2] == [False, False]  # D=1, tombstone
    assert not part.logs[crashed].retained(tombstone, tombstone + 1).any()  # fetched cleaned
    assert part.logs[crashed].retained(0, 1).all()  # so nothing supersedes D=1 there


def _clean_through_a_leader_change(txns: list[Any], crash_at: int) -> tuple[Kernel, int | None]:
    """Run ``txns`` (writes, commit?) on three replicas, crashing the leader before transaction
    ``crash_at`` and restarting it after the last; check what each replica ends with.

    The crashed broker stays down far longer than ``delete.retention.ms`` (200 ms): a key
    whose delete was committed while it was down may keep, on its copy only, the value it had
    when it crashed, since the leader can remove the tombstone before it fetches (kafka-facts
    §7.2: a reader lagging more than ``delete.retention.ms`` can miss deletes). Every other
    key, and every other replica, holds exactly the committed table. Returns the kernel and
    the crashed broker.
    """

    def setup(kernel: Kernel) -> None:
        kernel.cluster.create_topic("t", 1, 3, {
            "cleanup.policy": "compact", "lab.segment.bytes": 300,
            "min.cleanable.dirty.ratio": 0.01, "delete.retention.ms": 200})

    kernel = Kernel(seed=1, brokers=3, broker_configs={"log.cleaner.backoff.ms": 50},
                    setup=setup)
    producer = txn_producer(kernel)
    expected: dict[Any, Any] = {}
    at_crash: dict[Any, Any] = {}  # the committed values when the leader crashed
    deleted_while_down: set[Any] = set()
    crashed = None
    for i, (writes, commit) in enumerate(txns):
        if i == crash_at:
            at_crash = dict(expected)
            crashed = kernel.cluster.partition("t", 0).leader
            kernel.controller.crash_broker(crashed)
            kernel.run(kernel.now_ms + 8_000)  # a new leader is elected
        transaction(kernel, producer, writes, commit)
        if commit:
            expected.update(dict(writes))
            if crashed is not None:
                deleted_while_down.update(key for key, value in writes if value is None)
        kernel.run(kernel.now_ms + 100)
    if crashed is not None:
        kernel.controller.restart_broker(crashed)
    kernel.run(kernel.now_ms + 20_000)
    missable = {key for key in deleted_while_down if expected[key] is None}
    expected = {k: v for k, v in expected.items() if v is not None}
    part = kernel.cluster.partition("t", 0)
    assert table(kernel) == expected
    ids = [log.column("record_id") for log in part.logs.values()]
    for broker, log in part.logs.items():
        assert log.log_end_offset == part.log.log_end_offset
        seen = replica_table(kernel, log)
        if broker == crashed:
            for key in missable:  # the delete reached it, or its value from before the crash
                assert seen.pop(key, None) in (None, at_crash.get(key))
        assert seen == {k: v for k, v in expected.items()
                        if broker != crashed or k not in missable}
    for a in ids[1:]:  # the same record at each offset everywhere (gaps aside)
        assert np.array_equal(a, ids[0])
    return kernel, crashed


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABC"), st.one_of(st.none(), st.integers(0, 9))),
                min_size=2, max_size=20),
       st.lists(st.booleans(), min_size=1, max_size=25), st.integers(0, 20))
def test_a_reader_finishing_within_delete_retention_sees_every_delete(ops, clean_between,
                                                                      read_from):
    """Kafka's promise for compacted topics: a consumer that starts at offset 0 and reaches the
    head within ``delete.retention.ms`` of the cleanings ends with the log's latest-value
    table, deletes included, however the cleaner ran while it read (docs, design §4.8)."""
    kernel, log = kernel_with_topic({"delete.retention.ms": 1000})
    producer = plain_producer(kernel)
    for key, value in ops:
        producer.send("t", key=key, value=value, partition=0).get()
    expected = table(kernel, "read_uncommitted")
    consumer = Consumer(kernel, {"auto.offset.reset": "earliest", "max.poll.records": 1})
    consumer.assign([TP])
    seen: dict[Any, Any] = {}
    now = 10_000.0
    for step, cleaning in enumerate(clean_between):
        if step == read_from % len(clean_between):
            clean_cleanable(kernel, log, now, delete_retention_ms=1000)
        for record in consumer.poll(timeout_ms=1):
            key, value = decode(kernel, record.record_id)
            seen[key] = value
        if cleaning:
            now += 400  # three cleanings span more than the horizon, but the read is faster
            clean_cleanable(kernel, log, now, delete_retention_ms=1000)
    while records := consumer.poll(timeout_ms=1):
        for record in records:
            key, value = decode(kernel, record.record_id)
            seen[key] = value
    if now - 10_000 < 1000:  # the read ended within delete.retention.ms of the first cleaning
        assert {k: v for k, v in seen.items() if v is not None} == expected


def test_records_a_follower_truncated_but_the_final_leader_compacted_are_not_lost() -> None:
    """Storage fuzz schedule 3 of seed 12 (3000 records): during a network split some
    replicas truncate records that the final leader keeps and later compacts. Nobody read
    them, so they are compacted-away, not a lost write without a cause."""
    profile = PROFILES["storage"].scaled(3000)
    schedule = generate(profile, 12, 3)
    scenario = scenarios.parse(to_yaml(schedule), "storage.yaml")
    kernel = scenario.build()
    kernel.run(until_ms=scenario.duration_ms)
    report = audit_kernel(kernel)
    assert report.lost == 0
    assert report.valid
    assert check_scenario(schedule, profile).violations == []
