"""The consumer scenarios: what `python -m sim run NAME --json` reports, and why.

Each count is checked twice: pinned to the number the run gives, and recomputed from the run's
own frames (the crashed consumer's reads, commits and processing), so a change in timing
elsewhere shows up as a changed pin, not as a silently different story.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json

import pytest

from sim import scenarios
from sim.__main__ import main
from sim.consumer import events as ev
from sim.consumer import metrics
from sim.consumer.assignors import RangeAssignor, Subscription
from sim.errors import ScenarioError
from sim.kernel import Kernel

NAMES = ["consumer-crash-at-least-once", "consumer-crash-at-most-once", "rebalance-eager",
         "rebalance-cooperative"]


@functools.cache
def cli(name: str, *flags: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", name, *flags]) == 0
    return out.getvalue()


@functools.cache
def summary(name: str) -> dict:
    return json.loads(cli(name, "--json"))


@functools.cache
def kernel(name: str) -> Kernel:
    return scenarios.load(name).run()


@pytest.mark.parametrize("name", NAMES)
def test_json_is_one_object_with_the_audit(name):
    """--json prints exactly one JSON object; its audit has the counts and the generations."""
    text = cli(name, "--json")
    assert text.count("\n") == 1
    assert text.startswith("{")
    audit = summary(name)["audit"]
    for key in ("acknowledged", "lost", "duplicates", "lost_records", "skipped",
                "processed_twice", "anomalies", "generations"):
        assert key in audit
    assert audit["valid"]
    assert audit["lost"] == 0


def crashed_consumer_story(name: str) -> tuple[int, int, int]:
    """From the crashed consumer's own frames: (records it processed after its last commit,
    offsets committed past its last processed record, its batch size at the crash)."""
    k = kernel(name)
    crashed = metrics.consumers(k)[0]
    crash_ms = float(k.trace.frame(ev.CONSUMER_LEFT)["time_ms"].iloc[0])
    done = crashed.processed()
    commits = crashed.commits()
    commits = commits[(commits["error"] == "") & (commits["time_ms"] <= crash_ms)]
    last = commits.iloc[-1]
    mine = done[done["partition"] == last["partition"]]
    after_commit = int((mine["offset"] >= last["offset"]).sum())
    skipped = int(last["offset"] - (mine["offset"].max() + 1))
    batch = int(crashed.reads().groupby("poll").size().iloc[-1])
    return after_commit, max(skipped, 0), batch


def test_at_least_once_crash_repeats_what_was_not_committed():
    """consumer-billing-1 crashes 83 records into a 100-record batch it had not committed:
    its successor processes those 83 again; nothing is skipped."""
    audit = summary("consumer-crash-at-least-once")["audit"]
    after_commit, _, batch = crashed_consumer_story("consumer-crash-at-least-once")
    assert (audit["processed_twice"], audit["skipped"]) == (83, 0)
    assert audit["processed_twice"] == after_commit
    assert batch == 100
    [entry] = audit["details"]["processed-twice"]["items"]
    assert (entry["first_by"], entry["second_by"]) == ("consumer-billing-1", "consumer-billing-2")
    assert entry["cause"]["detail"].startswith("consumer_crash")


def test_at_most_once_crash_skips_what_was_committed_but_not_processed():
    """consumer-billing-1 committed its 100-record batch first and crashed 82 records in: the
    other 18 are never processed; nothing is processed twice."""
    audit = summary("consumer-crash-at-most-once")["audit"]
    _, skipped, batch = crashed_consumer_story("consumer-crash-at-most-once")
    assert (audit["skipped"], audit["processed_twice"]) == (18, 0)
    assert audit["skipped"] == skipped
    assert batch == 100
    [entry] = audit["details"]["skipped"]["items"]
    assert entry["read_by"] == "consumer-billing-1"
    assert entry["cause"]["kind"] == "fault"


def test_crash_takeover_waits_for_the_session_timeout():
    """The survivor gets the crashed member's partition only after session.timeout.ms."""
    k = kernel("consumer-crash-at-least-once")
    removed = k.trace.frame(ev.GROUP_MEMBER_REMOVED)
    crash_ms = float(k.trace.frame(ev.CONSUMER_LEFT)["time_ms"].iloc[0])
    assert removed["reason"].iloc[0].startswith("session timeout")
    assert crash_ms < removed["time_ms"].iloc[0] <= crash_ms + 10000
    generations = summary("consumer-crash-at-least-once")["audit"]["generations"]
    assert generations[-1]["assignments"] == {"consumer-billing-2": ["payments-0",
                                                                     "payments-1"]}


def range_of(members: list[str]) -> dict[str, list[str]]:
    """RangeAssignor on members whose ids sort like their client ids (as Kafka's do here)."""
    result = RangeAssignor().assign({"orders": 6}, {m: Subscription(("orders",)) for m in members})
    return {m: [str(tp) for tp in tps] for m, tps in result.items()}


def test_eager_rebalances_stop_the_world():
    """Range (eager): every generation is RangeAssignor's, every member revokes everything at
    every rebalance, and every partition pauses while the slow member finishes its batch."""
    generations = summary("rebalance-eager")["audit"]["generations"]
    for generation in generations:
        assert generation["assignments"] == range_of(sorted(generation["assignments"]))
    assert [len(g["assignments"]) for g in generations] == [3, 4, 3]
    revoked = kernel("rebalance-eager").trace.frame(ev.CONSUMER_REVOKED)
    assert (revoked["assignment"] == "").all()
    pauses = metrics.rebalance_pauses(kernel("rebalance-eager"), "shipping")
    assert len(pauses) == 12  # six partitions, two rebalances
    assert pauses["pause_ms"].max() > 2000  # waiting for consumer-shipping-3's slow batch


def test_cooperative_rebalances_move_only_what_moves():
    """Cooperative-sticky: a join takes two generations (the moving partition is withheld,
    then given), a leave one; no member ever revokes a partition it keeps; only moved
    partitions pause."""
    generations = summary("rebalance-cooperative")["audit"]["generations"]
    first, withheld, given, final = (g["assignments"] for g in generations)
    assert withheld["consumer-shipping-4"] == []
    assert given["consumer-shipping-4"] == ["orders-4"]
    assert "consumer-shipping-2" in given
    assert "consumer-shipping-2" not in final
    revoked = kernel("rebalance-cooperative").trace.frame(ev.CONSUMER_REVOKED)
    for row in revoked.itertuples():
        kept = set(row.assignment.split(",")) - {""}
        assert not kept & set(row.partitions.split(","))
    moved = {tp for name, tps in final.items() for tp in tps if tp not in first.get(name, [])}
    pauses = metrics.rebalance_pauses(kernel("rebalance-cooperative"), "shipping")
    assert set(pauses["topic"] + "-" + pauses["partition"].astype(str)) == moved
    assert len(pauses) < len(metrics.rebalance_pauses(kernel("rebalance-eager"), "shipping"))


def test_text_summary_has_a_consumer_group_section():
    """Without --json the summary names the group, its generations and the audit."""
    text = cli("rebalance-cooperative")
    assert "Consumer groups" in text
    assert "cooperative rebalances (KIP-429)" in text
    assert "generation 2 at" in text
    assert "Delivery audit" in text
    assert "__consumer_offsets" not in text.split("Consumer groups")[0]


def test_same_seed_prints_the_same_bytes():
    """A rerun of a consumer scenario prints byte-identical JSON."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["run", "consumer-crash-at-most-once", "--json"])
    assert out.getvalue() == cli("consumer-crash-at-most-once", "--json")


BASE = """\
name: bad
duration_ms: 1000
topics: [{name: t, partitions: 2}]
"""


@pytest.mark.parametrize(("extra", "message"), [
    ("consumers: [{group: g, topics: [t], app: exactly-once}]",
     "consumers[0].app must be one of at-most-once, at-least-once, auto-commit"),
    ("consumers: [{group: g, topics: [nope]}]", "names topic 'nope'"),
    ("consumers: [{group: g}]", "needs exactly one of topics"),
    ("consumers: [{group: g, topics: [t], config: {max.poll.record: 1}}]",
     "Did you mean max.poll.records"),
    ("consumers: [{group: g, topics: [t], app: auto-commit, "
     "config: {enable.auto.commit: false}}]", "relies on it"),
    ("consumers: [{group: g, topics: [t]}]\nfaults: [{at_ms: 5, crash: {consumer: x}}]",
     "names consumer 'x'; the scenario's consumers are: consumer-g-1"),
    ("consumers: [{group: g, topics: [t]}]\nfaults: [{at_ms: 5, hang: {consumer: "
     "consumer-g-1}}]", "faults[0].hang.duration_ms is required"),
    ("group_coordinator: {group.initial.rebalance.delay: 0}", "Did you mean"),
])
def test_bad_consumer_sections_are_clear_errors(extra, message):
    """Errors name the file, the field and what is allowed."""
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scenarios.parse(BASE + extra, "bad.yaml")


def test_consumers_need_a_duration():
    """A consumer polls forever, so a scenario with consumers must say when to stop."""
    text = BASE.replace("duration_ms: 1000\n", "") + "consumers: [{group: g, topics: [t]}]"
    with pytest.raises(ScenarioError, match="duration_ms is required with consumers"):
        scenarios.parse(text, "bad.yaml")
