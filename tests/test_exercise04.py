"""Exercise 04 (storage): the solution scores full marks, the generated exercise reports "not
yet solved", and plausible wrong answers lose marks.

04.a is compared with the lab's log cleaner (``Cleaner``: only the cleanable part — closed
segments — is compacted, the active segment is never touched); 04.b with the topic config
(``LogConfig.validateTopicLogConfigValues``: local.retention.ms ≤ retention.ms), a run of the plan
on the simulator (retention and tiered local deletion by whole segments:
``deleteRetentionMsBreachedSegments``, ``RLMExpirationTask``) and the storage cost model; 04.c
with ``offsets_for_times`` (``UnifiedLog.fetchOffsetByTimestamp``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from sim.grading import check
from sim.grading.batch import Submission, grade_submission

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "04_storage.ipynb"
EXERCISE = ROOT / "exercises" / "04_storage.ipynb"
DAY_MS = 86_400_000


@functools.cache
def graded(path: Path) -> Submission:
    return grade_submission(path, timeout_s=90, cell_timeout_s=20)


def by_question(submission: Submission) -> dict[str, tuple[str, int, int]]:
    return {r.question: (r.verdict, r.points, r.max_points) for r in submission.results}


def test_solution_scores_full_marks() -> None:
    submission = graded(SOLUTION)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert by_question(submission) == {"04.a": ("passed", 5, 5), "04.b": ("passed", 5, 5),
                                       "04.c": ("passed", 4, 4)}


def test_generated_exercise_runs_and_scores_zero() -> None:
    submission = graded(EXERCISE)
    assert submission.problem is None
    assert all(c["status"] == "ok" for c in submission.cells), submission.cells
    assert all(points == 0 for _, points, _ in by_question(submission).values())


# --- 04.a -----------------------------------------------------------------------------------------


def right(keys, active_from):
    latest = {key: offset for offset, key in enumerate(keys[:active_from])}
    return sorted(latest.values()) + list(range(active_from, len(keys)))


def latest_over_whole_log(keys, active_from):
    """Forgets that the cleaner never reads the active segment's keys."""
    latest = {key: offset for offset, key in enumerate(keys)}
    return sorted(latest.values())


def every_key_once_but_drops_active(keys, active_from):
    latest = {key: offset for offset, key in enumerate(keys[:active_from])}
    return sorted(latest.values())


def test_04a_right_function_passes() -> None:
    assert check("04.a", right).points == 5


def test_04a_ignoring_the_active_segment_loses_marks() -> None:
    """Latest-per-key over the whole log drops K2 at offset 4 of the example (its newest is in
    the active segment) and offset 1 of A A A: only the format point remains."""
    result = check("04.a", latest_over_whole_log)
    assert result.points == 1
    assert "[3, 6, 7, 8]" in result.reason


def test_04a_dropping_the_active_segment_loses_marks() -> None:
    assert check("04.a", every_key_once_but_drops_active).points == 1


def test_04a_not_a_function_scores_zero() -> None:
    assert check("04.a", [3, 4, 6, 7, 8]).points == 0


# --- 04.b -----------------------------------------------------------------------------------------


def test_04b_cheapest_plan_passes_and_minus_two_means_all_local() -> None:
    assert check("04.b", {"retention.ms": 14 * DAY_MS, "local.retention.ms": DAY_MS}).points == 5
    # -2 (the default): local.retention.ms = retention.ms, 14 days on disk, costs far more
    assert check("04.b", {"retention.ms": 14 * DAY_MS, "local.retention.ms": -2}).points == 3


def test_04b_plans_missing_a_need_lose_marks() -> None:
    too_short = check("04.b", {"retention.ms": 7 * DAY_MS, "local.retention.ms": DAY_MS})
    assert too_short.points == 2
    nothing_local = check("04.b", {"retention.ms": 14 * DAY_MS, "local.retention.ms": 0})
    assert nothing_local.points == 2
    forever = check("04.b", {"retention.ms": -1, "local.retention.ms": DAY_MS})
    assert forever.points == 3


def test_04b_one_hour_short_is_caught_by_the_simulator() -> None:
    """Retention deletes whole segments: 14 days minus an hour loses, at some hour of the run,
    the segment holding the oldest record a 14-day replay needs; a local retention an hour
    short of a day leaves part of the last day only in the remote tier."""
    hour = 3_600_000
    short_replay = check("04.b", {"retention.ms": 14 * DAY_MS - hour, "local.retention.ms": DAY_MS})
    assert short_replay.points == 2
    assert "simulated hours the log starts at offset" in short_replay.reason
    short_local = check("04.b", {"retention.ms": 14 * DAY_MS, "local.retention.ms": DAY_MS - hour})
    assert short_local.points == 2
    assert "the local log starts at offset" in short_local.reason


def test_04b_the_simulated_plan_keeps_what_it_must_and_no_more() -> None:
    """The solution's plan on the simulator: at its worst hour the log starts exactly at the
    first record younger than 14 days (the segment before it just expired from the remote tier)
    and locally at or before the first record younger than a day; 13 days falls a day short."""
    from sim.lessons.storage import plan_run

    run = plan_run(14 * DAY_MS, DAY_MS)
    assert run.replay_ok
    assert run.local_ok
    assert run.log_start_offset == run.first_of_replay
    assert 0 < run.local_log_start_offset <= run.first_of_last_day
    shorter = plan_run(13 * DAY_MS, DAY_MS)
    assert not shorter.replay_ok
    assert shorter.log_start_offset - shorter.first_of_replay >= 40  # a day is 48 records
    everything_local = plan_run(14 * DAY_MS, -2)
    assert everything_local.local_log_start_offset == everything_local.log_start_offset


def test_04b_local_longer_than_retention_is_rejected_as_kafka_does() -> None:
    result = check("04.b", {"retention.ms": DAY_MS, "local.retention.ms": 2 * DAY_MS})
    assert result.points == 0
    assert "local.retention.ms" in result.reason


# --- 04.c -----------------------------------------------------------------------------------------


def test_04c_right_answer_passes() -> None:
    assert check("04.c", {"seek": 1, "offsets": [1, 3, 4, 6, 8]}).points == 4


def test_04c_a_contiguous_offset_range_loses_marks() -> None:
    """Seek right, then read offsets up to the lookup of t2 (offset 5): misses 6 and 8."""
    assert check("04.c", {"seek": 1, "offsets": [1, 2, 3, 4]}).points == 2


def test_04c_closest_in_time_is_not_the_seek_offset() -> None:
    """1250 at offset 4 is closest to 1200, but offsets_for_times answers offset 1 (1300)."""
    assert check("04.c", {"seek": 4, "offsets": [1, 3, 4, 6, 8]}).points == 3
