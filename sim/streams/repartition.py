"""Repartition topics: how a stream whose key may have changed is re-keyed across tasks.

Mirrors ``KStreamImpl.createRepartitionedSource`` and ``OptimizableRepartitionNode``. The stream
is written to ``<name>-repartition`` (named in ``describe()`` without the application id; the
broker topic is ``<application.id>-<name>-repartition``) through a pass-through filter and a
sink, and read back by a new source, which starts a new sub-topology. ``<name>`` is the store or
``Grouped`` name for a grouping, the stream's (or ``Joined``) name for a join. Three names are
drawn from the counter every time, even when an existing repartition is reused; when ``<name>``
is a generated one they become the node names, otherwise ``<topic>-sink``, ``-filter`` and
``-source``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.streams.operations import PassThrough

if TYPE_CHECKING:
    from sim.streams.builder import StreamsBuilder

REPARTITION_TOPIC_SUFFIX = "-repartition"
_GENERATED = re.compile(r"KSTREAM.*-[0-9]{10}")


@dataclass(frozen=True)
class RepartitionNames:
    topic: str
    sink: str
    filter: str
    source: str


def repartition_names(builder: StreamsBuilder, prefix: str) -> RepartitionNames:
    """Draw the sink, filter and source names (in that order) for a repartition of ``prefix``."""
    topic = prefix if prefix.endswith(REPARTITION_TOPIC_SUFFIX) else (
        prefix + REPARTITION_TOPIC_SUFFIX)
    sink = builder.new_processor_name("KSTREAM-SINK-")
    null_filter = builder.new_processor_name("KSTREAM-FILTER-")
    source = builder.new_processor_name("KSTREAM-SOURCE-")
    if _GENERATED.fullmatch(prefix):
        return RepartitionNames(topic, sink, null_filter, source)
    return RepartitionNames(topic, f"{topic}-sink", f"{topic}-filter", f"{topic}-source")


def add_repartition(builder: StreamsBuilder, parent: str, names: RepartitionNames,
                    partitions: int | None = None) -> str:
    """Write filter → sink → topic → source below ``parent``; return the new source's name.
    ``partitions`` fixes the topic's partition count (``Repartitioned``); None lets the
    runtime choose it from the upstream source topics, as Kafka does."""
    topology = builder.topology
    if partitions is not None:
        topology.repartition_partitions[names.topic] = partitions
    topology.add_processor(names.filter, PassThrough, parent)
    topology.add_sink(names.sink, names.topic, names.filter)
    topology.add_source(names.source, names.topic)
    topology.internal_topics.append(names.topic)
    return names.source
