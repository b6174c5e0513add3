"""The delivery audit: Jepsen's anomaly names on hand-made histories, and on real runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim import audit
from sim.audit import audit_kernel
from sim.kernel import Kernel
from sim.producer import Producer
from sim.workloads import Workload


def writes(offsets: list[int], ids: list[int] | None = None, partition: int = 0) -> pd.DataFrame:
    """Acknowledged writes of producer p to topic t at the given offsets (ids = offsets)."""
    ids = offsets if ids is None else ids
    return pd.DataFrame({"writer": "p", "record_id": ids, "topic": "t", "partition": partition,
                         "offset": offsets, "ack_ms": [1.0] * len(offsets)})


def reads(polls: list[list[int]], consumer: str = "c", ids: list[list[int]] | None = None,
          incarnation: int = 0) -> pd.DataFrame:
    """One consumer's polls of t-0, each a list of offsets (record id = offset)."""
    rows = []
    for poll, offsets in enumerate(polls):
        for k, offset in enumerate(offsets):
            record_id = offset if ids is None else ids[poll][k]
            rows.append({"consumer": consumer, "incarnation": incarnation, "poll": poll,
                         "poll_seq": 100 + poll, "time_ms": 10.0 * poll, "topic": "t",
                         "partition": 0, "offset": offset, "record_id": record_id,
                         "group": "g"})
    return pd.DataFrame(rows)


def processed(offsets: list[int], consumer: str = "c", at: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"consumer": consumer, "group": "g", "topic": "t", "partition": 0,
                         "offset": offsets, "record_id": offsets, "poll_seq": 100,
                         "processed_ms": at + np.arange(len(offsets), dtype=float)})


def crash(consumer: str, at: float) -> pd.DataFrame:
    return pd.DataFrame([{"seq": 7, "time_ms": at, "kind": "fault", "component": consumer,
                          "detail": "consumer_crash", "topic": None, "partition": np.nan,
                          "offset": np.nan}], columns=audit.CAUSE_COLUMNS)


def test_a_clean_history_has_no_anomalies():
    """Every acknowledged write read once, in order, processed once: valid, all counts 0."""
    report = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1], [2, 3]]), processed([0, 1, 2, 3]))
    assert report.valid
    assert set(report.counts.values()) == {0}
    assert (report.acknowledged, report.read, report.processed) == (4, 4, 4)


def test_lost_write_is_unread_below_the_highest_offset_read():
    """Offset 2 was acknowledged, never read, and offset 3 was: a lost write (invalid run)."""
    report = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1], [3]]))
    assert report.lost == 1
    assert report.lost_records[0]["offset"] == 2
    assert report.lost_records[0]["max_read_offset"] == 3
    assert not report.valid
    assert "lost-write" in report.bad_kinds


def test_lost_writes_point_at_the_truncation_that_removed_them():
    """A log.truncate event covering the offset after the ack is named as the cause."""
    causes = pd.DataFrame([{"seq": 42, "time_ms": 5.0, "kind": "log.truncate",
                            "component": "broker-1", "detail": "", "topic": "t",
                            "partition": 0, "offset": 2}], columns=audit.CAUSE_COLUMNS)
    report = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1], [3]]), causes=causes)
    assert report.lost_records[0]["cause"]["seq"] == 42


def test_unseen_is_unread_with_nothing_read_past_it():
    """Offsets 2 and 3 were never read and nothing past them was: unseen, still valid."""
    report = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1]]))
    assert (report.unseen, report.lost) == (2, 0)
    assert report.valid


def test_duplicate_is_one_record_at_two_offsets():
    """Record 7 read at offsets 0 and 1 (a retry written twice): one duplicate."""
    report = audit.audit(writes([0], ids=[7]), reads([[0, 1]], ids=[[7, 7]]))
    assert report.duplicates == 1
    assert report.anomalies["duplicate"][0]["offsets"] == ["t-0@0", "t-0@1"]


def test_inconsistent_offsets_is_two_records_at_one_offset():
    """Offset 0 acknowledged for record 5 but read as record 6: inconsistent-offsets."""
    report = audit.audit(writes([0], ids=[5]), reads([[0]], ids=[[6]]))
    assert report.counts["inconsistent-offsets"] == 1
    assert report.anomalies["inconsistent-offsets"][0]["record_ids"] == [5, 6]
    assert report.lost == 1  # record 5 itself was never read


def test_poll_skip_and_nonmonotonic_poll_are_allowed_only_with_subscribe():
    """A jump forward and a step back between one consumer's polls are flagged; with
    subscribe() (rebalances move partitions) they do not make the run invalid."""
    history = pd.concat([reads([[0, 1], [5, 6], [3, 4]]), reads([[2]], consumer="d")],
                        ignore_index=True)
    report = audit.audit(writes(list(range(7))), history, subscribed=True)
    assert report.counts["poll-skip"] == 1
    assert report.counts["nonmonotonic-poll"] == 1
    skip = report.anomalies["poll-skip"][0]
    assert (skip["from_offset"], skip["to_offset"], skip["polls"]) == (1, 5, [100, 101])
    assert report.valid
    assert not audit.audit(writes(list(range(7))), history, subscribed=False).valid


def test_a_new_process_starts_a_fresh_poll_order():
    """Polls of a restarted consumer (new incarnation) are not compared with the old ones."""
    history = pd.concat([reads([[0, 1, 2]]), reads([[1, 2]], incarnation=1)], ignore_index=True)
    report = audit.audit(writes([0, 1, 2]), history)
    assert report.counts["nonmonotonic-poll"] == 0


def test_skipped_records_are_behind_a_commit_and_never_processed():
    """Read 0-9, committed 10, processed 0-3, crashed: 4-9 are skipped, caused by the crash."""
    commits = pd.DataFrame([{"consumer": "c", "group": "g", "time_ms": 0.0, "topic": "t",
                             "partition": 0, "offset": 10, "error": "", "seq": 101}])
    report = audit.audit(writes(list(range(10))), reads([list(range(10))]),
                         processed([0, 1, 2, 3]), commits, crash("c", 3.5))
    assert report.skipped == 6
    [entry] = report.anomalies["skipped"]
    assert (entry["first_offset"], entry["last_offset"], entry["commit_seq"]) == (4, 9, 101)
    assert entry["cause"]["seq"] == 7
    assert report.valid  # a delivery outcome, not a broken log


def test_records_still_being_processed_are_not_skipped():
    """No crash, no later record processed: the rest of the batch is still in progress."""
    commits = pd.DataFrame([{"consumer": "c", "group": "g", "time_ms": 0.0, "topic": "t",
                             "partition": 0, "offset": 10, "error": "", "seq": 101}])
    report = audit.audit(writes(list(range(10))), reads([list(range(10))]),
                         processed([0, 1, 2, 3]), commits)
    assert report.skipped == 0


def test_processed_twice_counts_each_record_once():
    """c processed 0-4 and crashed; d processed 3-6 again: 3 and 4 were processed twice."""
    done = pd.concat([processed([0, 1, 2, 3, 4], "c"), processed([3, 4, 5, 6], "d", at=10)],
                     ignore_index=True)
    report = audit.audit(writes(list(range(7))), reads([list(range(7))]), done,
                         causes=crash("c", 5.0))
    assert report.processed_twice == 2
    [entry] = report.anomalies["processed-twice"]
    assert (entry["first_by"], entry["second_by"]) == ("c", "d")
    assert entry["cause"]["component"] == "c"


def test_json_has_the_summary_counts_and_one_count_per_kind():
    """The JSON keeps acknowledged, lost, duplicates, lost_records and a count per kind."""
    report = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1], [3]]))
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    for key in ("acknowledged", "lost", "duplicates", "lost_records", "skipped",
                "processed_twice", "anomalies", "valid"):
        assert key in data
    assert set(data["anomalies"]) == set(audit.KINDS)
    assert data["lost_records"][0]["offset"] == 2


# -- on real runs ---------------------------------------------------------------------------------

def produced(acks: str = "all") -> Kernel:
    kernel = Kernel(seed=1, brokers=1)
    kernel.cluster.create_topic("t", partitions=2)
    producer = Producer(kernel, {"acks": acks})
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", 500, 10000))
    producer.flush()
    kernel.run(kernel.now_ms + 100)  # acks=0 records are "acknowledged" before they arrive
    return kernel


def test_the_final_read_finds_every_acknowledged_record():
    """Without consumers, Jepsen's final polls read the logs: nothing lost or unseen."""
    report = audit_kernel(produced())
    assert report.acknowledged == 500
    assert (report.lost, report.unseen, report.read) == (0, 0, 0)
    assert report.valid


def test_truncating_a_log_turns_acknowledged_records_into_lost_writes():
    """Records removed by log.truncate are lost writes, each tied to the truncation event."""
    kernel = produced()
    part = kernel.cluster.partition("t", 0)
    end = part.log.log_end_offset
    kernel.replicas.truncate(part, part.leader, end - 10)
    part.log.high_watermark = part.log.log_end_offset
    # A new leader writes other records at the same offsets, as after an unclean election.
    other = Producer(kernel)
    for _ in range(20):
        other.send("t", partition=0)
    other.flush()
    report = audit_kernel(kernel)
    assert report.lost == 10
    assert {r["cause"]["kind"] for r in report.lost_records} == {"log.truncate"}
    assert report.counts["inconsistent-offsets"] == 10
    assert not report.valid


def test_acks_0_records_have_no_offset_and_are_found_by_record_id():
    """With acks=0 the producer never learns offsets; the final read still finds each record."""
    report = audit_kernel(produced("0"))
    assert report.acknowledged == 500
    assert report.unseen == 0


@pytest.mark.parametrize("kind", audit.KINDS)
def test_every_kind_is_counted(kind):
    """The report has a count for each of Jepsen's kinds and the two delivery outcomes."""
    assert kind in audit.audit(writes([0]), reads([[0]])).counts
