"""Sweeps: one scenario run many times — over a grid of Kafka configs, seeds and random fault
schedules — with one row per run in a pandas DataFrame.

A *run* is (scenario, one grid point, one seed, and optionally one random fault schedule of the
fuzzer, ``sim.fuzz.generate``). Each run is judged by the fuzzer's checker
(``sim.fuzz.check_scenario``) and its delivery audit (``sim.audit``), so the table says how much
each configuration lost and *why*. A run depends only on (scenario, grid point, seed, schedule):
the same table comes back whichever process ran it, in whatever order, under any
``PYTHONHASHSEED``.

Grid keys are Kafka's config names. A producer config (``acks``) is set on every producer, a
topic config (``min.insync.replicas``, ``unclean.leader.election.enable``) on every topic, a
broker-only config on the cluster, a consumer config on every consumer group. A name of two
tables (``client.id``: producer and consumer) needs a prefix, as Kafka Streams spells them:
``producer.client.id``, ``consumer.client.id`` (and ``topic.…``, ``broker.…``). A grid
is a mapping of names to lists of values (every combination runs), or a list of such mappings
(their union, as scikit-learn's ``ParameterGrid``): ``[{"acks": ["all"]}, {"acks": ["1"],
"enable.idempotence": [False]}]``.

Runs go out in batches (many runs per task, so that starting a process and importing ``sim``
do not dominate): in this process (``jobs=1``), to joblib's loky worker processes (``jobs=N``),
or to a Dask cluster (``client=`` a ``dask.distributed.Client`` or a scheduler address). Every
path calls the same ``run_batch``.

Example::

    from sim.sweep import sweep
    runs = sweep("safe-replication", grid={"acks": ["1", "all"],
                                           "min.insync.replicas": [1, 2]},
                 schedules=200, profile="safe", jobs=2)
    runs.groupby(["acks", "min.insync.replicas"])["loses_data"].mean()
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim import scenarios
from sim.errors import ConfigError, KafkaLabError, ScenarioError
from sim.fuzz.checker import Guard
from sim.fuzz.generator import PROFILES, to_yaml
from sim.sweep.backends import connect, dask_workers, on_dask, run_locally
from sim.sweep.grid import (
    SCHEDULE_PROFILES,
    Plan,
    Run,
    canonical,
    check_distinct,
    check_fits_schedules,
    check_runs,
    check_whole,
    grid_points,
    point_text,
    routes_of,
    scenario_dict,
    scenario_of,
    seed_list,
)
from sim.sweep.results import (
    CAUSE_COLUMNS,
    CAUSES,
    COLUMNS,
    causes,
    read_results,
    results_frame,
    run_batch,
    run_one,
    summary,
)

__all__ = ["BATCHES_PER_WORKER", "CAUSES", "CAUSE_COLUMNS", "COLUMNS", "MAX_BATCH_RUNS",
           "SCHEDULE_PROFILES", "Plan", "Run", "batched", "causes", "prepare", "read_results",
           "run_batch", "run_one", "scenario_of", "summary", "sweep"]

BATCHES_PER_WORKER = 10
"""Tasks per worker at least, by default: a worker process starts (and imports ``sim``) once,
so tasks cost little; ten each keep the progress bar moving and the last tasks short."""
MAX_BATCH_RUNS = 4
"""Runs per task at most, by default: while the last tasks run, the workers that finished
theirs wait, so a sweep's last tasks must be short (a task costs about a millisecond to send,
a standard schedule some hundred)."""


def sweep(scenario: str | Path | Mapping[str, Any] | None, *,
          grid: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
          schedules: int = 0, profile: str = "safe", seeds: int | Iterable[int] | None = None,
          records: int | None = None, jobs: int = 1, client: Any = None,
          batch_size: int | None = None, progress: bool = True,
          max_steps: int = 2_000_000) -> pd.DataFrame:
    """Run ``scenario`` over ``grid`` × ``seeds`` (× ``schedules`` fault schedules).

    Args:
        scenario: a built-in name, a ``.yaml`` path, a scenario dict (as YAML would give), or
            None for the fuzzer's own scenarios of ``profile`` (3 brokers, RF 3, 3,000 records,
            120 s; ``schedules`` must then be ≥ 1).
        grid: Kafka config names → lists of values (every combination), or a list of such
            mappings (their union). None: the scenario as it is.
        schedules: 0 runs the scenario's own faults; N ≥ 1 replaces them by each of the
            fuzzer's first N schedules (``sim.fuzz.generate(profile, seed, index)``): faults
            drawn over the scenario's production time, every one undone before it ends, then
            ``profile.settle_ms`` to recover (the run is lengthened if need be).
        profile: the fuzzer profile the schedules are drawn from (``sim.fuzz.PROFILES``; with a
            scenario one of ``SCHEDULE_PROFILES``); it also sets what the checker tolerates.
        seeds: without schedules, the kernel seeds: a count N (the scenario's seed and the N-1
            after it) or the seeds themselves; default the scenario's own. With schedules, the
            fuzzer's campaign seeds (default 0).
        records: records per producer workload (its production time kept, as ``fuzz
            --records``); default the scenario's.
        jobs: worker processes (joblib's loky backend); 1 runs everything in this process.
        client: a ``dask.distributed.Client`` or a scheduler address (``"tcp://host:8786"``):
            the batches run as Dask tasks instead, and ``jobs`` is ignored.
        batch_size: runs per task (default: about ``BATCHES_PER_WORKER`` tasks per worker, at
            most ``MAX_BATCH_RUNS`` runs each).
        progress: a ``tqdm.auto`` bar when there is more than one batch.
        max_steps: simulated events a run may take before it counts as hung (a step count,
            not a wall-clock limit, so that the verdict is the same on every machine).

    Returns:
        One row per run, in ``run_id`` order: ``run_id``; ``point`` (the grid point's number);
        one column per grid key (its canonical value, e.g. ``acks`` "1" / "all"); ``seed``;
        ``schedule`` (the fuzzer's schedule index, -1 for the scenario's own faults);
        ``scenario`` (its name); ``sent`` (records the producers' workloads asked to send);
        ``acknowledged``; ``lost`` (acknowledged records that are gone: the audit's
        ``lost-write``); ``unseen``; ``duplicates`` (records stored twice); ``loses_data``
        (``lost > 0``); ``cause`` (the most common cause of the lost records, one of
        ``CAUSES``, "" when none); ``lost_<cause>`` (lost records per cause, dashes as
        underscores: ``lost_unclean_election`` …); ``hung`` (a guard stopped the run);
        ``raised`` (an exception escaped it); ``error`` (its first line, "" otherwise);
        ``verdict`` (the checker's: "ok" or the most telling violation kind, e.g.
        "lost-write"); ``violations`` (every kind it was not allowed, comma-separated);
        ``steps`` (simulated events). Wall-clock timings are in ``attrs["timing"]``, never in
        the columns. ``causes(frame)`` turns the ``lost_<cause>`` columns into a tidy table.

    Raises:
        ScenarioError / ConfigError (``KafkaLabError``): an unknown scenario, grid key or value,
            ``schedules`` < 0, ``jobs`` < 1 … — before any run starts, every grid point's
            scenario checked (parsed and set up) the way ``python -m sim run`` checks one.
    """
    started = time.perf_counter()
    plan, runs, name = prepare(scenario, grid=grid, schedules=schedules, profile=profile,
                               seeds=seeds, records=records, jobs=jobs, max_steps=max_steps)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ConfigError(f"batch_size must be a whole number of runs ≥ 1 but is {batch_size!r}.")
    own = isinstance(client, str)
    if own:
        client = connect(client)
    try:
        workers = dask_workers(client) if client is not None else jobs
        batches = batched(runs, workers, batch_size)
        bar = progress and len(batches) > 1
        if client is not None:
            results, backend = on_dask(client, plan, batches, bar), "dask"
        else:
            results, backend = run_locally(jobs, plan, batches, bar)
    finally:
        if own:
            client.close()
    rows = [row for batch in results for row in batch[0]]
    frame = results_frame(rows, [key for key, _, _ in plan.routes], name)
    frame.attrs["timing"] = {"wall_s": time.perf_counter() - started, "backend": backend,
                             "workers": workers, "batches": len(batches), "runs": len(runs),
                             "batch_wall_s": [batch[1] for batch in results]}
    return frame


def batched(runs: list[Run], workers: int, batch_size: int | None = None) -> list[list[Run]]:
    """``runs`` in order, cut into tasks of ``batch_size`` runs (default: about
    ``BATCHES_PER_WORKER`` tasks per worker, at most ``MAX_BATCH_RUNS`` runs each)."""
    size = batch_size or max(1, min(MAX_BATCH_RUNS,
                                    math.ceil(len(runs) / (BATCHES_PER_WORKER * workers))))
    return [runs[i:i + size] for i in range(0, len(runs), size)]


def prepare(scenario: str | Path | Mapping[str, Any] | None, *,
            grid: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
            schedules: int = 0, profile: str = "safe", seeds: int | Iterable[int] | None = None,
            records: int | None = None, jobs: int = 1, max_steps: int = 2_000_000
            ) -> tuple[Plan, list[Run], str]:
    """Check every argument and grid point and list the runs (``sweep`` without running).

    Raises:
        KafkaLabError: the first problem, in one line naming the argument and the value.
    """
    check_whole("schedules", schedules, 0)
    check_whole("jobs", jobs, 1)
    check_whole("max_steps", max_steps, 1)
    if records is not None:
        check_whole("records", records, 1)
    if profile not in PROFILES:
        raise ConfigError(f"Unknown fuzzer profile {profile!r}; use one of "
                          f"{', '.join(PROFILES)}.")
    chosen = PROFILES[profile]
    if chosen.connect or chosen.architecture:
        what = "a Kafka Connect pipeline" if chosen.connect else "lesson 09's architectures"
        raise ConfigError(f"profile {profile!r} runs {what}, which has no producer workload "
                          f"for a sweep to count; run it with python -m sim fuzz --profile "
                          f"{profile}.")
    if scenario is None:
        if schedules < 1:
            raise ScenarioError("scenario None means the fuzzer's own scenarios: give "
                                "schedules ≥ 1, or name a scenario.")
        base, name = None, f"fuzz-{profile}"
    else:
        base = scenario_dict(scenario)
        name = base["name"]
        if schedules and profile not in SCHEDULE_PROFILES:
            raise ConfigError(f"profile {profile!r} draws faults for its own consumers or "
                              f"Streams application; with a scenario use one of "
                              f"{', '.join(SCHEDULE_PROFILES)} (or scenario=None).")
        if schedules:
            check_fits_schedules(base)
    points = grid_points(grid)
    routes = routes_of(points, base)
    points = [tuple((key, canonical(key, value, routes)) for key, value in point)
              for point in points]
    check_distinct(points, routes)
    seeds_run = seed_list(seeds, base, schedules)
    check_runs(len(points) * len(seeds_run) * max(schedules, 1))
    plan = Plan(base, chosen, tuple(sorted(routes.values())), records,
                Guard(max_steps=max_steps, max_cpu_s=math.inf))
    for number, point in enumerate(points):  # every grid point checked before any run
        try:
            variant = scenario_of(plan, point, seeds_run[0], 0 if schedules else -1)
            scenarios.parse(to_yaml(variant), f"{variant['name']}.yaml").build()
        except KafkaLabError as exc:
            where = point_text(point) or "the scenario"
            raise type(exc)(f"grid point {number} ({where}): {exc}") from None
    runs = [Run(i, point, params, seed, schedule) for i, (point, params, seed, schedule) in
            enumerate((p, params, s, k) for p, params in enumerate(points) for s in seeds_run
                      for k in (range(schedules) if schedules else [-1]))]
    return plan, runs, name
