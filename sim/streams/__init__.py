"""Kafka Streams in the lab: the DSL, the Processor API, ``describe()`` and a test driver.

Build a topology with :class:`StreamsBuilder` (or by hand with :class:`Topology`), print it with
``topology.describe()`` and run it record by record with :class:`TopologyTestDriver`::

    builder = StreamsBuilder()
    builder.stream("payment").filter(lambda key, value: key == "unknown").to("unknown-payment")
    print(builder.build().describe())

Names follow Kafka Streams 4.0 in snake_case (``flat_map_values``, ``group_by_key``,
``Materialized.as_``). Modules: ``builder`` / ``kstream`` / ``ktable`` / ``kgrouped`` (the DSL),
``operations`` / ``sliding`` / ``suppress`` (the processors behind it), ``processor`` (the
Processor API), ``topology`` / ``description`` (the graph and ``describe()``), ``repartition``,
``windows``, ``stores``, ``task`` (one task's processing, reused by the simulated runtime),
``test_driver`` and ``config``.
"""

from typing import Any

from sim.streams.builder import StreamsBuilder
from sim.streams.config import StreamsConfig
from sim.streams.description import TopologyDescription
from sim.streams.kafka_streams import KafkaStreams, KeyQueryMetadata
from sim.streams.kgrouped import KGroupedStream, SessionWindowedKStream, TimeWindowedKStream
from sim.streams.kstream import BranchedKStream, KStream
from sim.streams.ktable import GlobalKTable, KTable
from sim.streams.materialized import (
    Branched,
    Grouped,
    Joined,
    Materialized,
    Repartitioned,
    StreamJoined,
    TableJoined,
)
from sim.streams.processor import Cancellable, Processor, ProcessorContext, PunctuationType, Record
from sim.streams.stores import KeyValueStore, SessionStore, StoreBuilder, Stores, WindowStore
from sim.streams.suppress import BufferConfig, Suppressed
from sim.streams.test_driver import TestInputTopic, TestOutputTopic, TestRecord, TopologyTestDriver
from sim.streams.topology import Topology
from sim.streams.windows import (
    JoinWindows,
    SessionWindow,
    SessionWindows,
    SlidingWindows,
    TimeWindow,
    TimeWindows,
    Windowed,
)

__all__ = [
    "Branched",
    "BranchedKStream",
    "BufferConfig",
    "Cancellable",
    "GlobalKTable",
    "Grouped",
    "JoinWindows",
    "Joined",
    "KGroupedStream",
    "KStream",
    "KTable",
    "KafkaStreams",
    "KeyQueryMetadata",
    "KeyValueStore",
    "Materialized",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "Record",
    "Repartitioned",
    "SessionStore",
    "SessionWindow",
    "SessionWindowedKStream",
    "SessionWindows",
    "SlidingWindows",
    "StoreBuilder",
    "Stores",
    "StreamJoined",
    "StreamsBuilder",
    "StreamsConfig",
    "Suppressed",
    "TableJoined",
    "TestInputTopic",
    "TestOutputTopic",
    "TestRecord",
    "TimeWindow",
    "TimeWindowedKStream",
    "TimeWindows",
    "Topology",
    "TopologyDescription",
    "TopologyTestDriver",
    "WindowStore",
    "Windowed",
    "draw_topology",
]


def __getattr__(name: str) -> Any:
    """``draw_topology`` needs matplotlib: import it on first use, not with ``sim``."""
    if name == "draw_topology":
        from sim.streams.drawing import draw_topology

        return draw_topology
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
