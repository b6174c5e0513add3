"""The delivery audit: Jepsen's anomaly names on hand-made histories, and on real runs."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from sim import audit, faults, lessons, scenarios, trace
from sim.audit import audit_kernel
from sim.kernel import Kernel
from sim.producer import Producer
from sim.report import audit_lines
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


def history(removed: list[tuple[int, int, int, int]], leader: int = 0) -> audit.LossHistory:
    """Truncations of t-0 as (seq, broker, first offset, record ids = offsets up to 3)."""
    rows = [{"seq": seq, "time_ms": 5.0 + seq, "node": node, "topic": "t", "partition": 0,
             "offset": o, "record_id": o} for seq, node, first, _ in removed
            for o in range(first, 4)]
    events = pd.DataFrame([{"seq": seq, "time_ms": 5.0 + seq, "kind": "log.truncate",
                            "component": f"broker-{node}", "topic": "t", "partition": 0,
                            "node": node, "offset": first, "records": n, "leader": np.nan,
                            "election": None, "leader_epoch": np.nan}
                           for seq, node, first, n in removed]).set_index("seq")
    appends = pd.DataFrame(columns=["time_ms", "node", "topic", "partition", "producer"])
    return audit.LossHistory(pd.DataFrame(rows), events, appends, {("t", 0): leader})


def test_lost_writes_point_at_the_truncation_that_removed_them():
    """Broker 2 truncated from offset 1 first, but record 2 was lost from leader 0's log at
    event 42: that truncation is the cause, not the partition's first one."""
    report = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1], [3]]),
                         history=history([(40, 2, 1, 3), (42, 0, 2, 2)]))
    [lost] = report.lost_records
    assert (lost["cause"]["seq"], lost["cause"]["node"]) == (42, 0)
    assert lost["left_behind_by"] is None


def test_a_removal_from_the_final_leader_wins_over_an_earlier_one_elsewhere():
    """Follower 1 dropped record 2 (event 42), then leader 0 dropped its copy (event 43): the
    final leader's replica is the source of truth, so event 43 is the cause."""
    removals = [(42, 1, 2, 2), (43, 0, 2, 2)]
    report = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1], [3]]),
                         history=history(removals, leader=0))
    assert report.lost_records[0]["cause"]["seq"] == 43
    report = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1], [3]]),
                         history=history(removals, leader=2))
    assert report.lost_records[0]["cause"]["seq"] == 42  # neither was: the first removal


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
    assert data["lost_records"][0]["first_offset"] == 2


def test_json_lost_records_are_every_range_per_partition_and_details_say_when_cut():
    """100 lost records in two partitions, in runs: lost_records lists every run in full, each
    within one partition; the per-record detail list says it shows 32 of 100."""
    lost_0 = [*range(0, 30), *range(40, 60)]  # two runs on partition 0
    lost_1 = list(range(10, 60))  # one run on partition 1
    acked = pd.concat([writes(list(range(70)), partition=0),
                       writes(list(range(70)), ids=list(range(1000, 1070)), partition=1)],
                      ignore_index=True)
    seen = pd.concat([reads([[o for o in range(70) if o not in lost_0]]),
                      reads([[o for o in range(70) if o not in lost_1]],
                            ids=[[1000 + o for o in range(70) if o not in lost_1]])
                      .assign(partition=1)], ignore_index=True)
    data = audit.audit(acked, seen).to_json()
    runs = [(r["partition"], r["first_offset"], r["last_offset"], r["count"])
            for r in data["lost_records"]]
    assert runs == [(0, 0, 29, 30), (0, 40, 59, 20), (1, 10, 59, 50)]
    detail = data["details"]["lost-write"]
    assert (detail["total"], detail["truncated"], len(detail["items"])) == (
        100, True, audit.DETAIL_LIMIT)
    small = audit.audit(writes([0, 1, 2, 3]), reads([[0, 1], [3]])).to_json()
    assert small["details"]["lost-write"]["truncated"] is False


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


# -- each way an acknowledged record can disappear, tied to its true cause -----------------------

DISK_LOSS = """\
name: disk-loss
description: The only in-sync replica loses its disk, comes back first and is elected.
seed: 1
duration_ms: 40000
cluster: {brokers: 3, broker_configs: {replica.lag.time.max.ms: 5000}}
topics:
  - {name: payments, replica_assignment: [[0, 1, 2]], configs: {min.insync.replicas: 1}}
producers:
  - config: {client.id: app}
    workload: {topic: payments, records: 4000, rate_per_s: 200, value_bytes: 100}
faults:
  - {at_ms: 5000, network_partition: {a: [0], b: [1, 2]}}
  - {at_ms: 15000, crash_broker: {broker: 0, lose_disk: true}}
  - {at_ms: 16000, heal_network: {a: [0], b: [1, 2]}}
  - {at_ms: 18000, restart_broker: {broker: 0}}
"""


def variant(name: str, drop: str = "", add: tuple[dict, ...] = ()) -> Kernel:
    """A built-in scenario without its ``drop`` faults and with ``add`` ones."""
    scenario = copy.deepcopy(scenarios.load(name))
    scenario.faults = [f for f in scenario.faults if not drop or drop not in f] + list(add)
    return scenario.run()


def causes_of_lost(kernel: Kernel) -> tuple[audit.AuditReport, set, set]:
    """The report, and the distinct (kind, node) of its causes and of its left_behind_by."""
    report = audit_kernel(kernel)
    causes = {(r["cause"]["kind"], r["cause"]["node"]) for r in report.lost_records}
    behind = {None if r["left_behind_by"] is None else
              (r["left_behind_by"]["kind"], r["left_behind_by"]["node"])
              for r in report.lost_records}
    return report, causes, behind


def ids_in(kernel: Kernel, broker: int) -> set[int]:
    return set(kernel.cluster.partition("payments", 0).logs[broker].column("record_id").tolist())


def test_truncation_on_the_final_leader_is_the_cause():
    """acks=1, leader 0 crashes, returns, truncates, and a preferred election makes it leader
    again: its own truncation removed the records from the log that is now the truth."""
    kernel = variant("acks1-leader-crash",
                     add=({"at_ms": 25000, "preferred_leader_election": {}},))
    report, causes, behind = causes_of_lost(kernel)
    assert kernel.cluster.partition("payments", 0).leader == 0
    assert report.lost == 600
    assert causes == {("log.truncate", 0)}
    assert behind == {None}


def test_truncation_of_the_old_leader_after_the_election_that_left_the_records_behind():
    """acks=1 leader crash: broker 1 (never had them) leads; broker 0's truncation removed the
    last copies, after the clean election of broker 1."""
    kernel = scenarios.load("acks1-leader-crash").run()
    report, causes, behind = causes_of_lost(kernel)
    assert causes == {("log.truncate", 0)}
    assert behind == {("leader.election", 1)}
    assert not {r["record_id"] for r in report.lost_records} & ids_in(kernel, 1)


def test_zombie_writes_never_truncated_point_at_the_election_that_replaced_the_zombie():
    """The zombie is never healed: its acks=1 writes are still in its own log only, no removal
    touched them, and the clean election of broker 1 left them behind."""
    kernel = variant("zombie-leader", drop="heal_network")
    report, causes, behind = causes_of_lost(kernel)
    assert report.lost == 3000
    lost_ids = {r["record_id"] for r in report.lost_records}
    assert lost_ids <= ids_in(kernel, 0)  # still on the zombie: never truncated
    assert kernel.trace.count(trace.KINDS["log.truncate"]) == 0
    assert causes == {("leader.election", 1)}
    assert behind == {None}
    [seq] = {r["cause"]["seq"] for r in report.lost_records}
    elections = kernel.trace.frame(trace.KINDS["leader.election"])
    assert elections.loc[elections["seq"] == seq, "election"].tolist() == ["clean"]


def test_the_lessons_loss_report_names_the_election_of_an_unhealed_zombie():
    """Lesson 02's loss table groups the zombie's lost writes under the clean election of
    broker 1 (not an unknown cause)."""
    losses = lessons.loss_report(variant("zombie-leader", drop="heal_network"))
    assert losses[["kind", "broker", "records", "first_offset", "last_offset"]].values.tolist(
    ) == [["leader.election", 1, 3000, 1000, 3999]]


def test_unclean_election_without_return_points_at_the_unclean_election():
    """Brokers 0 and 1 never return: nothing truncates; the unclean election of stale broker 2
    lost offsets 400–2999."""
    kernel = variant("unclean-election", drop="restart_broker")
    report, causes, behind = causes_of_lost(kernel)
    assert report.lost == 2600
    assert causes == {("leader.election", 2)}
    assert behind == {None}
    assert "unclean" in report.lost_records[0]["cause"]["detail"]
    assert {r["record_id"] for r in report.lost_records} <= ids_in(kernel, 0)


def test_unclean_election_then_truncations_name_both():
    """Brokers 0 and 1 return and truncate to stale leader 2: the first truncation (broker
    0's) removed the records, after the unclean election that left them behind."""
    kernel = scenarios.load("unclean-election").run()
    report, causes, behind = causes_of_lost(kernel)
    assert report.lost == 2600
    assert causes == {("log.truncate", 0)}
    assert behind == {("leader.election", 2)}


def test_a_lost_disk_on_the_elected_replica_is_the_cause(tmp_path):
    """The only in-sync replica restarts empty and is elected (ELR off in 4.0): log.lost on
    that broker removed everything it had acknowledged; followers' truncations do not count."""
    path = tmp_path / "disk.yaml"
    path.write_text(DISK_LOSS, encoding="utf-8")
    kernel = scenarios.load(path).run()
    report, causes, behind = causes_of_lost(kernel)
    assert kernel.cluster.partition("payments", 0).leader == 0
    assert report.lost > 0
    assert causes == {("log.lost", 0)}
    assert behind == {None}
    lost_events = kernel.trace.frame(trace.KINDS["log.lost"])
    assert lost_events[["node", "topic", "partition", "offset"]].values.tolist() == [
        [0, "payments", 0, 0]]
    assert int(lost_events["records"].iloc[0]) >= report.lost


def test_a_restart_with_an_empty_disk_emits_log_lost_only_for_replicas_with_records():
    """log.lost names each replica the lost disk held records of, with their count."""
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("t", partitions=2, replication_factor=3)
    producer = Producer(kernel)
    for _ in range(7):
        producer.send("t", partition=1)
    producer.flush()
    kernel.run(kernel.now_ms + 100)
    faults.CrashBroker(2, lose_disk=True).apply(kernel)
    kernel.run(kernel.now_ms + 100)
    faults.RestartBroker(2).apply(kernel)
    lost = kernel.trace.frame(trace.KINDS["log.lost"])
    assert lost[["node", "topic", "partition", "offset", "records"]].values.tolist() == [
        [2, "t", 1, 0, 7]]


def replicated(records: int) -> Kernel:
    """``records`` acks=all records in t-0 (RF 3), replicated to every broker."""
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("t", partitions=1, replication_factor=3)
    producer = Producer(kernel)
    for _ in range(records):
        producer.send("t", partition=0)
    producer.flush()
    kernel.run(kernel.now_ms + 100)
    return kernel


def test_a_truncation_that_did_not_drop_the_record_is_not_its_cause():
    """A follower truncates from offset 50 (the leader still has 50–99), then the leader
    truncates from 80: records 80–99 are lost, by the leader's truncation only."""
    kernel = replicated(100)
    part = kernel.cluster.partition("t", 0)
    follower = next(b for b in part.replicas if b != part.leader)
    kernel.replicas.truncate(part, follower, 50)
    kernel.replicas.truncate(part, part.leader, 80)
    report = audit_kernel(kernel)
    assert sorted(r["offset"] for r in report.lost_records) == list(range(80, 100))
    assert {r["cause"]["component"] for r in report.lost_records} == {f"broker-{part.leader}"}


def _frame_lookups(kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many DataFrame column/row selections one audit of ``kernel`` makes."""
    calls = 0
    original = pd.DataFrame.__getitem__

    def counting(self, key):
        nonlocal calls
        calls += 1
        return original(self, key)

    with monkeypatch.context() as patch:
        patch.setattr(pd.DataFrame, "__getitem__", counting)
        audit_kernel(kernel)
    return calls


def test_finding_loss_causes_does_not_cost_a_search_per_lost_record(monkeypatch):
    """A hundred times more lost records cost no more DataFrame selections: the causes are
    found by merges over all lost records at once, not by filtering the trace per record."""
    few, many = replicated(2000), replicated(2000)
    for kernel, n in ((few, 10), (many, 1000)):
        part = kernel.cluster.partition("t", 0)
        kernel.replicas.truncate(part, part.leader, 2000 - n)
    assert (audit_kernel(few).lost, audit_kernel(many).lost) == (10, 1000)
    assert _frame_lookups(many, monkeypatch) <= _frame_lookups(few, monkeypatch) + 5


def test_the_text_audit_prints_one_range_per_partition():
    """Losses on two partitions: one line each, with that partition's own lowest and highest
    lost offsets and count (never one partition's name with another's offsets)."""
    scenario = copy.deepcopy(scenarios.load("acks1-leader-crash"))
    scenario.topics = [{"name": "payments", "replica_assignment": [[0, 1, 2], [0, 2, 1]]}]
    kernel = scenario.run()
    report = audit_kernel(kernel)
    lines = "\n".join(audit_lines(report)).replace("\n      ", " ")
    for partition in (0, 1):
        offsets = [r["offset"] for r in report.lost_records if r["partition"] == partition]
        assert offsets, partition
        assert (f"payments-{partition}: {len(offsets)} records, offsets "
                f"{min(offsets)}–{max(offsets)}; removed by log.truncate on broker 0") in lines
    assert f"lost: {report.lost} acknowledged records" in lines
