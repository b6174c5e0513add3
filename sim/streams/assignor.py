"""The Streams partition assignor: which stream thread of which instance runs which task.

Mirrors ``StreamsPartitionAssignor`` with Kafka 4.0's default ``HighAvailabilityTaskAssignor``
(KIP-441) for the instances and ``assignTasksToThreads`` for the threads of one instance. It
plugs into the classic consumer-group protocol like any assignor: the group leader runs it over
every member's subscription. A member is one stream thread's consumer; several members with the
same process id are the threads of one instance (Kafka sends the process id, and the tasks a
thread owned, in the subscription's user data; the lab's subscription has the owned partitions,
and the process id comes from the thread's consumer).

Two steps, each **balanced** and **sticky**:

1. Tasks over instances, weighted by their thread counts: each instance gets its share
   (``tasks × threads / all threads``, rounded so that the totals add up; the leftover tasks go
   to the instances that owned the most before). An instance keeps the tasks it ran before up
   to its share; the other tasks go, in task order, to the instance with the lowest load.
2. The tasks of one instance over its threads, the same way (each thread weighs 1).

**Stateful tasks** (their sub-topology has logged stores) then follow KIP-441
(``HighAvailabilityTaskAssignor``): an instance is *caught up* on a task when its copy of the
task's stores lags the changelogs by at most ``acceptable.recovery.lag`` records (the instance
that runs it now lags 0; a standby or a state directory left from before lags what it has not
read; an instance without the task's state is not caught up). When the balanced owner of a task
is not caught up but another instance is, the task stays on (or moves to) the most caught-up
instance, and the balanced owner gets a **warm-up replica** (a standby that catches up), at most
``max.warmup.replicas`` in all; a **probing rebalance** ``probing.rebalance.interval.ms`` later
moves the task once its warm-up is caught up. Then each stateful task gets
``num.standby.replicas`` **standbys** on other instances (the least loaded, those with the warmest
state first). Rebalancing is **cooperative**: a partition still owned by another member is not
handed out in the same round; its owner revokes it and rejoins, and the next round gives it to
its new owner. Standby lists reach the threads as Kafka's ``AssignmentInfo`` does, beside the
partitions (``assignment_info``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.consumer.assignors import COOPERATIVE, Assignment, ConsumerPartitionAssignor, Subscription
from sim.records import TopicPartition
from sim.streams.internal_topics import TaskId, TopologyMetadata
from sim.streams.state_directory import kernel_state


@dataclass(frozen=True)
class ThreadInfo:
    """Who a member is: its instance's process id and its thread number (1-based)."""

    process_id: str
    thread: int


@dataclass
class ThreadAssignment:
    """The tasks of one stream thread (Kafka's ``AssignmentInfo``)."""

    active: list[TaskId] = field(default_factory=list)
    standby: list[TaskId] = field(default_factory=list)


@dataclass(frozen=True)
class AssignmentConfigs:
    """The KIP-441 configs (``AssignmentConfigs``)."""

    num_standby_replicas: int = 0
    acceptable_recovery_lag: int = 10000
    max_warmup_replicas: int = 2
    probing_rebalance_interval_ms: int = 600000


def assignment_info(kernel: Any, application_id: str) -> dict[str, ThreadAssignment]:
    """The last assignment of an application's group, by member id (what each member reads from
    its ``AssignmentInfo``)."""
    groups: dict[str, dict[str, ThreadAssignment]] = kernel_state(kernel, "assignments", dict)
    return groups.setdefault(application_id, {})


def balanced_sticky(tasks: list[TaskId], owners: list[str], weights: Mapping[str, int],
                    previous: Mapping[str, set[TaskId]]) -> dict[str, list[TaskId]]:
    """Spread ``tasks`` over ``owners`` in proportion to ``weights``, each owner keeping what it
    had in ``previous`` up to its share. Deterministic: ties go by the order of ``owners``."""
    total = sum(weights[o] for o in owners)
    quota = {o: len(tasks) * weights[o] // total for o in owners}
    leftover = len(tasks) - sum(quota.values())
    had = {o: len(previous.get(o, set()) & set(tasks)) for o in owners}
    for owner in sorted(owners, key=lambda o: (-had[o], owners.index(o)))[:leftover]:
        quota[owner] += 1
    result: dict[str, list[TaskId]] = {o: [] for o in owners}
    unassigned = []
    for task in tasks:
        keeper = next((o for o in owners if task in previous.get(o, set())), None)
        if keeper is not None and len(result[keeper]) < quota[keeper]:
            result[keeper].append(task)
        else:
            unassigned.append(task)
    for task in unassigned:
        owner = min((o for o in owners if len(result[o]) < quota[o]),
                    key=lambda o: (len(result[o]) / weights[o], owners.index(o)))
        result[owner].append(task)
    return {o: sorted(ts) for o, ts in result.items()}


def high_availability(per_process: dict[str, list[TaskId]], stateful: set[TaskId],
                      lags: Mapping[str, Mapping[TaskId, int]], previous: Mapping[str, set[TaskId]],
                      configs: AssignmentConfigs) -> tuple[dict[str, list[TaskId]], int]:
    """``HighAvailabilityTaskAssignor``: keep stateful tasks on caught-up instances, warm up the
    balanced owners, add standbys. Returns the standby (and warm-up) tasks per instance and how
    many warm-ups were placed (a probing rebalance follows if any)."""
    processes = list(per_process)
    owner = {t: p for p, ts in per_process.items() for t in ts}

    def lag(process: str, task: TaskId) -> float:
        if task in previous.get(process, set()):
            return 0  # it runs the task now (Task.LATEST_OFFSET: caught up)
        return lags.get(process, {}).get(task, math.inf)

    standby: dict[str, list[TaskId]] = {p: [] for p in processes}
    warmups = 0
    for task in sorted(t for t in owner if t in stateful):
        target = owner[task]
        caught_up = [p for p in processes if lag(p, task) <= configs.acceptable_recovery_lag]
        if not caught_up or target in caught_up:
            continue
        source = min(caught_up, key=lambda p: (lag(p, task), processes.index(p)))
        per_process[target].remove(task)
        per_process[source].append(task)
        owner[task] = source
        if warmups < configs.max_warmup_replicas:
            standby[target].append(task)
            warmups += 1
    for task in sorted(t for t in owner if t in stateful):
        for _ in range(configs.num_standby_replicas):
            candidates = [p for p in processes if p != owner[task] and task not in standby[p]]
            if not candidates:
                break
            chosen = min(candidates, key=lambda p: (
                lag(p, task) > configs.acceptable_recovery_lag,
                len(per_process[p]) + len(standby[p]), processes.index(p)))
            standby[chosen].append(task)
    return {p: sorted(ts) for p, ts in standby.items()}, warmups


def assign_tasks(tasks: list[TaskId], members: Mapping[str, ThreadInfo],
                 previous: Mapping[str, set[TaskId]], stateful: set[TaskId] | None = None,
                 lags: Mapping[str, Mapping[TaskId, int]] | None = None,
                 configs: AssignmentConfigs | None = None,
                 warmups: list[int] | None = None) -> dict[str, ThreadAssignment]:
    """Tasks to members (stream threads): first over instances, then over each one's threads.

    ``stateful`` tasks follow KIP-441 with ``lags`` (process id → task → changelog lag) and
    ``configs``; the number of warm-up replicas placed is appended to ``warmups`` if given.
    """
    by_process: dict[str, list[str]] = {}
    for member in sorted(members, key=lambda m: (members[m].process_id, members[m].thread, m)):
        by_process.setdefault(members[member].process_id, []).append(member)
    processes = sorted(by_process)
    weights = {p: len(by_process[p]) for p in processes}
    previous_of_process = {p: set().union(*(previous.get(m, set()) for m in by_process[p]))
                           for p in processes}
    per_process = balanced_sticky(sorted(tasks), processes, weights, previous_of_process)
    standby_of_process, placed = high_availability(
        per_process, stateful or set(), lags or {}, previous_of_process,
        configs or AssignmentConfigs())
    if warmups is not None:
        warmups.append(placed)
    result: dict[str, ThreadAssignment] = {}
    for process in processes:
        threads = by_process[process]
        per_thread = balanced_sticky(sorted(per_process[process]), threads,
                                     dict.fromkeys(threads, 1), previous)
        for member in threads:
            result[member] = ThreadAssignment(per_thread[member])
        for i, task in enumerate(standby_of_process[process]):
            result[threads[i % len(threads)]].standby.append(task)
    return result


class StreamsPartitionAssignor(ConsumerPartitionAssignor):
    """The assignor of a Streams application's consumers (``StreamsPartitionAssignor``).

    Args:
        metadata: the topology's tasks and topics (from ``internal_topics.prepare``).
        directory: maps a member id of the group to its ``ThreadInfo`` (None if unknown).
    """

    name = "stream"
    java_class = "org.apache.kafka.streams.processor.internals.StreamsPartitionAssignor"
    supported_protocols = (COOPERATIVE,)

    def __init__(self, metadata: TopologyMetadata,
                 directory: Callable[[str], ThreadInfo | None],
                 stateful: set[TaskId] | None = None,
                 lags: Callable[[str], Mapping[TaskId, int]] | None = None,
                 configs: AssignmentConfigs | None = None,
                 published: dict[str, ThreadAssignment] | None = None,
                 schedule_probing: Callable[[int], None] | None = None) -> None:
        self.metadata = metadata
        self.directory = directory
        self.stateful = stateful or set()
        self.lags = lags
        self.configs = configs or AssignmentConfigs()
        self.published = published
        self.schedule_probing = schedule_probing
        self.last: dict[str, ThreadAssignment] = {}  # tasks per member, when this member led

    def assign(self, partitions_per_topic: Mapping[str, int],
               subscriptions: Mapping[str, Subscription]) -> Assignment:
        metadata = self.metadata
        members = {m: self.directory(m) or ThreadInfo(f"unknown-{m}", 1) for m in subscriptions}
        previous: dict[str, set[TaskId]] = {}
        owner_of: dict[TopicPartition, str] = {}
        for member, subscription in subscriptions.items():
            for tp in subscription.owned_partitions:
                owner_of[tp] = member
                previous.setdefault(member, set()).add(metadata.task_for(tp))
        tasks = self.assignable_tasks(partitions_per_topic)
        lags = ({p: self.lags(p) for p in sorted({i.process_id for i in members.values()})}
                if self.lags is not None else {})
        warmups: list[int] = []
        self.last = assign_tasks(tasks, members, previous, self.stateful, lags, self.configs,
                                 warmups)
        if self.published is not None:
            self.published.clear()
            self.published.update(self.last)
        if warmups and warmups[0] and self.schedule_probing is not None:
            self.schedule_probing(self.configs.probing_rebalance_interval_ms)
        assignment: Assignment = {}
        for member, threads_tasks in self.last.items():
            partitions = [tp for task in threads_tasks.active
                          for tp in metadata.partitions_of(task)
                          if owner_of.get(tp, member) == member]  # cooperative: wait for revoke
            assignment[member] = sorted(partitions, key=lambda tp: (tp.topic, tp.partition))
        return assignment

    def assignable_tasks(self, partitions_per_topic: Mapping[str, int]) -> list[TaskId]:
        """The tasks whose partitions all exist on the cluster now."""
        return [t for t in self.metadata.tasks
                if all(tp.topic in partitions_per_topic
                       for tp in self.metadata.partitions_of(t))]
