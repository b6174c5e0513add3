"""Lesson 02's sweep: many random fault schedules per configuration — how often does each
configuration lose acknowledged records, and why?

Every run is one of the fault fuzzer's standard schedules (``sim.fuzz.generate``, profile
``safe``: 3 brokers, topic ``payments`` with 3 partitions and replication factor 3, one to four
random faults — broker crashes, network splits, cuts from the controller or the producer, lossy
links, slow brokers, preferred elections — all undone within the 60 s of traffic, then 60 s to
recover) under one of :data:`CONFIGS`. :func:`crash_sweep` runs them through
``sim.sweep.sweep``; the delivery audit (``sim.audit``) counts the acknowledged records each run
lost and names the event that removed each one, which the sweep sorts into a cause
(``sim.sweep.CAUSES``: ``truncated``, ``unclean-election``, ``left-behind``, ``disk-lost``,
``uncaused``).

:func:`loss_table` and :func:`loss_figure` say how often each configuration lost data;
:func:`cause_table` says why. Schedule ``i`` is the same schedule for every configuration, so
the configurations are compared on identical faults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MultipleLocator, PercentFormatter

from sim import scenarios
from sim.fuzz.generator import to_yaml
from sim.kernel import Kernel
from sim.lessons.whole_text import WholeTextFrame
from sim.sweep import CAUSE_COLUMNS, CAUSES, Plan, Run, prepare, run_one, scenario_of, sweep

__all__ = [
    "CAUSE_TEXT",
    "CONFIGS",
    "PROFILE",
    "RECORDS",
    "SAFE",
    "SCHEDULES",
    "SEED",
    "cause_table",
    "crash_sweep",
    "loss_figure",
    "loss_table",
    "one_schedule",
    "replay",
]

SAFE = "acks=all, min.insync.replicas=2"
"""The recommended configuration's label in :data:`CONFIGS`."""

CONFIGS: dict[str, dict[str, Any]] = {
    "acks=1": {"acks": "1", "enable.idempotence": False, "min.insync.replicas": 2,
               "unclean.leader.election.enable": False},
    "acks=all, min.insync.replicas=1": {"acks": "all", "enable.idempotence": True,
                                        "min.insync.replicas": 1,
                                        "unclean.leader.election.enable": False},
    SAFE: {"acks": "all", "enable.idempotence": True, "min.insync.replicas": 2,
           "unclean.leader.election.enable": False},
    "acks=all, min.insync.replicas=2, unclean election": {
        "acks": "all", "enable.idempotence": True, "min.insync.replicas": 2,
        "unclean.leader.election.enable": True},
}
"""The configurations compared, by label: the recommended one (:data:`SAFE`) and three that
each change one thing in it — the producer's ``acks`` (``acks=1`` turns idempotence off, which
needs ``acks=all``), the topic's ``min.insync.replicas``, or
``unclean.leader.election.enable``."""

PROFILE = "safe"
"""The fuzzer profile the schedules come from (``sim.fuzz.PROFILES``)."""
SCHEDULES = 40
"""Schedules per configuration in the lesson (``python -m sim sweep`` runs a thousand)."""
RECORDS = 300
"""Records per run, sent over the schedule's 60 s (the fuzzer's standard is 3,000)."""
SEED = 0
"""The fuzzer's campaign seed: schedule ``i`` of seed 0 is the same in every sweep."""

CAUSE_TEXT: dict[str, str] = {
    "truncated": "a clean election (from the ISR) made a replica that missed them leader, and "
                 "the replicas that had them truncated their logs to match",
    "unclean-election": "a replica outside the ISR, without them, was elected leader (unclean "
                        "election) and the others truncated to it",
    "left-behind": "no replica dropped them, but an election left them behind (a zombie "
                   "leader's writes)",
    "disk-lost": "a broker restarted with an empty disk",
    "uncaused": "the audit found no event that explains them",
}
"""What each of ``sim.sweep.CAUSES`` means, in a sentence (the cause table's last column)."""


def crash_sweep(schedules: int = SCHEDULES, *, records: int = RECORDS, jobs: int = 2,
                configs: Mapping[str, Mapping[str, Any]] | None = None, seed: int = SEED,
                progress: bool = True) -> pd.DataFrame:
    """Run every configuration under the fuzzer's first ``schedules`` schedules of ``seed``.

    Args:
        schedules: schedules per configuration.
        records: records per run, over the same 60 s of traffic.
        jobs: worker processes (``sim.sweep.sweep``'s ``jobs``).
        configs: label → Kafka configs; default :data:`CONFIGS`. Every entry should name the
            same keys, so that the table has no gaps.
        seed: the fuzzer's campaign seed.
        progress: show a progress bar (``tqdm.auto``: a widget in Jupyter).

    Returns:
        ``sim.sweep.sweep``'s table (one row per run) with a first column ``config``: the
        label of the run's configuration.
    """
    configs = dict(CONFIGS if configs is None else configs)
    grid = [{key: [value] for key, value in config.items()} for config in configs.values()]
    runs = sweep(None, grid=grid, schedules=schedules, profile=PROFILE, records=records,
                 seeds=[seed], jobs=jobs, progress=progress)
    labels = list(configs)
    runs.insert(0, "config", pd.Categorical([labels[p] for p in runs["point"]],
                                            categories=labels))
    return runs


def _plan(schedule: int, config: Mapping[str, Any], records: int, seed: int
          ) -> tuple[Plan, Run]:
    """The sweep's plan and run for schedule ``schedule`` of ``seed`` under ``config``."""
    plan, runs, _name = prepare(None, grid=[{k: [v] for k, v in config.items()}],
                                schedules=schedule + 1, profile=PROFILE, records=records,
                                seeds=[seed], jobs=1)
    return plan, runs[schedule]


def one_schedule(schedule: int, *, records: int = RECORDS, seed: int = SEED,
                 configs: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """The sweep's rows for one schedule under every configuration, run in this process: the
    same rows ``crash_sweep`` gives for that schedule, with a first column ``config``."""
    configs = dict(CONFIGS if configs is None else configs)
    rows = []
    for label, config in configs.items():
        plan, run = _plan(schedule, config, records, seed)
        rows.append({"config": label, **run_one(plan, run)})
    return pd.DataFrame(rows)


def replay(schedule: int, label: str, *, records: int = RECORDS, seed: int = SEED) -> Kernel:
    """One run of a sweep again, to look inside: schedule ``schedule`` of ``seed`` under the
    configuration ``label`` of :data:`CONFIGS`, run to its end (the scenario the sweep builds
    for that run).

    Raises:
        KeyError: ``label`` is not in :data:`CONFIGS`.
    """
    plan, run = _plan(schedule, CONFIGS[label], records, seed)
    scenario = scenario_of(plan, run.params, run.seed, run.schedule)
    return scenarios.parse(to_yaml(scenario), f"{scenario['name']}.yaml").run()


def loss_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: runs, runs that lost acknowledged records, their share, records lost
    in all, and the cause of most of them ("-" when nothing was lost)."""
    rows = []
    for label, mine in runs.groupby("config", observed=False, sort=True):
        per_cause = {cause: int(mine[column].sum())
                     for cause, column in zip(CAUSES, CAUSE_COLUMNS, strict=True)}
        top = max(CAUSES, key=lambda cause: per_cause[cause])
        losing = int(mine["loses_data"].sum())
        rows.append({"config": label, "runs": len(mine), "runs_losing_data": losing,
                     "loss_probability": losing / len(mine) if len(mine) else 0.0,
                     "records_lost": int(mine["lost"].sum()),
                     "main_cause": top if per_cause[top] else "-"})
    return pd.DataFrame(rows)


def cause_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Why records were lost: one row per (configuration, cause) that lost any, most losing
    runs first — runs with records lost to that cause, the records, and what the cause means
    (shown whole in a notebook)."""
    rows = []
    for label, mine in runs.groupby("config", observed=True, sort=True):
        for cause, column in zip(CAUSES, CAUSE_COLUMNS, strict=True):
            hit = mine[mine[column] > 0]
            if len(hit):
                rows.append({"config": label, "cause": cause, "runs": len(hit),
                             "records_lost": int(hit[column].sum()),
                             "meaning": CAUSE_TEXT[cause]})
    table = pd.DataFrame(rows, columns=["config", "cause", "runs", "records_lost", "meaning"])
    table = table.sort_values(["runs", "records_lost"], ascending=False, kind="stable")
    return WholeTextFrame(table.reset_index(drop=True))  # the meaning shown whole


def loss_figure(runs: pd.DataFrame) -> Figure:
    """A bar per configuration: the share of runs that lost acknowledged records, labelled
    "k of n runs" (green when none did)."""
    table = loss_table(runs)
    fig = Figure(figsize=(7.5, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(len(table)))[::-1]
    colours = ["#55A868" if row.runs_losing_data == 0 else "#C44E52"
               for row in table.itertuples(index=False)]
    ax.barh(ys, table["loss_probability"], color=colours, height=0.6)
    for y, colour, row in zip(ys, colours, table.itertuples(index=False), strict=True):
        ax.text(row.loss_probability + 0.005, y, f"{row.runs_losing_data} of {row.runs} runs",
                va="center", fontsize=9, color=colour if row.runs_losing_data == 0 else "black")
    ax.set_yticks(ys, [str(label).replace(", ", ",\n") for label in table["config"]],
                  fontsize=9)
    top = float(table["loss_probability"].max()) if len(table) else 0.0
    ax.set_xlim(0, max(0.2, min(1.0, top * 1.4 + 0.05)))
    ax.xaxis.set_major_locator(MultipleLocator(0.05 if top < 0.4 else 0.1))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("runs that lost acknowledged records")
    runs_each = int(table["runs"].max()) if len(table) else 0
    fig.suptitle(f"The same {runs_each} random fault schedules under each configuration "
                 "(3 brokers, replication factor 3)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig
