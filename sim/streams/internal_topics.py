"""Tasks and internal topics of a topology on a cluster: what a Streams application checks at start.

Mirrors ``RepartitionTopics``, ``CopartitionedTopicsEnforcer`` and the task bookkeeping of
``StreamsPartitionAssignor`` (``PartitionGrouper``):

- **Source topics must exist** (``MissingSourceTopicException``); a pattern source reads every
  topic whose whole name matches when the application starts (Kafka also picks up topics
  created later; the lab does not).
- **Repartition topics** are ``<application.id>-<name>-repartition`` (a foreign-key join's
  subscription topics, ``<application.id>-KTABLE-FK-JOIN-…-topic``, are handled alike). Unless
  ``Repartitioned.with_number_of_partitions`` fixes it, a repartition topic gets as many
  partitions as the largest source topic of the sub-topology that writes to it.
- **Co-partitioning**: topics whose records meet in one store (the two sides of a join) must have
  the same number of partitions, or the application fails with Kafka's ``TopologyException``
  text, e.g. ``Invalid topology: Topics not co-partitioned: [{left=3, right=4}]``. Repartition
  topics in such a group take the external topics' count.
- **Tasks**: one per sub-topology and partition number, ``<sub-topology>_<partition>`` (``0_3``),
  as many per sub-topology as its largest source topic has partitions. Task ``s_p`` reads
  partition ``p`` of every source topic of sub-topology ``s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sim.errors import MissingSourceTopicError, TopologyError
from sim.records import TopicPartition
from sim.streams.topology import Topology


@dataclass(frozen=True, order=True)
class TaskId:
    """A task: sub-topology and partition (``TaskId``); printed ``0_3`` as Kafka does."""

    subtopology: int
    partition: int

    def __str__(self) -> str:
        return f"{self.subtopology}_{self.partition}"

    @classmethod
    def parse(cls, text: str) -> TaskId:
        subtopology, partition = text.split("_")
        return cls(int(subtopology), int(partition))


@dataclass
class TopologyMetadata:
    """What the runtime needs to know about a topology on one cluster."""

    application_id: str
    subtopologies: dict[int, list[str]]  # sub-topology id -> node names (global ones excluded)
    source_topics: dict[int, list[str]]  # sub-topology id -> topics it reads, as in the topology
    partitions: dict[str, int]  # every source topic (topology name) -> partition count
    repartition_topics: list[str]  # topology names (without application.id)
    tasks: list[TaskId] = field(default_factory=list)

    def broker_topic(self, topic: str) -> str:
        """The cluster's name of a topology topic (``decorateTopic``)."""
        if topic in self.repartition_topics:
            return f"{self.application_id}-{topic}"
        return topic

    def topology_topic(self, broker_topic: str) -> str:
        """The topology's name of a cluster topic (the inverse of ``broker_topic``)."""
        prefix = f"{self.application_id}-"
        if broker_topic.startswith(prefix) and broker_topic[len(prefix):] in \
                self.repartition_topics:
            return broker_topic[len(prefix):]
        return broker_topic

    def subscribed_topics(self) -> list[str]:
        """Every cluster topic the application's consumers read, sorted."""
        return sorted(self.broker_topic(t) for topics in self.source_topics.values()
                      for t in topics)

    def task_for(self, tp: TopicPartition) -> TaskId:
        """The task that reads ``tp`` (a cluster topic partition)."""
        topic = self.topology_topic(tp.topic)
        for subtopology, topics in self.source_topics.items():
            if topic in topics:
                return TaskId(subtopology, tp.partition)
        raise KeyError(tp)

    def partitions_of(self, task: TaskId) -> list[TopicPartition]:
        """The cluster partitions task ``task`` reads."""
        return [TopicPartition(self.broker_topic(t), task.partition)
                for t in self.source_topics[task.subtopology]
                if task.partition < self.partitions[t]]


def _java_map(counts: dict[str, int]) -> str:
    """A ``TreeMap<String, Integer>`` as Java prints it: ``{a=3, b=4}``."""
    return "{" + ", ".join(f"{k}={counts[k]}" for k in sorted(counts)) + "}"


def _upstream_sources(topology: Topology, name: str) -> set[str]:
    """The source nodes from which records reach node ``name``."""
    found: set[str] = set()
    todo = [name]
    seen: set[str] = set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        factory = topology.nodes[node]
        if factory.kind == "source":
            found.add(node)
        todo.extend(factory.predecessors)
    return found


def copartition_groups(topology: Topology, subtopologies: dict[int, list[str]],
                       topics_of_source: dict[str, list[str]]) -> list[list[str]]:
    """Groups of topics that must be co-partitioned: a store written or read by processors fed
    from different sources (the two sides of a join) joins those sources' topics."""
    groups: list[set[str]] = []
    for names in subtopologies.values():
        users: dict[str, list[str]] = {}
        for name in names:
            for store in topology.nodes[name].stores:
                users.setdefault(store, []).append(name)
        for processors in users.values():
            if len(processors) < 2:
                continue
            sources: set[str] = set()
            for processor in processors:
                sources |= _upstream_sources(topology, processor)
            if len(sources) < 2:
                continue
            topics = {t for s in sources for t in topics_of_source[s]}
            merged = [g for g in groups if g & topics]
            for group in merged:
                groups.remove(group)
                topics |= group
            groups.append(topics)
    return sorted(sorted(g) for g in groups)


def prepare(topology: Topology, application_id: str, cluster_partitions: dict[str, int]
            ) -> TopologyMetadata:
    """Check ``topology`` against a cluster's topics (name -> partitions) and work out the
    partition counts of repartition topics and the tasks.

    Raises:
        MissingSourceTopicError: a source topic is not on the cluster.
        TopologyError: topics that must be co-partitioned are not.
    """
    internal = list(dict.fromkeys(topology.internal_topics))
    subtopologies = {group_id: names for group_id, names in topology.node_groups().items()
                     if not any(topology.nodes[n].is_global for n in names)}
    topics_of_source: dict[str, list[str]] = {}
    missing: list[str] = []
    for names in subtopologies.values():
        for name in names:
            factory = topology.nodes[name]
            if factory.kind != "source":
                continue
            if factory.pattern is not None:
                pattern = factory.pattern
                topics = sorted(t for t in cluster_partitions if re.fullmatch(pattern, t)
                                and not t.startswith("__"))  # exclude.internal.topics
            else:
                topics = list(factory.topics)
            topics_of_source[name] = topics
            missing += [t for t in topics if t not in internal and t not in cluster_partitions]
    if missing:
        raise MissingSourceTopicError(
            f"Missing source topics. {sorted(set(missing))}: create them before starting the "
            "application (Streams creates only its internal topics).")
    source_topics = {s: [t for n in names if n in topics_of_source for t in topics_of_source[n]]
                     for s, names in subtopologies.items()}
    partitions = {t: cluster_partitions[t] for topics in source_topics.values() for t in topics
                  if t not in internal}
    enforced = {t: n for t, n in topology.repartition_partitions.items() if t in internal}
    partitions.update(enforced)
    writers = {t: [s for s, names in subtopologies.items()
                   if any(topology.nodes[n].kind == "sink" and topology.nodes[n].topic == t
                          for n in names)] for t in internal}
    _repartition_counts(internal, writers, source_topics, partitions)
    for group in copartition_groups(topology, subtopologies, topics_of_source):
        _enforce(group, internal, enforced, partitions, application_id)
    metadata = TopologyMetadata(application_id, subtopologies, source_topics, partitions,
                                internal)
    for subtopology, topics in source_topics.items():
        count = max((partitions[t] for t in topics), default=0)
        metadata.tasks += [TaskId(subtopology, p) for p in range(count)]
    return metadata


def _repartition_counts(internal: list[str], writers: dict[str, list[int]],
                        source_topics: dict[int, list[str]], partitions: dict[str, int]) -> None:
    """``RepartitionTopics.setRepartitionSourceTopicPartitionCount``: each internal topic gets
    the max partition count of the source topics of the sub-topologies writing to it, upstream
    topics first. Sub-topologies that feed each other (a foreign-key join's subscription and
    response topics) use the inputs already known, as Kafka's loop does."""
    while unknown := [t for t in internal if t not in partitions]:
        inputs = {t: [i for s in writers[t] for i in source_topics[s]] for t in unknown}
        ready = [t for t in unknown if all(i in partitions for i in inputs[t])]
        if not ready:
            ready = [t for t in unknown if any(i in partitions for i in inputs[t])][:1]
        if not ready:
            raise TopologyError(f"Invalid topology: cannot work out the partition count of "
                                f"{unknown}")
        for topic in ready:
            partitions[topic] = max((partitions[i] for i in inputs[topic] if i in partitions),
                                    default=1)


def _enforce(group: list[str], internal: list[str], enforced: dict[str, int],
             partitions: dict[str, int], application_id: str) -> None:
    """``CopartitionedTopicsEnforcer.enforce`` for one group (names as the cluster has them)."""
    decorate = {t: f"{application_id}-{t}" if t in internal else t for t in group}
    repartition = [t for t in group if t in internal]
    external = {t: partitions[t] for t in group if t not in internal}
    if not external:
        fixed = {decorate[t]: enforced[t] for t in repartition if t in enforced}
        if fixed and len(set(fixed.values())) > 1:
            raise TopologyError(f"Invalid topology: Following topics do not have the same number "
                                f"of partitions: [{_java_map(fixed)}]")
        count = (next(iter(fixed.values())) if fixed
                 else max(partitions[t] for t in repartition))
    else:
        if len(set(external.values())) > 1:
            raise TopologyError(f"Invalid topology: Topics not co-partitioned: "
                                f"[{_java_map(external)}]")
        count = next(iter(external.values()))
    for topic in repartition:
        if topic not in enforced:
            partitions[topic] = count
        elif partitions[topic] != count:
            raise TopologyError(
                f"Invalid topology: Number of partitions [{partitions[topic]}] of repartition "
                f"topic [{decorate[topic]}] doesn't match number of partitions [{count}] of the "
                "source topic.")
