"""The audit ties records removed by the storage rules to the event that removed them.

A record no consumer read before retention deleted its segment is ``deleted-by-retention``
(cause: the ``log.segment.delete`` event of the final leader's replica); one the log cleaner
removed is ``compacted-away`` (cause: the ``log.clean`` event). Kafka allows both, so neither
makes a run INVALID, neither counts as lost, skipped or a poll-skip.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim import audit
from sim.audit import audit_kernel
from sim.scenarios import load


@pytest.fixture(scope="module")
def retention_run():
    kernel = load("retention-overtakes-consumer").build()
    kernel.run(until_ms=60_000)
    return kernel, audit_kernel(kernel)


@pytest.fixture(scope="module")
def compaction_run():
    kernel = load("compaction-last-value").build()
    kernel.run(until_ms=60_000)
    return kernel, audit_kernel(kernel)


def test_unread_records_deleted_by_retention_are_named_with_their_segment_deletion(
        retention_run) -> None:
    kernel, report = retention_run
    assert report.valid
    assert report.lost == 0
    assert report.counts["deleted-by-retention"] > 0
    events = kernel.trace.to_frame().set_index("seq")
    log = kernel.cluster.partition("clicks", 0).log
    for run in report.anomalies["deleted-by-retention"]:
        cause = events.loc[run["cause"]["seq"]]
        assert cause["kind"] == "log.segment.delete"
        assert cause["base_offset"] <= run["first_offset"]
        assert run["last_offset"] < cause["end_offset"] <= log.log_start_offset
    # every acknowledged record was read, deleted unread, or is still in the log
    assert (report.read + report.counts["deleted-by-retention"] + len(log)
            == report.acknowledged)


def test_retention_jumps_are_neither_skips_nor_poll_skips(retention_run) -> None:
    _, report = retention_run
    assert report.counts["skipped"] == 0
    assert report.counts["poll-skip"] == 0


def test_compacted_records_point_at_their_cleaning(compaction_run) -> None:
    kernel, report = compaction_run
    assert report.valid
    assert (report.lost, report.counts["skipped"], report.counts["poll-skip"]) == (0, 0, 0)
    events = kernel.trace.to_frame().set_index("seq")
    assert {events.loc[r["cause"]["seq"], "kind"] for r in report.anomalies["compacted-away"]} \
        == {"log.clean"}
    log = kernel.cluster.partition("prices", 0).log
    assert 0 < report.counts["compacted-away"] <= log.cleaned_records
    assert report.read + report.counts["compacted-away"] == report.acknowledged


def test_compacted_log_keeps_the_last_value_of_every_key(compaction_run) -> None:
    """The snapshot consumer reads one record per key that still has a value, plus what the
    cleaner could not touch yet (active segment) — every key's last write is among them."""
    kernel, _ = compaction_run
    log = kernel.cluster.partition("prices", 0).log
    producer = kernel.clients[0]
    key_ids = producer.buffer.key_id[: producer.buffer.n]
    last_index = {int(k): i for i, k in enumerate(key_ids)}
    kept = set(log.records()["record_id"].tolist())
    last = producer.record_ids(np.array(sorted(last_index.values())))
    assert set(last.tolist()) <= kept


def test_a_group_moves_past_an_offset_by_processing_a_later_one_or_committing_past_it():
    """What the skipped check compares a storage removal with: a record the cleaner removed
    before the group moved past it was not skipped, even if the group had read it once (the
    next fetch returns the next retained record: ``LogCleaner``'s ``Cleaner.shouldRetainRecord``,
    and a fetch from a compacted log skips the removed offsets)."""
    from sim.audit import _moved_past_ms

    done = pd.DataFrame({"offset": [5, 7], "processed_ms": [10.0, 4.0]})
    commits = pd.DataFrame({"offset": [6], "time_ms": [2.0]})  # the next offset to read: 6
    moved = _moved_past_ms(np.array([3, 5, 6, 7, 8]), done, commits)
    assert moved.tolist() == [2.0, 2.0, 4.0, np.inf, np.inf]


def _retried_after_truncation(truncated_ms: float) -> dict:
    """A record (id 7) acknowledged at offset 5 of t-0 at 100 ms by leader 1, while leader 0's
    replica of t-0 (the final leader) dropped record id 7 at offset 5 at ``truncated_ms``
    (event 30); retention deleted segment 0–9 of leader 0 at 200 ms (event 40). A consumer
    read offset 12, and no leader holds record 7 any more."""
    writes = pd.DataFrame({"writer": "p", "record_id": [7], "topic": "t", "partition": [0],
                           "offset": [5], "ack_ms": [100.0]})
    reads = pd.DataFrame([{"consumer": "c", "incarnation": 0, "poll": 0, "poll_seq": 1,
                           "time_ms": 250.0, "topic": "t", "partition": 0, "offset": 12,
                           "record_id": 12, "group": "g"}])
    removed = pd.DataFrame([{"seq": 30, "time_ms": truncated_ms, "node": 0, "topic": "t",
                             "partition": 0, "offset": 5, "record_id": 7}])
    events = pd.DataFrame([{"seq": 30, "time_ms": truncated_ms, "kind": "log.truncate",
                            "component": "broker-0", "topic": "t", "partition": 0, "node": 0,
                            "offset": 5, "records": 1, "leader": np.nan, "election": None,
                            "leader_epoch": np.nan}]).set_index("seq")
    appends = pd.DataFrame(columns=["time_ms", "node", "topic", "partition", "producer"])
    history = audit.LossHistory(removed, events, appends, {("t", 0): 0})
    deletions = pd.DataFrame([{"seq": 40, "time_ms": 200.0, "node": 0, "topic": "t",
                               "partition": 0, "base_offset": 0, "end_offset": 10,
                               "reason": "retention.ms"}])
    cleaned = pd.DataFrame(columns=["seq", "node", "topic", "partition", "offset",
                                    "record_id", "time_ms"])
    storage = audit.StorageHistory(deletions, cleaned, {("t", 0): 0})
    return {"writes": writes, "reads": reads, "stored": np.zeros(0, dtype=np.int64),
            "history": history, "storage": storage}


def test_retention_is_credited_when_only_an_earlier_copy_of_the_record_was_truncated():
    """The final leader truncated an unacknowledged copy of record 7 (at 50 ms, before the
    retry that was acknowledged at 100 ms wrote it again); retention then deleted the
    acknowledged copy: deleted-by-retention, not lost (fuzz finding storage--lost-write-
    deleted-by-retention-blamed-on-election)."""
    report = audit.audit(**_retried_after_truncation(truncated_ms=50.0))
    assert report.lost == 0
    assert report.valid
    [deleted] = report.anomalies["deleted-by-retention"]
    assert (deleted["first_offset"], deleted["cause"]["seq"]) == (5, 40)


def test_a_truncation_of_the_acknowledged_copy_stays_a_lost_write_with_its_cause():
    """The same truncation after the acknowledgement (150 ms) removed the acknowledged copy
    before retention touched the segment: a lost write, caused by that truncation."""
    report = audit.audit(**_retried_after_truncation(truncated_ms=150.0))
    assert report.counts["deleted-by-retention"] == 0
    [lost] = report.lost_records
    assert (lost["offset"], lost["cause"]["seq"], lost["cause"]["kind"]) == (5, 30,
                                                                            "log.truncate")
    assert not report.valid
