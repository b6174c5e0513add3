"""The side-by-side comparison: one row per architecture, from one run.

Columns (all measured on the run, except the last two, which describe the design):

- ``freshness median (s)`` / ``freshness p95 (s)``: from a payment's arrival to the first
  sample at which the architecture's answer includes it (its cell's answer reaches the right
  total of the payments that had arrived up to it, under the rule in force). Measured at the
  sampling step (``sample_every_ms``); a payment never shown by the end counts as infinite.
- ``shown by the end (%)``: the share of payments the final answer includes.
- ``wrong cells at the end``: (merchant, hour) cells whose final answer differs from the right
  one (the new rule over every payment that arrived); a missing answer is wrong.
- ``history restated after (s)``: after the logic change, how long until the answer for the
  settled hours (every payment of which had arrived before the change) equals the new rule's;
  infinite if it never does.
- ``reprocessing (s)``: how long recomputing the history with the new rule took once started:
  kappa's second instance catching up; for the batch jobs, the wait for their next run (they
  recompute everything every time); 0 for the lake, whose queries apply the rule as they read.
- ``storage (USD per GB of payments per month)``: what the architecture keeps, per GB that
  the services sent, priced with :mod:`sim.broker.storage_cost` (lab prices): broker disks
  per replica, object storage once.
- ``code paths``: how many implementations of the revenue logic must be kept in step.
- ``when a component crashes``: what stops or goes stale.
- ``freshness during the outage (s)`` (only for a run with an ``outage``): the median
  freshness of the payments that arrived while the processing components were down.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.architectures.run import ArchitectureRun
from sim.architectures.workload import HOUR_MS, RULES, truth
from sim.broker.storage_cost import GB, monthly_cost

NAMES = {"batch": "batch collection", "lambda": "lambda", "kappa": "kappa",
         "lake": "streaming data lake"}
"""Display names, in the lesson's order."""

COLUMNS = ["freshness median (s)", "freshness p95 (s)", "shown by the end (%)",
           "wrong cells at the end", "history restated after (s)", "reprocessing (s)",
           "storage (USD per GB of payments per month)", "code paths",
           "when a component crashes"]
OUTAGE_COLUMN = "freshness during the outage (s)"


def freshness(run: ArchitectureRun, variant: str) -> np.ndarray:
    """Per payment (in the order of ``run.payments``), seconds from its arrival to the first
    sample whose answer includes it (``inf`` if none does)."""
    pay = run.payments
    v = list(run.variants).index(variant)
    rules = np.array([run.workload.rule_at(t) for t in run.sample_ms])
    out = np.full(len(pay), np.inf)
    cell_of = np.array([run.cell_index[(m, int(t // HOUR_MS))]
                        for m, t in zip(pay["merchant"], pay["event_ms"], strict=True)])
    for c in range(len(run.cells)):
        rows = np.flatnonzero(cell_of == c)  # in arrival order: payments are sorted by it
        if not len(rows):
            continue
        amounts = pay["amount_cents"].to_numpy()[rows]
        vouchers = pay["method"].to_numpy()[rows] == "voucher"
        need = {"v1": np.cumsum(amounts), "v2": np.cumsum(np.where(vouchers, 0, amounts))}
        answer = np.nan_to_num(run.answers[:, v, c], nan=-1.0)
        required = np.where(rules[None, :] == RULES[0], need["v1"][:, None],
                            need["v2"][:, None])
        arrived = run.sample_ms[None, :] >= pay["arrival_ms"].to_numpy()[rows][:, None]
        shown = arrived & (answer[None, :] >= required)
        first = np.where(shown.any(axis=1), shown.argmax(axis=1), -1)
        seen = first >= 0
        out[rows[seen]] = (run.sample_ms[first[seen]]
                           - pay["arrival_ms"].to_numpy()[rows][seen]) / 1000
    return out


def settled_hours(run: ArchitectureRun) -> list[int]:
    """Hours every payment of which had arrived before the logic change."""
    w = run.workload
    return [h for h in range(w.hours) if (h + 1) * HOUR_MS + w.late_max_ms <= w.change_ms]


def restated_after_s(run: ArchitectureRun, variant: str) -> float:
    """Seconds from the logic change until the settled hours show the new rule's revenue."""
    hours = settled_hours(run)
    mask = np.array([h in hours for _m, h in run.cells])
    v = list(run.variants).index(variant)
    change = run.workload.change_ms
    right = truth(run.payments, run.workload, change, "v2").to_numpy(dtype=float)[mask]
    for s in np.flatnonzero(run.sample_ms >= change):
        if np.array_equal(run.answers[s, v][mask], right):
            return float(run.sample_ms[s] - change) / 1000
    return math.inf


def reprocessing_s(run: ArchitectureRun, variant: str) -> float:
    """Seconds the recomputation of the history with the new rule took (module docstring)."""
    change = run.workload.change_ms
    arch = run.variants[variant]
    if variant == "kappa":
        return arch.reprocessing_ms / 1000
    if variant == "lake":
        return 0.0
    runs = ([r["run_ms"] for r in arch.runs if r["rule"] == "v2"] if variant == "batch" else
            [r[0] for r in arch.db.execute("SELECT run_ms FROM batch_runs WHERE rule = 'v2'")])
    return float(min(runs) - change) / 1000 if runs else math.inf


def ingest_bytes(run: ArchitectureRun) -> float:
    """Bytes the services sent to ``payments`` (one replica): the copied segments plus the
    local records not copied yet."""
    manager = run.kernel.cluster.remote_log_manager
    total = 0.0
    for part in run.kernel.cluster.topics[run.topic].partitions:
        state = manager.states[(run.topic, part.partition)]
        total += sum(s.size_bytes for s in state.segments())
        total += sum(seg.size_bytes for seg in part.log.segments
                     if seg.base_offset > state.highest_copied_offset)
    return total


def payments_topic_storage(run: ArchitectureRun) -> dict[str, float]:
    """Bytes the ``payments`` topic keeps: on the brokers (every replica) and remote."""
    manager = run.kernel.cluster.remote_log_manager
    topic = run.kernel.cluster.topics[run.topic]
    disk = sum(p.log.size_bytes for p in topic.partitions) * topic.replication_factor
    remote = sum(s.size_bytes for p in topic.partitions
                 for s in manager.states[(run.topic, p.partition)].segments())
    return {"disk_bytes": float(disk), "object_bytes": float(remote)}


def storage_per_gb(run: ArchitectureRun, variant: str) -> float:
    """USD per month of what ``variant`` keeps, per GB of payments sent."""
    kept = run.variants[variant].storage()
    if variant != "batch":  # every other architecture keeps the payments topic
        shared = payments_topic_storage(run)
        kept = {k: kept[k] + shared[k] for k in kept}
    cost = monthly_cost(kept["disk_bytes"], 1, kept["object_bytes"])["total_usd"]
    return cost / (ingest_bytes(run) / GB)


def comparison(run: ArchitectureRun) -> pd.DataFrame:
    """One row per architecture of the run (module docstring), in the lesson's order."""
    rows = {}
    end = run.end_ms
    right = run.truth_at(end).to_numpy()
    for variant, arch in run.variants.items():
        fresh = freshness(run, variant)
        final = run.answer_at(variant, end).to_numpy()
        rows[NAMES[variant]] = {
            "freshness median (s)": float(np.quantile(fresh, 0.5, method="higher")),
            "freshness p95 (s)": float(np.quantile(fresh, 0.95, method="higher")),
            "shown by the end (%)": round(100 * float(np.isfinite(fresh).mean()), 1),
            "wrong cells at the end": int((~np.isclose(final, right)).sum()),
            "history restated after (s)": restated_after_s(run, variant),
            "reprocessing (s)": reprocessing_s(run, variant),
            "storage (USD per GB of payments per month)": round(storage_per_gb(run, variant), 4),
            "code paths": arch.code_paths,
            "when a component crashes": arch.when_a_component_crashes,
        }
        if run.outage is not None:
            arrival = run.payments["arrival_ms"].to_numpy()
            during = (arrival >= run.outage[0]) & (arrival < run.outage[1])
            rows[NAMES[variant]][OUTAGE_COLUMN] = float(
                np.quantile(fresh[during], 0.5, method="higher")) if during.any() else math.nan
    columns = COLUMNS + ([OUTAGE_COLUMN] if run.outage is not None else [])
    frame = pd.DataFrame.from_dict(rows, orient="index")[columns]
    frame.index.name = "architecture"
    return frame


def hour_history(run: ArchitectureRun, hour: int) -> pd.DataFrame:
    """Over time, each architecture's revenue for ``hour`` (all merchants together) and the
    right answer: one row per sample, ``time_min`` first; NaN where an architecture has no
    answer for that hour yet."""
    mask = np.array([h == hour for _m, h in run.cells])
    frame = pd.DataFrame({"time_min": run.sample_ms / 60_000})
    for v, variant in enumerate(run.variants):
        values = run.answers[:, v][:, mask]
        total = np.where(np.isnan(values).all(axis=1), np.nan, np.nansum(values, axis=1))
        frame[NAMES[variant]] = total
    pay = run.payments
    mine = pay[pay["event_ms"] // HOUR_MS == hour]
    frame["right answer"] = [
        float(truth(mine, run.workload, t).sum()) for t in run.sample_ms]
    return frame
