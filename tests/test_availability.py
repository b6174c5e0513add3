"""Unavailability windows and send order: what producers experienced during faults."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim import metrics, scenarios
from sim.audit import audit_kernel
from sim.availability import nonmonotonic_sends, unavailability


def test_isr_shrink_window_spans_fencing_to_the_followers_return():
    """Writes fail from the fencing of both followers (14 s) until they rejoin (25 s) and the
    producer's next retry, at most 1.2 × retry.backoff.max.ms later (KIP-580 jitter), succeeds."""
    kernel = scenarios.load("isr-shrink").run()
    (window,) = unavailability(kernel.trace.to_frame())
    assert window["topic"] == "payments"
    assert 14000 <= window["start_ms"] < 14100
    assert 25000 <= window["end_ms"] < 25000 + 1.2 * 1000 + 100
    assert "NOT_ENOUGH_REPLICAS" in window["errors"]
    assert window["cause"]["kind"] == "isr.change"
    assert audit_kernel(kernel).to_json()["unavailable_ms"] == pytest.approx(
        window["duration_ms"])


def test_safe_replication_is_unavailable_only_until_the_new_leader():
    """A leader crash at 5 s: writes fail until the controller elects a new leader at 14 s and
    the producer's next retry, at most 1.2 × retry.backoff.max.ms later (KIP-580), succeeds."""
    kernel = scenarios.load("safe-replication").run()
    windows = unavailability(kernel.trace.to_frame())
    assert len(windows) == 1
    assert 5000 <= windows[0]["start_ms"] < 5100
    assert 14000 <= windows[0]["end_ms"] < 14000 + 1.2 * 1000 + 100


def test_a_healthy_run_has_no_windows():
    """No failed produce attempt, no window."""
    kernel = scenarios.load("keyed").run()
    assert unavailability(kernel.trace.to_frame()) == []


def test_offsets_going_back_for_later_sends_are_nonmonotonic():
    """Record 2 was sent after record 1 but written before it: one nonmonotonic send."""
    writes = pd.DataFrame({
        "writer": "app", "topic": "t", "partition": 0, "record_id": [0, 1, 2, 3],
        "offset": [0, 2, 1, 3], "ack_ms": [1.0, 2.0, 3.0, np.nan]})
    found = nonmonotonic_sends(writes)
    assert [(f["record_id"], f["offset"], f["after_offset"]) for f in found] == [(2, 1, 2)]


def test_broker_metrics_count_isr_changes_and_rejected_writes():
    """The read-out a Kafka operator watches: ISR shrinks/expands and failed produce requests."""
    kernel = scenarios.load("isr-shrink").run()
    brokers = metrics.broker_metrics(kernel).set_index("broker")
    assert brokers.loc[0, "isr_shrinks"] == 2
    assert brokers.loc[0, "isr_expands"] == 2
    assert brokers.loc[0, "failed_produce"] > 0
    assert brokers["under_replicated"].sum() == 0  # everyone is back by the end


@pytest.mark.parametrize("name", scenarios.builtin_names())
def test_every_built_in_scenario_replays_identically(name):
    """Same scenario, same seed: the same trace, field by field."""
    scenario = scenarios.load(name)
    first = scenario.run().trace.to_frame()
    second = scenario.run().trace.to_frame()
    pd.testing.assert_frame_equal(first, second)
