"""A campaign: many schedules of one profile, each checked, each failure minimised once per cause.

A failure's *cause* is its most telling violation kind (``Verdict.cause``). The first failure of
each cause is minimised (same cause must still occur) and written as
``<out>/<profile>-<cause>.yaml``; later failures of that cause point at the same file.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError
from sim.fuzz.checker import Guard, Verdict, check_scenario
from sim.fuzz.generator import Profile, generate, to_yaml
from sim.fuzz.minimiser import minimise


@dataclass
class Finding:
    """A failing schedule, its verdict, and the minimised file of its cause (if written)."""

    index: int
    verdict: Verdict
    scenario: dict[str, Any]
    minimised: Path | None = None


@dataclass
class Campaign:
    """What a campaign ran and found."""

    profile: str
    seed: int
    runs: int = 0
    wall_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    causes: Counter[str] = field(default_factory=Counter)
    tolerated: Counter[str] = field(default_factory=Counter)
    losses: int = 0
    """Lost records over every run, tolerated or not (unsafe campaigns must find some)."""
    uncaused: int = 0

    @property
    def per_second(self) -> float:
        return self.runs / self.wall_s if self.wall_s else 0.0


def campaign(profile: Profile, runs: int, seed: int, out: Path | None = None,
             minimise_runs: int = 60, guard: Guard | None = None,
             report: Callable[[str], None] | None = None, json_every: int = 10) -> Campaign:
    """Run ``runs`` schedules of ``profile`` from ``seed``; minimise each new cause into ``out``.

    ``report`` is called with one line per failing schedule (and its minimised file). Every
    ``json_every``-th schedule also builds the ``--json`` summary (it costs a second audit).
    """
    result = Campaign(profile.name, seed)
    started = time.monotonic()
    minimised: dict[str, Path | None] = {}
    for index in range(runs):
        scenario = generate(profile, seed, index)
        verdict = check_scenario(scenario, profile, guard, index % json_every == 0)
        result.runs += 1
        result.losses += len(verdict.losses)
        result.uncaused += sum(1 for r in verdict.losses if r.get("cause") is None)
        for v in verdict.tolerated:
            result.tolerated[v.kind] += 1
        if not verdict.failed:
            continue
        cause = verdict.cause
        result.causes[cause] += 1
        finding = Finding(index, verdict, scenario)
        if out is not None and cause not in minimised:
            minimised[cause] = write_minimised(scenario, cause, profile, out, minimise_runs,
                                               guard)
        finding.minimised = minimised.get(cause)
        result.findings.append(finding)
        if report is not None:
            report(verdict.line())
            if finding.minimised is not None:
                report(f"  minimised: {finding.minimised}")
    result.wall_s = time.monotonic() - started
    return result


def write_minimised(scenario: dict[str, Any], cause: str, profile: Profile, out: Path,
                    max_runs: int = 60, guard: Guard | None = None) -> Path:
    """Minimise ``scenario`` keeping ``cause`` and write it to ``out/<profile>-<cause>.yaml``."""

    def same_failure(candidate: dict[str, Any]) -> bool:
        try:
            return cause in check_scenario(candidate, profile, guard).kinds
        except ScenarioError:  # a retimed unit overlaps another of the same broker or member
            return False

    small = minimise(scenario, same_failure, max_runs)
    small["name"] = f"fuzz-{profile.name}-{cause}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{profile.name}-{cause}.yaml"
    path.write_text(to_yaml(small), encoding="utf-8")
    return path
