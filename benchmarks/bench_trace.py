"""Trace benchmark: turning a 1,000,000-event trace into a DataFrame, against building it bare.

Run with ``python benchmarks/bench_trace.py``. Emits a producer-shaped trace (per produce request:
one ``request.sent``, three ``log.append`` and one ``request.completed``) of 1,000,000 events,
then times, alternately in this process:

- ``Trace.to_frame()`` (the whole trace, every kind's fields, ``Int64`` where a kind lacks them);
- the baseline: ``pandas.DataFrame`` built from NumPy columns already in memory, with
  categorical ``component`` and ``kind`` — the least any trace could pay for such a frame;
- ``Trace.tail(10)``, which must slice rather than build everything.

Target: ``to_frame`` ≤ 4× the baseline; ``tail(10)`` far below either. Machines (and one
machine's load) differ several-fold, so only the ratios, measured here in one run, are verdicts.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from sim import trace as events
from sim.trace import Trace

EVENTS = 1_000_000
REPEATS = 5
TARGET_RATIO = 4.0


def producer_trace(n_events: int) -> Trace:
    """A trace shaped like a producer run: requests of three batches to three brokers."""
    trace = Trace()
    requests = n_events // 5
    for i in range(requests):
        now_ms = i * 0.25
        node = i % 3
        trace.emit(events.REQUEST_SENT, now_ms, "producer", node, 3, 480, 48_000)
        for b in range(3):
            trace.emit(events.LOG_APPEND, now_ms + 0.1, f"broker-{node}", node, "orders",
                       (i * 3 + b) % 12, i * 160, 160, 16_000, "producer")
        trace.emit(events.REQUEST_COMPLETED, now_ms + 0.2, "producer", node, 3, 480, 0.2)
    return trace


def baseline_frame(n_events: int) -> Callable[[], pd.DataFrame]:
    """Build, from NumPy columns made beforehand, a frame with the trace frame's columns."""
    rng = np.random.default_rng(0)
    kinds = np.tile(np.array([0, 1, 1, 1, 2], np.int8), n_events // 5)
    n = len(kinds)
    ints = rng.integers(0, 1_000, n)
    floats = rng.random(n)
    component = rng.integers(0, 4, n).astype(np.int8)
    names = ["producer", "broker-0", "broker-1", "broker-2"]
    kind_names = ["request.sent", "log.append", "request.completed"]

    def build() -> pd.DataFrame:
        columns: dict[str, Any] = {
            "seq": np.arange(n), "time_ms": floats,
            "component": pd.Categorical.from_codes(component, names),
            "kind": pd.Categorical.from_codes(kinds, kind_names)}
        for name in ("node", "batches", "records", "bytes", "partition", "offset"):
            columns[name] = ints
        columns["topic"] = pd.Categorical.from_codes(np.zeros(n, np.int8), ["orders"])
        columns["producer"] = pd.Categorical.from_codes(np.zeros(n, np.int8), ["producer"])
        columns["latency_ms"] = floats
        return pd.DataFrame(columns)

    return build


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    start = time.perf_counter()
    trace = producer_trace(EVENTS)
    emit_s = time.perf_counter() - start
    baseline = baseline_frame(EVENTS)
    frame = trace.to_frame()  # warm-up, and a check that it is the frame the baseline mimics
    assert len(frame) == len(trace)
    assert list(frame.columns)[:4] == ["seq", "time_ms", "component", "kind"]
    whole, bare, tail = [], [], []
    for _ in range(REPEATS):
        whole.append(timed(trace.to_frame))
        bare.append(timed(baseline))
        tail.append(timed(lambda: trace.tail(10)))
    whole_s, bare_s, tail_s = (statistics.median(x) for x in (whole, bare, tail))
    print(f"trace of {len(trace):,} events (emitted in {emit_s:.2f} s, "
          f"{emit_s / len(trace) * 1e9:.0f} ns/event)")
    print(f"{'what':<40} {'median ms':>10} {'× baseline':>11}")
    print(f"{'baseline: frame from NumPy columns':<40} {bare_s * 1e3:>10.1f} {1.0:>11.2f}")
    print(f"{'Trace.to_frame()':<40} {whole_s * 1e3:>10.1f} {whole_s / bare_s:>11.2f}")
    print(f"{'Trace.tail(10)':<40} {tail_s * 1e3:>10.1f} {tail_s / bare_s:>11.3f}")
    verdict = "met" if whole_s / bare_s <= TARGET_RATIO else "NOT met"
    print(f"target to_frame ≤ {TARGET_RATIO:g}× baseline: {verdict}")


if __name__ == "__main__":
    main()
