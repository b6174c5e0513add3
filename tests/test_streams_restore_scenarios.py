"""The built-in restore-hazard scenarios (``sim/scenarios/streams-restore-*.yaml``): what Kafka
Streams does where Quix Streams and Faust users reported hangs or lost state.

Each test runs the very scenario its golden file shows (``tests/test_scenarios.py`` compares
the text) and asserts the behaviour of Kafka's classes on it:

- ``StoreChangelogReader``: restore from the log start or checkpoint to the end offset;
  ``OffsetOutOfRange`` → ``TaskCorruptedException`` → wipe and restore again;
- ``ProcessorStateManager``: under EOS the checkpoint is deleted once read, and data without a
  checkpoint is wiped;
- ``HighAvailabilityTaskAssignor``: caught up means lag ≤ ``acceptable.recovery.lag``;
- ``KafkaConsumer`` with Streams' ``auto.offset.reset=earliest``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest

from sim import scenarios
from sim.audit import audit_kernel
from sim.consumer.metrics import consumers
from sim.errors import ScenarioError
from sim.fuzz.streams_check import check_count, read_committed
from sim.streams import KafkaStreams
from sim.streams.events import (
    STREAMS_COMMIT,
    STREAMS_PROCESS,
    STREAMS_START_FAILED,
    STREAMS_TASK,
)
from sim.streams.kafka_streams import instances
from sim.streams.restore_timeline import restore_events

CHANGELOG = "counter-counts-changelog"


@functools.cache
def run(name: str):
    scenario = scenarios.load(name)
    return scenario, scenario.run()


def restores(kernel, thread: str | None = None):
    frame = restore_events(kernel)
    if thread is not None:
        frame = frame[frame.thread == thread]
    return frame


def after(frame, ms):
    return frame[frame.time_ms >= ms].reset_index(drop=True)


def running(kernel):
    return sorted(i.client_id for i in instances(kernel)
                  if i.state is KafkaStreams.State.RUNNING)


def test_an_empty_changelog_restores_nothing_and_the_task_runs_at_once():
    """faust#597: retention emptied the changelog (log start = log end = 400). The new
    process without state restores from the log start to the end offset — 0 records — and
    completes at once (``StoreChangelogReader``: position ≥ end offset); the counts are gone."""
    _, kernel = run("streams-restore-empty-changelog")
    log = kernel.cluster.partition(CHANGELOG, 0).log
    assert log.log_start_offset == log.log_end_offset == 400
    later = after(restores(kernel), 40_000)
    assert list(later.action) == ["start", "end"]
    start, end = later.iloc[0], later.iloc[1]
    assert (start.start_offset, start.end_offset) == (400, 400)
    assert end.restored == 0
    assert end.time_ms == start.time_ms  # completed in the same instant
    assert running(kernel) == ["counter-1"]
    [app] = [i for i in instances(kernel) if i.state is KafkaStreams.State.RUNNING]
    assert app.store("counts").all() == []


def test_retention_overtaking_a_restore_wipes_and_restores_again_from_the_new_log_start():
    """faust#651: retention deletes the offsets the restore needs next. Each time, Kafka treats
    the task as corrupted: the store is wiped and the restore starts again at the new log start
    offset, which is past the missing offset; the restore then completes and the task runs."""
    _, kernel = run("streams-restore-retention-overtakes-restore")
    later = after(restores(kernel), 20_000)
    actions = list(later.action)
    assert actions[0] == "start"
    assert actions[-1] == "end"
    corrupted = later[later.action == "corrupted"]
    assert len(corrupted) >= 1
    assert all(corrupted.start_offset < corrupted.end_offset)  # missing < new log start
    assert list(corrupted.end_offset) == sorted(corrupted.end_offset)
    log = kernel.cluster.partition(CHANGELOG, 0).log
    assert later.iloc[-1].restored == log.log_end_offset - corrupted.iloc[-1].end_offset
    assert later.iloc[-1].time_ms > corrupted.iloc[-1].time_ms
    assert running(kernel) == ["counter-1"]
    report = audit_kernel(kernel)
    assert report.counts["deleted-by-retention"] > 0


def test_a_rebalance_during_a_restore_suspends_it_and_the_new_owner_restores_to_the_end():
    """quix-streams#1067/#1146: counter-1 rejoins while counter-2 restores task 0_1. Both are
    caught up by KIP-441's measure (lag ≤ ``acceptable.recovery.lag`` = 10,000), so the
    assignor balances: 0_1 moves to counter-1. counter-2's restore is suspended
    (``onRestoreSuspended``); counter-1 restores the whole changelog partition from offset 0 and
    completes; no count is lost (at-least-once)."""
    scenario, kernel = run("streams-restore-rebalance-during-restore")
    later = after(restores(kernel), 20_000)
    later = later[later.task == "0_1"]
    assert [(r.thread, r.action) for r in later.itertuples()] == [
        ("counter-2-StreamThread-1", "start"), ("counter-2-StreamThread-1", "suspended"),
        ("counter-1-StreamThread-1", "start"), ("counter-1-StreamThread-1", "end")]
    start2, suspended, start1, end1 = later.itertuples()
    assert start2.time_ms < 33_000 <= suspended.time_ms  # counter-1 came back mid-restore
    assert 0 < suspended.restored < start2.end_offset
    assert (start1.start_offset, end1.restored) == (0, start1.end_offset)
    assert start1.end_offset <= 10_000  # acceptable.recovery.lag: both count as caught up
    # the scenario's description states the restore's size and where it was suspended
    assert f"its {start1.end_offset:,} changelog records" in scenario.description
    assert f"restores all {end1.restored:,} records" in scenario.description
    assert f"after {suspended.restored:,} records" in scenario.description
    assert running(kernel) == ["counter-1", "counter-2"]
    assert "streams-undercount" not in check_count(kernel, scenario.streams[0])


def test_a_commit_marker_as_the_changelogs_last_offset_still_completes_the_restore():
    """quix-streams#1017: under exactly_once_v2 the changelog ends with a commit marker. The
    restart finds data but no checkpoint (deleted once read) and wipes the store
    (``TaskCorruptedException``); the read_committed restore runs to the last stable offset,
    past the marker, and completes, restoring fewer records than offsets (markers and the
    aborted writes of the crashed transaction are skipped); the counts are exact."""
    scenario, kernel = run("streams-restore-eos-marker-last")
    tasks = kernel.trace.frame(STREAMS_TASK)
    assert list(tasks[tasks.action.str.startswith("corrupted")].action) == [
        "corrupted: counts wiped"]
    later = after(restores(kernel), 30_000)
    assert list(later.action) == ["start", "end"]
    start, end = later.itertuples()
    log = kernel.cluster.partition(CHANGELOG, 0).log
    assert start.start_offset == 0
    committed = len(read_committed(kernel, CHANGELOG))
    assert end.restored == committed < start.end_offset
    last = log.batches_overlapping(start.end_offset - 1, start.end_offset)[-1]
    assert last.is_control  # the marker is the last offset the restore had to pass
    assert check_count(kernel, scenario.streams[0]) == {}
    truth = len(read_committed(kernel, "payments"))
    assert sum(1 for _ in read_committed(kernel, "payment-counts")) == truth


def test_a_committed_input_offset_below_the_log_start_resets_to_earliest_and_goes_on():
    """quix-streams#1114: while counter-1 was down, retention deleted input it had not read.
    After the restore its committed offset is out of range; Streams' consumer resets to the
    earliest offset (``auto.offset.reset=earliest``) and processes from the log start on; the
    records in between were never counted after the restart: those read before the crash were
    counted once then, the others the audit ties to the retention that deleted them."""
    _, kernel = run("streams-restore-source-offset-deleted")
    commits = kernel.trace.frame(STREAMS_COMMIT)
    before = commits[commits.time_ms < 15_000]
    committed = int(before.iloc[-1].offsets.rsplit(":", 1)[1])
    processed = kernel.trace.frame(STREAMS_PROCESS)
    first_after = int(processed[processed.time_ms > 15_000].iloc[0].offset)
    assert first_after > committed
    later = after(restores(kernel), 15_000)
    assert list(later.action) == ["start", "end"]
    report = audit_kernel(kernel)
    deleted = {o for r in report.anomalies["deleted-by-retention"] if r["topic"] == "payments"
               for o in range(r["first_offset"], r["last_offset"] + 1)}
    assert all(r["cause"]["kind"] == "log.segment.delete"
               for r in report.anomalies["deleted-by-retention"])
    crashed_read = set(processed[processed.time_ms < 15_000].offset.astype(int))
    gap = set(range(committed, first_after))  # never processed after the restart
    assert gap - deleted <= crashed_read  # processed before the crash, after the last commit
    assert len(gap & deleted) > 100
    assert running(kernel) == ["counter-1"]


def test_two_instances_on_one_state_directory_the_second_fails_to_start():
    """Kafka's lock on ``<state.dir>/<application.id>`` (``StateDirectory``): the first instance
    holds it; the second, on the same machine and folder, fails in its constructor with Kafka's
    message and never joins, so the first owns every task and the counts are exact."""
    scenario, kernel = run("streams-restore-shared-state-dir")
    failed = kernel.trace.frame(STREAMS_START_FAILED)
    assert list(failed.component) == ["counter-2"]
    assert failed.detail.iloc[0].startswith(
        "Unable to initialize state, this can happen if multiple instances of Kafka Streams are "
        "running in the same state directory (current state directory is [<state.dir>/counter])")
    assert running(kernel) == ["counter-1"]
    created = kernel.trace.frame(STREAMS_TASK)
    created = created[created.action == "created"]
    assert sorted(created.task) == ["0_0", "0_1", "0_2", "0_3"]
    assert set(created.component) == {"counter-1-StreamThread-1"}
    assert check_count(kernel, scenario.streams[0]) == {}


def test_a_fault_may_not_name_an_instance_that_never_starts():
    """With ``shared_state_dir`` only the first instance runs: a fault naming another is an
    error at load that names the field."""
    text = (Path(scenarios.__file__).parent / "streams-restore-shared-state-dir.yaml").read_text(
        "utf-8")
    scenarios.parse(text + "faults:\n  - {at_ms: 5000, streams_crash: {instance: counter-1}}\n")
    with pytest.raises(ScenarioError, match=r"faults\[0\]\.streams_crash\.instance.*never runs"):
        scenarios.parse(text + "faults:\n  - {at_ms: 5000, streams_crash: {instance: counter-2}}\n")


def test_a_stream_threads_consumer_counts_the_records_its_tasks_processed():
    """A stream thread runs its polls' records through the topology in its own loop: its
    consumer counts every record a task processed (``streams.process``) as processed, so the
    delivery audit does not call records Kafka Streams processed "skipped" (at most once).
    Records processed again after counter-1's crash, past its last commit, are
    processed-twice: at-least-once, Streams' default guarantee."""
    _, kernel = run("streams-restore-rebalance-during-restore")
    steps = kernel.trace.frame(STREAMS_PROCESS)
    processed = pd.concat([c.processed() for c in consumers(kernel)], ignore_index=True)
    key = ["topic", "partition", "offset"]
    assert len(processed) == len(steps) > 0
    assert (processed.sort_values(key)[key].to_numpy().tolist()
            == steps.sort_values(key)[key].to_numpy().tolist())
    report = audit_kernel(kernel)
    assert report.processed == len(steps.drop_duplicates(key))
    assert report.skipped == 0
    assert report.processed_twice == len(steps) - len(steps.drop_duplicates(key)) > 0
