"""The fuzzer's check of the Streams ``count`` application (``sim.fuzz.streams_check``), fed
hand-made logs: which wrong last counts a guarantee explains and which it does not."""

from __future__ import annotations

from collections import Counter

import pytest

from sim.fuzz import streams_check

SPEC = {"application.id": "enricher", "app": "count", "input": "payments",
        "output": "payments-enriched"}
INPUTS = [("a", None, 10, 0), ("a", None, 20, 0), ("a", None, 30, 0)]


def judge(monkeypatch, outputs, created=2, guarantee="at_least_once"):
    """Run ``check_count`` on key ``a``'s three inputs and ``outputs`` (value, timestamp)."""
    logs = {"payments": INPUTS, "payments-enriched": [("a", v, t, 0) for v, t in outputs]}
    monkeypatch.setattr(streams_check, "read_committed", lambda _kernel, topic: logs[topic])
    monkeypatch.setattr(streams_check, "task_creations",
                        lambda _kernel, _app: Counter({"0_0": created}))
    spec = {**SPEC, "config": {"processing.guarantee": guarantee}}
    return set(streams_check.check_count(None, spec))


def test_an_old_owners_late_write_of_an_earlier_count_is_a_stale_write(monkeypatch):
    """The count reached 3, then a write carrying the second input's timestamp landed last:
    a zombie's retried batch (at_least_once fences nobody). Tolerated, with its cause."""
    found = judge(monkeypatch, [(1, 10), (2, 20), (3, 30), (2, 20)])
    assert found == {"streams-stale-write"}
    assert "streams-stale-write" in streams_check.TOLERATED


@pytest.mark.parametrize(("outputs", "created", "guarantee"), [
    ([(1, 10), (2, 20), (3, 30), (1, 30)], 2, "at_least_once"),  # recounted from lost state
    ([(1, 10), (2, 20)], 2, "at_least_once"),  # the third input never counted
    ([(1, 10), (2, 20), (3, 30), (2, 20)], 1, "at_least_once"),  # no task move explains it
    ([(1, 10), (2, 20), (3, 30), (2, 20)], 2, "exactly_once_v2"),  # EOS fences zombies
])
def test_other_low_last_counts_stay_undercounts(monkeypatch, outputs, created, guarantee):
    """A last count below the truth that no late write of an old owner explains is a
    violation: state lost and recounted, a record never counted, or no task ever moved."""
    assert judge(monkeypatch, outputs, created, guarantee) == {"streams-undercount"}
