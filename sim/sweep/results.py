"""A sweep's runs and their rows: run and judge each run, and read the table back.

``run_batch`` is the one function every backend calls; a row holds the counts of the delivery
audit (``sim.audit``), the lost records per cause (``CAUSES``) and the fuzz checker's verdict
(``sim.fuzz.check_scenario``), and nothing measured on a wall clock.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import ScenarioError
from sim.fuzz.checker import check_scenario
from sim.sweep.grid import Plan, Run, canonical, routes_of, scenario_of

CAUSES = ("unclean-election", "disk-lost", "truncated", "left-behind", "uncaused")
"""Why an acknowledged record was lost (``cause`` and the ``lost_<cause>`` columns):

- ``unclean-election``: an unclean leader election (``unclean.leader.election.enable=true``)
  made a replica without the record leader; the others truncated to it;
- ``disk-lost``: a broker restarted with an empty disk (``log.lost``) and the record went with it;
- ``truncated``: a clean election made a follower without the record leader (it was only on the
  old leader: ``acks=1``, or ``min.insync.replicas=1`` with a shrunk ISR), and the old leader
  truncated it away when it came back (KIP-101);
- ``left-behind``: no replica ever dropped it, but an election left it behind (a zombie
  leader's write);
- ``uncaused``: the audit found no event that explains it (a bug in the simulator).
"""
CAUSE_COLUMNS = tuple(f"lost_{cause.replace('-', '_')}" for cause in CAUSES)
"""Lost records per cause, one column per ``CAUSES`` entry (``lost_unclean_election`` …)."""
COLUMNS = ("run_id", "point", "seed", "schedule", "scenario", "sent", "acknowledged", "lost",
           "unseen", "duplicates", "loses_data", "cause", *CAUSE_COLUMNS,
           "hung", "raised", "error", "verdict", "violations", "steps")
"""Columns after the grid's (which come between ``point`` and ``seed``)."""


def run_batch(plan: Plan, batch: Sequence[Run], after_run: Callable[[], Any] | None = None
              ) -> tuple[list[dict[str, Any]], float]:
    """Run a batch of runs; one row per run (see ``sweep``) and the batch's wall seconds.

    The one function every backend calls (in process, loky, Dask); ``after_run`` is called
    after each run (a loky worker collects the run's garbage there).
    """
    started = time.perf_counter()
    rows = []
    for run in batch:
        rows.append(run_one(plan, run))
        if after_run is not None:
            after_run()
    return rows, time.perf_counter() - started


def run_one(plan: Plan, run: Run) -> dict[str, Any]:
    """Run and judge one run; its row (without wall-clock figures)."""
    scenario = scenario_of(plan, run.params, run.seed, run.schedule)
    verdict = check_scenario(scenario, plan.profile, plan.guard)
    kinds = [v.kind for v in verdict.violations]
    failure = next((v for v in verdict.violations if v.kind in ("hang", "error")), None)
    delivery = verdict.audit
    by_cause = Counter(_cause(record) for record in verdict.losses)
    top = max(CAUSES, key=lambda c: by_cause[c]) if by_cause else ""  # ties: CAUSES order
    lost = delivery.lost if delivery is not None else len(verdict.losses)
    return {
        "run_id": run.run_id, "point": run.point, **dict(run.params), "seed": run.seed,
        "schedule": run.schedule, "sent": _sent(scenario),
        "acknowledged": delivery.acknowledged if delivery is not None else 0,
        "lost": lost, "unseen": delivery.unseen if delivery is not None else 0,
        "duplicates": delivery.duplicates if delivery is not None else 0,
        "loses_data": lost > 0, "cause": top,
        **{column: by_cause[c] for c, column in zip(CAUSES, CAUSE_COLUMNS, strict=True)},
        "hung": "hang" in kinds, "raised": "error" in kinds,
        "error": failure.detail if failure is not None else "",
        "verdict": verdict.cause or "ok", "violations": ",".join(verdict.kinds),
        "steps": verdict.steps,
    }


def causes(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``lost_<cause>`` columns as a tidy table: ``run_id``, ``cause``, ``records`` (only
    causes with records), plus the grid's columns; for "how often, and why" plots."""
    columns = dict(zip(CAUSE_COLUMNS, CAUSES, strict=True))
    keys = [c for c in frame.columns if c not in COLUMNS or c in ("run_id", "point")]
    tidy = frame.melt(id_vars=keys, value_vars=list(columns), var_name="cause",
                      value_name="records")
    tidy["cause"] = tidy["cause"].map(columns)
    tidy = tidy[tidy["records"] > 0].sort_values(["run_id", "cause"], kind="stable")
    return tidy.reset_index(drop=True)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per grid point: runs, runs losing data, lost records, most common cause, hung, raised."""
    keys = [c for c in frame.columns if c not in COLUMNS]
    by = ["point", *keys]
    grouped = frame.groupby(by, sort=True, dropna=False)
    table = grouped.agg(runs=("run_id", "size"), losing=("loses_data", "sum"),
                        lost=("lost", "sum"), hung=("hung", "sum"), raised=("raised", "sum"))
    per_cause = grouped[list(CAUSE_COLUMNS)].sum()
    table["cause"] = [CAUSES[list(row).index(max(row))] if max(row) else "-"
                      for row in per_cause.itertuples(index=False)]
    return table.reset_index().drop(columns="point")


def _sent(scenario: dict[str, Any]) -> int:
    return sum(int(spec["workload"]["records"]) for spec in scenario["producers"]
               if spec.get("workload"))


def _cause(record: dict[str, Any]) -> str:
    """The ``CAUSES`` label of one lost record (see the audit's ``cause`` / ``left_behind_by``)."""
    cause = record.get("cause")
    if not cause:
        return "uncaused"
    events = [cause, record.get("left_behind_by") or {}]
    if any(e.get("kind") == "leader.election" and str(e.get("detail", "")).startswith("unclean")
           for e in events):
        return "unclean-election"
    return {"log.lost": "disk-lost", "log.truncate": "truncated",
            "leader.election": "left-behind"}.get(cause.get("kind"), "uncaused")


def results_frame(rows: list[dict[str, Any]], keys: list[str], name: str) -> pd.DataFrame:
    order = ["run_id", "point", *keys, *[c for c in COLUMNS if c not in ("run_id", "point")]]
    frame = pd.DataFrame(rows, columns=[c for c in order if c != "scenario"])
    frame.insert(frame.columns.get_loc("schedule") + 1, "scenario", name)
    for column in ("run_id", "point", "seed", "schedule", "sent", "acknowledged", "lost",
                   "unseen", "duplicates", "steps", *CAUSE_COLUMNS):
        frame[column] = frame[column].astype("int64")
    frame = frame.sort_values("run_id", kind="stable").reset_index(drop=True)
    for column in ("loses_data", "hung", "raised"):
        frame[column] = frame[column].astype(bool)
    for key in keys:  # a key missing from a point of a union grid: None (parquet keeps it)
        frame[key] = frame[key].astype(object).where(frame[key].notna(), None)
    return frame


def read_results(path: str | Path) -> pd.DataFrame:
    """A sweep's table written with ``to_parquet`` / ``to_csv`` (``python -m sim sweep --out``)
    read back as ``sweep`` returned it: the grid's values as their configs read them (CSV
    cannot tell "1" from 1), empty texts as "", missing grid values as None.

    Raises:
        ScenarioError: the file is missing or is not a sweep's table.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such file of sweep results.")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = list(frame.columns)
    tail = [c for c in COLUMNS if c not in ("run_id", "point")]
    if columns[:2] != ["run_id", "point"] or "seed" not in columns \
            or columns[columns.index("seed"):] != tail:
        raise ScenarioError(f"{path}: not a table of sweep results (its columns are "
                            f"{', '.join(map(str, columns))}).")
    keys = columns[2:columns.index("seed")]
    rows = frame.to_dict("records")
    for row in rows:
        for key in keys:
            row[key] = _read_value(row[key])
    routes = routes_of([tuple((key, None) for key in keys)], None)
    for row in rows:
        for key in keys:
            if row[key] is not None:
                row[key] = canonical(key, row[key], routes)
    table = pd.DataFrame(rows, columns=columns)
    for column in ("cause", "error", "verdict", "violations", "scenario"):
        table[column] = table[column].astype(object).where(table[column].notna(), "")
    for column in ("loses_data", "hung", "raised"):
        table[column] = table[column].map(lambda v: v if isinstance(v, bool)
                                          else str(v) == "True")
    return results_frame(table.to_dict("records"), keys, str(table["scenario"].iloc[0])
                  if len(table) else "")


def _read_value(value: Any) -> Any:
    """A grid value as a file gave it; None for a missing one ("" in CSV, null / NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return value.item() if hasattr(value, "item") else value
