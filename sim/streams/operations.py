"""The processors behind the DSL's operations (``KStreamFilter``, ``KStreamAggregate``, …).

Each class mirrors the Kafka class of the same name in ``kstream.internals``. Between KTable
operations values travel as :class:`Change` (new value, old value); a KTable turned back into a
stream (``to_stream``) emits the new value. With the record cache at 0 (the test driver), every
update of an aggregation is forwarded at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sim.errors import StreamsError
from sim.streams.processor import Processor, Record
from sim.streams.stores import KeyValueStore, SessionStore, ValueAndTimestamp, WindowStore
from sim.streams.windows import SessionWindow, SessionWindows, TimeWindows, Windowed


@dataclass(frozen=True)
class Change:
    """A KTable update travelling between table operations (``Change``)."""

    new_value: Any
    old_value: Any = None


def _pair(result: Any, what: str) -> tuple[Any, Any]:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise StreamsError(f"The mapper of {what} must return a (key, value) pair, got "
                           f"{result!r}.")
    return result


def _iterable(result: Any, what: str) -> Iterable[Any]:
    """A flat-map result must be a collection; a str would be split into characters."""
    if isinstance(result, str | bytes) or not isinstance(result, Iterable):
        raise StreamsError(f"The mapper of {what} must return a list (or other iterable) of "
                           f"results, got {result!r}; wrap a single result as [result].")
    return result


def _drop(processor: Processor) -> None:
    processor.context.record_dropped()  # type: ignore[attr-defined]


class KStreamFilter(Processor):
    """filter / filter_not: forward records whose predicate is true (false with ``negate``)."""

    def __init__(self, predicate: Callable[[Any, Any], bool], negate: bool = False) -> None:
        self.predicate = predicate
        self.negate = negate

    def process(self, record: Record) -> None:
        if bool(self.predicate(record.key, record.value)) != self.negate:
            self.context.forward(record)


class KStreamMap(Processor):
    """map: ``mapper(key, value) -> (new_key, new_value)``."""

    def __init__(self, mapper: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        key, value = _pair(self.mapper(record.key, record.value), "map")
        self.context.forward(record.with_key(key).with_value(value))


class KStreamSelectKey(Processor):
    """select_key: ``mapper(key, value) -> new_key`` (``KStreamImpl.internalSelectKey``)."""

    def __init__(self, mapper: Callable[[Any, Any], Any]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        self.context.forward(record.with_key(self.mapper(record.key, record.value)))


class KStreamMapValues(Processor):
    """map_values: ``mapper(value) -> new_value``; the key is untouched."""

    def __init__(self, mapper: Callable[[Any], Any]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        self.context.forward(record.with_value(self.mapper(record.value)))


class KStreamFlatMap(Processor):
    """flat_map: ``mapper(key, value) -> iterable of (key, value)``, each forwarded in order."""

    def __init__(self, mapper: Callable[[Any, Any], Iterable[tuple[Any, Any]]]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        for pair in _iterable(self.mapper(record.key, record.value), "flat_map"):
            key, value = _pair(pair, "flat_map")
            self.context.forward(record.with_key(key).with_value(value))


class KStreamFlatMapValues(Processor):
    """flat_map_values: ``mapper(value) -> iterable of values``, each forwarded in order."""

    def __init__(self, mapper: Callable[[Any], Iterable[Any]]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        for value in _iterable(self.mapper(record.value), "flat_map_values"):
            self.context.forward(record.with_value(value))


class KStreamPeek(Processor):
    """peek (forwards) and foreach (a terminal peek): call ``action(key, value)``."""

    def __init__(self, action: Callable[[Any, Any], None], forward: bool = True) -> None:
        self.action = action
        self.forward_downstream = forward

    def process(self, record: Record) -> None:
        self.action(record.key, record.value)
        if self.forward_downstream:
            self.context.forward(record)


class KStreamBranch(Processor):
    """split().branch(...): send a record to the first branch whose predicate holds, else to
    the default branch if there is one (``KStreamBranch``). Lists fill as branches are added."""

    def __init__(self, predicates: list[Callable[[Any, Any], bool]],
                 child_names: list[str]) -> None:
        self.predicates = predicates
        self.child_names = child_names

    def process(self, record: Record) -> None:
        for index, predicate in enumerate(self.predicates):
            if predicate(record.key, record.value):
                self.context.forward(record, self.child_names[index])
                return
        if len(self.child_names) > len(self.predicates):  # the default branch is last
            self.context.forward(record, self.child_names[-1])


class PassThrough(Processor):
    """Forward every record unchanged (branch children, merge)."""

    def process(self, record: Record) -> None:
        self.context.forward(record)


class KStreamAggregate(Processor):
    """count / aggregate / reduce per key into a timestamped key-value store.

    ``initializer`` is None for reduce (the first value is the aggregate). Records with a None
    key or value are dropped and counted. The output timestamp is the largest timestamp of the
    records aggregated so far.
    """

    def __init__(self, store_name: str, initializer: Callable[[], Any] | None,
                 aggregator: Callable[[Any, Any, Any], Any]) -> None:
        self.store_name = store_name
        self.initializer = initializer
        self.aggregator = aggregator

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: KeyValueStore = context.get_state_store(self.store_name)

    def process(self, record: Record) -> None:
        if record.key is None or record.value is None:
            _drop(self)
            return
        old: ValueAndTimestamp | None = self.store.get(record.key)
        if old is None:
            timestamp = record.timestamp
            if self.initializer is None:
                new = record.value
            else:
                new = self.aggregator(record.key, record.value, self.initializer())
        else:
            timestamp = max(record.timestamp, old.timestamp)
            new = self.aggregator(record.key, record.value, old.value)
        self.store.put(record.key, ValueAndTimestamp(new, timestamp))
        self.context.forward(record.with_value(Change(new, None if old is None else old.value))
                             .with_timestamp(timestamp))


class KStreamWindowAggregate(Processor):
    """Windowed count / aggregate / reduce (``KStreamWindowAggregate``).

    The processor keeps its own observed stream time. For each window of the record, if the
    window's end is after ``stream time - grace`` it is updated and forwarded; otherwise the
    window is closed and the record is dropped for it and counted in ``dropped-records``.
    """

    def __init__(self, store_name: str, windows: TimeWindows,
                 initializer: Callable[[], Any] | None,
                 aggregator: Callable[[Any, Any, Any], Any]) -> None:
        self.store_name = store_name
        self.windows = windows
        self.initializer = initializer
        self.aggregator = aggregator
        self.observed_stream_time = -1

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: WindowStore = context.get_state_store(self.store_name)

    def process(self, record: Record) -> None:
        if record.key is None:
            _drop(self)
            return
        self.observed_stream_time = max(self.observed_stream_time, record.timestamp)
        close_time = self.observed_stream_time - self.windows.grace_ms
        for window in self.windows.windows_for(record.timestamp):
            if window.end_ms <= close_time:
                _drop(self)
                continue
            old: ValueAndTimestamp | None = self.store.fetch(record.key, window.start_ms)
            if old is None:
                timestamp = record.timestamp
                if self.initializer is None:
                    new = record.value
                else:
                    new = self.aggregator(record.key, record.value, self.initializer())
            else:
                timestamp = max(record.timestamp, old.timestamp)
                new = self.aggregator(record.key, record.value, old.value)
            self.store.put(record.key, ValueAndTimestamp(new, timestamp), window.start_ms)
            self.context.forward(Record(Windowed(record.key, window), Change(new), timestamp,
                                        record.headers))


class KStreamSessionWindowAggregate(Processor):
    """Session count / aggregate / reduce (``KStreamSessionWindowAggregate``).

    A record at ``t`` merges every session of its key that ends at or after ``t - gap`` and
    starts at or before ``t + gap``: the merged sessions are deleted (forwarded as
    ``(Windowed, None)``) and the merged one is written and forwarded with its end as timestamp.
    If the merged session ends before stream time − grace − gap, the record is dropped and
    counted. ``initializer`` None means reduce: the first value is the aggregate.
    """

    def __init__(self, store_name: str, windows: SessionWindows,
                 initializer: Callable[[], Any] | None,
                 aggregator: Callable[[Any, Any, Any], Any],
                 merger: Callable[[Any, Any, Any], Any]) -> None:
        self.store_name = store_name
        self.windows = windows
        self.initializer = initializer
        self.aggregator = aggregator
        self.merger = merger
        self.observed_stream_time = -(2**63)

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: SessionStore = context.get_state_store(self.store_name)

    def process(self, record: Record) -> None:
        if record.key is None:
            _drop(self)
            return
        t = record.timestamp
        self.observed_stream_time = max(self.observed_stream_time, t)
        close_time = self.observed_stream_time - self.windows.grace_ms - self.windows.gap_ms
        merged = self.store.find_sessions(record.key, t - self.windows.gap_ms,
                                          t + self.windows.gap_ms)
        start, end = t, t
        agg = None if self.initializer is None else self.initializer()
        for session, value in merged:
            agg = value if agg is None else self.merger(record.key, agg, value)
            start = min(start, session.window.start_ms)
            end = max(end, session.window.end_ms)
        if end < close_time:
            _drop(self)
            return
        if (start, end) != (t, t):
            for session, _ in merged:
                self.store.remove(session)
                self.context.forward(Record(session, Change(None), session.window.end_ms,
                                            record.headers))
        agg = record.value if agg is None else self.aggregator(record.key, record.value, agg)
        key = Windowed(record.key, SessionWindow(start, end))
        self.store.put(key, agg)
        self.context.forward(Record(key, Change(agg), end, record.headers))


class KStreamKTableJoin(Processor):
    """A stream joined with a table (``KStreamKTableJoinProcessor``): each stream record looks up
    the table's current value for its key (or ``key_mapper(key, value)`` for a GlobalKTable) and
    forwards ``joiner(value, table_value)``. An inner join forwards only when the table has the
    key; a left join always (table value None). Records with a None value, or a None lookup key
    in an inner join, are dropped and counted."""

    def __init__(self, lookup: Callable[[Any, Any], Any], joiner: Callable[[Any, Any], Any],
                 left: bool, key_mapper: Callable[[Any, Any], Any] | None = None) -> None:
        self.lookup = lookup
        self.joiner = joiner
        self.left = left
        self.key_mapper = key_mapper

    def process(self, record: Record) -> None:
        mapped = record.key if self.key_mapper is None else self.key_mapper(record.key,
                                                                            record.value)
        keep_null_key = self.left and record.key is None and record.value is not None
        if not keep_null_key and (mapped is None or record.value is None):
            _drop(self)
            return
        other = None if mapped is None else self.lookup(self.context, mapped)
        if self.left or other is not None:
            self.context.forward(record.with_value(self.joiner(record.value, other)))


class KStreamJoinWindow(Processor):
    """One side of a stream–stream join (``KStreamJoinWindow``): pass the record on to the
    join, then remember it in this side's window store."""

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: WindowStore = context.get_state_store(self.store_name)

    def process(self, record: Record) -> None:
        self.context.forward(record)
        if record.key is not None:
            self.store.put(record.key, record.value, record.timestamp)


class KTableSource(Processor):
    """A table read from a topic: each record upserts its key, a None value deletes it.

    With a store (``Materialized.as_``) the table is kept in it. Null keys are dropped.
    """

    def __init__(self, store_name: str | None) -> None:
        self.store_name = store_name

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: KeyValueStore | None = (
            context.get_state_store(self.store_name) if self.store_name else None)

    def process(self, record: Record) -> None:
        if record.key is None:
            _drop(self)
            return
        old = None
        if self.store is not None:
            previous = self.store.get(record.key)
            old = previous.value if previous is not None else None
            self.store.put(record.key, None if record.value is None else
                           ValueAndTimestamp(record.value, record.timestamp))
        self.context.forward(record.with_value(Change(record.value, old)))


class KTableTransform(Processor):
    """KTable filter / map_values (``KTableFilter``, ``KTableMapValues``): compute the new value
    from the update; a filtered-out row becomes a delete (None). With a store, keep the result."""

    def __init__(self, compute: Callable[[Any, Any], Any], store_name: str | None) -> None:
        self.compute = compute
        self.store_name = store_name

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: KeyValueStore | None = (
            context.get_state_store(self.store_name) if self.store_name else None)

    def process(self, record: Record) -> None:
        change: Change = record.value
        new = None if change.new_value is None else self.compute(record.key, change.new_value)
        old = None if change.old_value is None else self.compute(record.key, change.old_value)
        if self.store is not None:
            self.store.put(record.key, None if new is None else
                           ValueAndTimestamp(new, record.timestamp))
        self.context.forward(record.with_value(Change(new, old)))


class KTableKTableJoin(Processor):
    """One side of a table–table join: on an update, look up the other table and forward the
    joined (new, old) values. ``mode`` is Kafka's processor for this side:

    - ``"inner"`` (``KTableKTableInnerJoin``): nothing unless the other table has the key.
    - ``"left"`` (``KTableKTableLeftJoin``, this side of a left join, and both sides of an
      ``"outer"`` join, ``KTableKTableOuterJoin``): a missing other row joins as None; a delete
      of a row that did not exist (no old value) is dropped.
    - ``"right"`` (``KTableKTableRightJoin``, the other side of a left join): nothing unless the
      left table has the key; a delete here re-joins the left row with None.

    ``joiner(this_value, other_value)`` (the other side is given the reversed joiner). The
    result has the later of the two timestamps. Null keys are dropped and counted.
    """

    def __init__(self, lookup_other: Callable[[Any, Any], ValueAndTimestamp | None],
                 joiner: Callable[[Any, Any], Any], mode: str = "inner") -> None:
        self.lookup_other = lookup_other
        self.joiner = joiner
        self.mode = mode

    def process(self, record: Record) -> None:
        if record.key is None:
            _drop(self)
            return
        change: Change = record.value
        other = self.lookup_other(self.context, record.key)
        other_value = None if other is None else other.value
        if other is None:
            if self.mode in ("inner", "right"):
                return
            if change.new_value is None and change.old_value is None:
                return
        timestamp = record.timestamp if other is None else max(record.timestamp,
                                                                 other.timestamp)
        new = old = None
        if self.mode == "right":
            new = self.joiner(change.new_value, other_value)
            old = self.joiner(change.old_value, other_value)
        elif self.mode == "outer":
            if other is not None or change.new_value is not None:
                new = self.joiner(change.new_value, other_value)
            if other is not None or change.old_value is not None:
                old = self.joiner(change.old_value, other_value)
        else:
            if change.new_value is not None:
                new = self.joiner(change.new_value, other_value)
            if change.old_value is not None:
                old = self.joiner(change.old_value, other_value)
        self.context.forward(record.with_value(Change(new, old)).with_timestamp(timestamp))


class KTableKTableJoinMerger(Processor):
    """Where the two sides of a table–table join meet (``KTableKTableJoinMerger``); keeps the
    result in a store when it is materialized."""

    def __init__(self, store_name: str | None) -> None:
        self.store_name = store_name

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: KeyValueStore | None = (
            context.get_state_store(self.store_name) if self.store_name else None)

    def process(self, record: Record) -> None:
        if self.store is not None:
            change: Change = record.value
            self.store.put(record.key, None if change.new_value is None else
                           ValueAndTimestamp(change.new_value, record.timestamp))
        self.context.forward(record)


class KTableToStream(Processor):
    """to_stream: a KTable's updates as a stream of (key, new value)."""

    def process(self, record: Record) -> None:
        change: Change = record.value
        self.context.forward(record.with_value(change.new_value))
