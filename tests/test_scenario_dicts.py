"""Specification of ``sim.scenarios.from_dict``: a scenario dict checked without its YAML.

The fuzzer and sweeps check thousands of scenario dicts they made themselves; a failing one is
written as YAML and replayed with ``python -m sim run FILE.yaml``. Checking the dict directly
is only sound if the dict and its file are the same scenario, which these tests pin.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sim import scenarios
from sim.errors import ScenarioError
from sim.fuzz import PROFILES, generate, to_yaml
from sim.sweep import prepare, scenario_of


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0 nor True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_fuzzer_schedules_come_back_from_their_yaml_unchanged(name):
    """Every profile's schedules survive writing and reading their YAML: same keys, order,
    values and types, so the checked dict is the scenario its file replays."""
    for index in range(12):
        scenario = generate(PROFILES[name], 3, index)
        assert _same(yaml.safe_load(to_yaml(scenario)), scenario), index


def test_sweep_runs_with_a_grid_come_back_from_their_yaml_unchanged():
    """A sweep's run dicts (the scenario, a schedule and grid values) survive their YAML too."""
    plan, runs, _ = prepare("safe-replication", grid={"acks": ["1", "all"], "linger.ms": [0, 5],
                                                      "unclean.leader.election.enable": [True]},
                            schedules=2)
    for run in runs:
        scenario = scenario_of(plan, run.params, run.seed, run.schedule)
        assert _same(yaml.safe_load(to_yaml(scenario)), scenario), run


@pytest.mark.parametrize("name", ["safe", "consumers", "streams", "transactions", "connect"])
def test_from_dict_gives_the_scenario_its_yaml_gives(name):
    """``from_dict(d)`` equals ``parse(to_yaml(d))`` field for field."""
    scenario = generate(PROFILES[name], 0, 1)
    assert scenarios.from_dict(scenario, "s.yaml") == scenarios.parse(to_yaml(scenario), "s.yaml")


def test_from_dict_keeps_a_copy():
    """Changing the dict after checking it does not change the checked scenario."""
    scenario = generate(PROFILES["safe"], 0, 0)
    loaded = scenarios.from_dict(scenario)
    faults = len(loaded.faults)
    scenario["faults"].clear()
    scenario["topics"][0]["configs"]["min.insync.replicas"] = 1
    assert len(loaded.faults) == faults
    assert loaded.topics[0]["configs"]["min.insync.replicas"] == 2


@pytest.mark.parametrize("change", [
    lambda s: s.pop("topics"),
    lambda s: s["topics"][0].update(replication_factor=4),
    lambda s: s["producers"][0]["config"].update(acks="2"),
    lambda s: s["faults"].append({"at_ms": 10, "crash_broker": {"broker": 7}}),
])
def test_from_dict_refuses_what_parse_refuses_with_the_same_message(change):
    """A bad scenario dict fails with the error its YAML would give."""
    scenario = generate(PROFILES["safe"], 0, 0)
    change(scenario)
    with pytest.raises(ScenarioError) as from_yaml:
        scenarios.parse(to_yaml(scenario), "bad.yaml")
    with pytest.raises(ScenarioError) as from_data:
        scenarios.from_dict(scenario, "bad.yaml")
    assert str(from_data.value) == str(from_yaml.value)
