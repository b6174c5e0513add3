"""Specification of the ``streams:`` section of scenario files: Kafka Streams applications as
data, validated before anything runs, and their faults."""

from __future__ import annotations

import pytest
import yaml

from sim import scenarios
from sim.errors import ScenarioError
from sim.payloads import payload

BASE = {
    "name": "s", "seed": 1, "duration_ms": 30000,
    "topics": [{"name": "in", "partitions": 2}, {"name": "out", "partitions": 2}],
    "producers": [{"workload": {"topic": "in", "records": 200, "rate_per_s": 20,
                                "keys": {"uniform": 10}}}],
    "streams": [{"application.id": "app", "app": "rekey", "input": "in", "output": "out",
                 "instances": 2}],
}


def _load(**changes):
    data = {**BASE, **changes}
    return scenarios.parse(yaml.safe_dump(data), "s.yaml")


def test_a_streams_application_runs_and_every_input_record_has_its_result():
    kernel = _load().run()
    inputs = sorted((payload(kernel, int(i))[0], int(t))
                    for p in kernel.cluster.topic("in").partitions
                    for i, t in zip(p.log.column("record_id"), p.log.column("timestamp_ms"),
                                    strict=True))
    outputs = sorted((payload(kernel, int(i))[0], int(t))
                     for p in kernel.cluster.topic("out").partitions
                     for i, t in zip(p.log.column("record_id"), p.log.column("timestamp_ms"),
                                     strict=True))
    assert len(inputs) == 200
    assert outputs == sorted((f"re-{k}", t) for k, t in inputs)
    assert "app-KSTREAM-REPARTITION-0000000002-repartition" in kernel.cluster.topics


@pytest.mark.parametrize(("change", "message"), [
    ({"app": "wordcount"}, r"streams\[0\]\.app must be one of tag, rekey"),
    ({"input": "nope"}, r"streams\[0\]\.input names topic 'nope'"),
    ({"output": "in"}, r"streams\[0\]\.output must differ from input"),
    ({"instances": 0}, r"streams\[0\]\.instances must be between 1 and 100"),
    ({"config": {"commit.interval.ms": -5}}, r"streams\[0\]\.config is invalid"),
    ({"config": {"client.id": "x"}}, r"streams\[0\]\.config sets application.id or client.id"),
    ({"extra": 1}, r"streams\[0\]"),
])
def test_a_wrong_streams_entry_is_one_error_naming_its_field(change, message):
    spec = {**BASE["streams"][0], **change}
    with pytest.raises(ScenarioError, match=message) as info:
        _load(streams=[spec])
    assert "\n" not in str(info.value)


def test_streams_need_an_end_time():
    data = {k: v for k, v in BASE.items() if k != "duration_ms"}
    with pytest.raises(ScenarioError, match="duration_ms is required with streams"):
        scenarios.parse(yaml.safe_dump(data), "s.yaml")


@pytest.mark.parametrize(("fault", "message"), [
    ({"at_ms": 10, "streams_hang": {"instance": "app-3", "duration_ms": 5}},
     r"names instance 'app-3'; the scenario's Streams instances are: app-1, app-2"),
    ({"at_ms": 10, "streams_hang": {"instance": "app-1", "duration_ms": 0}},
     r"duration_ms must be > 0"),
    ({"at_ms": 10, "network_partition": {"a": [0], "b": ["app-9-StreamThread-1-producer"]}},
     r"names 'app-9-StreamThread-1-producer', which is no node"),
])
def test_a_wrong_streams_fault_is_refused_at_load(fault, message):
    with pytest.raises(ScenarioError, match=message):
        _load(faults=[fault])


def test_a_hang_past_the_session_timeout_moves_the_tasks_and_nothing_is_lost():
    """An instance frozen past ``session.timeout.ms`` (45 s for Streams' consumers) is removed
    from the group about 45 s after the hang began; the other instance takes all its
    partitions, the frozen one rejoins when it wakes, and every result still arrives."""
    kernel = _load(duration_ms=150000, faults=[
        {"at_ms": 5000, "streams_hang": {"instance": "app-1", "duration_ms": 60000}}]).run()
    frame = kernel.trace.to_frame()
    removed = frame[frame.kind == "group.member.removed"]
    assert len(removed) == 1
    assert 50_000 <= float(removed.time_ms.iloc[0]) <= 52_000
    assigned = frame[(frame.kind == "consumer.assigned")
                     & (frame.time_ms > 50_000) & (frame.time_ms < 60_000)]
    assert list(assigned.component) == ["app-2-StreamThread-1-consumer"]
    assert sorted(str(assigned.assignment.iloc[0]).split(",")) == [
        "app-KSTREAM-REPARTITION-0000000002-repartition-0",
        "app-KSTREAM-REPARTITION-0000000002-repartition-1", "in-0", "in-1"]
    assert set(frame[frame.time_ms > 65_000].component) >= {"app-1-StreamThread-1-consumer"}
    results = sum(p.log.high_watermark for p in kernel.cluster.topic("out").partitions)
    assert results >= 200
