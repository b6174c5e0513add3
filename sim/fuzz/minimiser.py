"""Shrink a failing schedule: drop faults, then shorten and move them, while it still fails.

Faults are handled as *units*: a fault with the entry that undoes it (a crash and its restart,
a cut and its heal, a slowdown and its factor 1, a lossy link and its probability 0, a consumer
crash or leave and its restart, a Connect worker's crash and its restart), or a fault that
needs no undo (a hang, a preferred election).
Dropping a whole unit keeps the schedule's promise that every fault is undone.

The passes, each repeated until nothing changes or the budget of runs is spent:

1. drop one unit at a time (the minimal schedule has no unit it can lose);
2. halve a unit's window from its end (undo earlier), then from its start (fault later);
3. move a unit earlier by half its start.

``failing`` is any predicate on a scenario dict, so the minimiser is tested on synthetic
failures without running the simulator.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

UNDO = {"crash_broker": "restart_broker", "network_partition": "heal_network",
        "crash": "restart", "leave": "restart", "connect_crash": "connect_restart"}


def _kind(entry: dict[str, Any]) -> str:
    return next(k for k in entry if k != "at_ms")


def _target(entry: dict[str, Any]) -> Any:
    kind = _kind(entry)
    body = entry[kind] or {}
    if kind in ("network_partition", "heal_network"):
        return (str(body.get("a")), str(body.get("b")))
    if kind == "link_loss":
        return (body.get("a"), body.get("b"))
    return body.get("broker", body.get("consumer", body.get("worker")))


def _undoes(first: dict[str, Any], later: dict[str, Any]) -> bool:
    kind, other = _kind(first), _kind(later)
    if _target(first) != _target(later):
        return False
    if UNDO.get(kind) == other:
        return True
    if kind == other == "slow_broker":
        return first[kind]["factor"] != 1 and later[kind]["factor"] == 1
    if kind == other == "link_loss":
        return first[kind]["probability"] > 0 and later[kind]["probability"] == 0
    return False


def fault_units(faults: list[dict[str, Any]]) -> list[list[int]]:
    """Indices of ``faults`` grouped as units: [fault] or [fault, its undo], in order."""
    used: set[int] = set()
    units = []
    for i, entry in enumerate(faults):
        if i in used:
            continue
        used.add(i)
        unit = [i]
        for j in range(i + 1, len(faults)):
            if j not in used and _undoes(entry, faults[j]):
                unit.append(j)
                used.add(j)
                break
        units.append(unit)
    return units


def _without(scenario: dict[str, Any], drop: list[int]) -> dict[str, Any]:
    out = copy.deepcopy(scenario)
    out["faults"] = [f for i, f in enumerate(scenario["faults"]) if i not in drop]
    return out


def _retimed(scenario: dict[str, Any], unit: list[int], start: int, end: int | None
             ) -> dict[str, Any]:
    out = copy.deepcopy(scenario)
    faults = out["faults"]
    faults[unit[0]]["at_ms"] = start
    if end is not None and len(unit) > 1:
        faults[unit[1]]["at_ms"] = end
    if end is not None and "hang" in faults[unit[0]]:
        faults[unit[0]]["hang"]["duration_ms"] = max(1, end - start)
    order = sorted(range(len(faults)), key=lambda k: (faults[k]["at_ms"], k))
    out["faults"] = [faults[k] for k in order]
    return out


def _window(scenario: dict[str, Any], unit: list[int]) -> tuple[int, int | None]:
    faults = scenario["faults"]
    first = faults[unit[0]]
    start = int(first["at_ms"])
    if "hang" in first:
        return start, start + int(first["hang"]["duration_ms"])
    return start, int(faults[unit[1]]["at_ms"]) if len(unit) > 1 else None


def minimise(scenario: dict[str, Any], failing: Callable[[dict[str, Any]], bool],
             max_runs: int = 80) -> dict[str, Any]:
    """The smallest schedule found that ``failing`` still accepts (``scenario`` must fail).

    Args:
        scenario: a failing scenario dict with a ``faults`` list.
        failing: True when a scenario shows the same failure.
        max_runs: at most this many calls of ``failing``.
    """
    best = copy.deepcopy(scenario)
    runs = 0

    def attempt(candidate: dict[str, Any]) -> bool:
        nonlocal runs, best
        if runs >= max_runs:
            return False
        runs += 1
        if failing(candidate):
            best = candidate
            return True
        return False

    changed = True
    while changed and runs < max_runs:  # pass 1: drop units
        changed = False
        for unit in reversed(fault_units(best["faults"])):
            if attempt(_without(best, unit)):
                changed = True
                break
    for _ in range(2):  # passes 2 and 3: shorten, then move earlier
        for k in range(len(fault_units(best["faults"]))):
            for _step in range(6):
                unit = fault_units(best["faults"])[k]
                start, end = _window(best, unit)
                tries = []
                if end is not None and end - start > 100:
                    tries.append(_retimed(best, unit, start, start + (end - start) // 2))
                    tries.append(_retimed(best, unit, start + (end - start) // 2, end))
                if start > 100:
                    shift = start // 2
                    tries.append(_retimed(best, unit, start - shift,
                                          None if end is None else end - shift))
                if not any(attempt(t) for t in tries):
                    break
    best["description"] = (f"Minimised from {scenario.get('name', 'a schedule')} "
                           f"({len(scenario['faults'])} fault entries → {len(best['faults'])}). "
                           + str(scenario.get("description", "")))
    return best
