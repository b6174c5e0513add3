"""``StreamsBuilder``: the entry point of the Streams DSL.

Mirrors ``StreamsBuilder`` and ``InternalStreamsBuilder``. Every operation names its processor
``<PREFIX><counter>`` with **one counter for the whole builder**, zero-padded to ten digits
(``KSTREAM-SOURCE-0000000000``, ``KSTREAM-FILTER-0000000001``, …). A name you give still uses up a
number, and generated store names use the counter too, so numbers in ``describe()`` can skip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sim.errors import TopologyError
from sim.streams.kstream import KStream
from sim.streams.ktable import GlobalKTable, KTable
from sim.streams.materialized import Materialized
from sim.streams.operations import KTableSource
from sim.streams.stores import StoreBuilder
from sim.streams.topology import Topology

SOURCE_NAME = "KSTREAM-SOURCE-"
TABLE_SOURCE_NAME = "KTABLE-SOURCE-"
STATE_STORE_NAME = "STATE-STORE-"


class StreamsBuilder:
    """Builds a :class:`Topology` with the DSL: ``stream``, ``table``, ``global_table``."""

    def __init__(self) -> None:
        self.topology = Topology()
        self._index = 0

    def new_processor_name(self, prefix: str) -> str:
        """``prefix`` + the next number of the shared counter (``newProcessorName``)."""
        name = f"{prefix}{self._index:010d}"
        self._index += 1
        return name

    def new_store_name(self, prefix: str) -> str:
        """``prefix`` + ``STATE-STORE-`` + the next number (``newStoreName``)."""
        return self.new_processor_name(prefix + STATE_STORE_NAME)

    def name_or_generate(self, named: str | None, prefix: str) -> str:
        """Your name if given, else a generated one; a number is used up either way."""
        generated = self.new_processor_name(prefix)
        if named is None:
            return generated
        if not isinstance(named, str) or not named:
            raise TopologyError(f"A processor name must be a non-empty str, got {named!r}.")
        return named

    def stream(self, topics: str | Iterable[str] | re.Pattern[str], *,
               named: str | None = None) -> KStream:
        """A KStream of the records of one topic, several topics, or every topic matching a
        compiled regex."""
        if isinstance(topics, str | re.Pattern):
            topic_list: list[str | re.Pattern[str]] = [topics]
        else:
            topic_list = list(topics)
        name = self.name_or_generate(named, SOURCE_NAME)
        existing = self._same_source(topic_list)
        if existing is not None:  # InternalStreamsBuilder.mergeDuplicateSourceNodes
            return KStream(self, existing, repartition_required=False)
        self.topology.add_source(name, *topic_list)
        return KStream(self, name, repartition_required=False)

    def _same_source(self, topics: list[str | re.Pattern[str]]) -> str | None:
        """A source already reading exactly ``topics`` (Kafka merges the two), else None."""
        for node in self.topology.nodes.values():
            if node.kind != "source" or node.is_global:
                continue
            if node.pattern is not None:
                if len(topics) == 1 and isinstance(topics[0], re.Pattern) and (
                        (topics[0].pattern, topics[0].flags)
                        == (node.pattern.pattern, node.pattern.flags)):
                    return node.name
                continue
            if list(node.topics) == topics:
                return node.name
            if set(node.topics) & {t for t in topics if isinstance(t, str)}:
                raise TopologyError("Invalid topology: Two source nodes are subscribed to "
                                    f"overlapping but not equal input topics ({list(node.topics)} "
                                    f"and {topics}).")
        return None

    def table(self, topic: str, materialized: Materialized | None = None) -> KTable:
        """A KTable of ``topic``: each record upserts its key. With ``Materialized.as_(name)``
        the table is kept in a store of that name (queryable in the test driver)."""
        store_name = self._table_store_name(topic, materialized)
        source = self.new_processor_name(SOURCE_NAME)
        table_source = self.new_processor_name(TABLE_SOURCE_NAME)
        queryable = materialized is not None and materialized.store_name is not None
        table = KTable(self, table_source, store_name if queryable else None,
                       reserved_store=store_name)
        self.topology.add_source(source, topic)
        # the store is read when tasks are made: a later join may have materialized the table
        self.topology.add_processor(table_source, lambda: KTableSource(table.store_name), source)
        if queryable:
            self.topology.add_state_store(StoreBuilder(store_name, "key_value", timestamped=True),
                                          table_source)
        return table

    def global_table(self, topic: str, materialized: Materialized | None = None) -> GlobalKTable:
        """A table of the whole of ``topic`` on every instance; always kept in a store."""
        store_name = self._table_store_name(topic, materialized)
        source = self.new_processor_name(SOURCE_NAME)
        processor = self.new_processor_name(TABLE_SOURCE_NAME)
        self.topology.add_global_store(StoreBuilder(store_name, "key_value",
                                                    logging_enabled=False, timestamped=True),
                                       source, topic, processor,
                                       lambda: KTableSource(store_name))
        return GlobalKTable(store_name)

    def _table_store_name(self, topic: str, materialized: Materialized | None) -> str:
        if materialized is not None and not isinstance(materialized, Materialized):
            raise TopologyError(f"materialized must be Materialized.as_(name), got "
                                f"{materialized!r}.")
        if materialized is not None and materialized.store_name is not None:
            return materialized.store_name
        return self.new_store_name(f"{topic}-")

    def add_state_store(self, store_builder: StoreBuilder) -> StreamsBuilder:
        """Add a store for ``KStream.process(supplier, store_name)`` to use."""
        self.topology.add_state_store(store_builder)
        return self

    def build(self) -> Topology:
        """The topology built so far."""
        return self.topology
