"""``Topology``: the graph of sources, processors and sinks that a Streams application runs.

Mirrors ``org.apache.kafka.streams.Topology`` and ``InternalTopologyBuilder``. You build one
with the Processor API (``add_source`` / ``add_processor`` / ``add_sink`` / ``add_state_store``)
or get one from ``StreamsBuilder.build()``; ``describe()`` prints Kafka's text. Nodes are kept in
the order they were added, because Kafka numbers sub-topologies in that order: the sub-topology
of the first node added is 0, the next new one is 1, and so on (``makeNodeGroups``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.errors import TopologyError
from sim.streams.description import (
    GlobalStore,
    Node,
    Processor,
    Sink,
    Source,
    Subtopology,
    TopologyDescription,
    java_hash_set_order,
)
from sim.streams.processor import Processor as ApiProcessor
from sim.streams.stores import StoreBuilder

ProcessorSupplier = Callable[[], ApiProcessor]
"""Makes a fresh processor per task: a Processor subclass or any function returning one."""


@dataclass
class NodeFactory:
    """One node as added to the topology (``InternalTopologyBuilder.NodeFactory``)."""

    name: str
    kind: str  # "source", "processor" or "sink"
    predecessors: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    supplier: ProcessorSupplier | None = None
    stores: list[str] = field(default_factory=list)
    topic: str = ""
    is_global: bool = False


def _topology_error(message: str) -> TopologyError:
    return TopologyError(f"Invalid topology: {message}")


class Topology:
    """A processor topology (Kafka's ``Topology``); methods return ``self`` to allow chaining."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeFactory] = {}
        self.store_builders: dict[str, StoreBuilder] = {}
        self.internal_topics: list[str] = []  # repartition topics, named without application.id
        self.repartition_partitions: dict[str, int] = {}  # Repartitioned.with_number_of_partitions
        self._topic_to_source: dict[str, str] = {}
        self._parent: dict[str, str] = {}  # union-find over node names (``QuickUnion``)

    # -- building ---------------------------------------------------------------------------

    def add_source(self, name: str, *topics: str | re.Pattern[str]) -> Topology:
        """Add a source reading ``topics`` (names, or one compiled regex ``re.Pattern``)."""
        if not topics:
            raise _topology_error("You must provide at least one topic")
        self._check_new(name)
        patterns = [t for t in topics if isinstance(t, re.Pattern)]
        if patterns and len(topics) > 1:
            raise _topology_error(f"source {name} takes either one pattern or topic names")
        for topic in topics:
            if not isinstance(topic, str | re.Pattern):
                raise _topology_error(f"topic {topic!r} of source {name} must be a str or pattern")
            if isinstance(topic, str) and topic in self._topic_to_source:
                raise _topology_error(f"Topic {topic} has already been registered by another "
                                      "source.")
        names = tuple(t for t in topics if isinstance(t, str))
        for topic in names:
            self._topic_to_source[topic] = name
        self.nodes[name] = NodeFactory(name, "source", topics=names,
                                       pattern=patterns[0] if patterns else None)
        self._union(name)
        return self

    def add_processor(self, name: str, supplier: ProcessorSupplier, *parent_names: str) -> Topology:
        """Add a processor made by ``supplier`` (e.g. your Processor subclass) below parents."""
        self._check_new(name)
        self._check_parents(name, parent_names, "Processor")
        if not callable(supplier):
            raise _topology_error(f"processor {name} needs a supplier (a Processor subclass or a "
                                  f"function returning a Processor), got {supplier!r}")
        self.nodes[name] = NodeFactory(name, "processor", tuple(parent_names), supplier=supplier)
        self._union(name, *parent_names)
        return self

    def add_sink(self, name: str, topic: str, *parent_names: str) -> Topology:
        """Add a sink writing to ``topic`` what its parents forward."""
        self._check_new(name)
        self._check_parents(name, parent_names, "Sink")
        if not isinstance(topic, str) or not topic:
            raise _topology_error(f"sink {name} needs a topic name, got {topic!r}")
        self.nodes[name] = NodeFactory(name, "sink", tuple(parent_names), topic=topic)
        self._union(name, *parent_names)
        return self

    def add_state_store(self, store_builder: StoreBuilder, *processor_names: str) -> Topology:
        """Add a store and connect it to ``processor_names`` (more can be connected later)."""
        if not isinstance(store_builder, StoreBuilder):
            raise _topology_error(f"add_state_store needs a StoreBuilder (see Stores), got "
                                  f"{store_builder!r}")
        existing = self.store_builders.get(store_builder.name)
        if existing is not None and existing != store_builder:
            raise _topology_error("A different StateStore has already been added with the name "
                                  f"{store_builder.name}")
        self.store_builders[store_builder.name] = store_builder
        self.connect_processor_and_state_stores_each(processor_names, store_builder.name)
        return self

    def connect_processor_and_state_stores(self, processor_name: str,
                                           *store_names: str) -> Topology:
        """Give a processor access to stores already added."""
        if not store_names:
            raise _topology_error("Must provide at least one state store name.")
        for store in store_names:
            self.connect_processor_and_state_stores_each((processor_name,), store)
        return self

    def connect_processor_and_state_stores_each(self, processor_names: tuple[str, ...],
                                                store_name: str) -> None:
        if store_name not in self.store_builders:
            raise _topology_error(f"StateStore {store_name} is not added yet.")
        for processor_name in processor_names:
            node = self.nodes.get(processor_name)
            if node is None:
                raise _topology_error(f"Processor {processor_name} is not added yet.")
            if node.kind != "processor":
                raise _topology_error(f"cannot connect a state store {store_name} to a source "
                                      "node or a sink node.")
            if store_name not in node.stores:
                users = [n.name for n in self.nodes.values() if store_name in n.stores]
                node.stores.append(store_name)
                self._union(processor_name, *users)

    def add_global_store(self, store_builder: StoreBuilder, source_name: str, topic: str,
                         processor_name: str, supplier: ProcessorSupplier) -> Topology:
        """A store filled from the whole of ``topic`` on every instance (``addGlobalStore``)."""
        if source_name == processor_name:
            raise _topology_error("sourceName and processorName must be different.")
        self.add_source(source_name, topic)
        self.nodes[source_name].is_global = True
        self.store_builders[store_builder.name] = store_builder
        self.add_processor(processor_name, supplier, source_name)
        self.nodes[processor_name].stores.append(store_builder.name)
        return self

    def _check_new(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise _topology_error(f"a node needs a non-empty str name, got {name!r}")
        if name in self.nodes:
            raise _topology_error(f"Processor {name} is already added.")

    def _check_parents(self, name: str, parents: tuple[str, ...], what: str) -> None:
        if not parents:
            raise _topology_error(f"{what} {name} must have at least one parent")
        for parent in parents:
            if parent == name:
                raise _topology_error(f"Processor {name} cannot be a predecessor of itself.")
            if parent not in self.nodes:
                raise _topology_error(f"Predecessor processor {parent} is not added yet for "
                                      f"{name}")
            if self.nodes[parent].kind == "sink":
                raise _topology_error(f"Sink {parent} cannot be used a parent.")

    def _root(self, name: str) -> str:
        while self._parent[name] != name:
            name = self._parent[name]
        return name

    def _union(self, name: str, *others: str) -> None:
        self._parent.setdefault(name, name)
        for other in others:
            self._parent[self._root(other)] = self._root(name)

    # -- reading ----------------------------------------------------------------------------

    def children(self, name: str) -> list[str]:
        """Names of the nodes whose parent is ``name``, in the order they were added."""
        return [n.name for n in self.nodes.values() if name in n.predecessors]

    def node_groups(self) -> dict[int, list[str]]:
        """Sub-topology id → node names, numbered in the order nodes were added."""
        groups: dict[str, list[str]] = {}
        for name in self.nodes:
            groups.setdefault(self._root(name), []).append(name)
        return dict(enumerate(groups.values()))

    def source_topics(self) -> list[str]:
        """Every topic a (non-global) source reads, sorted."""
        return sorted(t for n in self.nodes.values() if n.kind == "source" and not n.is_global
                      for t in n.topics)

    def describe(self) -> TopologyDescription:
        """Kafka's ``TopologyDescription``; ``print(topology.describe())`` shows its text."""
        subtopologies: list[Subtopology] = []
        global_stores: list[GlobalStore] = []
        for group_id, names in self.node_groups().items():
            if any(self.nodes[n].is_global for n in names):
                global_stores.append(self._describe_global(group_id, names))
            else:
                subtopologies.append(Subtopology(group_id, self._describe_nodes(names)))
        return TopologyDescription(subtopologies, global_stores)

    def _describe_node(self, factory: NodeFactory) -> Node:
        if factory.kind == "source":
            return Source(factory.name, topics=tuple(java_hash_set_order(factory.topics)),
                          pattern=factory.pattern.pattern if factory.pattern else None)
        if factory.kind == "sink":
            return Sink(factory.name, topic=factory.topic)
        return Processor(factory.name, stores=tuple(java_hash_set_order(factory.stores)))

    def _describe_nodes(self, names: list[str]) -> list[Node]:
        """Connect the nodes as ``describeSubtopology`` does: in Java hash order of the names,
        each node to its parents, adding the node's sub-tree size to every ancestor."""
        nodes = {name: self._describe_node(self.nodes[name])
                 for name in java_hash_set_order(names, from_collection=False)}

        def update_size(node: Node, delta: int) -> None:
            node.size += delta
            for parent in node.predecessors:
                update_size(parent, delta)

        for node in nodes.values():
            for parent_name in self.nodes[node.name].predecessors:
                parent = nodes[parent_name]
                node.predecessors.add(parent)
                parent.successors.add(node)
                update_size(parent, node.size)
        return list(nodes.values())

    def _describe_global(self, group_id: int, names: list[str]) -> GlobalStore:
        source_name = next(n for n in names if self.nodes[n].is_global)
        processor_name = next(n for n in names if n != source_name)
        processor = self.nodes[processor_name]
        source = Source(source_name, topics=self.nodes[source_name].topics[:1])
        described = Processor(processor_name, stores=tuple(processor.stores[:1]))
        source.successors.add(described)
        described.predecessors.add(source)
        return GlobalStore(group_id, source, described)

    def __repr__(self) -> str:
        return f"Topology({len(self.nodes)} nodes, {len(self.node_groups())} sub-topologies)"
