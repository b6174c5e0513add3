"""How the leader of a Connect group assigns connectors and tasks (KIP-415).

``IncrementalCooperativeAssignor`` mirrors the Java class of the same name: it runs on the
group's leader and keeps, between rebalances, its memory of the previous assignment, the
revocations it asked for, and the delayed rebalance that lost work waits for. Work is named by
unit: ``connector:<name>`` or ``task:<name>:<n>``.
"""

from __future__ import annotations

import json
from typing import Any


class IncrementalCooperativeAssignor:
    """The leader's assignor; ``perform_task_assignment`` is called at each rebalance it leads.

    Args:
        max_delay_ms: ``scheduled.rebalance.max.delay.ms``.
    """

    def __init__(self, max_delay_ms: int) -> None:
        self.max_delay_ms = max_delay_ms
        self.previous_assignment: set[str] = set()
        self.previous_revocation: set[str] = set()
        self.previous_members: set[str] = set()
        self.previous_generation = -1
        self.scheduled_rebalance = 0.0
        self.candidates: set[str] = set()
        self.leader_state: dict[str, list[str]] = {}  # worker id → its units, as assigned

    def perform_task_assignment(self, members: dict[str, Any], configured: list[str],
                                generation: int, last_completed_generation: int,
                                now_ms: float) -> dict[str, dict[str, Any]]:
        """Each member's assignment (``units``, ``revoked``, ``delay_ms``), computed from what
        each member reports it runs (``members``: member id → its JoinGroup metadata).

        - *Deleted* work (no longer configured) is revoked from its member.
        - *Lost* work (in the previous assignment, run by nobody now_ms) is handed out at once if
          no member left; otherwise it waits, unassigned, for ``scheduled.rebalance.max.delay
          .ms`` (0: no wait, KAFKA-15693). Members that are empty meanwhile (a worker back
          after a restart) are *candidates*: when the delay runs out the lost connectors, then
          the lost tasks, go round-robin to them, or are treated as new if there is none.
        - *New* work goes to the least loaded members, connectors balanced by connector count
          and tasks by task count, separately (``assignConnectors`` / ``assignTasks``).
        - With no delay pending and a member with no work at all (a new worker), each loaded
          member gives up the connectors and the tasks above the new ceiling average
          (``performTaskRevocation``); revoked work is handed out at the next rebalance, which
          the members that gave it up ask for at once.

        The previous assignment is the leader's memory: a new leader (or one that missed a
        round) has none, so it sees no lost work and hands out everything unassigned at once.
        Kafka breaks ties between equally loaded members by member id (random); the lab uses
        the worker id, so that the story can be told in advance.
        """
        max_delay = self.max_delay_ms
        states = {member: json.loads(str(meta)) for member, meta in members.items()}
        worker_of = {member: state["worker_id"] for member, state in states.items()}
        if self.previous_generation != last_completed_generation:
            self.previous_assignment = set()
        active = {member: list(state["assignment"]) for member, state in states.items()}
        running = {u for units in active.values() for u in units}
        if self.previous_revocation:  # a revocation that did not take effect
            if self.previous_revocation & running:
                self.previous_assignment = set(running)
            self.previous_revocation = set()
        deleted = self.previous_assignment - set(configured)
        lost = [u for u in configured if u in self.previous_assignment and u not in running]
        new = [u for u in configured if u not in self.previous_assignment and u not in running]
        revoked = {m: [u for u in units if u not in configured] for m, units in active.items()}
        load = {m: [u for u in units if u in configured] for m, units in active.items()}
        order = sorted(members, key=lambda m: worker_of[m])
        delay = self._handle_lost(lost, new, load, order, set(members), now_ms, max_delay)
        if delay == 0:
            for member, units in self._load_balancing_revocations(configured, load,
                                                                  order).items():
                revoked[member] += units
                load[member] = [u for u in load[member] if u not in units]
        new = [u for u in configured if u in set(new)]  # a sorted set, as in Kafka
        self._assign_new([u for u in new if u.startswith("connector:")], load, order,
                         worker_of)
        self._assign_new([u for u in new if u.startswith("task:")], load, order, worker_of)
        all_revoked = {u for units in revoked.values() for u in units}
        self.previous_assignment = ({u for units in load.values() for u in units}
                                    | set(lost)) - deleted
        self.previous_revocation = all_revoked - deleted
        self.previous_generation = generation
        self.previous_members = set(members)
        self.leader_state = {worker_of[m]: list(units) for m, units in load.items()}
        return {member: {"units": load[member], "revoked": revoked[member], "delay_ms": delay}
                for member in members}

    def _handle_lost(self, lost: list[str], new: list[str], load: dict[str, list[str]],
                     order: list[str], members: set[str], now_ms: float, max_delay: int) -> int:
        """``handleLostAssignments``: returns the delay before the next rebalance (0: none)."""
        if not lost:
            self._reset_delay()
            return 0
        if (self.scheduled_rebalance <= 0 and members >= self.previous_members) or \
                max_delay == 0:
            new += lost  # nobody left (a member missed an assignment), or no delay wanted
            self._reset_delay()
            return 0
        if 0 < self.scheduled_rebalance <= now_ms:
            candidates = [m for m in order if m in self.candidates]
            if candidates:
                for kind in ("connector:", "task:"):
                    for i, unit in enumerate(u for u in lost if u.startswith(kind)):
                        load[candidates[i % len(candidates)]].append(unit)
            else:
                new += lost
            self._reset_delay()
            return 0
        self.candidates |= {m for m in order if not load[m]}
        if now_ms < self.scheduled_rebalance:
            delay = int(min(self.scheduled_rebalance - now_ms, max_delay))
        else:
            delay = max_delay
        self.scheduled_rebalance = now_ms + delay
        return delay

    def _reset_delay(self) -> None:
        self.candidates = set()
        self.scheduled_rebalance = 0.0

    @staticmethod
    def _load_balancing_revocations(configured: list[str], load: dict[str, list[str]],
                                    order: list[str]) -> dict[str, list[str]]:
        """``performTaskRevocation``: only when some members have no work and others have;
        connectors and tasks above the ceiling of the new average, each kind on its own.

        Example: 1 connector and 6 tasks on A, a new worker B: tasks floor 3, ceil 3, so A
        gives up 3 tasks; connectors floor 0, ceil 1, so A keeps its connector.
        """
        existing = [m for m in order if load[m]]
        if not existing or len(existing) == len(order):
            return {}
        out: dict[str, list[str]] = {}
        for kind in ("connector:", "task:"):
            total = sum(1 for u in configured if u.startswith(kind))
            floor = total // len(order)
            ceil = floor + (0 if total % len(order) == 0 else 1)
            for member in existing:
                mine = [u for u in load[member] if u.startswith(kind)]
                to_revoke = max(len(mine) - ceil, 0)
                to_revoke = min(to_revoke, len(mine) - floor)
                if to_revoke > 0:
                    out.setdefault(member, []).extend(mine[:to_revoke])
        return out

    @staticmethod
    def _assign_new(units: list[str], load: dict[str, list[str]], order: list[str],
                    worker_of: dict[str, str]) -> None:
        """``assignConnectors`` / ``assignTasks``: fill the least loaded members level by
        level (loads counted in units of the same kind)."""
        if not units:
            return
        kind = units[0].split(":", 1)[0] + ":"

        def count(member: str) -> int:
            return sum(1 for u in load[member] if u.startswith(kind))

        ranked = sorted(order, key=lambda m: (count(m), worker_of[m]))
        pending = iter(units)
        remaining = len(units)
        while remaining:
            level = count(ranked[0])
            upto = next((i for i, m in enumerate(ranked) if count(m) > level), len(ranked))
            for member in ranked[:upto]:
                load[member].append(next(pending))
                remaining -= 1
                if not remaining:
                    break

    # -- running what is assigned --------------------------------------------------------------
