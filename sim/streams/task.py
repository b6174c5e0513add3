"""``StreamTask``: (part of) a topology with its own stores, stream time and punctuation.

Mirrors ``processor.internals.StreamTask``. A task takes records from its source topics one at a
time and pushes each depth-first through its processors; a sink hands records to the task's
``record_collector`` (a producer in a running application, a list in the test driver).

- **Stream time** is the largest timestamp among the records the task has processed; it never goes
  back, so an out-of-order record does not move it. Stream-time punctuators fire when it reaches
  their next scheduled time (the first one as soon as there is data: schedules are aligned to 0).
- **Wall-clock punctuators** fire when the task is told the wall-clock time has moved on; they
  are aligned to the time they were scheduled.
- ``metrics["dropped-records-total"]`` counts records a processor dropped (late or null-keyed):
  Kafka's ``dropped-records`` task sensor. ``node_metrics[name]`` counts the records each node
  processed and forwarded.
- **Record cache** (``enable_caching``, used by the runtime, never by the test driver): what an
  aggregation (or a materialized table source) forwards goes into the thread's cache and reaches
  the children when the cache is flushed (see ``record_cache``).
- ``listener(kind, node, detail, record)``, if given, hears every ``forward`` (with the record
  forwarded; kind ``flush`` when it comes out of the record cache) and ``punctuate`` (no record);
  ``on_cache_flush()``, if given, runs after the record cache forwarded records (the runtime
  writes the changelog then).
- ``stores``: stores made by the caller (the runtime builds persistent ones in the task's state
  directory, or hands over a standby's warm copies); the others are built in-memory.
- ``record_timestamp`` is the timestamp of the record being processed (``context.timestamp()``).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sim.errors import StreamsError
from sim.streams.processor import (
    Cancellable,
    Processor,
    ProcessorContext,
    PunctuationType,
    Punctuator,
    Record,
)
from sim.streams.record_cache import NamedCache, ThreadCache
from sim.streams.stores import StateStore
from sim.streams.topology import NodeFactory, Topology

RecordCollector = Callable[[str, Record], None]
"""Receives (topic, record) from every sink."""

TaskListener = Callable[[str, str, str, "Record | None"], None]
"""Hears (kind, node, detail, record) for each "forward" (detail: the child; "flush" while the
record cache forwards) and "punctuate" (record None)."""

CACHED_PROCESSORS = ("KStreamAggregate", "KStreamWindowAggregate",
                     "KStreamSessionWindowAggregate", "KStreamSlidingWindowAggregate",
                     "KTableSource")
"""Processors whose store is cached in Kafka's DSL (aggregations, materialized table sources)."""

UNKNOWN = -1
"""Stream time before the first record (``RecordQueue.UNKNOWN``)."""


@dataclass(order=True)
class _Schedule:
    """One scheduled punctuation (``PunctuationSchedule``)."""

    timestamp: int
    seq: int
    interval_ms: int = field(compare=False)
    node: str = field(compare=False)
    punctuator: Punctuator = field(compare=False)
    cancellable: Cancellable = field(compare=False)

    def next(self, now: int) -> int:
        """The next time, skipping punctuations missed in a gap of several intervals."""
        following = self.timestamp + self.interval_ms
        if now >= following:
            following = self.timestamp + ((now - self.timestamp) // self.interval_ms + 1) * \
                self.interval_ms
        return following


class _SinkProcessor(Processor):
    """What a sink node does: hand the record to the collector (``SinkNode``)."""

    def __init__(self, topic: str, collector: RecordCollector) -> None:
        self.topic = topic
        self.collector = collector

    def process(self, record: Record) -> None:
        self.collector(self.topic, record)


class _PassThrough(Processor):
    """What a source node does once the record is read: pass it on (``SourceNode``)."""

    def process(self, record: Record) -> None:
        self.context.forward(record)


class StreamTask(ProcessorContext):
    """The nodes ``node_names`` of ``topology`` (default: all), processing as task ``task_id``."""

    def __init__(self, topology: Topology, application_id: str, record_collector: RecordCollector,
                 task_id: str = "0_0", node_names: Iterable[str] | None = None,
                 wall_clock_ms: int = 0,
                 global_stores: dict[str, StateStore] | None = None,
                 stores: dict[str, StateStore] | None = None) -> None:
        self.topology = topology
        self.application_id = application_id
        self.task_id = task_id
        self.stream_time = UNKNOWN
        self.wall_clock_ms = wall_clock_ms
        self.metrics: dict[str, int] = {"dropped-records-total": 0, "process-total": 0,
                                        "punctuate-total": 0}
        self.listener: TaskListener | None = None
        self.on_cache_flush: Callable[[], None] | None = None
        self.record_timestamp = 0
        self._caches: dict[str, NamedCache] = {}
        self._thread_cache: ThreadCache | None = None
        names = list(topology.nodes) if node_names is None else list(node_names)
        self.node_metrics: dict[str, list[int]] = {n: [0, 0] for n in names}  # in, out
        self._factories: dict[str, NodeFactory] = {n: topology.nodes[n] for n in names}
        self._children = {n: [c for c in topology.children(n) if c in self._factories]
                          for n in names}
        self.global_stores = dict(global_stores or {})
        self.stores: dict[str, StateStore] = dict(stores or {})
        for factory in self._factories.values():
            for store in factory.stores:
                if store not in self.stores:
                    self.stores[store] = topology.store_builders[store].build()
        self._processors: dict[str, Processor] = {}
        for name, factory in self._factories.items():
            self._processors[name] = self._make_processor(factory, record_collector)
        self._queues: dict[PunctuationType, list[_Schedule]] = {t: [] for t in PunctuationType}
        self._seq = 0
        self._current: str | None = None
        self.flushing = False  # the record cache is forwarding (a commit or an eviction)
        for name, processor in self._processors.items():
            self._current = name
            processor.init(self)
        self._current = None

    def _make_processor(self, factory: NodeFactory, collector: RecordCollector) -> Processor:
        if factory.kind == "sink":
            return _SinkProcessor(factory.topic, collector)
        if factory.kind == "source":
            return _PassThrough()
        assert factory.supplier is not None
        processor = factory.supplier()
        if not isinstance(processor, Processor):
            raise StreamsError(f"The supplier of processor {factory.name} returned "
                               f"{processor!r}, not a Processor; pass the class or a function "
                               "returning a new instance.")
        return processor

    # -- processing -------------------------------------------------------------------------

    def source_for(self, topic: str) -> str | None:
        """The source node of this task reading ``topic``, or None."""
        for name, factory in self._factories.items():
            if factory.kind != "source":
                continue
            if topic in factory.topics or (factory.pattern and re.fullmatch(factory.pattern,
                                                                              topic)):
                return name
        return None

    def process(self, topic: str, record: Record) -> None:
        """Process one record read from ``topic``, then fire due stream-time punctuators."""
        source = self.source_for(topic)
        if source is None:
            raise StreamsError(f"Task {self.task_id} has no source for topic {topic}.")
        self.stream_time = max(self.stream_time, record.timestamp)
        self.record_timestamp = record.timestamp
        self.metrics["process-total"] += 1
        self._run(source, record)
        self.maybe_punctuate_stream_time()

    def _run(self, name: str, record: Record) -> None:
        self.node_metrics[name][0] += 1
        previous = self._current
        self._current = name
        try:
            self._processors[name].process(record)
        finally:
            self._current = previous

    def forward(self, record: Record, child_name: str | None = None) -> None:
        """Send ``record`` to every child of the current node, or only to ``child_name``."""
        if not isinstance(record, Record):
            raise StreamsError(f"forward() takes a Record, got {record!r}; build one with "
                               "Record(key, value, timestamp) or record.with_value(...).")
        current = self._require_current("forward")
        children = self._children[current]
        if child_name is not None:
            if child_name not in children:
                raise StreamsError(f"Unknown downstream node: {child_name} either does not "
                                   f"exist or is not connected to this processor ({current}); "
                                   f"its children are {children}.")
            children = [child_name]
        cache = self._caches.get(current)
        if cache is not None and self._thread_cache is not None:
            self._thread_cache.put(cache, record)
            return
        self._forward_to(current, children, record)

    def _forward_to(self, node: str, children: list[str], record: Record) -> None:
        self.node_metrics[node][1] += 1
        for child in children:
            if self.listener is not None:
                self.listener("flush" if self.flushing else "forward", node, child, record)
            self._run(child, record)

    # -- the record cache -------------------------------------------------------------------

    def enable_caching(self, thread_cache: ThreadCache) -> None:
        """Put ``thread_cache`` in front of this task's aggregations and materialized tables."""
        if not thread_cache.enabled:
            return
        self._thread_cache = thread_cache
        for name, processor in self._processors.items():
            kind = type(processor).__name__
            if kind in CACHED_PROCESSORS and (kind != "KTableSource"
                                              or getattr(processor, "store", None) is not None):
                self._caches[name] = thread_cache.named(
                    f"{self.task_id}-{name}", lambda records, node=name: self._flushed(node,
                                                                                       records))

    def _flushed(self, node: str, records: list[Record]) -> None:
        previous, self._current = self._current, node
        flushing, self.flushing = self.flushing, True
        try:
            for record in records:
                self._forward_to(node, self._children[node], record)
        finally:
            self._current = previous
            self.flushing = flushing
        if self.on_cache_flush is not None:
            self.on_cache_flush()

    def flush_cache(self) -> int:
        """Forward what the cache holds for this task (at commit); returns how many records."""
        return sum(cache.flush() for cache in self._caches.values())

    def get_state_store(self, name: str) -> StateStore:
        current = self._require_current("get_state_store")
        if name in self.global_stores and name not in self._factories[current].stores:
            return self.global_stores[name]  # every processor may read a global store
        if name not in self._factories[current].stores:
            raise StreamsError(f"Processor {current} has no access to StateStore {name} as the "
                               "store is not connected to the processor; connect it with "
                               "add_state_store(builder, processor) or "
                               "connect_processor_and_state_stores.")
        return self.stores[name]

    def _require_current(self, what: str) -> str:
        if self._current is None:
            raise StreamsError(f"{what}() can only be called from a processor's init, process "
                               "or punctuator.")
        return self._current

    @property
    def current_node(self) -> str | None:
        """The node whose ``process`` (or punctuator) is running now, if any."""
        return self._current

    def current_stream_time_ms(self) -> int:
        return self.stream_time

    def current_system_time_ms(self) -> int:
        return self.wall_clock_ms

    def record_dropped(self) -> None:
        """Count a record a processor dropped (Kafka's ``dropped-records`` sensor)."""
        self.metrics["dropped-records-total"] += 1

    # -- punctuation ------------------------------------------------------------------------

    def schedule(self, interval_ms: int, type: PunctuationType,
                 punctuator: Punctuator) -> Cancellable:
        current = self._require_current("schedule")
        if not isinstance(interval_ms, int) or interval_ms < 1:
            raise StreamsError(f"The minimum supported scheduling interval is 1 millisecond, "
                               f"got {interval_ms!r}.")
        if not isinstance(type, PunctuationType):
            raise StreamsError(f"Unrecognized PunctuationType: {type!r}; use "
                               "PunctuationType.STREAM_TIME or WALL_CLOCK_TIME.")
        start = 0 if type is PunctuationType.STREAM_TIME else self.wall_clock_ms + interval_ms
        cancellable = Cancellable()
        self._push(type, start, interval_ms, current, punctuator, cancellable)
        return cancellable

    def _push(self, type_: PunctuationType, at: int, interval_ms: int, node: str,
              punctuator: Punctuator, cancellable: Cancellable) -> None:
        self._seq += 1
        heapq.heappush(self._queues[type_],
                       _Schedule(at, self._seq, interval_ms, node, punctuator, cancellable))

    def maybe_punctuate_stream_time(self) -> bool:
        if self.stream_time == UNKNOWN:
            return False
        return self._punctuate(PunctuationType.STREAM_TIME, self.stream_time)

    def maybe_punctuate_system_time(self, wall_clock_ms: int) -> bool:
        self.wall_clock_ms = max(self.wall_clock_ms, wall_clock_ms)
        return self._punctuate(PunctuationType.WALL_CLOCK_TIME, self.wall_clock_ms)

    def _punctuate(self, type_: PunctuationType, now: int) -> bool:
        queue = self._queues[type_]
        punctuated = False
        while queue and queue[0].timestamp <= now:
            schedule = heapq.heappop(queue)
            if schedule.cancellable.cancelled:
                continue
            previous, self._current = self._current, schedule.node
            if self.listener is not None:
                self.listener("punctuate", schedule.node, f"{type_.value}@{now}", None)
            try:
                schedule.punctuator(now)
            finally:
                self._current = previous
            self.metrics["punctuate-total"] += 1
            punctuated = True
            if not schedule.cancellable.cancelled:
                self._push(type_, schedule.next(now), schedule.interval_ms, schedule.node,
                           schedule.punctuator, schedule.cancellable)
        return punctuated

    def close(self) -> None:
        self.flush_cache()
        if self._thread_cache is not None:
            for cache in self._caches.values():
                self._thread_cache.remove(cache.name)
        for processor in self._processors.values():
            processor.close()
        for store in self.stores.values():
            store.close()

    def processor(self, name: str) -> Processor:
        return self._processors[name]
