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

Every task counts as caught up everywhere (part 1 has no changelog lag to compare), so a task
moves as soon as balance asks for it. Rebalancing is **cooperative**: a partition still owned by
another member is not handed out in the same round; its owner revokes it and rejoins, and the
next round gives it to its new owner. The assignment carries ``standby`` task lists so that
standby and warm-up replicas (``num.standby.replicas``, ``max.warmup.replicas``) fit in later;
they are empty for now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sim.consumer.assignors import COOPERATIVE, Assignment, ConsumerPartitionAssignor, Subscription
from sim.records import TopicPartition
from sim.streams.internal_topics import TaskId, TopologyMetadata


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


def assign_tasks(tasks: list[TaskId], members: Mapping[str, ThreadInfo],
                 previous: Mapping[str, set[TaskId]]) -> dict[str, ThreadAssignment]:
    """Tasks to members (stream threads): first over instances, then over each one's threads."""
    by_process: dict[str, list[str]] = {}
    for member in sorted(members, key=lambda m: (members[m].process_id, members[m].thread, m)):
        by_process.setdefault(members[member].process_id, []).append(member)
    processes = sorted(by_process)
    weights = {p: len(by_process[p]) for p in processes}
    previous_of_process = {p: set().union(*(previous.get(m, set()) for m in by_process[p]))
                           for p in processes}
    per_process = balanced_sticky(sorted(tasks), processes, weights, previous_of_process)
    result: dict[str, ThreadAssignment] = {}
    for process in processes:
        threads = by_process[process]
        per_thread = balanced_sticky(per_process[process], threads, dict.fromkeys(threads, 1),
                                     previous)
        for member in threads:
            result[member] = ThreadAssignment(per_thread[member])
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
                 directory: Callable[[str], ThreadInfo | None]) -> None:
        self.metadata = metadata
        self.directory = directory
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
        self.last = assign_tasks(tasks, members, previous)
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
