"""Every number lesson 07 (``notebooks/07_streams_state.ipynb``) states, checked by calling the
same ``sim.lessons.streams_state`` functions with the same arguments as the notebook.

Kafka classes behind the claims: ``ProcessorStateManager`` / ``OffsetCheckpoint`` (the
``.checkpoint`` file), ``AbstractTask.maybeCheckpoint`` (10,000 records or a clean close),
``StoreChangelogReader`` (restore from the checkpoint or the start), ``StandbyTask``.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest

from sim.lessons import streams_state as ss
from sim.streams.changelog_reader import MAX_POLL_RECORDS, RECORD_OVERHEAD_BYTES
from sim.streams.rocksdb import read_rocksdb
from sim.streams.stores import ValueAndTimestamp

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "07_streams_state.ipynb"


@functools.cache
def section_one():
    """Sections 1 and 2: two partitions, six customers paying 12 times, then a clean close."""
    kernel = ss.payments_world(partitions=2, seed=7)
    [app] = ss.payments_app(kernel, {"statestore.cache.max.bytes": 0})
    paid = ss.feed(kernel, rounds=12, customers=6)
    kernel.run(until_ms=kernel.now_ms + 2_000)
    running = {"store": ss.store_contents(app), "tree": ss.state_tree(app),
               "checkpoint": ss.checkpoint_text(app, "0_0"),
               "config": ss.changelog_config(kernel),
               "stats": [ss.changelog_stats(kernel, 0), ss.changelog_stats(kernel, 1)]}
    app.close()
    kernel.run(until_ms=kernel.now_ms + 3_000)
    closed = {"checkpoint": ss.checkpoint_text(app, "0_0"),
              "rocksdb": read_rocksdb(Path(app.state_dir) / ss.APPLICATION_ID / "0_0"
                                      / "rocksdb" / ss.STORE),
              "tail": ss.changelog_tail(kernel, partition=0, records=3)}
    return paid, running, closed, app


@functools.cache
def crashes():
    return {"lost": ss.failover(lose_state=True), "kept": ss.failover(lose_state=False),
            "standby": ss.failover(standbys=1)}


@functools.cache
def sweep():
    return ss.restore_sweep([5, 10, 20, 40])


def test_the_lesson_calls_the_functions_this_file_checks():
    """The notebook's cells use the arguments this file uses."""
    cells = json.loads(LESSON.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for call in ('payments_world(partitions=2, seed=7)', 'feed(kernel, rounds=12, customers=6)',
                 'ss.failover(lose_state=True)', 'ss.failover(lose_state=False)',
                 'ss.failover(standbys=1)', 'restore_sweep([5, 10, 20, 40])',
                 'crash_counts(before=10, after=5)',
                 'changelog_tail(kernel, partition=0, records=3)',
                 'crash_counts(before=10, after=5, processing_guarantee="exactly_once_v2")',
                 'ss.checkpoint_after_restart(guarantee)',
                 'for guarantee in ("at_least_once", "exactly_once_v2")',
                 # prints '' while there is no checkpoint, which the text explains
                 'print(repr(ss.checkpoint_text(app, "0_0")))'):
        assert call in text, call


# --- 1. a running aggregation --------------------------------------------------------------------


def test_every_customer_counts_12_and_the_changelog_holds_72_records_36_a_partition():
    """Caching off: one changelog record per update; the keys split 3 and 3."""
    paid, running, _, _ = section_one()
    assert running["store"] == {f"customer-{c}": 12 for c in range(6)}
    assert paid == {f"customer-{c}": 12 for c in range(6)}
    assert [s["records"] for s in running["stats"]] == [36, 36]
    assert running["config"] == {"topic": "payments-app-payments-per-customer-changelog",
                                 "partitions": 2, "cleanup.policy": "compact"}


# --- 2. where the state lives --------------------------------------------------------------------


def test_two_task_folders_with_rocksdb_and_no_checkpoint_while_running():
    """``state.dir/<application.id>/<task>/rocksdb/<store>``; no checkpoint before 10,000
    records or a clean close (``AbstractTask.maybeCheckpoint``)."""
    _, running, _, app = section_one()
    tree = running["tree"].splitlines()
    assert [line.strip() for line in tree if line.strip().startswith("0_")] == ["0_0/", "0_1/"]
    for name in ("CURRENT", "LOCK", f"{ss.STORE}/"):
        assert sum(line.strip() == name for line in tree) == 2, name
    assert any(line.strip().startswith("MANIFEST-") for line in tree)
    assert any(line.strip().endswith(".log") for line in tree)
    assert running["checkpoint"] == ""  # the '' the lesson prints under the tree
    assert not str(app.state_dir).startswith(str(ROOT))  # a temporary folder


def test_a_clean_close_writes_the_checkpoint_and_rocksdb_holds_three_customers():
    """``0``, ``1``, ``payments-app-payments-per-customer-changelog 0 35``; the database of
    partition 0 holds three customers with the count 12."""
    _, _, closed, _ = section_one()
    assert closed["checkpoint"].splitlines() == [
        "0", "1", "payments-app-payments-per-customer-changelog 0 35"]
    rows = closed["rocksdb"]
    assert len(rows) == 3
    assert all(isinstance(v, ValueAndTimestamp) and v.value == 12 for _, v in rows)


def test_the_changelog_holds_the_plain_count_with_the_stores_timestamp_as_the_records():
    """The last three records of partition 0 are the three customers with value ``12`` (an
    int, not a value-and-timestamp pair) and, as record timestamp, the timestamp RocksDB keeps
    beside the count (``ChangeLoggingTimestampedKeyValueBytesStore.log``)."""
    _, _, closed, _ = section_one()
    tail = closed["tail"]
    assert list(tail.offset) == [33, 34, 35]
    assert list(tail.value) == [12, 12, 12]
    assert all(type(v) is int for v in tail.value)
    stored = {k: v.timestamp for k, v in closed["rocksdb"]}
    assert {k: t for k, t in zip(tail.key, tail.timestamp, strict=True)} == stored


def test_the_checkpoint_threshold_the_lesson_names_is_kafkas():
    """``StateManagerUtil.OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`` is 10,000."""
    from sim.streams.stream_thread import OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT

    assert OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT == 10_000


# --- 3. crash and restore ------------------------------------------------------------------------


def test_the_crash_experiment_has_13000_records_about_0_96_mb():
    """A record is the 4-byte count plus 70 bytes: 13,000 × 74 = 962,000 bytes."""
    runs = crashes()
    for run in runs.values():
        assert run["changelog_records"] == 65 * 200 == 13_000
    assert runs["lost"]["changelog_bytes"] == 13_000 * (4 + RECORD_OVERHEAD_BYTES) == 962_000


def test_disk_lost_restores_everything_from_offset_0_in_0_78_s():
    lost = crashes()["lost"]
    assert (lost["start_offset"], lost["end_offset"], lost["restored"]) == (0, 13_000, 13_000)
    assert round(lost["restore_ms"] / 1000, 2) == 0.78


def test_disk_kept_restores_from_the_checkpoint_10599_in_a_fifth_of_the_time():
    lost, kept = crashes()["lost"], crashes()["kept"]
    assert (kept["start_offset"], kept["restored"]) == (10_600, 2_400)
    assert round(kept["restore_ms"] / 1000, 2) == 0.15
    assert 0.18 < kept["restore_ms"] / lost["restore_ms"] < 0.24  # about a fifth


def test_a_promoted_standby_restores_nothing():
    standby = crashes()["standby"]
    assert (standby["start_offset"], standby["end_offset"], standby["restored"]) == (
        13_000, 13_000, 0)
    assert standby["restore_ms"] == 0.0


def test_every_crash_ends_with_65_for_each_customer():
    for run in crashes().values():
        assert run["counts"] == {f"customer-{c}": 65 for c in range(200)}


# --- 4. restore time follows the changelog -------------------------------------------------------


def test_the_formula_constants_the_lesson_states():
    """1,000 records a fetch (``max.poll.records``); 70 bytes a record besides its value;
    10 Mbit/s is 1,250 bytes a millisecond."""
    assert MAX_POLL_RECORDS == 1000
    assert RECORD_OVERHEAD_BYTES == 70
    assert 10 * 1e6 / 8 / 1000 == 1250


def test_1000_records_take_60_2_ms_and_8000_take_481_6_ms_on_a_straight_line():
    frame = sweep()
    assert list(frame.changelog_records) == [1000, 2000, 4000, 8000]
    first, last = frame.iloc[0], frame.iloc[-1]
    assert first.changelog_bytes == 74_000
    assert first.restore_ms == pytest.approx(60.2)
    assert pytest.approx(59.2) == 74_000 / 1250
    assert last.restore_ms == pytest.approx(481.6)
    assert round(last.restore_ms / first.restore_ms) == 8
    for row in frame.itertuples():
        fetches = math.ceil(row.changelog_records / 1000)
        assert row.restore_ms == pytest.approx(fetches * 2 * 0.5 + row.changelog_bytes / 1250)


def test_the_figure_draws_the_sweep():
    fig = ss.restore_figure(sweep(), "t")
    [line] = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [1000, 2000, 4000, 8000]


# --- 5. at-least-once counts twice ---------------------------------------------------------------


def test_at_least_once_counts_15_payments_as_20():
    frame = ss.crash_counts(before=10, after=5)
    assert len(frame) == 5
    assert set(frame.paid) == {15}
    assert set(frame.counted) == {20}


# --- 6. exactly once: the same crash -------------------------------------------------------------


def test_exactly_once_counts_the_same_15_payments_as_15():
    """The same crash under exactly_once_v2: 15 paid, 15 counted for each of the 5 customers;
    at-least-once said 20 (``StreamsProducer`` aborts the open transaction; the store without a
    checkpoint is wiped and restored from committed records, ``ProcessorStateManager``)."""
    frame = ss.crash_counts(before=10, after=5, processing_guarantee="exactly_once_v2")
    assert len(frame) == 5
    assert set(frame.paid) == {15}
    assert set(frame.counted) == {15}


def test_the_exactly_once_restart_wipes_the_store_and_restores_10_per_customer():
    """What the lesson says happens inside that restart: the task is reported corrupted (data,
    no checkpoint), and the restore brings back the committed counts only: 10 per customer."""
    from sim.streams.events import STREAMS_TASK
    from sim.streams.kafka_streams import instances
    from sim.streams.restore_timeline import restore_events

    kernel = ss.payments_world(seed=7)
    config = {"statestore.cache.max.bytes": 0, "commit.interval.ms": 5_000.0,
              "processing.guarantee": "exactly_once_v2"}
    [app] = ss.payments_app(kernel, config)
    ss.feed(kernel, 10, customers=5)
    kernel.run(until_ms=kernel.now_ms + 6_000)
    ss.feed(kernel, 5, customers=5)
    app.crash(lose_state=False)
    restarted = app.restart()
    seen = {}
    thread = restarted.threads[0]
    original = thread.reader.on_restored

    def snapshot(task_id):
        seen.update({k: v.value for k, v in thread.tasks[task_id].task.stores[ss.STORE].all()})
        original(task_id)

    thread.reader.on_restored = snapshot
    kernel.run(until_ms=kernel.now_ms + 60_000)
    assert seen == {f"customer-{c}": 10 for c in range(5)}
    events = restore_events(kernel)
    assert list(events[events.thread.str.startswith(restarted.client_id)].action)[-2:] == [
        "start", "end"]
    tasks = kernel.trace.frame(STREAMS_TASK)
    assert "corrupted: payments-per-customer wiped" in set(tasks.action)
    assert instances(kernel)[-1] is restarted


def test_the_checkpoint_survives_a_restart_only_under_at_least_once():
    """Both clean closes write ``0``, ``1``, ``payments-app-payments-per-customer-changelog 0 8``
    (9 count updates; under EOS offset 9 is the commit marker); after the restart it is still
    there under at_least_once and gone under exactly_once_v2."""
    lines = ["0", "1", "payments-app-payments-per-customer-changelog 0 8"]
    alos = ss.checkpoint_after_restart("at_least_once")
    eos = ss.checkpoint_after_restart("exactly_once_v2")
    assert alos["after clean close"].splitlines() == lines
    assert eos["after clean close"].splitlines() == lines
    assert alos["after restart"].splitlines() == lines
    assert eos["after restart"] == ""
