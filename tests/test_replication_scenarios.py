"""The built-in replication scenarios: what each one loses (or not), worked out by hand.

Each scenario produces 200 records per second from t = 0 into one partition led by broker 0
(replica assignment [0, 1, 2]), so the record sent at t ms has offset t / 5 until a fault moves
things — which is how the expected offsets below are computed from the fault schedules.
"""

from __future__ import annotations

import json

import pytest

from sim import scenarios
from sim import trace as events
from sim.__main__ import main
from sim.audit import audit_kernel

RATE_PER_MS = 200 / 1000


def run(name: str):
    kernel = scenarios.load(name).run()
    return kernel, audit_kernel(kernel)


def lost_offsets(report) -> list[int]:
    return sorted(r["offset"] for r in report.lost_records)


def test_acks1_leader_crash_loses_what_only_the_leader_had():
    """Cut at 5 s, crash at 8 s: records sent in [5 s, 8 s) — offsets 1000–1599 — are lost."""
    kernel, report = run("acks1-leader-crash")
    first, last = int(5000 * RATE_PER_MS), int(8000 * RATE_PER_MS) - 1
    assert report.lost == last - first + 1 == 600
    assert report.to_json()["lost"] == 600
    truncate = kernel.trace.frame(events.KINDS["log.truncate"])
    assert truncate[["node", "offset", "records"]].values.tolist() == [[0, first, 600]]
    assert {r["cause"]["kind"] for r in report.lost_records} == {"log.truncate"}
    election = kernel.trace.frame(events.KINDS["leader.election"])
    assert election[["time_ms", "leader", "election"]].values.tolist() == [[17000.0, 1, "clean"]]


def test_unclean_election_loses_everything_the_stale_replica_missed():
    """Broker 2 cut off at 2 s becomes leader at 24 s: offsets 400–2999 are lost."""
    kernel, report = run("unclean-election")
    first, last = int(2000 * RATE_PER_MS), int(15000 * RATE_PER_MS) - 1
    assert report.lost == last - first + 1
    json_report = report.to_json()
    assert json_report["lost_records"][0]["first_offset"] == first
    elections = kernel.trace.frame(events.KINDS["leader.election"])
    # 0 and 1 are fenced one at a time (ReplicationControlManager.maybeFenceOneStaleBroker):
    # at 0's fencing the crashed 1 is still active and in the ISR, so it is elected first
    assert elections[["leader", "election"]].values.tolist() == [[1, "clean"], [2, "unclean"]]
    part = kernel.cluster.partition("payments", 0)
    assert part.leader == 2
    # the survivors truncated to the stale leader: all three replicas agree again
    ids = [part.logs[b].column("record_id").tolist() for b in (0, 1, 2)]
    assert ids[0] == ids[1] == ids[2]


def test_safe_replication_loses_nothing():
    """RF 3, min.insync.replicas 2, acks=all: a leader crash costs latency, not data."""
    _kernel, report = run("safe-replication")
    assert report.acknowledged == 4000
    assert report.lost == 0
    assert report.duplicates == 0
    assert report.valid


def test_isr_shrink_makes_the_partition_unavailable_but_loses_nothing():
    """Both followers crash at 5 s: writes in flight wait for the frozen high watermark until
    request.timeout.ms (5 s) — the broker answers REQUEST_TIMED_OUT, and the producer, whose own
    request.timeout.ms counts from sending, often gives up first (REQUEST_TIMEOUT); once the
    followers are fenced at 14 s, NOT_ENOUGH_REPLICAS until they return at 25 s. Batches whose
    delivery.timeout.ms ran out after they were sent leave their sequences unresolved: once the
    followers are back, the next batch may be refused OUT_OF_ORDER_SEQUENCE_NUMBER (the refused
    batches before it were never written), and the producer bumps its epoch and retries it
    (TransactionManager.canRetry, KIP-360)."""
    kernel, report = run("isr-shrink")
    assert report.lost == 0
    answered = kernel.trace.frame(events.KINDS["produce.error"])
    broker_timeouts = answered[answered["error"] == "REQUEST_TIMED_OUT"]["time_ms"]
    assert 10_000 <= broker_timeouts.min() < 10_100
    errors = kernel.trace.frame(events.PRODUCE_RETRY)
    timeouts = {"REQUEST_TIMED_OUT", "REQUEST_TIMEOUT"}
    timed_out = errors[errors["error"].isin(timeouts)]["time_ms"]
    assert 10_000 <= timed_out.min() < 10_100
    not_enough = errors[errors["error"] == "NOT_ENOUGH_REPLICAS"]["time_ms"]
    assert not_enough.min() >= 14000
    assert not_enough.max() < 25000
    assert "NOT_ENOUGH_REPLICAS" in set(errors["error"])
    assert set(errors["error"]) <= timeouts | {"NOT_ENOUGH_REPLICAS",
                                               "OUT_OF_ORDER_SEQUENCE_NUMBER"}
    out_of_order = errors[errors["error"] == "OUT_OF_ORDER_SEQUENCE_NUMBER"]["time_ms"]
    assert (out_of_order >= 25_000).all()
    failed = kernel.clients[0].results()["error"].value_counts()
    assert failed.index.tolist() == ["TimeoutException: delivery.timeout.ms expired"]
    assert report.acknowledged + int(failed.sum()) == 4000


def test_retries_without_idempotence_duplicate_records():
    """Lost responses plus retries: every duplicate is one acknowledged record written twice."""
    kernel, report = run("retries-duplicates")
    ids = kernel.cluster.partition("payments", 0).log.column("record_id")
    assert report.duplicates == len(ids) - len(set(ids.tolist())) > 0
    assert report.lost == 0


@pytest.mark.parametrize("name", ["acks1-leader-crash", "safe-replication"])
def test_cli_json_carries_the_audit(capsys: pytest.CaptureFixture[str], name: str):
    """python -m sim run NAME --json prints one JSON object with the audit's summary."""
    assert main(["run", name, "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)["audit"]
    for member in ("acknowledged", "lost", "duplicates", "lost_records"):
        assert member in audit
    assert audit["lost"] == (600 if name == "acks1-leader-crash" else 0)


def test_a_zombie_leader_acknowledges_writes_that_are_later_truncated():
    """Cut off from the controller at 5 s, broker 0 acks on until 20 s: offsets 1000–3999 lost."""
    kernel, report = run("zombie-leader")
    first = int(5000 * RATE_PER_MS)
    assert report.lost == 4000 - first == 3000
    assert lost_offsets(report)[:1] == [first]
    elections = kernel.trace.frame(events.KINDS["leader.election"])
    assert elections[["time_ms", "leader"]].values.tolist() == [[14000.0, 1]]
    truncate = kernel.trace.frame(events.KINDS["log.truncate"])
    assert truncate[["time_ms", "node", "offset", "records"]].values.tolist() == [
        [20000.0, 0, first, 3000]]


def test_idempotence_removes_the_duplicates_and_keeps_the_order():
    """The same lossy link with enable.idempotence=true: no duplicate, nothing reordered."""
    scenario = scenarios.load("retries-duplicates")
    scenario.producers[0]["config"]["enable.idempotence"] = True
    kernel = scenario.run()
    report = audit_kernel(kernel)
    assert report.valid
    assert report.counts["duplicate"] == report.counts["nonmonotonic-send"] == 0
    ids = kernel.cluster.partition("payments", 0).log.column("record_id").tolist()
    assert ids == sorted(ids)
    errors = set(kernel.trace.frame(events.KINDS["produce.error"])["error"])
    assert errors <= {"OUT_OF_ORDER_SEQUENCE_NUMBER"}


def test_a_crashed_leader_does_not_shrink_the_isr():
    """Only a live leader runs the ISR check: the in-sync follower is elected after fencing."""
    from sim import Kernel, Producer, Workload, faults

    kernel = Kernel(seed=1, brokers=3, broker_configs={"replica.lag.time.max.ms": 5000})
    kernel.cluster.create_topic("t", replica_assignment=[[0, 1, 2]])
    Producer(kernel, {"acks": "1"}, workload=Workload.generate(kernel.spawn_rng(), "t", 4000,
                                                               200))
    faults.schedule(kernel, 5000, faults.NetworkPartition((0,), (1, 2)))
    faults.schedule(kernel, 6000, faults.CrashBroker(0))
    kernel.run(20_000)
    elections = kernel.trace.frame(events.KINDS["leader.election"])
    assert elections["election"].tolist() == ["clean"]
    assert kernel.cluster.partition("t", 0).leader == 1
