"""The Streams stepper: one record's journey through a topology, and a restore, step by step.

Backs ``sim.widgets.streams_stepper`` and the numbers lessons 06 (§6, following one record) and
07 (§3, a restore step by step) state about the runs their steppers replay.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim.consumer.config import CONSUMER
from sim.lessons import streams as ls
from sim.lessons import streams_state as ss
from sim.payloads import payload
from sim.streams import events
from sim.streams.kafka_streams import instances
from sim.widgets import GradingPlaceholder
from sim.widgets import streams_stepper as st

ROOT = Path(__file__).resolve().parents[1]
WORDCOUNT_INPUT = "streams-plaintext-input"
REPARTITION = "streams-wordcount-counts-store-repartition"
CHANGELOG = "streams-wordcount-counts-store-changelog"
STEP_EVENT = {"read": "streams.process", "forward": "streams.forward",
              "dropped": "streams.forward", "cached": "streams.forward",
              "write": "streams.send", "store": "streams.send"}


@functools.cache
def filter_run():
    kernel = ls.filter_kernel()
    kernel.run(until_ms=10_000)
    return kernel


@functools.cache
def wordcount_run(cache_max_bytes: int | None = 0):
    kernel = ls.wordcount_kernel(cache_max_bytes)
    kernel.run(until_ms=10_000 if cache_max_bytes == 0 else 40_000)
    return kernel


@functools.cache
def restore_run():
    kernel = ss.failover_kernel(rounds=10, lose_state=True)
    kernel.run(until_ms=60_000)
    return kernel


def where(kernel, topic: str, key, value) -> tuple[int, int]:
    records = ls.topic_records(kernel, topic)
    row = records[(records.key == key) & (records.value == value)].iloc[0]
    return int(row.partition), int(row.offset)


def lesson_code(name: str, fragment: str) -> str:
    notebook = json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))
    (cell,) = ["".join(c["source"]) for c in notebook["cells"]
               if c["cell_type"] == "code" and fragment in "".join(c["source"])]
    return cell


# --- the journey -----------------------------------------------------------------------------


def test_a_passing_record_follows_the_topology_order():
    """The "unknown" payment of 120 is read by its partition's task, reaches the filter, then
    the sink, which writes it to the partition of unknown-payment that holds it."""
    kernel = filter_run()
    partition, offset = where(kernel, "payment", "unknown", 120)
    steps = st.record_journey(kernel, "payment", partition, offset)
    assert list(steps.step) == ["read", "forward", "forward", "write"]
    assert list(steps.node) == ["KSTREAM-SOURCE-0000000000", "KSTREAM-FILTER-0000000001",
                                "KSTREAM-SINK-0000000002", "KSTREAM-SINK-0000000002"]
    assert set(steps.task) == {f"0_{partition}"}
    assert list(zip(steps.key, steps.value, strict=True)) == [("unknown", 120)] * 4
    out = steps.iloc[-1]
    assert (out.topic, out.partition, out.offset) == ("unknown-payment",
                                                      *where(kernel, "unknown-payment",
                                                             "unknown", 120))


def test_a_dropped_record_stops_at_the_filter():
    """alice's 30 reaches the filter, which forwards nothing: the journey ends there."""
    kernel = filter_run()
    steps = st.record_journey(kernel, "payment", *where(kernel, "payment", "alice", 30))
    assert list(steps.step) == ["read", "dropped"]
    assert steps.node.iloc[-1] == "KSTREAM-FILTER-0000000001"
    assert "stops here" in steps.what.iloc[-1]


def test_the_journey_crosses_the_repartition_topic_after_group_by():
    """Each word of a line is re-keyed by the key selector group_by adds, written to the
    repartition topic, then read back at that very offset by a task of sub-topology 1, which
    counts it."""
    kernel = wordcount_run()
    steps = st.record_journey(kernel, WORDCOUNT_INPUT, 0, 1)
    writes = steps[(steps.step == "write") & (steps.topic == REPARTITION)]
    reads = steps[(steps.step == "read") & (steps.topic == REPARTITION)]
    assert list(writes.key) == ["hello", "kafka", "streams"]
    assert list(zip(writes.partition, writes.offset, strict=True)) == list(
        zip(reads.partition, reads.offset, strict=True))
    assert all(reads.seq.to_numpy() > writes.seq.max())
    assert set(steps[steps.seq < reads.seq.min()].task) == {"0_0"}
    assert set(steps[steps.seq >= reads.seq.min()].task) == {"1_0"}
    selected = steps[steps.node == "KSTREAM-KEY-SELECT-0000000002"]
    assert list(selected.value) == ["hello", "kafka", "streams"]
    assert selected.key.isna().all()  # the line had no key; the selector gives it one next


def test_a_store_step_is_the_changelog_record_the_count_wrote():
    """The store step's change is in the changelog at the offset it names, and the sink then
    writes the same new count to the output topic."""
    kernel = wordcount_run()
    steps = st.record_journey(kernel, WORDCOUNT_INPUT, 0, 1)
    stores = steps[steps.step == "store"]
    assert set(stores.node) == {"counts-store"}
    assert set(stores.topic) == {CHANGELOG}
    log = kernel.cluster.partition(CHANGELOG, 0).log
    outputs = steps[(steps.step == "write") & (steps.topic == "streams-wordcount-output")]
    for store, out in zip(stores.itertuples(), outputs.itertuples(), strict=True):
        key, value = payload(kernel, int(log.column("record_id", store.offset,
                                                    store.offset + 1)[0]))
        assert (key, value) == (store.key, out.value)  # the plain count


def test_the_steps_are_real_trace_rows():
    """Every step's seq is a trace row of the event kind the step names, on its thread."""
    kernel = wordcount_run()
    steps = st.record_journey(kernel, WORDCOUNT_INPUT, 0, 1)
    trace = kernel.trace.to_frame().set_index("seq")
    for row in steps.itertuples():
        event = trace.loc[row.seq]
        assert event.kind == STEP_EVENT[row.step]
        assert event.component == f"{row.instance}-{row.thread}"
        assert event.task == row.task
    bookmarks = st.journey_bookmarks(steps)
    assert list(bookmarks.values()) == list(steps.seq)
    assert len(set(bookmarks)) == len(steps)


def test_with_the_record_cache_the_count_keeps_its_update():
    """With the default cache the count's update waits in the cache: the journey ends at the
    aggregation, and the forwards of the later flush are not part of it (nor of follow())."""
    kernel = wordcount_run(None)
    steps = st.record_journey(kernel, WORDCOUNT_INPUT, 0, 1)
    counted = steps[steps.node == "KSTREAM-AGGREGATE-0000000003"]
    assert list(counted.step) == ["cached"] * 3
    assert not (steps.step == "store").any()
    assert not ((steps.step == "write") & (steps.topic == "streams-wordcount-output")).any()
    forwards = kernel.trace.frame(events.STREAMS_FORWARD)
    flushed = forwards[forwards.flushed.astype(bool)]
    # the 8 updates of lesson 06's cache run, each on to the sink
    assert Counter(flushed.node) == {"KSTREAM-AGGREGATE-0000000003": 8,
                                     "KTABLE-TOSTREAM-0000000007": 8}
    [streams] = instances(kernel)
    path = streams.follow(REPARTITION, 0, 5)
    assert list(path.detail)[1:] == ["KSTREAM-AGGREGATE-0000000003"]


def test_journey_figure_outlines_the_current_node():
    """The figure outlines the step's node in red and shows the key and value."""
    kernel = filter_run()
    steps = st.record_journey(kernel, "payment", *where(kernel, "payment", "alice", 30))
    [streams] = instances(kernel)
    figure = st.journey_figure(streams.topology, steps, 1)
    patches = {p.get_gid(): p for p in figure.axes[0].patches if p.get_gid()}
    assert patches["KSTREAM-FILTER-0000000001"].get_linewidth() == pytest.approx(3.2)
    assert patches["KSTREAM-SINK-0000000002"].get_linewidth() == pytest.approx(1.1)
    texts = [t.get_text() for t in figure.axes[1].texts]
    assert "key 'alice' · value 30" in texts


def test_the_journey_caption_sits_above_the_topology():
    """The step's caption is drawn above the drawing, next to the stepper's buttons: under a
    two-sub-topology drawing (WordCount's, more than 8 inches tall) it was out of sight."""
    kernel = ls.wordcount_kernel()
    kernel.run(until_ms=10_000)
    steps = st.record_journey(kernel, "streams-plaintext-input", 0, 1)
    [streams] = instances(kernel)
    figure = st.journey_figure(streams.topology, steps, 5)
    drawing, caption = figure.axes
    assert caption.get_position().y0 >= drawing.get_position().y1 - 1e-9
    assert figure.get_size_inches()[1] > 8


def test_journey_panel_steps_forward_and_back(monkeypatch):
    """The panel's next / previous buttons replay the run to each step's trace row; before
    the first step nothing is current; outside grading mode it is a panel."""
    monkeypatch.delenv("KAFKA_LAB_GRADING", raising=False)
    panel = st.journey_stepper(ls.filter_kernel, "payment", 1, 0, until_ms=5_000)
    assert isinstance(panel, st.JourneyPanel)
    assert panel.index() == -1
    panel.next_button.click()
    assert panel.index() == 0
    assert panel.state.events > panel.steps.seq.iloc[0]
    panel.go_to(3)
    assert panel.index() == 3
    panel.previous_button.click()
    assert panel.index() == 2
    assert list(panel.table(8).step) == ["read", "forward", "forward"]
    panel.step_button.click()  # stepping by events: the last step the trace holds
    assert panel.index() == 3
    assert isinstance(panel.draw(panel.steps, panel.index(), panel.state), Figure)


def test_grading_mode_gives_a_placeholder(monkeypatch):
    """While a notebook is graded the factories build no widget."""
    monkeypatch.setenv("KAFKA_LAB_GRADING", "1")
    assert isinstance(st.journey_stepper(ls.filter_kernel, "payment", 1, 0, until_ms=5_000),
                      GradingPlaceholder)


def test_lesson_06_follows_hello_kafka_streams():
    """§6: the stepper follows offset 1 of the input; 32 steps; task 0_0 then 1_0 on the one
    instance and thread; the words go to repartition offsets 5, 6 and 7 and are read back
    110 ms later (3,004 ms → 3,114 ms); counts hello 1, kafka 2, streams 2, each logged to the
    changelog first."""
    cell = lesson_code("06_streams.ipynb", "journey_stepper")
    assert 'stepper.journey_stepper(ls.wordcount_kernel, "streams-plaintext-input", 0, 1' in cell
    assert "until_ms=10_000" in cell
    steps = st.record_journey(wordcount_run(), WORDCOUNT_INPUT, 0, 1)
    assert len(steps) == 32
    assert list(dict.fromkeys(steps.task)) == ["0_0", "1_0"]
    assert steps.instance.nunique() == 1
    assert steps.thread.nunique() == 1
    read = steps[steps.step == "read"]
    assert read.key.iloc[0] is None or pd.isna(read.key.iloc[0])
    writes = steps[(steps.step == "write") & (steps.topic == REPARTITION)]
    assert list(writes.offset) == [5, 6, 7]
    back = steps[(steps.step == "read") & (steps.topic == REPARTITION)]
    assert (writes.time_ms.iloc[0], back.time_ms.iloc[0]) == (3_004, 3_114)
    counts = steps[steps.step == "store"]
    assert list(zip(counts.key, counts.value, strict=True)) == [
        ("hello", 1), ("kafka", 2), ("streams", 2)]
    for store_seq in counts.seq:  # each change is logged before the count goes on
        after = steps[steps.seq > store_seq]
        assert after.node.iloc[0] == "KTABLE-TOSTREAM-0000000007"


# --- the restore ----------------------------------------------------------------------------


def test_restore_steps_replay_a_crash_with_the_disk_lost():
    """Crash, task created on the restarted process, restore from offset 0 to the changelog's
    end in batches of at most 1,000, end, the task running again, and only then the instance
    RUNNING (``StreamThread`` waits for ``TaskManager.checkStateUpdater``); standby updates
    and the start-up before the crash are left out."""
    kernel = restore_run()
    steps = st.restore_steps(kernel)
    assert list(steps.step) == ["crash", "task created", "restore start", "restore batch",
                                "restore batch", "restore end", "running", "instance RUNNING"]
    start = steps[steps.step == "restore start"].iloc[0]
    assert (start.start_offset, start.end_offset) == (0, 2_000)
    batches = steps[steps.step == "restore batch"]
    assert list(zip(batches.start_offset, batches.end_offset, batches.restored,
                    strict=True)) == [(0, 1_000, 1_000), (1_000, 2_000, 2_000)]
    assert "from offset 0 (the start)" in start.what
    trace = kernel.trace.to_frame().set_index("seq")
    kinds = {"crash": "streams.crash", "task created": "streams.task",
             "running": "streams.task", "instance RUNNING": "streams.state"}
    for row in steps.itertuples():
        assert trace.loc[row.seq].kind == kinds.get(row.step, "streams.restore")


def test_a_restart_after_a_clean_close_restores_from_the_checkpoint():
    """A clean close writes the checkpoint; the restart restores from the offset after it
    and finds nothing left to read."""
    kernel = ss.payments_world(seed=7)
    [app] = ss.payments_app(kernel, {"statestore.cache.max.bytes": 0})
    ss.feed(kernel, rounds=3, customers=4)
    kernel.run(until_ms=kernel.now_ms + 2_000)
    app.close()
    kernel.run(until_ms=kernel.now_ms + 3_000)
    closed_ms = kernel.now_ms
    app.restart()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    steps = st.restore_steps(kernel, since_ms=closed_ms)
    start = steps[steps.step == "restore start"].iloc[0]
    assert (start.start_offset, start.end_offset) == (12, 12)
    assert "(the checkpoint says 11)" in start.what
    assert list(steps.step)[-3:] == ["restore end", "running", "instance RUNNING"]


def test_restore_figure_fills_what_was_restored():
    """The bar of the changelog partition is filled up to the records restored so far."""
    steps = st.restore_steps(restore_run())
    first_batch = int(steps.index[steps.step == "restore batch"][0])
    figure = st.restore_figure(steps, first_batch)
    widths = sorted(p.get_width() for p in figure.axes[0].patches)
    assert widths == [1_000, 2_000]


def test_lesson_07_restore_stepper_numbers():
    """§3: crash at 7 s; the task comes to the new process (a new process id) 44 s later, within
    session.timeout.ms (45 s) of the crash; restore from offset 0 to 2,000 in 2 fetches of
    1,000, about 60 ms each, 120.4 ms in all."""
    cell = lesson_code("07_streams_state.ipynb", "restore_stepper(")
    assert "ss.failover_kernel(rounds=10, lose_state=True)" in cell
    assert "until_ms=60_000" in cell
    steps = st.restore_steps(restore_run())
    crash = steps[steps.step == "crash"].iloc[0]
    created = steps[steps.step == "task created"].iloc[0]
    assert crash.time_ms == 7_000
    assert round((created.time_ms - crash.time_ms) / 1_000) == 44
    session_timeout_ms = CONSUMER.parse({})["session.timeout.ms"]
    assert session_timeout_ms == 45_000
    assert created.time_ms - crash.time_ms < session_timeout_ms  # from the last heartbeat
    assert created.instance != crash.instance  # a new process id: the state directory is gone
    times = [created.time_ms, *steps[steps.step == "restore batch"].time_ms]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert [round(g) for g in gaps] == [60, 60]
    end = steps[steps.step == "restore end"].iloc[0]
    assert end.time_ms - created.time_ms == pytest.approx(120.4)
