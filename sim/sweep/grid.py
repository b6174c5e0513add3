"""The grid of a sweep and the scenario of each of its runs.

A grid key is routed to the config table that has it (``routes_of``) and its values read as that
table reads them (``canonical``); ``scenario_of`` writes one grid point, seed and fault schedule
into a copy of the base scenario (``apply_schedule`` draws the fuzzer's schedule over the
scenario's production time).
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sim import config as configs
from sim import scenarios
from sim.errors import ConfigError, ScenarioError
from sim.fuzz.checker import Guard
from sim.fuzz.generator import PRODUCER, Profile, generate, to_yaml

PREFIXES = {"producer": "producer", "topic": "topic", "broker": "broker", "consumer": "consumer"}
SCHEDULE_PROFILES = ("safe", "disk-loss", "unsafe")
"""Profiles whose schedules fit any scenario: their faults name only brokers 0–2, the
controller and the producer. The others fault their own consumers and Streams applications,
so they run only as the fuzzer's own scenarios (``scenario=None``)."""
MIN_SCHEDULE_MS = 1000
"""A schedule's broker crash lasts at least this long inside the production time, so the
production must last longer (the generator draws its start before ``horizon - 1000``)."""
MAX_RUNS = 1_000_000
"""Runs one sweep may plan: more would take weeks, and listing them alone took all the
memory (``--seeds 100000000`` held gigabytes before the first run)."""


def config_tables() -> dict[str, configs.ConfigDef]:
    """The config tables a grid key may belong to, by the prefix that names each."""
    from sim.consumer.config import CONSUMER

    return {"producer": configs.PRODUCER, "topic": configs.TOPIC, "broker": configs.BROKER,
            "consumer": CONSUMER}


def config_names(table: configs.ConfigDef) -> list[str]:
    """The Kafka names of a table's configs."""
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
            apply_schedule(scenario, plan.profile, seed, schedule)
        else:
            scenario["seed"] = seed
    by_key = {key: (table, kafka_name) for key, table, kafka_name in plan.routes}
    for key, value in params:
        table, kafka_name = by_key[key]
        for target in _targets(scenario, table):
            target[kafka_name] = value
    return scenario


def check_whole(name: str, value: Any, low: int) -> None:
    """``value`` is a whole number ≥ ``low`` (not a bool), or a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be a whole number ≥ {low} but is {value!r}.")


def scenario_dict(scenario: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A validated scenario as a plain dict (the fields ``sim.scenarios.parse`` reads)."""
    if isinstance(scenario, Mapping):
        loaded = scenarios.parse(to_yaml(dict(scenario)), f"{scenario.get('name', 'sweep')}.yaml")
    elif isinstance(scenario, str | Path):
        loaded = scenarios.load(scenario)
    else:
        raise ScenarioError(f"scenario must be a built-in name, a .yaml path or a scenario "
                            f"dict but is {type(scenario).__name__} {scenario!r}.")
    if loaded.architecture is not None:
        raise ScenarioError(f"{loaded.source}: an architecture scenario runs whole (python -m sim "
                            "run); a sweep varies the configs of a cluster's topics and clients.")
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


def check_fits_schedules(base: dict[str, Any]) -> None:
    brokers = base.get("cluster", {}).get("brokers", 3)
    if brokers < 3:
        raise ScenarioError(f"{base['name']}: the fuzzer's schedules fault brokers 0–2, but the "
                            f"scenario has {brokers} broker(s); give it at least 3, or sweep "
                            "without schedules.")
    if not any(spec.get("workload") for spec in base["producers"]):
        raise ScenarioError(f"{base['name']}: fault schedules are drawn over the producers' "
                            "workloads, and the scenario has none.")
    if _production_ms(base) <= MIN_SCHEDULE_MS:
        raise ScenarioError(f"{base['name']}: its workloads produce for "
                            f"{_production_ms(base):g} ms; the fuzzer's schedules put a crash "
                            f"of at least {MIN_SCHEDULE_MS} ms inside the production time, so "
                            "they need longer: more records or a lower rate_per_s.")


def _production_ms(scenario: dict[str, Any]) -> float:
    """When the last producer workload has sent its last record."""
    return max(load.get("start_ms", 0) + 1000 * load["records"] / load["rate_per_s"]
               for load in (spec["workload"] for spec in scenario["producers"]
                            if spec.get("workload")))


def apply_schedule(scenario: dict[str, Any], profile: Profile, seed: int, index: int) -> None:
    """Replace ``scenario``'s faults by the fuzzer's schedule ``index`` of ``seed``.

    The faults are drawn over the scenario's production time (the profile's horizon becomes
    the last workload's end); the producer the schedule cuts off is the scenario's first one;
    the run lasts at least until every fault is undone plus ``profile.settle_ms``.
    """
    horizon_ms = max(1000, math.ceil(_production_ms(scenario)))
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


def grid_points(grid: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
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
        check_runs(len(points) + math.prod(len(axis) for axis in axes), "grid points")
        points += [tuple(p) for p in itertools.product(*axes)]
    return points


def check_distinct(points: list[tuple[tuple[str, Any], ...]],
                   routes: dict[str, tuple[str, str, str]]) -> None:
    """Each grid point once, as its config tables read it: ``acks=1,1``, or ``1`` and ``"1"``,
    or ``-1`` and ``all`` (one setting to the producer, ``ProducerConfig.parseAcks``) would run
    the same configuration twice and weigh it twice in the sweep's summary."""
    tables = config_tables()
    seen: dict[tuple[tuple[tuple[str, str], Any], ...], int] = {}
    for number, point in enumerate(points):
        settings = []
        for key, value in point:
            _, table, name = routes[key]
            settings.append(((table, name), tables[table][name].setting_of(value)))
        same = tuple(sorted(settings, key=lambda item: item[0]))
        if same in seen:
            first, this = point_text(points[seen[same]]), point_text(point)
            shown = this if set(first.split(", ")) == set(this.split(", ")) else \
                f"{first} and {this} are one setting"
            raise ConfigError(f"grid points {seen[same]} and {number} are the same "
                              f"({shown or 'no grid keys'}); list each value once.")
        seen[same] = number


def check_runs(count: int, what: str = "runs") -> None:
    """At most ``MAX_RUNS`` runs (or grid points), checked before they are listed."""
    if count > MAX_RUNS:
        raise ConfigError(f"the sweep would have {count:,} {what}; a sweep runs at most "
                          f"{MAX_RUNS:,}: fewer seeds, schedules or grid values.")


def routes_of(points: list[tuple[tuple[str, Any], ...]], base: dict[str, Any] | None
            ) -> dict[str, tuple[str, str, str]]:
    """For every grid key: (key, table, Kafka name), or a ConfigError naming the fix."""
    tables = config_tables()
    routes: dict[str, tuple[str, str, str]] = {}
    for key in dict.fromkeys(k for point in points for k, _ in point):
        prefix, _, rest = key.partition(".")
        if prefix in PREFIXES and rest in config_names(tables[prefix]):
            routes[key] = (key, prefix, rest)
            continue
        found = [t for t, table in tables.items() if key in config_names(table)]
        if "topic" in found and "broker" in found:
            found.remove("broker")  # a topic's config overrides the broker's default
        if not found:
            close = sorted({c for table in tables.values() for c in
                            difflib.get_close_matches(key, config_names(table), 3)})
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


def canonical(key: str, value: Any, routes: dict[str, tuple[str, str, str]]) -> Any:
    """The value as its config table reads it ("1" for acks 1, 2 for "2"), or a ConfigError."""
    _, table, name = routes[key]
    try:
        return config_tables()[table][name].parse(value, table)
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


def seed_list(seeds: int | Iterable[int] | None, base: dict[str, Any] | None,
           schedules: int) -> list[int]:
    """The seeds of every grid point (see ``sweep``'s ``seeds``), each checked."""
    first = 0 if schedules or base is None else int(base.get("seed", 0))
    if seeds is None:
        return [first]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        check_whole("seeds", seeds, 1)
        check_runs(seeds, "seeds")
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


def point_text(point: tuple[tuple[str, Any], ...]) -> str:
    """A grid point as ``acks=1, min.insync.replicas=2``."""
    return ", ".join(f"{k}={v}" for k, v in point)
