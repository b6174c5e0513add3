"""Unavailability windows and send order: what producers experienced during faults."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim import metrics, scenarios
from sim.__main__ import main
from sim.audit import audit_kernel
from sim.availability import nonmonotonic_sends, unavailability


def test_isr_shrink_window_spans_the_first_timeout_to_the_followers_return():
    """Writes fail from the first request timeout (10 s: 5 s after both followers crashed)
    until they rejoin (25 s) and the producer's next retry, at most 1.2 × retry.backoff.max.ms
    later (KIP-580 jitter), succeeds; the cause is the crash before it."""
    kernel = scenarios.load("isr-shrink").run()
    (window,) = unavailability(kernel.trace.to_frame())
    assert window["topic"] == "payments"
    assert 10000 <= window["start_ms"] < 10100
    assert 25000 <= window["end_ms"] < 25000 + 1.2 * 1000 + 100
    assert "NOT_ENOUGH_REPLICAS" in window["errors"]
    assert {"REQUEST_TIMED_OUT", "REQUEST_TIMEOUT"} & set(window["errors"])  # broker or client
    assert window["cause"]["kind"] == "broker.state"
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


OPEN_WINDOW = """\
name: open-window
description: Both followers crash for good; min.insync.replicas=2 refuses every later write.
seed: 5
duration_ms: 20000
cluster: {brokers: 3}
topics:
  - {name: payments, replica_assignment: [[0, 1, 2]], configs: {min.insync.replicas: 2}}
producers:
  - config: {client.id: app, request.timeout.ms: 5000}
    workload: {topic: payments, records: 3000, rate_per_s: 200, value_bytes: 100}
faults:
  - {at_ms: 2000, crash_broker: {broker: 1}}
  - {at_ms: 2000, crash_broker: {broker: 2}}
"""


def test_a_window_that_never_closes_is_open_with_a_null_end_in_json(tmp_path, capsys):
    """No append ever follows the failures: --json prints the window with end_ms null, open
    true and its duration up to the end of the run, instead of crashing on infinity."""
    path = tmp_path / "open.yaml"
    path.write_text(OPEN_WINDOW, encoding="utf-8")
    assert main(["run", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    [window] = data["audit"]["unavailability"]
    assert window["end_ms"] is None
    assert window["open"] is True
    assert window["duration_ms"] == pytest.approx(data["simulated_ms"] - window["start_ms"])
    assert data["audit"]["unavailable_ms"] == pytest.approx(window["duration_ms"])


def test_the_text_audit_says_an_open_window_is_still_open(tmp_path, capsys):
    """The summary line of an open window says it never closed, with no 'inf' in it."""
    path = tmp_path / "open.yaml"
    path.write_text(OPEN_WINDOW, encoding="utf-8")
    assert main(["run", str(path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "unavailable:" in line]
    assert len(lines) == 1
    assert "still open at the end of the run" in lines[0]
    assert "inf" not in lines[0]


def test_closed_windows_are_not_open():
    """A window that an append closed has a number for end_ms and open false."""
    kernel = scenarios.load("isr-shrink").run()
    (window,) = unavailability(kernel.trace.to_frame(), kernel.now_ms)
    assert window["open"] is False
    assert window["duration_ms"] == window["end_ms"] - window["start_ms"]
