"""Assignors side by side: who owns what, and what moves and stops when members come and go.

Part of ``sim.lessons.groups`` (lesson 03); the package docstring has the vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sim.consumer.assignors import (
    COOPERATIVE,
    DEFAULT_GENERATION,
    Assignment,
    Subscription,
    assignor_for,
)
from sim.errors import ConfigError
from sim.lessons.groups.headers import ASSIGNOR_NAMES
from sim.records import TopicPartition


def member_names(count: int) -> list[str]:
    """``["C0", "C1", …]``: member ids that sort like their numbers (up to C9)."""
    if count < 1:
        raise ConfigError(f"A group needs at least one member but got {count}.")
    return [f"C{i}" for i in range(count)]


def topics_of(topics: int, partitions: int) -> dict[str, int]:
    """``{"t0": partitions, "t1": partitions, …}``: ``topics`` topics of equal size."""
    if topics < 1 or partitions < 1:
        raise ConfigError(f"Need at least one topic with at least one partition but got "
                          f"topics={topics}, partitions={partitions}.")
    return {f"t{i}": partitions for i in range(topics)}


def _check_group(topics: Mapping[str, int], members: Sequence[str]) -> None:
    if not members:
        raise ConfigError("A group needs at least one member to assign partitions to.")
    if len(set(members)) != len(members):
        raise ConfigError(f"Member ids must be unique but got {list(members)}.")
    if not topics or any(int(n) < 1 for n in topics.values()):
        raise ConfigError(f"Every topic needs at least one partition but got {dict(topics)}.")


def assign(strategy: str, topics: Mapping[str, int], members: Sequence[str],
           owned: Mapping[str, Sequence[TopicPartition]] | None = None,
           generation: int = DEFAULT_GENERATION) -> Assignment:
    """Run one assignor over a group whose members all subscribe to every topic.

    Args:
        strategy: a ``partition.assignment.strategy`` value, e.g. ``"range"``.
        topics: topic name → partition count.
        members: member ids, in the order they joined.
        owned: member id → partitions it owned before (read by the sticky assignors only).
        generation: the generation those partitions were owned in.

    Returns:
        Member id → its partitions, for every member (an idle member gets ``[]``).

    Raises:
        ConfigError: an unknown assignor, no members, duplicate ids or an empty topic.
    """
    _check_group(topics, members)
    assignor = assignor_for(strategy)
    names = tuple(sorted(topics))
    previous = owned or {}
    subscriptions = {
        m: Subscription(names, tuple(previous.get(m, ())),
                        generation if previous.get(m) else DEFAULT_GENERATION)
        for m in members
    }
    return assignor.assign(dict(topics), subscriptions)


def assignment_frame(topics: Mapping[str, int], members: Sequence[str],
                     strategies: Iterable[str] = ASSIGNOR_NAMES) -> pd.DataFrame:
    """One row per (assignor, member, partition) for a fresh group: who reads what.

    Columns: assignor, member, topic, partition. A member that gets nothing has one row with
    topic ``None`` and partition -1, so idle members stay visible.
    """
    rows: list[dict[str, Any]] = []
    for strategy in strategies:
        rows += _assignment_rows(strategy, assign(strategy, topics, members), members)
    return pd.DataFrame(rows, columns=["assignor", "member", "topic", "partition"])


def _assignment_rows(strategy: str, assignment: Mapping[str, Sequence[TopicPartition]],
                     members: Sequence[str], **extra: Any) -> list[dict[str, Any]]:
    rows = []
    for member in members:
        parts = sorted(assignment.get(member, []))
        if not parts:
            rows.append({**extra, "assignor": strategy, "member": member, "topic": None,
                         "partition": -1})
        rows += [{**extra, "assignor": strategy, "member": member, "topic": tp.topic,
                  "partition": tp.partition} for tp in parts]
    return rows


def _cell(parts: Sequence[TopicPartition]) -> str:
    return ", ".join(str(tp) for tp in sorted(parts)) if parts else "— (idle)"


def assignment_table(topics: Mapping[str, int], members: Sequence[str],
                     strategies: Iterable[str] = ASSIGNOR_NAMES) -> pd.DataFrame:
    """The four assignors side by side: one row per member, one column per assignor.

    Each cell lists the member's partitions (``t0-0, t1-1``), or "— (idle)". The last row,
    ``partitions each``, counts them per member (``4 / 4 / 0``).
    """
    columns: dict[str, list[str]] = {}
    for strategy in strategies:
        result = assign(strategy, topics, members)
        columns[strategy] = [_cell(result[m]) for m in members]
        columns[strategy].append(" / ".join(str(len(result[m])) for m in members))
    index = pd.Index([*members, "partitions each"], name="member")
    return pd.DataFrame(columns, index=index)


@dataclass(frozen=True)
class Rebalance:
    """One assignor's answer to a change of the group's members, compared with before.

    ``rounds`` is 2 when cooperative-sticky had to withhold a moving partition in the first
    round (the old owner revokes it, rejoins, and a follow-up rebalance hands it over).
    """

    assignor: str
    members: tuple[str, ...]
    before: dict[str, list[TopicPartition]]
    after: dict[str, list[TopicPartition]]
    rounds: int
    moved: list[TopicPartition]
    stopped: list[TopicPartition]


def _owner_map(assignment: Mapping[str, Sequence[TopicPartition]]) -> dict[TopicPartition, str]:
    return {tp: member for member, parts in assignment.items() for tp in parts}


def rebalance(strategy: str, topics: Mapping[str, int],
              before: Mapping[str, Sequence[TopicPartition]], members: Sequence[str],
              generation: int = 1) -> Rebalance:
    """What ``strategy`` does when the group changes from ``before``'s members to ``members``.

    Eager assignors answer in one round and every partition that had an owner stops (all
    members revoke everything before rejoining). Cooperative-sticky keeps what stays: round 1
    leaves every moving partition out, its old owner revokes just that, and round 2 (one
    generation later) gives it to the new owner; only moved partitions stop.

    Args:
        before: the assignment of the previous generation (``{}`` for a new group).
        generation: the generation ``before`` belongs to.
    """
    old = {m: list(parts) for m, parts in before.items()}
    first = assign(strategy, topics, members, old, generation)
    rounds = 1
    after = first
    if COOPERATIVE in assignor_for(strategy).supported_protocols[:1]:
        had = _owner_map(old)
        now = _owner_map(first)
        revoked = [tp for tp, owner in had.items() if owner in members and now.get(tp) != owner]
        if revoked:  # the old owners rejoin at once: a follow-up rebalance hands them over
            after = assign(strategy, topics, members, first, generation + 1)
            rounds = 2
    had = _owner_map(old)
    now = _owner_map(after)
    moved = sorted(tp for tp, owner in had.items() if now.get(tp) != owner)
    if COOPERATIVE in assignor_for(strategy).supported_protocols[:1]:
        stopped = moved
    else:
        stopped = sorted(had)
    return Rebalance(strategy, tuple(members), {m: sorted(p) for m, p in old.items()},
                     {m: sorted(p) for m, p in after.items()}, rounds, moved, stopped)


def membership_changes(topics: Mapping[str, int], steps: Sequence[tuple[str, Sequence[str]]],
                       strategies: Iterable[str] = ASSIGNOR_NAMES) -> pd.DataFrame:
    """Walk a group through membership changes with each assignor; one row per step and assignor.

    Args:
        topics: topic name → partition count (every member subscribes to all of them).
        steps: ``(label, members)`` pairs, e.g. ``[("start", ["C0", "C1"]), ("C2 joins",
            ["C0", "C1", "C2"])]``; each step starts from the previous step's assignment.

    Returns:
        Columns: step, assignor, members, rounds, moved, stopped (counts), moved_partitions
        (``t0-1, …``), and assignment (member → partitions, a dict).
    """
    rows = []
    for strategy in strategies:
        before: dict[str, list[TopicPartition]] = {}
        for generation, (label, members) in enumerate(steps, start=1):
            result = rebalance(strategy, topics, before, list(members), generation)
            rows.append({"step": label, "assignor": strategy, "members": len(members),
                         "rounds": result.rounds, "moved": len(result.moved),
                         "stopped": len(result.stopped),
                         "moved_partitions": ", ".join(map(str, result.moved)),
                         "assignment": result.after})
            before = result.after
    frame = pd.DataFrame(rows, columns=["step", "assignor", "members", "rounds", "moved",
                                        "stopped", "moved_partitions", "assignment"])
    order = {label: i for i, (label, _m) in enumerate(steps)}
    return frame.sort_values("step", key=lambda s: s.map(order), kind="stable",
                             ignore_index=True)


def changes_table(changes: pd.DataFrame) -> pd.DataFrame:
    """:func:`membership_changes` as one row per step and one column per assignor.

    Cells read ``"2 moved, 8 stopped"`` (plus ``", 2 rounds"`` when a cooperative rebalance
    needed its follow-up round).
    """

    def describe(row: pd.Series) -> str:
        text = f"{row['moved']} moved, {row['stopped']} stopped"
        return text + (f", {row['rounds']} rounds" if row["rounds"] > 1 else "")

    cells = changes.assign(summary=changes.apply(describe, axis=1))
    steps = list(dict.fromkeys(changes["step"]))
    assignors = list(dict.fromkeys(changes["assignor"]))
    table = cells.pivot(index="step", columns="assignor", values="summary")
    return table.reindex(index=steps, columns=assignors).rename_axis(columns=None)


def steps_frame(changes: pd.DataFrame) -> pd.DataFrame:
    """:func:`membership_changes` expanded to one row per (step, assignor, member, partition).

    Adds ``moved`` (bool): the partition's owner changed in this step. Idle members get one
    row with partition -1. This is what ``viz_groups.assignment_grid`` draws.
    """
    rows: list[dict[str, Any]] = []
    for row in changes.itertuples(index=False):
        moved = set(filter(None, row.moved_partitions.split(", ")))
        members = list(row.assignment)
        for entry in _assignment_rows(row.assignor, row.assignment, members, step=row.step):
            entry["moved"] = f"{entry['topic']}-{entry['partition']}" in moved
            rows.append(entry)
    return pd.DataFrame(rows, columns=["step", "assignor", "member", "topic", "partition",
                                       "moved"])
