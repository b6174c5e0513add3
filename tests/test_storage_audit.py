"""The audit ties records removed by the storage rules to the event that removed them.

A record no consumer read before retention deleted its segment is ``deleted-by-retention``
(cause: the ``log.segment.delete`` event of the final leader's replica); one the log cleaner
removed is ``compacted-away`` (cause: the ``log.clean`` event). Kafka allows both, so neither
makes a run INVALID, neither counts as lost, skipped or a poll-skip.
"""

from __future__ import annotations

import numpy as np
import pytest

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
    import pandas as pd

    from sim.audit import _moved_past_ms

    done = pd.DataFrame({"offset": [5, 7], "processed_ms": [10.0, 4.0]})
    commits = pd.DataFrame({"offset": [6], "time_ms": [2.0]})  # the next offset to read: 6
    moved = _moved_past_ms(np.array([3, 5, 6, 7, 8]), done, commits)
    assert moved.tolist() == [2.0, 2.0, 4.0, np.inf, np.inf]
