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

import difflib
import itertools
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from sim import config as configs
from sim import scenarios
from sim.errors import ConfigError, KafkaLabError, ScenarioError
from sim.fuzz.checker import Guard, check_scenario
from sim.fuzz.generator import PRODUCER, PROFILES, Profile, generate, to_yaml

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
PREFIXES = {"producer": "producer", "topic": "topic", "broker": "broker", "consumer": "consumer"}
SCHEDULE_PROFILES = ("safe", "disk-loss", "unsafe")
"""Profiles whose schedules fit any scenario: their faults name only brokers 0–2, the
controller and the producer. The others fault their own consumers and Streams applications,
so they run only as the fuzzer's own scenarios (``scenario=None``)."""
BATCHES_PER_WORKER = 10
"""Tasks per worker by default: a worker process starts (and imports ``sim``) once, so tasks
cost little; ten each keep the progress bar moving and the last tasks short."""
COLUMNS = ("run_id", "point", "seed", "schedule", "scenario", "sent", "acknowledged", "lost",
           "unseen", "duplicates", "loses_data", "cause", *CAUSE_COLUMNS,
           "hung", "raised", "error", "verdict", "violations", "steps")
"""Columns after the grid's (which come between ``point`` and ``seed``)."""


def _tables() -> dict[str, configs.ConfigDef]:
    from sim.consumer.config import CONSUMER

    return {"producer": configs.PRODUCER, "topic": configs.TOPIC, "broker": configs.BROKER,
            "consumer": CONSUMER}


def _names(table: configs.ConfigDef) -> list[str]:
    return [key.name for key in table]


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its id, grid point, seed and schedule (-1: the scenario's faults)."""

    run_id: int
    point: int
    params: tuple[tuple[str, Any], ...]
    seed: int
    schedule: int


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs to run a batch: the base scenario and how to vary it."""

    base: dict[str, Any] | None
    """The scenario as a dict (None: the fuzzer's own scenarios of ``profile``)."""
    profile: Profile
    routes: tuple[tuple[str, str, str], ...]
    """(grid key, table, Kafka name) for every grid key."""
    records: int | None
    guard: Guard


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
        batch_size: runs per task (default: about ``BATCHES_PER_WORKER`` tasks per worker).
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
        client = _connect(client)
    try:
        workers = _dask_workers(client) if client is not None else jobs
        size = batch_size or max(1, math.ceil(len(runs) / (BATCHES_PER_WORKER * workers)))
        batches = [runs[i:i + size] for i in range(0, len(runs), size)]
        bar = progress and len(batches) > 1
        if client is not None:
            results, backend = _on_dask(client, plan, batches, bar), "dask"
        else:
            results, backend = _local(jobs, plan, batches, bar)
    finally:
        if own:
            client.close()
    rows = [row for batch in results for row in batch[0]]
    frame = _frame(rows, [key for key, _, _ in plan.routes], name)
    frame.attrs["timing"] = {"wall_s": time.perf_counter() - started, "backend": backend,
                             "workers": workers, "batches": len(batches), "runs": len(runs),
                             "batch_wall_s": [batch[1] for batch in results]}
    return frame


def _local(jobs: int, plan: Plan, batches: list[list[Run]], bar: bool
           ) -> tuple[list[tuple[list[dict[str, Any]], float]], str]:
    """The batches on joblib's loky workers, or in this process when one job (or batch)."""
    if jobs > 1 and len(batches) > 1:
        return _on_joblib(jobs, plan, batches, bar), "loky"
    return _in_process(plan, batches, bar), "in-process"


def prepare(scenario: str | Path | Mapping[str, Any] | None, *,
            grid: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
            schedules: int = 0, profile: str = "safe", seeds: int | Iterable[int] | None = None,
            records: int | None = None, jobs: int = 1, max_steps: int = 2_000_000
            ) -> tuple[Plan, list[Run], str]:
    """Check every argument and grid point and list the runs (``sweep`` without running).

    Raises:
        KafkaLabError: the first problem, in one line naming the argument and the value.
    """
    _whole("schedules", schedules, 0)
    _whole("jobs", jobs, 1)
    _whole("max_steps", max_steps, 1)
    if records is not None:
        _whole("records", records, 1)
    if profile not in PROFILES:
        raise ConfigError(f"Unknown fuzzer profile {profile!r}; use one of "
                          f"{', '.join(PROFILES)}.")
    chosen = PROFILES[profile]
    if scenario is None:
        if schedules < 1:
            raise ScenarioError("scenario None means the fuzzer's own scenarios: give "
                                "schedules ≥ 1, or name a scenario.")
        base, name = None, f"fuzz-{profile}"
    else:
        base = _scenario_dict(scenario)
        name = base["name"]
        if schedules and profile not in SCHEDULE_PROFILES:
            raise ConfigError(f"profile {profile!r} draws faults for its own consumers or "
                              f"Streams application; with a scenario use one of "
                              f"{', '.join(SCHEDULE_PROFILES)} (or scenario=None).")
        if schedules:
            _check_fits_schedules(base)
    points = _points(grid)
    routes = _routes(points, base)
    points = [tuple((key, _canonical(key, value, routes)) for key, value in point)
              for point in points]
    seed_list = _seeds(seeds, base, schedules)
    plan = Plan(base, chosen, tuple(sorted(routes.values())), records,
                Guard(max_steps=max_steps, max_wall_s=math.inf))
    for number, point in enumerate(points):  # every grid point checked before any run
        try:
            variant = scenario_of(plan, point, seed_list[0], 0 if schedules else -1)
            scenarios.parse(to_yaml(variant), f"{variant['name']}.yaml").build()
        except KafkaLabError as exc:
            where = _point_text(point) or "the scenario"
            raise type(exc)(f"grid point {number} ({where}): {exc}") from None
    runs = [Run(i, point, params, seed, schedule) for i, (point, params, seed, schedule) in
            enumerate((p, params, s, k) for p, params in enumerate(points) for s in seed_list
                      for k in (range(schedules) if schedules else [-1]))]
    return plan, runs, name


def scenario_of(plan: Plan, params: tuple[tuple[str, Any], ...], seed: int,
                schedule: int) -> dict[str, Any]:
    """The scenario dict of one run: base (or the fuzzer's), schedule, records, grid values."""
    if plan.base is None:
        scenario = generate(plan.profile if plan.records is None
                            else plan.profile.scaled(plan.records), seed, schedule)
    else:
        scenario = _copy(plan.base)
        if plan.records is not None:
            for spec in scenario["producers"]:
                load = spec.get("workload")
                if load:
                    seconds = load["records"] / load["rate_per_s"]
                    load["records"], load["rate_per_s"] = plan.records, plan.records / seconds
        if schedule >= 0:
            _apply_schedule(scenario, plan.profile, seed, schedule)
        else:
            scenario["seed"] = seed
    by_key = {key: (table, kafka_name) for key, table, kafka_name in plan.routes}
    for key, value in params:
        table, kafka_name = by_key[key]
        for target in _targets(scenario, table):
            target[kafka_name] = value
    return scenario


def run_batch(plan: Plan, batch: Sequence[Run]) -> tuple[list[dict[str, Any]], float]:
    """Run a batch of runs; one row per run (see ``sweep``) and the batch's wall seconds.

    The one function every backend calls (in process, loky, Dask).
    """
    started = time.perf_counter()
    rows = [run_one(plan, run) for run in batch]
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


# -- the scenario and the grid ----------------------------------------------------------------

def _whole(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be a whole number ≥ {low} but is {value!r}.")


def _scenario_dict(scenario: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A validated scenario as a plain dict (the fields ``sim.scenarios.parse`` reads)."""
    if isinstance(scenario, Mapping):
        loaded = scenarios.parse(to_yaml(dict(scenario)), f"{scenario.get('name', 'sweep')}.yaml")
    elif isinstance(scenario, str | Path):
        loaded = scenarios.load(scenario)
    else:
        raise ScenarioError(f"scenario must be a built-in name, a .yaml path or a scenario "
                            f"dict but is {type(scenario).__name__} {scenario!r}.")
    data: dict[str, Any] = {"name": loaded.name, "description": loaded.description,
                            "seed": loaded.seed}
    if loaded.duration_ms is not None:
        data["duration_ms"] = loaded.duration_ms
    data.update(cluster=loaded.cluster, topics=loaded.topics, producers=loaded.producers,
                faults=loaded.faults)
    if loaded.consumers:
        data["consumers"] = loaded.consumers
    if loaded.group_coordinator is not None:
        data["group_coordinator"] = loaded.group_coordinator
    if loaded.streams:
        data["streams"] = loaded.streams
    return _copy(data)


def _copy(data: Any) -> Any:
    """A deep copy of plain YAML data (dicts, lists, scalars)."""
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def _check_fits_schedules(base: dict[str, Any]) -> None:
    brokers = base.get("cluster", {}).get("brokers", 3)
    if brokers < 3:
        raise ScenarioError(f"{base['name']}: the fuzzer's schedules fault brokers 0–2, but the "
                            f"scenario has {brokers} broker(s); give it at least 3, or sweep "
                            "without schedules.")
    if not any(spec.get("workload") for spec in base["producers"]):
        raise ScenarioError(f"{base['name']}: fault schedules are drawn over the producers' "
                            "workloads, and the scenario has none.")


def _apply_schedule(scenario: dict[str, Any], profile: Profile, seed: int, index: int) -> None:
    """Replace ``scenario``'s faults by the fuzzer's schedule ``index`` of ``seed``.

    The faults are drawn over the scenario's production time (the profile's horizon becomes
    the last workload's end); the producer the schedule cuts off is the scenario's first one;
    the run lasts at least until every fault is undone plus ``profile.settle_ms``.
    """
    loads = [spec["workload"] for spec in scenario["producers"] if spec.get("workload")]
    horizon_ms = max(1000, math.ceil(max(load.get("start_ms", 0) + 1000 * load["records"]
                                         / load["rate_per_s"] for load in loads)))
    drawn = generate(replace(profile, horizon_ms=horizon_ms), seed, index)
    client = _client_id(scenario)
    scenario["faults"] = [_rename(fault, PRODUCER, client) for fault in drawn["faults"]]
    scenario["seed"] = drawn["seed"]
    end_ms = horizon_ms + profile.settle_ms
    scenario["duration_ms"] = max(scenario.get("duration_ms") or 0, end_ms)


def _client_id(scenario: dict[str, Any]) -> str:
    """The first producer's ``client.id``, set to the fuzzer's name when it has none."""
    config = scenario["producers"][0].setdefault("config", {}) or {}
    scenario["producers"][0]["config"] = config
    return config.setdefault("client.id", PRODUCER)


def _rename(data: Any, old: str, new: str) -> Any:
    if isinstance(data, dict):
        return {k: _rename(v, old, new) for k, v in data.items()}
    if isinstance(data, list):
        return [_rename(v, old, new) for v in data]
    return new if data == old else data


def _points(grid: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
            ) -> list[tuple[tuple[str, Any], ...]]:
    """Grid points in a fixed order: each mapping's keys as given, values as listed."""
    if grid is None:
        return [()]
    grids = [grid] if isinstance(grid, Mapping) else grid
    if isinstance(grids, str | bytes) or not isinstance(grids, Sequence) or not grids:
        raise ConfigError(f"grid must map Kafka config names to lists of values, e.g. "
                          f"{{'acks': ['1', 'all']}}, or be a list of such mappings, but is "
                          f"{grid!r}.")
    points: list[tuple[tuple[str, Any], ...]] = []
    for one in grids:
        if not isinstance(one, Mapping):
            raise ConfigError(f"grid entries must be mappings of config names to values but "
                              f"one is {one!r}.")
        axes = []
        for key, values in one.items():
            if not isinstance(key, str):
                raise ConfigError(f"grid key {key!r} must be a Kafka config name (text).")
            listed = ([values] if isinstance(values, str | bytes | bool | int | float)
                      or values is None else list(values))
            if not listed:
                raise ConfigError(f"grid key {key!r} has no values; list at least one.")
            axes.append([(key, v) for v in listed])
        points += [tuple(p) for p in itertools.product(*axes)]
    return points


def _routes(points: list[tuple[tuple[str, Any], ...]], base: dict[str, Any] | None
            ) -> dict[str, tuple[str, str, str]]:
    """For every grid key: (key, table, Kafka name), or a ConfigError naming the fix."""
    tables = _tables()
    routes: dict[str, tuple[str, str, str]] = {}
    for key in dict.fromkeys(k for point in points for k, _ in point):
        prefix, _, rest = key.partition(".")
        if prefix in PREFIXES and rest in _names(tables[prefix]):
            routes[key] = (key, prefix, rest)
            continue
        found = [t for t, table in tables.items() if key in _names(table)]
        if "topic" in found and "broker" in found:
            found.remove("broker")  # a topic's config overrides the broker's default
        if not found:
            close = sorted({c for table in tables.values() for c in
                            difflib.get_close_matches(key, _names(table), 3)})
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(f"Unknown grid key {key!r}: not a producer, topic, broker or "
                              f"consumer config.{hint}")
        if len(found) > 1:
            raise ConfigError(f"Grid key {key!r} is a {' and a '.join(found)} config; say "
                              f"which with a prefix: {' or '.join(f'{t}.{key}' for t in found)}.")
        routes[key] = (key, found[0], key)
    for key, table, _ in routes.values():
        if table == "consumer" and base is not None and not base.get("consumers"):
            raise ConfigError(f"Grid key {key!r} is a consumer config, but the scenario "
                              f"{base['name']} has no consumers.")
    return routes


def _canonical(key: str, value: Any, routes: dict[str, tuple[str, str, str]]) -> Any:
    """The value as its config table reads it ("1" for acks 1, 2 for "2"), or a ConfigError."""
    _, table, name = routes[key]
    try:
        return _tables()[table][name].parse(value, table)
    except ConfigError as exc:
        raise ConfigError(f"grid {key}={value!r}: {exc}") from None


def _targets(scenario: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The config mappings a grid key of ``table`` is written into (created when missing)."""
    if table == "producer":
        holders, field = scenario["producers"], "config"
    elif table == "topic":
        holders, field = scenario["topics"], "configs"
    elif table == "consumer":
        holders, field = scenario.get("consumers", []), "config"
    else:
        holders, field = [scenario.setdefault("cluster", {})], "broker_configs"
    for holder in holders:
        if holder.get(field) is None:
            holder[field] = {}
    return [holder[field] for holder in holders]


def _seeds(seeds: int | Iterable[int] | None, base: dict[str, Any] | None,
           schedules: int) -> list[int]:
    first = 0 if schedules or base is None else int(base.get("seed", 0))
    if seeds is None:
        return [first]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        _whole("seeds", seeds, 1)
        return list(range(first, first + seeds))
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise ConfigError(f"seeds must be a count ≥ 1 or a list of seeds but is {seeds!r}.")
    listed = list(seeds)
    if not listed:
        raise ConfigError("seeds is an empty list; give at least one seed.")
    for seed in listed:
        scenarios.check_seed(seed, "every seed of seeds")
    if len(set(listed)) != len(listed):
        raise ConfigError(f"seeds lists a seed twice ({listed}); each run would repeat.")
    return listed


def _point_text(point: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point)


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


def _frame(rows: list[dict[str, Any]], keys: list[str], name: str) -> pd.DataFrame:
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
    routes = _routes([tuple((key, None) for key in keys)], None)
    for row in rows:
        for key in keys:
            if row[key] is not None:
                row[key] = _canonical(key, row[key], routes)
    table = pd.DataFrame(rows, columns=columns)
    for column in ("cause", "error", "verdict", "violations", "scenario"):
        table[column] = table[column].astype(object).where(table[column].notna(), "")
    for column in ("loses_data", "hung", "raised"):
        table[column] = table[column].map(lambda v: v if isinstance(v, bool)
                                          else str(v) == "True")
    return _frame(table.to_dict("records"), keys, str(table["scenario"].iloc[0])
                  if len(table) else "")


def _read_value(value: Any) -> Any:
    """A grid value as a file gave it; None for a missing one ("" in CSV, null / NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return value.item() if hasattr(value, "item") else value


# -- backends ---------------------------------------------------------------------------------

def _bar(total: int, show: bool, unit: str = "batch") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, unit=unit, desc="sweep")


def _in_process(plan: Plan, batches: list[list[Run]], show: bool
                ) -> list[tuple[list[dict[str, Any]], float]]:
    results = []
    with _bar(len(batches), show) as bar:
        for batch in batches:
            results.append(run_batch(plan, batch))
            bar.update(1)
    return results


def _on_joblib(jobs: int, plan: Plan, batches: list[list[Run]], show: bool
               ) -> list[tuple[list[dict[str, Any]], float]]:
    from joblib import Parallel, delayed

    results = []
    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    with _bar(len(batches), show) as bar:
        for result in parallel(delayed(run_batch)(plan, batch) for batch in batches):
            results.append(result)
            bar.update(1)
    return results


def _connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address``, or a lab error saying it is not there."""
    from dask.distributed import Client

    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise KafkaLabError(f"cannot reach the Dask scheduler at {address!r} "
                            f"({' '.join(str(exc).split())}); start one with dask scheduler, "
                            "or leave out the address to sweep on this machine.") from None


def _dask_workers(client: Any) -> int:
    """Threads over the cluster's workers (each runs one batch at a time per thread)."""
    from dask.distributed import Client

    if not isinstance(client, Client):
        raise ConfigError(f"client must be a dask.distributed.Client or a scheduler address "
                          f"such as 'tcp://host:8786' but is {client!r}.")
    return max(1, sum(client.nthreads().values()))


def _on_dask(client: Any, plan: Plan, batches: list[list[Run]], show: bool
             ) -> list[tuple[list[dict[str, Any]], float]]:
    from dask.distributed import as_completed

    remote_plan = client.scatter(plan, broadcast=True)
    futures = [client.submit(run_batch, remote_plan, batch, pure=False) for batch in batches]
    results = []
    with _bar(len(batches), show) as bar:
        for future in as_completed(futures):
            results.append(future.result())
            bar.update(1)
    return results
