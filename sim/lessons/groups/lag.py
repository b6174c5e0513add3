"""Lag building and draining: a group too small or too slow for its topic, and one that keeps up.

Part of ``sim.lessons.groups`` (lesson 03); the package docstring has the vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.consumer import Consumer
from sim.consumer import events as consumer_events
from sim.consumer import metrics as group_metrics
from sim.consumer.group import group_coordinator
from sim.errors import ConfigError
from sim.kernel import Kernel
from sim.lessons.groups.headers import group_header
from sim.producer import Producer
from sim.workloads import UniformKeys, Workload

LAG_TOPIC = "orders"
LAG_GROUP = "shipping"
LAG_SEED = 3


def lag_kernel(consumers: int = 2, max_poll_records: int = 500, processing_ms: float = 8.0, *,
               partitions: int = 6, rate_per_s: float = 300.0, backlog: int = 0,
               duration_ms: float = 15_000.0, max_poll_interval_ms: int = 300_000,
               extra_consumers: int = 0, join_at_ms: float = 10_000.0,
               strategy: str = "range", seed: int = LAG_SEED) -> Kernel:
    """Build and run a group reading ``orders`` while a producer keeps writing to it.

    The producer sends ``rate_per_s`` records a second (1,000 keys) for the whole run; a
    second producer writes ``backlog`` records at once at the start. Each consumer processes
    ``processing_ms`` per record and commits after each poll (at least once); the broker's
    ``group.initial.rebalance.delay.ms`` is 0 so the group forms at once.
    ``extra_consumers`` join at ``join_at_ms``.

    Raises:
        ConfigError: a value out of range (no consumers, a non-positive rate or time, …).
    """
    if consumers < 1 or extra_consumers < 0:
        raise ConfigError(f"Need at least one consumer (and ≥ 0 extra) but got consumers="
                          f"{consumers}, extra_consumers={extra_consumers}.")
    if processing_ms <= 0 or rate_per_s <= 0 or duration_ms <= 0:
        raise ConfigError(f"processing_ms, rate_per_s and duration_ms must be positive but got "
                          f"{processing_ms}, {rate_per_s}, {duration_ms}.")
    if backlog < 0 or partitions < 1:
        raise ConfigError(f"Need backlog ≥ 0 and partitions ≥ 1 but got backlog={backlog}, "
                          f"partitions={partitions}.")
    from sim.consumer.apps import at_least_once

    kernel = Kernel(seed=seed, brokers=3)
    kernel.cluster.create_topic(LAG_TOPIC, partitions=partitions)
    live = Producer(kernel, {"client.id": "orders-producer"})
    count = int(rate_per_s * duration_ms / 1000)
    live.add_workload(Workload.generate(kernel.spawn_rng(), LAG_TOPIC, count, rate_per_s,
                                        keys=UniformKeys(1000)))
    if backlog:
        loader = Producer(kernel, {"client.id": "backlog-loader"})
        loader.add_workload(Workload.generate(kernel.spawn_rng(), LAG_TOPIC, backlog, 1e6,
                                              keys=UniformKeys(1000)))
    group_coordinator(kernel, {"group.initial.rebalance.delay.ms": 0})
    config = {"group.id": LAG_GROUP, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "max.poll.records": int(max_poll_records),
              "max.poll.interval.ms": int(max_poll_interval_ms),
              "partition.assignment.strategy": [strategy]}
    members = [Consumer(kernel, config, at_least_once, processing_ms)
               for _ in range(consumers + extra_consumers)]
    for i, member in enumerate(members):
        member.subscribe([LAG_TOPIC])
        if i < consumers:
            member.run()
        else:
            kernel.env.timeout(join_at_ms).callbacks.append(lambda _e, c=member: c.run())
    kernel.run(duration_ms)
    return kernel


@dataclass
class LagRun:
    """A finished :func:`lag_kernel` run: per-partition lag, the group's total, a header."""

    kernel: Kernel
    lag: pd.DataFrame
    total: pd.DataFrame
    header: str
    settings: dict[str, Any] = field(default_factory=dict)

    def stats(self, below: float = 100.0) -> dict[str, Any]:
        """Peak and final lag, when lag fell below ``below`` for good, growth, poll timeouts."""
        total = self.total
        lag = total["lag"].to_numpy(dtype=float)
        times = total["time_ms"].to_numpy(dtype=float)
        above = times[lag >= below]
        settled = float(above.max()) + _step(times) if len(above) else 0.0
        if settled > times[-1]:
            settled = float("nan")
        half = times >= times[-1] / 2
        growth = float(np.polyfit(times[half] / 1000, lag[half], 1)[0]) if half.sum() > 1 else 0.0
        left = self.kernel.trace.frame(consumer_events.CONSUMER_LEFT)
        timeouts = int(left["reason"].astype(str).str.startswith("poll timeout").sum())
        members = group_metrics.consumers(self.kernel, LAG_GROUP)
        running = [c for c in members if c.state == "running"]
        return {"peak_lag": float(lag.max()), "end_lag": float(lag[-1]),
                "below_at_ms": settled, "growth_per_s": growth, "poll_timeouts": timeouts,
                "idle_consumers": sum(not c.assignment() for c in running),
                "consumers": len(running)}


def _step(times: np.ndarray) -> float:
    return float(times[1] - times[0]) if len(times) > 1 else 0.0


def lag_run(consumers: int = 2, max_poll_records: int = 500, processing_ms: float = 8.0,
            every_ms: float = 100.0, **settings: Any) -> LagRun:
    """Run :func:`lag_kernel` and collect its lag frames (see the module docstring for lag)."""
    kernel = lag_kernel(consumers, max_poll_records, processing_ms, **settings)
    frame = group_metrics.lag(kernel, LAG_GROUP, every_ms)
    frame["lag"] = frame["high_watermark"] - frame["committed"].fillna(0.0)
    frame["consumer_lag"] = frame["high_watermark"] - frame["position"].fillna(0.0)
    total = frame.groupby("time_ms", as_index=False)[["lag", "consumer_lag"]].sum()
    shown = {"consumers": consumers, "max.poll.records": max_poll_records,
             "processing_ms": processing_ms, **settings}
    return LagRun(kernel, frame, total, group_header(kernel, LAG_GROUP), shown)


def lag_summary(runs: Mapping[str, LagRun], below: float = 100.0) -> pd.DataFrame:
    """One row per named run: consumers, peak and final lag, growth per second, when lag fell
    below ``below`` for good (whole ms; "never" when it had not by the end: NaN read as a gap
    in the data), poll timeouts."""
    rows = []
    for name, run in runs.items():
        st = run.stats(below)
        settled = st["below_at_ms"]
        rows.append({"run": name, "consumers": st["consumers"],
                     "idle consumers": st["idle_consumers"],
                     "peak lag": int(st["peak_lag"]), "lag at the end": int(st["end_lag"]),
                     "lag growth per s": round(st["growth_per_s"], 1),
                     f"lag < {below:g} from (ms)": "never" if math.isnan(settled)
                     else round(settled),
                     "poll timeouts": st["poll_timeouts"]})
    return pd.DataFrame(rows).set_index("run")
