"""Lesson 03 (consumer groups): its computations, every number its markdown states, its figures
and its widget callbacks.

Each ``test_lesson_*`` test backs one "what to look for" paragraph of
``notebooks/03_consumer_groups.ipynb`` and calls the same function the notebook calls; the
docstring quotes the claim.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
from pathlib import Path

import ipywidgets
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim import scenarios, viz_groups
from sim.audit import AuditReport, audit_kernel
from sim.consumer import metrics
from sim.consumer.apps import at_least_once
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.lessons import groups as lg
from sim.records import TopicPartition
from sim.widgets import GradingPlaceholder
from sim.widgets import groups as panels

ROOT = Path(__file__).resolve().parents[1]
TOPICS = lg.topics_of(topics=4, partitions=2)
GROUP = lg.member_names(3)
STEPS = [("C0, C1, C2 start", ["C0", "C1", "C2"]), ("C3 joins", ["C0", "C1", "C2", "C3"]),
         ("C1 leaves", ["C0", "C2", "C3"])]


def tps(*names: str) -> list[TopicPartition]:
    """``tps("t0-0", "t1-1")`` → TopicPartitions."""
    out = []
    for name in names:
        topic, _, number = name.rpartition("-")
        out.append(TopicPartition(topic, int(number)))
    return out


def lesson_text() -> str:
    """The lesson's markdown, every run of white space as one space."""
    cells = json.loads((ROOT / "notebooks" / "03_consumer_groups.ipynb").read_text())["cells"]
    return " ".join(" ".join("".join(c["source"]) for c in cells
                             if c["cell_type"] == "markdown").split())


# --- the runs the lesson makes, once per test session ------------------------------------------


@functools.cache
def lag_build(consumers: int) -> lg.LagRun:
    return lg.lag_run(consumers=consumers)


@functools.cache
def lag_drain() -> lg.LagRun:
    return lg.lag_run(consumers=2, extra_consumers=2, join_at_ms=10_000, duration_ms=30_000)


@functools.cache
def lag_polls(max_poll_records: int) -> lg.LagRun:
    return lg.lag_run(consumers=3, max_poll_records=max_poll_records, backlog=3000,
                      max_poll_interval_ms=3000, duration_ms=20_000)


@functools.cache
def crash(strategy: str) -> Kernel:
    return lg.crash_run(strategy)


@functools.cache
def hang(strategy: str) -> Kernel:
    return lg.crash_run(strategy, hang_ms=15_000)


@functools.cache
def crash_audit(strategy: str) -> AuditReport:
    return audit_kernel(crash(strategy))


@functools.cache
def rebalances() -> dict[str, Kernel]:
    return lg.rebalance_runs()


# --- headers -----------------------------------------------------------------------------------


def test_config_header_names_the_version_and_every_key_config_with_kafka_defaults():
    """Every panel line says Kafka 4.0 and the five key configs; defaults are Kafka 4.0's."""
    header = lg.config_header()
    assert header.startswith("Kafka 4.0 consumer, classic group protocol")
    for name in lg.KEY_CONFIGS:
        assert f"{name}=" in header
    assert "partition.assignment.strategy=range,cooperative-sticky" in header
    assert "enable.auto.commit=true" in header
    assert "max.poll.records=500" in header
    assert "session.timeout.ms=45000" in header
    assert "max.poll.interval.ms=300000" in header
    with pytest.raises(ConfigError, match=r"max\.poll\.record"):
        lg.config_header({"max.poll.record": 5})


def test_runs_header_says_per_panel_where_runs_differ():
    """Side-by-side panels share one header; a config that differs reads "per panel"."""
    header = lg.runs_header(rebalances(), "shipping")
    assert "partition.assignment.strategy=per panel" in header
    assert "max.poll.records=200" in header
    assert "enable.auto.commit=true" in header


# --- assignors -----------------------------------------------------------------------------------


def test_assign_reproduces_kafkas_javadoc_and_test_vectors():
    """Range and round robin on kafka-facts §4.2/§4.3 vectors; cooperative's two rounds (§4.4)."""
    two = {"t0": 3, "t1": 3}
    assert lg.assign("range", two, ["C0", "C1"]) == {
        "C0": tps("t0-0", "t0-1", "t1-0", "t1-1"), "C1": tps("t0-2", "t1-2")}
    assert lg.assign("roundrobin", two, ["C0", "C1"]) == {
        "C0": tps("t0-0", "t0-2", "t1-1"), "C1": tps("t0-1", "t1-0", "t1-2")}
    assert lg.assign("range", {"t": 7}, ["A", "B", "C", "D"]) == {
        "A": tps("t-0", "t-1"), "B": tps("t-2", "t-3"), "C": tps("t-4", "t-5"), "D": tps("t-6")}
    step = lg.rebalance("cooperative-sticky", {"topic": 3},
                        {"consumer1": tps("topic-0", "topic-1", "topic-2")},
                        ["consumer1", "consumer2"])
    assert step.rounds == 2
    assert step.after == {"consumer1": tps("topic-0", "topic-1"), "consumer2": tps("topic-2")}
    assert step.moved == step.stopped == tps("topic-2")
    eager = lg.rebalance("sticky", {"topic": 3}, {"consumer1": tps("topic-0", "topic-1",
                                                                   "topic-2")},
                         ["consumer1", "consumer2"])
    assert (eager.rounds, eager.after, len(eager.stopped)) == (1, step.after, 3)


def test_members_are_sorted_by_member_id_not_join_order():
    """Range and round robin sort members by member id: join order changes nothing."""
    joined = lg.assign("range", {"orders": 4, "payments": 3}, ["C1", "C2", "C0"])
    assert joined == lg.assign("range", {"orders": 4, "payments": 3}, ["C0", "C1", "C2"])
    assert joined["C0"] == tps("orders-0", "orders-1", "payments-0")


def test_bad_groups_are_clear_errors():
    """No members, duplicate ids, empty topics and unknown assignors name the problem."""
    with pytest.raises(ConfigError, match="at least one member"):
        lg.assign("range", TOPICS, [])
    with pytest.raises(ConfigError, match="unique"):
        lg.assign("range", TOPICS, ["C0", "C0"])
    with pytest.raises(ConfigError, match="at least one partition"):
        lg.assign("range", {"t0": 0}, ["C0"])
    with pytest.raises(ConfigError, match=r"partition\.assignment\.strategy"):
        lg.assign("fair", TOPICS, ["C0"])
    with pytest.raises(ConfigError, match="at least one"):
        lg.topics_of(0, 2)


def test_lesson_range_leaves_c2_idle_and_round_robin_deals_3_3_2():
    """§1: range gives C0 and C1 four partitions each and C2 none; round robin 3, 3 and 2;
    for a brand-new group both sticky assignors give exactly round robin's answer."""
    table = lg.assignment_table(TOPICS, GROUP)
    assert list(table.columns) == ["range", "roundrobin", "sticky", "cooperative-sticky"]
    assert table.loc["partitions each", "range"] == "4 / 4 / 0"
    assert table.loc["C2", "range"] == "— (idle)"
    assert table.loc["partitions each", "roundrobin"] == "3 / 3 / 2"
    assert (table["sticky"] == table["roundrobin"]).all()
    assert (table["cooperative-sticky"] == table["roundrobin"]).all()
    frame = lg.assignment_frame(TOPICS, GROUP)
    assert len(frame) == 4 * 8 + 1  # every partition once per assignor, plus idle C2 in range
    assert frame.groupby("assignor")["partition"].apply(lambda s: (s >= 0).sum()).eq(8).all()


def test_lesson_membership_changes_move_and_stop_what_the_lesson_says():
    """§2: range moves 0 then 4 and stops 8 each time; round robin moves 5 then 7; sticky moves
    2 each time but stops all 8; cooperative-sticky moves and stops the same 2, the join in
    two rounds, the leave in one."""
    changes = lg.membership_changes(TOPICS, STEPS)
    got = {(r.step, r.assignor): (r.moved, r.stopped, r.rounds)
           for r in changes.itertuples(index=False)}
    assert got[("C3 joins", "range")] == (0, 8, 1)
    assert got[("C1 leaves", "range")] == (4, 8, 1)
    assert got[("C3 joins", "roundrobin")][:2] == (5, 8)
    assert got[("C1 leaves", "roundrobin")][:2] == (7, 8)
    assert got[("C3 joins", "sticky")] == (2, 8, 1)
    assert got[("C1 leaves", "sticky")] == (2, 8, 1)
    assert got[("C3 joins", "cooperative-sticky")] == (2, 2, 2)
    assert got[("C1 leaves", "cooperative-sticky")] == (2, 2, 1)
    joined = changes[(changes["step"] == "C3 joins") & (changes["assignor"] == "range")]
    assert joined["assignment"].iloc[0]["C3"] == []  # C3 gets nothing from range
    left = changes[(changes["step"] == "C1 leaves") & (changes["assignor"] == "range")]
    assert left["moved_partitions"].iloc[0] == "t0-1, t1-1, t2-1, t3-1"
    assert left["assignment"].iloc[0]["C2"] == tps("t0-1", "t1-1", "t2-1", "t3-1")
    table = lg.changes_table(changes)
    assert table.loc["C3 joins", "cooperative-sticky"] == "2 moved, 2 stopped, 2 rounds"
    assert list(table.index) == [label for label, _ in STEPS]


def test_steps_frame_marks_moved_partitions():
    """The figure's frame flags exactly the partitions each step moved."""
    frame = lg.steps_frame(lg.membership_changes(TOPICS, STEPS))
    moved = frame[frame["moved"]]
    sticky_join = moved[(moved["step"] == "C3 joins") & (moved["assignor"] == "sticky")]
    assert sorted(sticky_join["topic"] + "-" + sticky_join["partition"].astype(str)) == [
        "t1-1", "t3-1"]
    assert set(sticky_join["member"]) == {"C3"}
    assert not frame[frame["step"] == "C0, C1, C2 start"]["moved"].any()


# --- lag -----------------------------------------------------------------------------------------


def test_lesson_two_consumers_fall_behind_three_keep_up():
    """§3: two consumers manage about 235 records a second, lag grows by about 65 a second (the
    summary shows 66.2; the text said 60) and is over 1,000 after 15 s; three consumers keep
    lag under 30 records."""
    two, three = lag_build(2).stats(), lag_build(3).stats()
    assert round(two["growth_per_s"] / 5) * 5 == 65
    assert round((300 - two["growth_per_s"]) / 5) * 5 == 235
    text = lesson_text()
    assert ("two consumers manage about 235 records a second, so lag grows by about 65 records "
            "every second") in text
    assert two["end_lag"] > 1000
    assert three["peak_lag"] < 30
    assert three["poll_timeouts"] == two["poll_timeouts"] == 0
    summary = lg.lag_summary({"2 consumers": lag_build(2), "3 consumers": lag_build(3)})
    assert list(summary.index) == ["2 consumers", "3 consumers"]
    assert summary.loc["3 consumers", "peak lag"] < 30


def test_lesson_lag_is_high_watermark_minus_committed_offset():
    """Lag (kafka-consumer-groups.sh) ≥ the consumer's own lag (position ≥ committed)."""
    lag = lag_build(2).lag
    assert set(lag["partition"]) == set(range(6))
    assert (lag["lag"] >= lag["consumer_lag"]).all()
    assert (lag["lag"] == lag["high_watermark"] - lag["committed"].fillna(0)).all()


def test_lesson_drain_waits_for_the_rebalance_then_the_busiest_consumer_sets_the_pace():
    """§3 drain: lag keeps growing for 3 s after the join: the running consumers hear of the
    rebalance from their heartbeat at 12 s and rejoin once their batch is done, the last
    (consumer-shipping-1, 323 records polled at 10.45 s) at 13.04 s; orders-4 and orders-5
    drain within 1.5 s; the others take until 20–25 s."""
    run = lag_drain()
    generations = metrics.generations(run.kernel, lg.LAG_GROUP)
    assert len(generations) == 2
    rebalanced_ms = generations[1]["time_ms"]
    assert rebalanced_ms == pytest.approx(13_040, abs=5)
    interval = metrics.consumers(run.kernel)[0].config["heartbeat.interval.ms"]
    assert interval == 3_000
    heartbeat_ms = interval * math.ceil(10_000 / interval)  # every 3 s since the group formed
    assert heartbeat_ms == 12_000
    trace = run.kernel.trace.to_frame()
    polls = trace[trace["kind"] == "consumer.poll"]
    rejoins = trace[(trace["kind"] == "group.join") & (trace["generation"] == 1)]
    assert sorted(rejoins["component"]) == ["consumer-shipping-1", "consumer-shipping-2"]
    for row in rejoins.itertuples(index=False):
        assert heartbeat_ms < row.time_ms <= rebalanced_ms
        mine = polls[(polls["component"] == row.component) & (polls["time_ms"] < row.time_ms)]
        batch = mine.iloc[-1]  # the batch in hand: heard of at 12 s, finished, then rejoin
        assert 10_000 < batch["time_ms"] < heartbeat_ms
        assert batch["time_ms"] + batch["records"] * 8 == pytest.approx(row.time_ms, abs=5)
    last = polls[(polls["component"] == "consumer-shipping-1") & (polls["time_ms"] < 12_000)]
    assert (last["time_ms"].iloc[-1], last["records"].iloc[-1]) == (10_452.5, 323)
    sizes = sorted(len(parts) for parts in generations[1]["assignments"].values())
    assert sizes == [1, 1, 2, 2]
    totals = run.lag.groupby("time_ms")["lag"].sum()
    assert 12_500 <= totals.idxmax() <= rebalanced_ms  # growing until the rebalance
    lag = run.lag[run.lag["time_ms"] >= rebalanced_ms]
    settled = {}
    for partition, part in lag.groupby("partition"):
        high = part[part["lag"] >= 20]
        settled[int(partition)] = float(high["time_ms"].max()) + 100
    assert max(settled[4], settled[5]) - rebalanced_ms <= 1_500
    for partition in range(4):
        assert 19_500 <= settled[partition] <= 25_000
    assert run.stats()["end_lag"] < 100


def test_lesson_large_polls_break_max_poll_interval_small_polls_drain_slowly():
    """§3 max.poll.records: with 500, members are thrown out 15 times, never commit and lag
    grows to all 9,000 records; with 100 nothing goes wrong and the backlog shrinks by about
    75 records a second (3 × 125 − 300)."""
    big, small = lag_polls(500).stats(), lag_polls(100).stats()
    assert big["poll_timeouts"] == 15
    assert big["end_lag"] == 9000
    assert small["poll_timeouts"] == 0
    assert -80 <= small["growth_per_s"] <= -70
    assert small["end_lag"] < 3000


def test_lag_kernel_rejects_impossible_settings():
    """Zero consumers or a non-positive time are clear errors, before anything runs."""
    with pytest.raises(ConfigError, match="at least one consumer"):
        lg.lag_kernel(consumers=0)
    with pytest.raises(ConfigError, match="must be positive"):
        lg.lag_kernel(processing_ms=0)


# --- crashes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["at-most-once", "at-least-once"])
def test_crash_runs_are_the_scenario_files_own_runs(strategy):
    """crash_run(at-most-once / at-least-once) is `python -m sim run consumer-crash-…`."""
    ours = crash_audit(strategy)
    theirs = audit_kernel(scenarios.load(f"consumer-crash-{strategy}").run())
    assert (ours.skipped, ours.processed_twice, ours.processed) == (
        theirs.skipped, theirs.processed_twice, theirs.processed)


def test_lesson_crash_costs_per_commit_strategy():
    """§4: at most once skips 18 records (offsets 1482–1499), none twice; at least once
    processes 83 twice (1400–1482), none skipped; auto-commit processes all 1,498 records of
    offsets 0–1497 again; every anomaly names the consumer_crash fault at 9,000 ms."""
    summary = lg.delivery_summary({s: crash(s) for s in lg.STRATEGIES})
    assert summary.loc["at-most-once", ["skipped", "processed twice"]].tolist() == [18, 0]
    assert summary.loc["at-least-once", ["skipped", "processed twice"]].tolist() == [0, 83]
    assert summary.loc["auto-commit", ["skipped", "processed twice"]].tolist() == [0, 1498]
    assert summary["enable.auto.commit"].tolist() == [False, False, True]
    assert (summary["crash at (ms)"] == 9000).all()
    found = lg.all_anomalies({s: crash(s) for s in lg.STRATEGIES})
    spans = {r.run: (r.kind, r.first_offset, r.last_offset, r.partition)
             for r in found.itertuples(index=False)}
    assert spans == {"at-most-once": ("skipped", 1482, 1499, 0),
                     "at-least-once": ("processed-twice", 1400, 1482, 0),
                     "auto-commit": ("processed-twice", 0, 1497, 0)}
    assert found["cause"].str.startswith("consumer_crash of consumer-billing-1 at 9000 ms").all()


def test_lesson_at_most_once_batch_was_committed_and_82_records_processed():
    """§4: at most once, consumer-billing-1 had committed up to offset 1499 and processed 82 of
    its 100 records; at least once, the last commit was at offset 1400 and the crash came 83
    records into the next batch."""
    for strategy, committed, done in (("at-most-once", 1500, 82), ("at-least-once", 1400, 83)):
        first = metrics.consumers(crash(strategy))[0]
        commits = first.commits()
        commits = commits[(commits["error"] == "") & (commits["partition"] == 0)]
        assert commits["offset"].iloc[-1] == committed
        processed = first.processed()
        last_batch = processed[processed["offset"] >= 1400]
        assert len(last_batch) == done


def test_lesson_auto_commit_was_due_at_5_and_10_seconds_and_crash_came_first():
    """§4: automatic commits were due at 5 s (nothing to commit) and 10 s; the crash at 9 s
    came first, so consumer-billing-1 never committed anything."""
    first, second = metrics.consumers(crash("auto-commit"))
    assert first.commits().empty
    assert second.commits()["sent_ms"].iloc[0] == 10_000
    assert first.config["auto.commit.interval.ms"] == 5000
    formed_ms = metrics.generations(crash("auto-commit"), "billing")[0]["time_ms"]
    assert 5000 < formed_ms < 9000  # the 5 s commit came during the first rebalance


def test_lesson_the_crashed_partition_has_no_owner_until_the_session_times_out():
    """§4: payments-0 has no owner from 9 s to 18 s (session.timeout.ms=10000)."""
    for strategy in lg.STRATEGIES:
        stops = metrics.rebalance_pauses(crash(strategy), "billing")
        row = stops[stops["partition"] == 0].iloc[0]
        assert row["stopped_ms"] == 9000
        assert 18_000 <= row["resumed_ms"] < 18_100


def test_lesson_a_hang_is_not_a_crash():
    """§4 (hang): consumer-billing-1 frozen from 9 s to 24 s is removed at 16,002.5 ms. At most
    once: nothing skipped or twice, payments-0 lost at 24,034.5 ms. At least once: its commit
    of 1500 is refused (NOT_IN_GROUP at 24,032.5 ms) and offsets 1400–1499 are processed twice,
    caused by the hang."""
    hangs = {s: hang(s) for s in ("at-most-once", "at-least-once")}
    summary = lg.zombie_summary(hangs)
    assert (summary["removed at (ms)"] == 16_002.5).all()
    assert summary.loc["at-most-once", ["skipped", "processed twice"]].tolist() == [0, 0]
    assert summary.loc["at-most-once", "refused commits"] == ""
    assert summary.loc["at-most-once", "partitions lost at (ms)"] == 24_034.5
    assert summary.loc["at-least-once", ["skipped", "processed twice"]].tolist() == [0, 100]
    assert summary.loc["at-least-once", "refused commits"] == (
        "payments-0@1500 NOT_IN_GROUP at 24032.5 ms")
    assert summary.loc["at-least-once", "partitions lost at (ms)"] > 24_032.5
    [row] = lg.all_anomalies(hangs).itertuples(index=False)
    assert (row.run, row.kind, row.partition, row.first_offset, row.last_offset) == (
        "at-least-once", "processed-twice", 0, 1400, 1499)
    assert row.consumers == "consumer-billing-1 → consumer-billing-2"
    assert row.cause.startswith("consumer_hang of consumer-billing-1 at 9000 ms")


def test_lesson_the_woken_members_commit_fails_before_it_is_sent():
    """§4 (hang): the answer to the woken member's heartbeat has reset its member id and
    generation, so its commit fails in the client, never sent (Kafka's
    ``ConsumerCoordinator.sendOffsetCommitRequest``: "Failing OffsetCommit request since the
    consumer is not part of an active group", CommitFailedException). The text said the
    commit was refused, as if the coordinator had answered it."""
    commits = metrics.consumers(hang("at-least-once"))[0].commits()
    [failed] = commits[commits["error"] != ""].itertuples(index=False)
    assert (failed.error, failed.member, failed.generation) == ("NOT_IN_GROUP", "", -1)
    assert failed.sent_ms == failed.time_ms == 24_032.5
    text = lesson_text()
    assert ("Its commit fails before it is sent (`NOT_IN_GROUP` at 24,032.5 ms): the answer to "
            "its heartbeat has told it that it is out of the group") in text
    assert "Its commit is refused" not in text


def test_lesson_the_woken_at_most_once_consumer_finishes_what_the_crash_skipped():
    """§4 (hang): at most once, offsets 1482–1499 (skipped after the crash) are processed by
    consumer-billing-1 after it wakes at 24 s; the last commit before was offset 1400."""
    frozen = metrics.consumers(hang("at-most-once"))[0]
    done = frozen.processed()
    mine = done[(done["partition"] == 0) & (done["offset"] < 1500)]
    late = mine[mine["processed_ms"] >= 24_000]
    assert late["offset"].tolist() == list(range(1482, 1500))
    assert mine["offset"].is_unique
    first = metrics.consumers(hang("at-least-once"))[0].commits()
    stored = first[(first["error"] == "") & (first["partition"] == 0)
                   & (first["time_ms"] < 9000)]
    assert stored["offset"].iloc[-1] == 1400


def test_crash_kernel_runs_any_callback_and_refuses_unknown_strategies():
    """A plain function is every consumer's application; a typo is a clear error."""
    assert all(c.app is at_least_once for c in metrics.consumers(crash("at-least-once")))
    with pytest.raises(ConfigError, match="at-most-once, at-least-once, auto-commit"):
        lg.crash_run("exactly-once")


# --- rebalances ----------------------------------------------------------------------------------


def test_lesson_eager_stops_everything_cooperative_only_what_moves():
    """§5: eager, 12 pauses over all 6 partitions, 28 s in total, up to 6 s each; cooperative,
    only orders-1 and orders-4 pause, about 12 s in total: orders-4 for 5.9 s until the
    join's follow-up round, orders-1 for 6.0 s from consumer-shipping-2's leave."""
    summary = lg.pause_summary(rebalances())
    eager = summary.loc["rebalance-eager"]
    cooperative = summary.loc["rebalance-cooperative"]
    assert (eager["pauses"], eager["partitions paused"]) == (12, 6)
    assert round(eager["total paused (s)"]) == 28
    assert eager["longest (s)"] == 6.0
    assert (eager["assignor"], cooperative["assignor"]) == ("range", "cooperative-sticky")
    assert (cooperative["pauses"], cooperative["partitions paused"]) == (2, 2)
    assert round(cooperative["total paused (s)"]) == 12
    stops = lg.pauses(rebalances()["rebalance-cooperative"]).set_index("partition")
    assert sorted(stops.index) == [1, 4]
    assert round(stops.loc[4, "pause_ms"] / 1000, 1) == 5.9
    assert round(stops.loc[1, "pause_ms"] / 1000, 1) == 6.0
    assert stops.loc[1, "stopped_ms"] == 20_000  # the leave


def test_lesson_eager_the_slow_members_own_partitions_stop_only_2_ms():
    """§5: in the eager run consumer-shipping-3's partitions stop for 2 ms only (orders-4 and
    orders-5 at 14 s, orders-4 at 26 s): it revokes last and the group completes at once. The
    timeline draws these as thin lines, so the text says what they are."""
    stops = lg.pauses(rebalances()["rebalance-eager"])
    short = stops[stops["pause_ms"] < 200]
    assert short["pause_ms"].tolist() == [2.0, 2.0, 2.0]
    assert set(short["from_consumer"]) == {"consumer-shipping-3"}
    stopped_s = (short["stopped_ms"] / 1000).round()
    assert sorted(zip(short["partition"], stopped_s, strict=True)) == [(4, 14), (4, 26), (5, 14)]
    text = lesson_text()
    assert ("Its own partitions stop for only 2 ms (the thin red lines on orders-4 and orders-5 "
            "at 14 s, on orders-4 at 26 s)") in text


def test_lesson_tables_show_times_without_raw_floats():
    """Times the lesson's tables show are whole numbers: 'crash at (ms)' read 9000.0, the
    pauses 27942.0 ms and 'lag < 100 from (ms)' 0.0. The pauses are in seconds, as the text
    and the figure's labels give them (28 s, about 12 s, 6.0 s)."""
    build = lg.lag_summary({"3 consumers": lag_build(3)})
    settled = build.loc["3 consumers", "lag < 100 from (ms)"]
    assert not isinstance(settled, float)
    assert settled == 0
    crashes = lg.delivery_summary({s: crash(s) for s in lg.STRATEGIES})
    assert crashes["crash at (ms)"].dtype.kind == "i"
    assert crashes["crash at (ms)"].tolist() == [9000] * 3
    summary = lg.pause_summary(rebalances())
    assert summary["total paused (s)"].tolist() == [27.9, 11.9]
    assert summary["longest (s)"].tolist() == [6.0, 6.0]
    for table in (build, crashes, summary):
        assert ".0<" not in table.to_html().replace("6.0<", "")


def test_lesson_tables_keep_run_names_and_sentences_readable():
    """Run names never break over lines ('at-most-once' took three) and sentences read from
    the left; the anomalies of several runs keep their numbers numeric (an empty run's frame
    made every column text, aligned left)."""
    crashes = lg.delivery_summary({s: crash(s) for s in lg.STRATEGIES})
    hangs = {s: hang(s) for s in ("at-most-once", "at-least-once")}
    for table in (crashes, lg.zombie_summary(hangs), lg.pause_summary(rebalances())):
        html = table._repr_html_()
        assert '<th style="white-space: nowrap">' in html
    assert "text-align: left" in crashes._repr_html_()
    found = lg.all_anomalies(hangs)
    assert all(found[c].dtype.kind == "i"
               for c in ("partition", "first_offset", "last_offset", "count"))


# --- figures --------------------------------------------------------------------------------------


def test_assignment_grid_has_one_panel_per_assignor_and_step():
    """A box per owned partition, 'idle' for an idle member, a red edge for moved ones."""
    fig = viz_groups.assignment_grid(lg.assignment_frame(TOPICS, GROUP), header="H")
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == list(lg.ASSIGNOR_NAMES)
    assert all(len(ax.patches) == 8 for ax in fig.axes)
    assert "idle" in [t.get_text() for t in fig.axes[0].texts]
    assert fig._suptitle.get_text() == "H"
    steps = viz_groups.assignment_grid(lg.steps_frame(lg.membership_changes(TOPICS, STEPS)))
    assert len(steps.axes) == 3 * 4
    assert steps.axes[4].get_ylabel() == "C3 joins"
    legend = [t.get_text() for t in steps.legends[0].get_texts()]
    assert legend == ["t0", "t1", "t2", "t3", "moved in this step"]
    # four assignors side by side were 10.4 inches, shown at 81 % in a notebook
    assert fig.get_figwidth() <= 8.4
    assert steps.get_figwidth() <= 8.4


def test_lag_plot_draws_each_partition_and_the_group_total():
    """Six partition lines, the committed total and the position total; marks as lines."""
    fig = viz_groups.lag_plot(lag_drain().lag, marks={"join": 10_000}, header="H")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:6] == [f"orders-{p}" for p in range(6)]
    assert "group total" in labels
    assert "total, by position" in labels
    assert any(t.get_text() == "join" for t in ax.texts)
    both = viz_groups.lag_plots({"a": lag_build(2).lag, "b": lag_build(3).lag})
    assert [ax.get_title() for ax in both.axes] == ["a", "b"]
    assert both.axes[0].get_ylim() == both.axes[1].get_ylim()
    empty = viz_groups.lag_plot(pd.DataFrame(columns=lag_drain().lag.columns))
    assert isinstance(empty, Figure)


def test_rebalance_timelines_label_every_pause():
    """Each pause of 0.2 s or more carries its length; one panel per run."""
    runs = {n: (lg.ownership(k), lg.pauses(k)) for n, k in rebalances().items()}
    fig = viz_groups.rebalance_timelines(runs, end_ms=30_000, header="H")
    assert [ax.get_title() for ax in fig.axes] == list(lg.REBALANCE_SCENARIOS)
    cooperative = sorted(t.get_text() for t in fig.axes[1].texts)
    assert cooperative == ["5.9 s", "6.0 s"]
    assert len(fig.axes[0].texts) == 9  # 12 pauses, three of them 2 ms long
    yticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert yticks == [f"orders-{p}" for p in range(6)]
    assert fig.get_figwidth() <= 8.4  # 10 inches were shown at 84 % in a notebook


def test_delivery_plots_shade_the_audits_ranges():
    """'18 skipped', '83 processed twice' and '1498 processed twice' label their strategies."""
    runs = {s: (lg.processed_records(crash(s)), lg.anomalies(crash(s))) for s in lg.STRATEGIES}
    fig = viz_groups.delivery_plots(runs, topic="payments", partition=0, crash_ms=9000)
    texts = [[t.get_text() for t in ax.texts] for ax in fig.axes]
    assert "18 skipped" in texts[0]
    assert "83 processed twice" in texts[1]
    assert "1498 processed twice" in texts[2]
    assert all("crash" in t for t in texts)


def _points_under(fig: Figure, box) -> int:
    """How many processed records (scatter points, in display pixels) lie inside ``box``."""
    inside = 0
    for ax in fig.axes:
        for collection in ax.collections:
            pixels = collection.get_offset_transform().transform(collection.get_offsets())
            inside += int(sum(box.contains(x, y) for x, y in pixels))
    return inside


def test_delivery_plots_hide_no_processed_record():
    """The shaded ranges lie under the points (they tinted consumer-billing-1's blue grey),
    and neither a range's label nor the legend covers a point: the labels sat at the right
    edge, on the successor's first records, and the auto-commit panel's legend on its start."""
    runs = {s: (lg.processed_records(crash(s)), lg.anomalies(crash(s))) for s in lg.STRATEGIES}
    fig = viz_groups.delivery_plots(runs, topic="payments", partition=0, crash_ms=9000)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for ax in fig.axes:
        points = min(c.get_zorder() for c in ax.collections)
        assert all(span.get_zorder() < points for span in ax.patches)
        labels = [t for t in ax.texts if "skipped" in t.get_text() or "twice" in t.get_text()]
        assert labels
        for label in labels:
            assert _points_under(fig, label.get_window_extent(renderer)) == 0, label.get_text()
        legend = ax.get_legend()
        if legend is not None:
            assert _points_under(fig, legend.get_window_extent(renderer)) == 0, ax.get_title()
    assert fig.legends or all(ax.get_legend() is not None for ax in fig.axes)


def test_delivery_and_lag_panels_fit_a_notebook_output():
    """Three delivery panels stack one above the other at 8.4 inches (840 pixels inline), so a
    notebook shows them at the size drawn; side by side they were 13.8 inches and shrunk to
    61 %. Two lag panels share 8.4 inches."""
    runs = {s: (lg.processed_records(crash(s)), lg.anomalies(crash(s))) for s in lg.STRATEGIES}
    fig = viz_groups.delivery_plots(runs, topic="payments", partition=0, crash_ms=9000)
    assert fig.get_figwidth() <= 8.4
    boxes = [ax.get_position() for ax in fig.axes]
    assert len(boxes) == 3
    assert len({round(b.x0, 3) for b in boxes}) == 1
    assert boxes[0].y0 > boxes[1].y0 > boxes[2].y0
    lag = viz_groups.lag_plots({f"{n} consumers": lag_build(n).lag for n in (2, 3)})
    assert lag.get_figwidth() <= 8.4
    assert len(lag.axes) == 2


# --- widgets --------------------------------------------------------------------------------------


def test_assignor_state_add_and_remove_members():
    """Callbacks return a new state: C3 joins, C1 leaves, as in the lesson's table."""
    state = panels.new_assignor_state(3, 4, 2)
    assert state.members == ("C0", "C1", "C2")
    joined = panels.add_member(state)
    assert joined.step == "C3 joins"
    row = joined.changes.set_index("assignor").loc["cooperative-sticky"]
    assert (row["moved"], row["stopped"], row["rounds"]) == (2, 2, 2)
    left = panels.remove_member(joined, "C1")
    assert left.members == ("C0", "C2", "C3")
    assert left.changes.set_index("assignor").loc["roundrobin", "moved"] == 7
    assert panels.add_member(left).members == ("C0", "C1", "C2", "C3")  # lowest free id
    resized = panels.change_topics(left, 2, 3)
    assert resized.topics == {"t0": 3, "t1": 3}
    assert resized.step == "2 topics × 3 partitions"


def test_assignor_state_refuses_impossible_requests_with_a_message():
    """Removing the last member, an unknown one, an 11th member, too many partitions."""
    one = panels.new_assignor_state(1)
    assert "last member" in panels.remove_member(one, "C0").message
    assert panels.remove_member(one, "C0").members == ("C0",)
    assert "not in the group" in panels.remove_member(one, "C7").message
    full = panels.new_assignor_state(panels.MAX_MEMBERS)
    assert "stops at" in panels.add_member(full).message
    assert "more than this panel draws" in panels.change_topics(one, 6, 12).message
    assert "members" in panels.new_assignor_state(0).message
    assert panels.new_assignor_state(0).members == ("C0", "C1", "C2")


def test_render_assignors_and_html():
    """Four panels with the version line; the HTML reports moved and stopped per assignor."""
    state = panels.add_member(panels.new_assignor_state())
    fig = panels.render_assignors(state)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    assert "Kafka 4.0" in fig._suptitle.get_text()
    html = panels.assignor_html(state)
    assert "Last change: C3 joins" in html
    assert "cooperative-sticky" in html
    refused = panels.remove_member(state, "C9")
    assert "Cannot run this combination" in panels.assignor_html(refused)


def test_simulate_lag_runs_and_reports():
    """A valid combination runs and names the configs; notes flag slow polls and idle ones."""
    result = panels.simulate_lag({"consumers": 3, "max.poll.records": 100})
    assert result.ok
    assert "max.poll.records=100" in result.header
    assert "Kafka 4.0 consumer" in result.header
    assert isinstance(panels.render_lag(result), Figure)
    assert "peak lag" in panels.lag_stats_html(result)
    growing = panels.simulate_lag({})  # the lesson's default: lag grows to the end
    assert math.isnan(growing.run.stats()["below_at_ms"])
    assert re.search(r"<td[^>]*>never</td>", panels.lag_stats_html(growing))  # not a blank
    risky = panels.simulate_lag({"consumers": 8, "max.poll.records": 500, "backlog": 3000,
                                 "max.poll.interval.ms": 3000})
    html = panels.lag_stats_html(risky)
    assert "max.poll.interval.ms=3000" in html
    assert "sit idle" in html


@pytest.mark.parametrize(("values", "message"), [
    ({"consumers": 0}, "consumers must be 1–12"),
    ({"max.poll.records": 0}, "max.poll.records must be at least 1"),
    ({"processing_ms": -1}, "must be positive"),
    ({"bogus": 1}, "Unknown lag panel setting"),
    ({"partition.assignment.strategy": "fair"}, "partition.assignment.strategy"),
])
def test_simulate_lag_turns_bad_values_into_messages(values, message):
    """Invalid combinations show a message, not a traceback."""
    result = panels.simulate_lag(values)
    assert not result.ok
    assert message in result.message
    assert "Kafka 4.0" in result.header
    assert isinstance(panels.render_lag(result), Figure)
    assert "Cannot run this combination" in panels.lag_stats_html(result)


def test_panels_build_widgets_and_buttons_work():
    """The factories build ipywidgets; a click adds a member and refreshes the dropdown."""
    panel = panels.assignor_panel()
    assert isinstance(panel, ipywidgets.VBox)
    panel.add.click()
    assert panel.state.members == ("C0", "C1", "C2", "C3")
    assert list(panel.leaving.options) == ["C0", "C1", "C2", "C3"]
    panel.leaving.value = "C1"
    panel.remove.click()
    assert panel.state.members == ("C0", "C2", "C3")
    assert bytes(panel.image.value).startswith(b"\x89PNG")
    lag = panels.lag_panel(consumers=3)
    assert isinstance(lag, ipywidgets.VBox)
    assert lag.result is not None
    assert lag.result.ok


def test_factories_build_nothing_while_grading(monkeypatch):
    """KAFKA_LAB_GRADING=1: placeholders, no widgets and no simulation."""
    monkeypatch.setenv("KAFKA_LAB_GRADING", "1")
    assert isinstance(panels.assignor_panel(), GradingPlaceholder)
    assert isinstance(panels.lag_panel(), GradingPlaceholder)


# --- layering ----------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_model_never_imports_figures_widgets_or_lessons():
    """sim/consumer/* and sim.lessons.groups import no display code."""
    display = ("sim.viz", "sim.widgets", "sim.viz_groups", "sim.lessons.groups",
               "matplotlib", "ipywidgets")
    lesson = ROOT / "sim" / "lessons" / "groups"
    for path in [*sorted((ROOT / "sim" / "consumer").glob("*.py")), *sorted(lesson.glob("*.py"))]:
        found = {name for name in _imports(path)
                 if name.startswith(display) and not (path.parent == lesson
                                                      and name.startswith("sim.lessons.groups"))}
        assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"
