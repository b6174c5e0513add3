"""Lesson 06 (Kafka Streams, part 1): its computations, every number its markdown states, its
figure and its panel.

Each ``test_lesson_*`` test backs one "what to look for" paragraph of
``notebooks/06_streams.ipynb`` and runs what the notebook runs; the docstring quotes the claim.
Facts about Kafka come from kafka-facts-style sources cited in the docstrings (the Streams
quickstart, ``TimeWindows`` / ``SessionWindows`` javadocs, ``KStreamWindowAggregate``).
"""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path

import ipywidgets
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim import viz_streams
from sim.errors import KafkaLabError, StreamsError
from sim.lessons import streams as ls
from sim.partitioners import partition_for_key
from sim.producer import Producer
from sim.records import serialize
from sim.streams import (
    Branched,
    KafkaStreams,
    SessionWindows,
    StreamsBuilder,
    StreamsConfig,
    TimeWindow,
    TimeWindows,
    draw_topology,
)
from sim.widgets import GradingPlaceholder
from sim.widgets import streams as panels

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "06_streams.ipynb"


def lesson_cells(kind: str) -> list[str]:
    notebook = json.loads(LESSON.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == kind]


def lesson_code(fragment: str) -> str:
    """The one code cell of the lesson that contains ``fragment``."""
    (cell,) = [c for c in lesson_cells("code") if fragment in c]
    return cell


def run_cell(fragment: str, names: dict[str, object] | None = None) -> dict[str, object]:
    """Execute the lesson's code cell containing ``fragment`` and return its namespace, with the
    value of its last line as ``_``: the test checks what the notebook itself builds."""
    namespace: dict[str, object] = {"ls": ls, "StreamsBuilder": StreamsBuilder,
                                    "Branched": Branched, "TimeWindows": TimeWindows,
                                    "SessionWindows": SessionWindows, "vs": viz_streams,
                                    **(names or {})}
    tree = ast.parse(lesson_code(fragment))
    *body, last = tree.body
    exec(compile(ast.Module(body=body, type_ignores=[]), str(LESSON), "exec"), namespace)
    if isinstance(last, ast.Expr):
        expression = compile(ast.Expression(last.value), str(LESSON), "eval")
        namespace["_"] = eval(expression, namespace)
    else:
        exec(compile(ast.Module(body=[last], type_ignores=[]), str(LESSON), "exec"), namespace)
    return namespace


def frame_rows(frame: pd.DataFrame, *columns: str) -> list[tuple]:
    return list(frame[list(columns)].itertuples(index=False, name=None))


# --- 1. the first example ------------------------------------------------------------------------


SEED_DESCRIBE = """Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [payment])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-SINK-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Sink: KSTREAM-SINK-0000000002 (topic: unknown-payment)
      <-- KSTREAM-FILTER-0000000001

"""


def test_lesson_writes_the_seeds_filter_as_one_statement():
    """§1: the example is one statement, as the lesson promises."""
    statement = ('builder.stream("payment").filter(lambda key, value: key == "unknown")'
                 '.to("unknown-payment")')
    assert statement in lesson_code('filter(lambda key, value: key == "unknown").to').splitlines()


def test_lesson_seed_topology_has_three_nodes_in_one_sub_topology():
    """§1: a source, the filter and a sink, named KSTREAM-SOURCE-0000000000,
    KSTREAM-FILTER-0000000001 and KSTREAM-SINK-0000000002, in one sub-topology, no store —
    Kafka's exact TopologyDescription text (issue's golden text)."""
    topology = run_cell('filter(lambda key, value: key == "unknown")')["topology"]
    assert str(topology.describe()) == SEED_DESCRIBE
    assert str(ls.unknown_payment_topology().describe()) == SEED_DESCRIBE


def test_lesson_seed_filter_lets_the_two_unknown_payments_through():
    """§1: out come the 2 payments with key "unknown" (inputs 1 and 3: 120 and 5), with their
    timestamps unchanged."""
    topology = run_cell('filter(lambda key, value: key == "unknown")')["topology"]
    out = run_cell("ls.run_topology(topology", {"topology": topology})["_"]
    assert frame_rows(out, "input", "topic", "key", "value", "timestamp") == [
        (1, "unknown-payment", "unknown", 120, 2_000), (3, "unknown-payment", "unknown", 5, 4_000)]
    assert [ts for key, _v, ts in ls.PAYMENTS if key == "unknown"] == [2_000, 4_000]


# --- 2. stateless operations ---------------------------------------------------------------------


def test_lesson_map_gives_six_and_flat_map_nine():
    """§2: map gives one record per payment (6), upper-case key, amount in cents; flat_map 9:
    250 → 100, 100, 50; 120 → 100, 20; the other four stay whole."""
    out = run_cell("payment-parts")["_"]
    cents = out[out["topic"] == "payment-cents"]
    parts = out[out["topic"] == "payment-parts"]
    assert len(ls.PAYMENTS) == len(cents) == 6
    assert frame_rows(cents, "key", "value")[:2] == [("ALICE", 3_000), ("UNKNOWN", 12_000)]
    assert len(parts) == 9
    assert list(parts[parts["key"] == "bob"]["value"]) == [100, 100, 50]
    assert list(parts[parts["input"] == 1]["value"]) == [100, 20]
    assert parts.groupby("input").size().eq(1).sum() == 4


def test_lesson_the_default_guarantee_is_at_least_once():
    """§2: Kafka Streams' default is processing.guarantee=at_least_once (StreamsConfig)."""
    assert StreamsConfig({"application.id": "lesson"})["processing.guarantee"] == "at_least_once"


def test_lesson_split_sends_each_record_down_the_first_matching_branch():
    """§2: the "unknown" 120 goes to unknown-payment only; carol's 100 is large; each sink gets
    2 records; branch processors are named pay-unknown, pay-large, pay-small."""
    namespace = run_cell("split(named=")
    out = namespace["_"]
    assert out.groupby("topic").size().to_dict() == {
        "large-payment": 2, "small-payment": 2, "unknown-payment": 2}
    assert set(out[out["input"] == 1]["topic"]) == {"unknown-payment"}
    assert list(out[out["key"] == "carol"]["topic"]) == ["large-payment"]
    text = str(namespace["split_topology"].describe())
    for name in ("pay-unknown", "pay-large", "pay-small"):
        assert f"Processor: {name} (stores: [])" in text
    assert text.count("Sub-topology:") == 1


# --- 3. tables -----------------------------------------------------------------------------------


def test_lesson_a_table_keeps_the_latest_value_per_key():
    """§3: the table has 1 row, then 2, stays at 2 when alice moves, 1 after bob's tombstone;
    every update is forwarded: 4 in, 4 out."""
    table = ls.table_updates()
    assert list(table["rows"]) == [1, 2, 2, 1]
    assert list(table["forwarded"]) == ["alice → Seoul", "bob → Busan", "alice → Paris",
                                        "bob → null"]
    assert table["table"].iloc[-1] == "alice: Paris"


def test_lesson_global_table_join_keeps_payments_with_a_city():
    """§3: 3 payments come out (alice twice, bob once); unknown and carol have no row; the
    global table is a sub-topology "for global store (will not generate tasks)"; the inner
    join's processor is still named KSTREAM-LEFTJOIN-0000000004 (KStreamImpl.globalTableJoin
    uses the LEFTJOIN prefix for both kinds)."""
    namespace = run_cell("global_table")
    out = namespace["_"]
    assert frame_rows(out, "key", "value") == [("alice", "30 from Seoul"),
                                               ("bob", "250 from Busan"),
                                               ("alice", "80 from Seoul")]
    text = str(namespace["join_topology"].describe())
    assert "Sub-topology: 0 for global store (will not generate tasks)" in text
    assert "Processor: KSTREAM-LEFTJOIN-0000000004 (stores: [])" in text
    assert ".join(cities," in lesson_code("join_topology = builder.build()")


def test_lesson_left_join_would_keep_payments_without_a_city():
    """§3: left_join keeps a record without a match, with None for the city."""
    builder = StreamsBuilder()
    cities = builder.global_table("customers")
    (builder.stream("payment")
     .left_join(cities, lambda key, value: key, lambda amount, city: (amount, city))
     .to("out"))
    out = ls.run_topology(builder.build(), ls.JOIN_INPUTS)
    assert len(out) == 6
    assert out[out["key"] == "carol"]["value"].item() == (100, None)


# --- 4. counting ---------------------------------------------------------------------------------

WORDCOUNT = [("all", 1), ("streams", 1), ("lead", 1), ("to", 1), ("kafka", 1), ("hello", 1),
             ("kafka", 2), ("streams", 2), ("join", 1), ("kafka", 3), ("summit", 1)]
"""Kafka's Streams quickstart (docs/streams/quickstart.html): the output topic after the three
lines, with caching off (WordCountDemo sets statestore.cache.max.bytes=0)."""


def test_lesson_wordcount_gives_the_quickstarts_eleven_updates():
    """§4: 11 updates in Kafka's documented order; kafka appears as 1, 2 and 3."""
    out = run_cell('counts["topic"] == "streams-wordcount-output"',
                   {"wordcount": ls.wordcount_topology()})["_"]
    assert frame_rows(out, "key", "value") == WORDCOUNT
    assert list(out[out["key"] == "kafka"]["value"]) == [1, 2, 3]


def test_lesson_wordcount_output_skips_the_repartition_rows_of_counts():
    """§4: the cell shows only the output topic; the rows its index skips, 0–4, 10–12 and
    16–18, are the 11 repartition records that ``counts`` also holds."""
    namespace = run_cell('counts["topic"] == "streams-wordcount-output"',
                         {"wordcount": ls.wordcount_topology()})
    counts, shown = namespace["counts"], namespace["_"]
    skipped = sorted(set(counts.index) - set(shown.index))
    assert skipped == [*range(0, 5), *range(10, 13), *range(16, 19)]
    repartition = counts[counts["topic"] == "counts-store-repartition"]
    assert list(repartition.index) == skipped
    assert len(repartition) == 11


def test_lesson_wordcount_has_two_sub_topologies_joined_by_a_repartition_topic():
    """§4: two sub-topologies; sub-topology 0 writes counts-store-repartition, sub-topology 1
    reads it and counts in store counts-store; 11 words go through it; on a cluster the topic
    is streams-wordcount-counts-store-repartition (<application.id>-<name>-repartition)."""
    topology = ls.wordcount_topology()
    text = str(topology.describe())
    assert text.count("Sub-topology:") == 2
    assert "Sink: counts-store-repartition-sink (topic: counts-store-repartition)" in text
    assert "(stores: [counts-store])" in text
    assert topology.internal_topics == ["counts-store-repartition"]
    assert f"streams-wordcount-{topology.internal_topics[0]}" in " ".join(lesson_cells("markdown"))
    lines = [(None, line) for line in ls.WORDCOUNT_LINES]
    out = ls.run_topology(topology, lines, "streams-plaintext-input")
    assert (out["topic"] == "counts-store-repartition").sum() == 11


@pytest.mark.parametrize(("line", "words"), [
    (" Hello, World!", ["", "hello", "world"]),
    ("it's a test", ["it", "s", "a", "test"]),
    ("", [""]),
])
def test_split_words_follows_javas_split(line, words):
    """Java's split("\\\\W+") keeps a leading empty string and drops trailing ones
    (WordCountDemo)."""
    assert ls.split_words(line) == words


# --- 5. windows ----------------------------------------------------------------------------------


def test_lesson_without_grace_all_four_out_of_order_records_are_late():
    """§5: four records are out of order (3, 6, 8, 10) and with no grace all four are late;
    record 3 (4,200 ms) arrives at stream time 5,500; dropped-records is 4; counts 2, 2, 2, 1."""
    tumbling = ls.window_run(TimeWindows.of_size_with_no_grace(5_000))
    records = tumbling.records
    assert list(records[records["out_of_order"]]["n"]) == [3, 6, 8, 10]
    assert list(records[records["dropped"]]["n"]) == [3, 6, 8, 10]
    third = records.iloc[3]
    assert (third["timestamp"], third["stream_time"], third["late_for"]) == (4_200, 5_500,
                                                                              "[0, 5000)")
    assert tumbling.dropped == 4
    assert list(tumbling.counts["count"]) == [2, 2, 2, 1]
    assert len(ls.SENSOR_READINGS) == 11


def test_lesson_time_windows_have_no_default_grace_any_more():
    """§5: TimeWindows.of(size) is gone in 4.0; the factories make the grace explicit."""
    assert not hasattr(TimeWindows, "of")
    assert TimeWindows.of_size_with_no_grace(5_000).grace_ms == 0
    assert TimeWindows.of_size_and_grace(5_000, 1_000).grace_ms == 1_000


@pytest.mark.parametrize(("grace_ms", "late"), [
    (0, [3, 6, 8, 10]), (500, [3, 6, 8, 10]), (1_000, [6, 8, 10]), (1_500, [6, 8, 10]),
    (2_000, [8, 10]), (3_000, [8, 10]), (3_500, [8]), (8_000, [8]), (8_500, []),
])
def test_lesson_grace_saves_records_3_6_10_then_8(grace_ms, late):
    """§5: 1,000 ms saves record 3, 2,000 ms record 6, 3,500 ms record 10; record 8 needs more
    than 8,000 ms. A window accepts a record iff end > stream time − grace
    (KStreamWindowAggregate)."""
    run = ls.window_run(TimeWindows.of_size_and_grace(5_000, grace_ms))
    assert list(run.records[run.records["dropped"]]["n"]) == late
    assert run.dropped == len(late)


def test_lesson_record_8_arrives_at_stream_time_13000():
    """§5: record 6 (9,000 ms) arrives at stream time 11,500; record 8 (2,000 ms) at 13,000."""
    records = ls.window_run(TimeWindows.of_size_with_no_grace(5_000)).records.set_index("n")
    assert (records.loc[6, "timestamp"], records.loc[6, "stream_time"]) == (9_000, 11_500)
    assert (records.loc[8, "timestamp"], records.loc[8, "stream_time"]) == (2_000, 13_000)


def test_lesson_hopping_example_from_kafka():
    """§5: 5,000 ms windows advancing by 3,000 ms: 7,000 is in [3000, 8000) and [6000, 11000)
    (TimeWindows.windowsFor)."""
    namespace = run_cell("windows_for(7_000)")
    assert namespace["_"] == [TimeWindow(3_000, 8_000), TimeWindow(6_000, 11_000)]


def test_lesson_hopping_windows_count_each_record_twice():
    """§5: two windows per record except before 5 s; counts 5, 5, 4, 1; record 8 late for its
    only window; 6 and 10 late for one of two and counted in the other; dropped-records 3."""
    hopping = ls.window_run(TimeWindows.of_size_with_no_grace(10_000).advance_by(5_000))
    records = hopping.records.set_index("n")
    counted = records["windows"].str.count(r"\[")
    early = records["timestamp"] < 5_000
    assert (counted[early & ~records["dropped"]] == 1).all()
    assert (counted[~early & ~records["dropped"]] == 2).all()
    assert list(hopping.counts["count"]) == [5, 5, 4, 1]
    assert (records.loc[8, "windows"], records.loc[8, "late_for"]) == ("", "[0, 10000)")
    assert records.loc[6, "late_for"] == "[0, 10000)"
    assert records.loc[6, "windows"] == "[5000, 15000)"
    assert records.loc[10, "late_for"] == "[5000, 15000)"
    assert records.loc[10, "windows"] == "[10000, 20000)"
    assert hopping.dropped == 3


def test_lesson_sessions_merge_as_in_the_javadoc():
    """§5: after three records two sessions [10000, 12000] (2) and [20000, 20000] (1); A@16 s
    merges them into [10000, 20000] with count 4, forwarding None for both old sessions first
    (SessionWindows javadoc)."""
    sessions = run_cell("SESSION_CLICKS")["_"]
    after_three = sessions[sessions["input"] <= 2]
    live = {}
    for key, value in frame_rows(after_three, "key", "value"):
        if value is None:
            live.pop(key, None)
        else:
            live[key] = value
    assert live == {"[A@10000/12000]": 2, "[A@20000/20000]": 1}
    assert frame_rows(sessions[sessions["input"] == 3], "key", "value") == [
        ("[A@10000/12000]", None), ("[A@20000/20000]", None), ("[A@10000/20000]", 4)]
    assert frame_rows(sessions[sessions["input"] == 1], "key", "value") == [
        ("[A@10000/10000]", None), ("[A@10000/12000]", 2)]


def test_window_run_refuses_other_windows():
    """Only TimeWindows and SessionWindows can be counted by window_run."""
    with pytest.raises(StreamsError, match="TimeWindows or SessionWindows"):
        ls.window_run("5s")  # type: ignore[arg-type]


def test_run_topology_names_a_malformed_record():
    """An input that is neither (key, value) nor (key, value, timestamp) is a clear error."""
    with pytest.raises(StreamsError, match="an input record is"):
        ls.run_topology(ls.unknown_payment_topology(), [("a", 1, 2, 3)], "payment")
    with pytest.raises(StreamsError, match="without a topic argument"):
        ls.run_topology(ls.unknown_payment_topology(), [("a", 1)])


# --- 6. on the cluster ---------------------------------------------------------------------------


@functools.cache
def scaling() -> ls.ClusterRun:
    return ls.scaling_run()


def test_lesson_draws_the_topologies_it_describes():
    """§1 and §4: the drawing sits next to describe(): the filter's three nodes; WordCount's
    repartition topic between its two sub-topologies and its store."""
    assert "draw_topology(topology)" in lesson_cells("code")
    assert "draw_topology(wordcount)" in lesson_cells("code")
    seed = draw_topology(ls.unknown_payment_topology())
    gids = {p.get_gid() for p in seed.axes[0].patches}
    assert {"KSTREAM-SOURCE-0000000000", "KSTREAM-FILTER-0000000001",
            "KSTREAM-SINK-0000000002"} <= gids
    wordcount = draw_topology(ls.wordcount_topology())
    gids = {p.get_gid() for p in wordcount.axes[0].patches}
    assert {"store:counts-store", "subtopology:0", "subtopology:1"} <= gids
    labels = " ".join(t.get_text() for t in wordcount.axes[0].texts)
    assert "counts-store-repartition" in labels


def test_lesson_the_filter_runs_six_tasks_on_one_thread_of_the_cluster():
    """§6: 6 tasks 0_0 … 0_5 (sub-topology 0 × 6 partitions) on the instance's one thread
    (num.stream.threads defaults to 1); the 2 "unknown" payments share one partition of
    unknown-payment (same key, murmur2); stream_time is -1 in 0_4 and 0_5, and committed is
    empty (commit.interval.ms 30,000 ms, the run at 10 s)."""
    names = {"topology": ls.unknown_payment_topology(), "KafkaStreams": KafkaStreams,
             "Producer": Producer}
    namespace = run_cell("streams = KafkaStreams(", names)
    namespace = run_cell("producer = Producer(", namespace)
    tasks = namespace["_"].data  # the table shown, as a DataFrame
    assert list(tasks["task"]) == [f"0_{p}" for p in range(6)]
    assert tasks["thread"].nunique() == 1
    assert namespace["streams"].state is KafkaStreams.State.RUNNING
    assert StreamsConfig({"application.id": "x"})["num.stream.threads"] == 1
    # no payment in partitions 4 and 5: those tasks have no stream time yet (-1, Kafka's
    # RecordQueue.UNKNOWN, where PartitionGroup starts); none has committed, since
    # commit.interval.ms is 30 s (StreamsConfig) and the run has reached 10 s
    landed = set(run_cell('ls.topic_records(kernel, "payment")', namespace)["_"]["partition"])
    assert landed == {0, 1, 2, 3}
    stream_time = dict(zip(tasks["task"], tasks["stream_time"], strict=True))
    assert [t for t, ms in stream_time.items() if ms == -1] == ["0_4", "0_5"]
    assert list(tasks["committed"]) == [""] * 6
    assert StreamsConfig({"application.id": "x"})["commit.interval.ms"] == 30_000
    assert namespace["kernel"].now_ms == 10_000
    out = run_cell('ls.topic_records(kernel, "unknown-payment")', namespace)["_"]
    assert list(out["key"]) == ["unknown", "unknown"]
    assert out["partition"].nunique() == 1
    assert out["partition"].iloc[0] == partition_for_key(serialize("unknown"), 6)


def test_lesson_follows_one_record_through_the_filter():
    """§6: the "unknown" 120 is at payment-1 offset 0 and alice's 30 at payment-3 offset 0;
    tasks 0_1 and 0_3 process them; the first goes source → filter → sink, the second stops at
    the filter."""
    names = {"topology": ls.unknown_payment_topology(), "KafkaStreams": KafkaStreams,
             "Producer": Producer}
    namespace = run_cell("streams = KafkaStreams(", names)
    namespace = run_cell("producer = Producer(", namespace)
    landed = run_cell('ls.topic_records(kernel, "payment")', namespace)["_"]
    where = {(k, v): (p, o) for p, o, k, v in landed[["partition", "offset", "key", "value"]]
             .itertuples(index=False, name=None)}
    assert where[("unknown", 120)] == (1, 0)
    assert where[("alice", 30)] == (3, 0)
    unknown = run_cell('streams.follow("payment", 1, 0)', namespace)["_"]
    alice = run_cell('streams.follow("payment", 3, 0)', namespace)["_"]
    assert list(unknown["task"]) == ["0_1"] * 3
    assert list(unknown["kind"]) == ["streams.process", "streams.forward", "streams.forward"]
    assert list(unknown["detail"])[1:] == ["KSTREAM-FILTER-0000000001",
                                           "KSTREAM-SINK-0000000002"]
    assert list(alice["task"]) == ["0_3"] * 2
    assert list(alice["detail"])[1:] == ["KSTREAM-FILTER-0000000001"]


def test_lesson_scaling_moves_two_tasks_to_c_and_back():
    """§6: tasks start at 6 s; A runs 0_1, 0_3, 0_5 and B 0_0, 0_2, 0_4; C gets 0_5 from A and
    0_4 from B, 2 each; the four others never stop; the two moving tasks pause for 3 s (21 s to
    24 s); after C closes at 40 s they go back (0_4 to B, 0_5 to A) after 2 s."""
    run = scaling()
    assert run.owners["from_ms"].min() == pytest.approx(6_000, abs=100)
    before = {"instance-A": "0_1, 0_3, 0_5", "instance-B": "0_0, 0_2, 0_4", "instance-C": ""}
    assert run.tasks_at(19_999) == before
    assert run.tasks_at(30_000) == {"instance-A": "0_1, 0_3", "instance-B": "0_0, 0_2",
                                    "instance-C": "0_4, 0_5"}
    assert run.tasks_at(59_000) == before
    pauses = run.pauses()
    assert sorted(set(pauses["task"])) == ["0_4", "0_5"]
    joining = pauses[pauses["from_ms"] < 30_000]
    leaving = pauses[pauses["from_ms"] >= 30_000]
    assert list(joining["from_ms"].round(-2)) == [21_000, 21_000]
    assert list(joining["to_ms"].round(-2)) == [24_000, 24_000]
    assert list(joining["ms"].round(-2)) == [3_000, 3_000]
    assert list(leaving["from_ms"].round(-2)) == [40_000, 40_000]
    assert list(leaving["ms"].round(-2)) == [2_000, 2_000]
    assert run.marks == {"C starts": 20_000, "C closes": 40_000}
    assert run.instances["instance-C"].state is KafkaStreams.State.NOT_RUNNING


def test_lesson_scaling_writes_every_unknown_payment_once():
    """§6: all 200 "unknown" payments of the 1,200 are written, none twice; the shop writes 20
    a second."""
    delivery = scaling().delivery().iloc[0]
    assert delivery["payments sent"] == 1_200
    assert delivery['"unknown" payments'] == 200
    assert delivery["written to unknown-payment"] == 200
    assert delivery["written twice"] == 0
    assert scaling().sent[1][2] - scaling().sent[0][2] == 50  # 20 a second


def test_scaling_run_is_the_same_every_time():
    """Seeded: a second run gives the same ownership stretches and the same output."""
    again = ls.scaling_run()
    pd.testing.assert_frame_equal(again.owners, scaling().owners)
    pd.testing.assert_frame_equal(again.output(), scaling().output())


def test_lesson_the_default_cache_forwards_eight_wordcount_records():
    """§6: 11 records without the cache, 8 with the default one, in last-update order (Kafka's
    NamedCache flush at the commit); defaults: statestore.cache.max.bytes 10 MiB,
    commit.interval.ms 30,000 (StreamsConfig)."""
    table = ls.cache_comparison()
    uncached = [c for c in table["statestore.cache.max.bytes=0"] if c]
    cached = [c for c in table["default cache (10 MiB)"] if c]
    assert uncached == [f"{k} {v}" for k, v in WORDCOUNT]
    assert cached == ["all 1", "lead 1", "to 1", "hello 1", "streams 2", "join 1", "kafka 3",
                      "summit 1"]
    config = StreamsConfig({"application.id": "x"})
    assert config["statestore.cache.max.bytes"] == 10 * 1024 * 1024
    assert config["commit.interval.ms"] == 30_000


@pytest.mark.parametrize(("cache", "commit_ms", "every_ms", "records"), [
    (None, None, 10_000, 8), (None, 5_000, 10_000, 11), (200, None, 0, 10), (0, None, 0, 11),
])
def test_lesson_cache_panel_counts(cache, commit_ms, every_ms, records):
    """§6: lines 10 s apart, default commit: 8; commit every 5 s: 11; a 200-byte cache evicts
    before the commit: 10 (ThreadCache.maybeEvict); no cache: 11."""
    out = ls.wordcount_on_cluster(cache, commit_ms, every_ms)
    assert len(out) == records
    assert dict(zip(out["key"], out["value"], strict=True)) == dict(WORDCOUNT)


def test_lesson_records_keep_the_timestamp_of_their_line():
    """§6: 10 s apart, each output record carries the timestamp of the line that caused it."""
    out = ls.wordcount_on_cluster(None, None, 10_000)
    stamps = dict(zip(out["key"], out["timestamp"], strict=True))
    assert (stamps["all"], stamps["hello"], stamps["summit"]) == (0, 10_000, 20_000)


def test_cache_panel_reruns_on_each_choice(monkeypatch):
    """The panel's drop-downs re-run WordCount; nothing is built while grading."""
    panel = panels.cache_panel()
    assert isinstance(panel, ipywidgets.VBox)
    assert len(panel.result.output) == 8
    panel.controls["line.every.ms"].value = 10_000
    panel.controls["commit.interval.ms"].value = 5_000
    assert len(panel.result.output) == 11
    assert "<b>11 records</b>" in panel.output.value
    assert "from the line typed at" in panels.cache_html(panel.result)
    monkeypatch.setenv("KAFKA_LAB_GRADING", "1")
    assert isinstance(panels.cache_panel(), GradingPlaceholder)


def test_task_timeline_draws_each_stretch_and_hatches_the_gaps():
    """One rectangle per ownership stretch plus one per gap (the 6 s start of every task and
    the two moves of 0_4 and 0_5), a legend entry per instance and for "no owner"."""
    run = scaling()
    fig = viz_streams.task_timeline(run.owners, marks=run.marks)
    (ax,) = fig.axes
    assert len(ax.patches) == len(run.owners) + len(ls.no_owner(run.owners))
    assert len(ls.no_owner(run.owners)) == 6 + 4
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["instance-A", "instance-B", "instance-C", "no owner"]


# --- the figure and the panel --------------------------------------------------------------------


def test_window_timeline_labels_every_window_with_its_count():
    """One bar label per window, a legend entry for records late for one of two windows only
    where there are such records, and a title with dropped-records."""
    hopping = ls.window_run(TimeWindows.of_size_with_no_grace(10_000).advance_by(5_000))
    fig = viz_streams.window_timeline(hopping)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.texts if not t.get_text().startswith("#")]
    assert sorted(labels) == sorted(str(c) for c in hopping.counts["count"])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "late for one window, counted in another" in legend
    assert "dropped-records = 3" in ax.get_title(loc="left")
    tumbling = viz_streams.window_timeline(ls.window_run(TimeWindows.of_size_and_grace(5_000,
                                                                                       1_000)))
    legend = [t.get_text() for t in tumbling.legends[0].get_texts()]
    assert "late for one window, counted in another" not in legend
    assert "grace (1,000 ms)" in legend


def test_window_timeline_axis_starts_at_0_for_time_windows_and_near_the_first_session():
    """Time windows are aligned on the epoch, so their axis starts at 0; the session clicks
    start at 10 s, and an axis from 0 left half the figure empty: it starts 2 s before them."""
    tumbling = viz_streams.window_timeline(ls.window_run(TimeWindows.of_size_with_no_grace(5_000)))
    assert tumbling.axes[0].get_xlim()[0] == 0
    run = ls.window_run(SessionWindows.of_inactivity_gap_and_grace(5_000, 5_000),
                        ls.SESSION_CLICKS)
    left, right = viz_streams.window_timeline(run).axes[0].get_xlim()
    first = int(run.records["timestamp"].min())
    assert first == 10_000
    assert left == first - 2_000
    assert right == int(run.records["timestamp"].max()) + 1_000


def test_timelines_and_the_tasks_table_fit_a_notebook_output():
    """The timelines were 9 inches wide (911 pixels, shown at 93 %); 8.2 inches is the widest a
    notebook's 848-pixel output shows at full size. tasks_frame()'s instance column, a
    ``payments-<UUID>`` client id, made its table 875 pixels: the lesson shortens it."""
    hopping = ls.window_run(TimeWindows.of_size_with_no_grace(10_000).advance_by(5_000))
    assert viz_streams.window_timeline(hopping).get_figwidth() <= 8.2
    run = scaling()
    assert viz_streams.task_timeline(run.owners, marks=run.marks).get_figwidth() <= 8.2
    frame = pd.DataFrame({"instance": ["payments-e5724557-fd55-40ab-9263-64c566bbd365",
                                       "instance-A"], "task": ["0_0", "0_1"]})
    short = viz_streams.tasks_table(frame).data
    assert list(short["instance"]) == ["payments-e5724557", "instance-A"]
    assert list(short["task"]) == ["0_0", "0_1"]
    assert lesson_code("vs.tasks_table(streams.tasks_frame())")


def test_simulate_windows_runs_and_refuses_what_kafka_refuses():
    """The panel's callback: a run for good values, Kafka's message for an advance > size."""
    result = panels.simulate_windows({"size.ms": 5_000, "advance.ms": 5_000, "grace.ms": 2_000})
    assert result.ok
    assert result.run is not None
    assert result.run.dropped == 2
    assert "of_size_and_grace(5000, 2000)" in result.header
    assert "dropped-records = 2" in panels.windows_html(result)
    bad = panels.simulate_windows({"size.ms": 5_000, "advance.ms": 7_000, "grace.ms": 0})
    assert not bad.ok
    assert "Window advancement interval" in panels.windows_html(bad)


def test_grace_panel_builds_and_redraws_on_a_slider():
    """The factory builds a panel; moving the grace slider re-counts."""
    panel = panels.grace_panel()
    assert isinstance(panel, ipywidgets.VBox)
    assert panel.result.run.dropped == 4
    panel.controls["grace.ms"].value = 3_500
    assert panel.wait().run.dropped == 1
    assert bytes(panel.image.value).startswith(b"\x89PNG")
    with pytest.raises(KafkaLabError, match="no setting 'grace'"):
        panels.grace_panel(grace=5)


def test_grace_panel_builds_nothing_while_grading(monkeypatch):
    """KAFKA_LAB_GRADING=1: a placeholder, no widget."""
    monkeypatch.setenv("KAFKA_LAB_GRADING", "1")
    assert isinstance(panels.grace_panel(), GradingPlaceholder)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_lesson_module_imports_no_display_code_and_the_model_no_lesson():
    """sim.lessons.streams draws nothing; sim.streams never imports the lesson, the lesson's
    figures or widgets (only its drawing module uses matplotlib)."""
    display = ("sim.viz", "sim.widgets", "sim.viz_streams", "matplotlib", "ipywidgets")
    assert not {n for n in _imports(ROOT / "sim" / "lessons" / "streams.py")
                if n.startswith(display)}
    for path in sorted((ROOT / "sim" / "streams").glob("*.py")):
        # drawing.py is draw_topology: a figure of a topology, the one place matplotlib is used
        allowed = ("matplotlib",) if path.name == "drawing.py" else ()
        found = {n for n in _imports(path) if n.startswith((*display, "sim.lessons"))
                 and not n.startswith(allowed or ("-",))}
        assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"
