"""Eager versus cooperative rebalances: which partitions pause, and for how long.

Part of ``sim.lessons.groups`` (lesson 03); the package docstring has the vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from sim import scenarios
from sim.consumer import metrics as group_metrics
from sim.kernel import Kernel
from sim.lessons.whole_text import WholeTextFrame

REBALANCE_SCENARIOS = ("rebalance-eager", "rebalance-cooperative")
REBALANCE_GROUP = "shipping"


def rebalance_runs(names: Sequence[str] = REBALANCE_SCENARIOS) -> dict[str, Kernel]:
    """Run the rebalance scenarios (same group, range versus cooperative-sticky)."""
    return {name: scenarios.load(name).run() for name in names}


def ownership(kernel: Kernel, group_id: str = REBALANCE_GROUP) -> pd.DataFrame:
    """Who owned which partition when (``sim.consumer.metrics.assignment_timeline``)."""
    return group_metrics.assignment_timeline(kernel, group_id)


def pauses(kernel: Kernel, group_id: str = REBALANCE_GROUP) -> pd.DataFrame:
    """Every stretch a partition had no owner (``sim.consumer.metrics.rebalance_pauses``)."""
    return group_metrics.rebalance_pauses(kernel, group_id)


def pause_summary(kernels: Mapping[str, Kernel], group_id: str = REBALANCE_GROUP) -> pd.DataFrame:
    """One row per run: protocol, generations, partition pauses, their total and longest in
    seconds (to 0.1 s, as the lesson's text and the timeline's labels give them)."""
    rows = []
    for name, kernel in kernels.items():
        stops = pauses(kernel, group_id)
        generations = group_metrics.generations(kernel, group_id)
        protocol = generations[-1]["protocol"] if generations else ""
        rows.append({"run": name, "assignor": protocol, "generations": len(generations),
                     "pauses": len(stops), "partitions paused": stops["partition"].nunique(),
                     "total paused (s)": round(float(stops["pause_ms"].sum()) / 1000, 1),
                     "longest (s)": round(float(stops["pause_ms"].max()) / 1000, 1)
                     if len(stops) else 0.0})
    return WholeTextFrame(rows).set_index("run")
