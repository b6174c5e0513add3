"""The built-in scenario kappa-reprocessing: a second instance of a Streams job, started later
with a new application.id, replays the whole history into a new table."""

from __future__ import annotations

from sim.consumer.group import group_coordinator
from sim.lessons.streams import topic_records
from sim.records import TopicPartition
from sim.scenarios import load


def test_second_instance_replays_the_history_into_a_new_table() -> None:
    """table-v2 holds a row for every payment, those sent before job-v2 started included, and
    job-v2's committed offsets reach the end of payments, as job-v1's do."""
    scenario = load("kappa-reprocessing")
    kernel = scenario.run()
    payments = topic_records(kernel, "payments")
    new_table = topic_records(kernel, "table-v2")
    start_ms = next(s["start_ms"] for s in scenario.streams if s["application.id"] == "job-v2")
    assert (payments["timestamp"] < start_ms).sum() > 0
    assert sorted(new_table["timestamp"]) == sorted(payments["timestamp"])
    tps = [TopicPartition("payments", p) for p in range(2)]
    ends = {tp: kernel.cluster.partition("payments", tp.partition).log.high_watermark
            for tp in tps}
    for group in ("job-v1", "job-v2"):
        assert group_coordinator(kernel).fetch_offsets(group, tps) == ends
