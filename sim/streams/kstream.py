"""``KStream``: a record stream and its operations, as in Kafka's ``KStream`` / ``KStreamImpl``.

Every operation adds one processor below this stream's node and returns a new KStream. Functions
take Python arguments: predicates, ``map``, ``select_key``, ``flat_map``, ``peek`` and ``foreach``
get ``(key, value)``; ``map_values`` and ``flat_map_values`` get the value. ``map`` returns a
``(key, value)`` tuple; ``flat_map`` an iterable of them.

**Joins.** ``join`` / ``left_join`` with a KTable (the table's current value per key) or a
GlobalKTable (any key derived from the record); ``join`` / ``left_join`` / ``outer_join`` with
another KStream within ``JoinWindows`` (unmatched records wait until their window closes).

**Repartitioning.** An operation that may change the key (``map``, ``flat_map``, ``select_key``,
``process``) marks the stream; a later ``group_by_key`` / ``group_by`` then sends records through
a repartition topic ``<application.id>-<name>-repartition`` so that all records of a key meet in
one task, as Kafka does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sim.errors import TopologyError
from sim.streams.ktable import GlobalKTable, KTable
from sim.streams.materialized import (
    Branched,
    Grouped,
    Joined,
    Materialized,
    Repartitioned,
    StreamJoined,
)
from sim.streams.operations import (
    KStreamBranch,
    KStreamFilter,
    KStreamFlatMap,
    KStreamFlatMapValues,
    KStreamJoinWindow,
    KStreamKTableJoin,
    KStreamMap,
    KStreamMapValues,
    KStreamPeek,
    KStreamSelectKey,
    PassThrough,
)

if TYPE_CHECKING:
    from sim.streams.builder import StreamsBuilder
    from sim.streams.kgrouped import KGroupedStream
    from sim.streams.topology import ProcessorSupplier

FILTER_NAME = "KSTREAM-FILTER-"
MAP_NAME = "KSTREAM-MAP-"
MAPVALUES_NAME = "KSTREAM-MAPVALUES-"
FLATMAP_NAME = "KSTREAM-FLATMAP-"
FLATMAPVALUES_NAME = "KSTREAM-FLATMAPVALUES-"
KEY_SELECT_NAME = "KSTREAM-KEY-SELECT-"
PEEK_NAME = "KSTREAM-PEEK-"
FOREACH_NAME = "KSTREAM-FOREACH-"
MERGE_NAME = "KSTREAM-MERGE-"
SINK_NAME = "KSTREAM-SINK-"
BRANCH_NAME = "KSTREAM-BRANCH-"
PROCESSOR_NAME = "KSTREAM-PROCESSOR-"
JOIN_NAME = "KSTREAM-JOIN-"
REPARTITION_NAME = "KSTREAM-REPARTITION-"
WINDOWED_NAME = "KSTREAM-WINDOWED-"
TO_KTABLE_NAME = "KSTREAM-TOTABLE-"
JOINTHIS_NAME = "KSTREAM-JOINTHIS-"
JOINOTHER_NAME = "KSTREAM-JOINOTHER-"
LEFTJOIN_NAME = "KSTREAM-LEFTJOIN-"
OUTERTHIS_NAME = "KSTREAM-OUTERTHIS-"
OUTEROTHER_NAME = "KSTREAM-OUTEROTHER-"
OUTERSHARED_NAME = "KSTREAM-OUTERSHARED-"


def _check_function(function: Any, operation: str) -> None:
    if not callable(function):
        raise TopologyError(f"{operation}() needs a function, got {function!r}.")


class KStream:
    """A stream of independent records (``KStream``)."""

    def __init__(self, builder: StreamsBuilder, name: str, repartition_required: bool) -> None:
        self.builder = builder
        self.name = name
        self.repartition_required = repartition_required
        self._join_repartition: str | None = None  # source of this stream's join repartition

    def _add(self, prefix: str, supplier: ProcessorSupplier, named: str | None,
             repartition_required: bool | None = None, parents: tuple[str, ...] = ()) -> KStream:
        name = self.builder.name_or_generate(named, prefix)
        self.builder.topology.add_processor(name, supplier, self.name, *parents)
        if repartition_required is None:
            repartition_required = self.repartition_required
        return KStream(self.builder, name, repartition_required)

    def filter(self, predicate: Callable[[Any, Any], bool], *, named: str | None = None
               ) -> KStream:
        """Keep the records for which ``predicate(key, value)`` is true."""
        _check_function(predicate, "filter")
        return self._add(FILTER_NAME, lambda: KStreamFilter(predicate), named)

    def filter_not(self, predicate: Callable[[Any, Any], bool], *, named: str | None = None
                   ) -> KStream:
        """Drop the records for which ``predicate(key, value)`` is true."""
        _check_function(predicate, "filter_not")
        return self._add(FILTER_NAME, lambda: KStreamFilter(predicate, negate=True), named)

    def map(self, mapper: Callable[[Any, Any], tuple[Any, Any]], *, named: str | None = None
            ) -> KStream:
        """Replace each record by ``mapper(key, value) -> (key, value)``; may change the key."""
        _check_function(mapper, "map")
        return self._add(MAP_NAME, lambda: KStreamMap(mapper), named, repartition_required=True)

    def map_values(self, mapper: Callable[[Any], Any], *, named: str | None = None) -> KStream:
        """Replace each value by ``mapper(value)``; the key stays, so no repartitioning."""
        _check_function(mapper, "map_values")
        return self._add(MAPVALUES_NAME, lambda: KStreamMapValues(mapper), named)

    def flat_map(self, mapper: Callable[[Any, Any], Iterable[tuple[Any, Any]]], *,
                 named: str | None = None) -> KStream:
        """Replace each record by the (key, value) pairs ``mapper(key, value)`` returns."""
        _check_function(mapper, "flat_map")
        return self._add(FLATMAP_NAME, lambda: KStreamFlatMap(mapper), named,
                         repartition_required=True)

    def flat_map_values(self, mapper: Callable[[Any], Iterable[Any]], *,
                        named: str | None = None) -> KStream:
        """Replace each record by one record per value of ``mapper(value)``, same key."""
        _check_function(mapper, "flat_map_values")
        return self._add(FLATMAPVALUES_NAME, lambda: KStreamFlatMapValues(mapper), named)

    def select_key(self, mapper: Callable[[Any, Any], Any], *, named: str | None = None
                   ) -> KStream:
        """Set each record's key to ``mapper(key, value)``."""
        _check_function(mapper, "select_key")
        return self._add(KEY_SELECT_NAME, lambda: KStreamSelectKey(mapper), named,
                         repartition_required=True)

    def peek(self, action: Callable[[Any, Any], None], *, named: str | None = None) -> KStream:
        """Call ``action(key, value)`` for each record and pass the record on."""
        _check_function(action, "peek")
        return self._add(PEEK_NAME, lambda: KStreamPeek(action), named)

    def foreach(self, action: Callable[[Any, Any], None], *, named: str | None = None) -> None:
        """Call ``action(key, value)`` for each record; the stream ends here."""
        _check_function(action, "foreach")
        self._add(FOREACH_NAME, lambda: KStreamPeek(action, forward=False), named)

    def merge(self, stream: KStream, *, named: str | None = None) -> KStream:
        """One stream with the records of both, in the order they are processed."""
        if not isinstance(stream, KStream) or stream.builder is not self.builder:
            raise TopologyError("merge() needs another KStream of the same StreamsBuilder.")
        return self._add(MERGE_NAME, PassThrough, named,
                         self.repartition_required or stream.repartition_required,
                         parents=(stream.name,))

    def process(self, supplier: ProcessorSupplier, *store_names: str,
                named: str | None = None) -> KStream:
        """Run your own :class:`~sim.streams.Processor` here, connected to ``store_names``
        (added with ``Topology.add_state_store`` on the built topology or beforehand)."""
        _check_function(supplier, "process")
        stream = self._add(PROCESSOR_NAME, supplier, named, repartition_required=True)
        for store in store_names:
            self.builder.topology.connect_processor_and_state_stores(stream.name, store)
        return stream

    def split(self, *, named: str | None = None) -> BranchedKStream:
        """Route each record to the first branch whose predicate holds (``split()``)."""
        return BranchedKStream(self, named)

    def repartition(self, repartitioned: Repartitioned | None = None) -> KStream:
        """Send the stream through a repartition topic now (``KStreamImpl.repartition``): its
        records are spread by key, and later groupings need no repartition of their own."""
        from sim.streams.repartition import add_repartition, repartition_names

        if repartitioned is not None and not isinstance(repartitioned, Repartitioned):
            raise TopologyError(f"repartitioned must be Repartitioned.as_(name), got "
                                f"{repartitioned!r}.")
        name = repartitioned.name if repartitioned is not None else None
        if name is None:
            name = self.builder.new_processor_name(REPARTITION_NAME)
        source = add_repartition(self.builder, self.name, repartition_names(self.builder, name),
                                 repartitioned.number_of_partitions if repartitioned else None)
        return KStream(self.builder, source, repartition_required=False)

    def to_table(self, materialized: Materialized | None = None, *, named: str | None = None
                 ) -> KTable:
        """Read the stream as a table: each record upserts its key (``KStreamImpl.toTable``).
        Named ``KSTREAM-TOTABLE-<n>``; its store ``KSTREAM-TOTABLE-STATE-STORE-<n+1>`` is kept
        only when named or needed by a join. Repartitions first if the key may have changed."""
        from sim.streams.operations import KTableSource
        from sim.streams.repartition import add_repartition, repartition_names
        from sim.streams.stores import StoreBuilder

        if materialized is not None and not isinstance(materialized, Materialized):
            raise TopologyError(f"materialized must be Materialized.as_(name), got "
                                f"{materialized!r}.")
        name = self.builder.name_or_generate(named, TO_KTABLE_NAME)
        queryable = materialized is not None and materialized.store_name is not None
        store = (materialized.store_name if queryable
                 else self.builder.new_store_name(TO_KTABLE_NAME))
        parent = self.name
        if self.repartition_required:
            parent = add_repartition(self.builder, self.name,
                                     repartition_names(self.builder, name))
        table = KTable(self.builder, name, store if queryable else None, reserved_store=store)
        self.builder.topology.add_processor(name, lambda: KTableSource(table.store_name), parent)
        if queryable:
            self.builder.topology.add_state_store(
                StoreBuilder(store, "key_value", timestamped=True), name)
        return table

    def to(self, topic: str, *, named: str | None = None) -> None:
        """Write the stream to ``topic``."""
        name = self.builder.name_or_generate(named, SINK_NAME)
        self.builder.topology.add_sink(name, topic, self.name)

    def group_by_key(self, grouped: Grouped | None = None) -> KGroupedStream:
        """Group by the current key (repartitioning first if the key may have changed)."""
        from sim.streams.kgrouped import KGroupedStream

        grouped = _grouped(grouped)
        return KGroupedStream(self.builder, self.name, self.repartition_required, grouped.name)

    def group_by(self, selector: Callable[[Any, Any], Any], grouped: Grouped | None = None
                 ) -> KGroupedStream:
        """Group by ``selector(key, value)``: a key change, so always through a repartition."""
        from sim.streams.kgrouped import KGroupedStream

        _check_function(selector, "group_by")
        grouped = _grouped(grouped)
        selected = self._add(KEY_SELECT_NAME, lambda: KStreamSelectKey(selector), grouped.name,
                             repartition_required=True)
        return KGroupedStream(self.builder, selected.name, True, grouped.name)

    def join(self, other: KStream | KTable | GlobalKTable, *args: Any, **kwargs: Any
             ) -> KStream:
        """Inner join: ``join(stream, joiner, join_windows, stream_joined=None)`` with another
        stream, ``join(table, joiner, joined=None)`` with a KTable,
        ``join(global_table, key_selector, joiner, named=None)`` with a GlobalKTable.
        ``joiner(left_value, right_value)`` makes the output value; unmatched records are
        dropped."""
        if isinstance(other, KStream):
            return self._stream_join(other, *args, **kwargs)
        return self._join(other, False, *args, **kwargs)

    def left_join(self, other: KStream | KTable | GlobalKTable, *args: Any, **kwargs: Any
                  ) -> KStream:
        """Like ``join``, but every record of this stream comes out; the other value is None
        when missing. With another stream, an unmatched record comes out only once its join
        window has closed (stream time past its timestamp + after + grace), never early."""
        if isinstance(other, KStream):
            return self._stream_join(other, *args, left_outer=True, **kwargs)
        return self._join(other, True, *args, **kwargs)

    def outer_join(self, other: KStream, joiner: Callable[[Any, Any], Any], windows: Any,
                   stream_joined: StreamJoined | None = None) -> KStream:
        """Stream–stream outer join: matches as in ``join``; an unmatched record of either side
        comes out with None for the other side once its join window has closed."""
        if not isinstance(other, KStream):
            raise TopologyError(f"outer_join() needs another KStream, got {other!r}; a KTable "
                                "can be outer-joined only with a KTable.")
        return self._stream_join(other, joiner, windows, stream_joined, left_outer=True,
                                 right_outer=True)

    def _repartition_for_join(self, prefix: str) -> str:
        """``KStreamImpl.repartitionForJoin``: one repartition per stream, reused when the
        topic is named after the stream; three numbers are drawn every time."""
        from sim.streams.repartition import add_repartition, repartition_names

        names = repartition_names(self.builder, prefix)
        if self._join_repartition is None or prefix != self.name:
            self._join_repartition = add_repartition(self.builder, self.name, names)
        return self._join_repartition

    def _stream_join(self, other: KStream, joiner: Callable[[Any, Any], Any],
                     windows: Any, stream_joined: StreamJoined | None = None, *,
                     left_outer: bool = False, right_outer: bool = False) -> KStream:
        """``KStreamImplJoin.join``: each side stores its records in a window store and looks
        the other side's up; the two join processors merge into one output stream. A left or
        outer join names its outer side(s) ``KSTREAM-OUTERTHIS-`` / ``KSTREAM-OUTEROTHER-`` and
        adds the shared outer-join store ``KSTREAM-OUTERSHARED-<n>-store`` (``<n>`` of the
        this-side processor) to both join processors."""
        from sim.streams.stores import StoreBuilder
        from sim.streams.stream_join import KStreamKStreamJoin, TimeTrackerSupplier
        from sim.streams.windows import JoinWindows

        if other.builder is not self.builder:
            raise TopologyError("join() needs a KStream of the same StreamsBuilder.")
        _check_function(joiner, "join")
        if not isinstance(windows, JoinWindows):
            raise TopologyError(f"a stream-stream join needs JoinWindows, got {windows!r}.")
        joined = stream_joined or StreamJoined()
        if not isinstance(joined, StreamJoined):
            raise TopologyError(f"stream_joined must be a StreamJoined, got {joined!r}.")
        this_parent, other_parent = self.name, other.name
        if self.repartition_required:
            this_parent = self._repartition_for_join(
                f"{joined.name}-left" if joined.name else self.name)
        if other.repartition_required:
            other_parent = other._repartition_for_join(
                f"{joined.name}-right" if joined.name else other.name)
        b = self.builder

        def suffixed(suffix: str, prefix: str) -> str:
            generated = b.new_processor_name(prefix)
            return f"{joined.name}{suffix}" if joined.name else generated

        this_suffix = "-outer-this-join" if right_outer else "-this-join"
        other_suffix = "-outer-other-join" if left_outer else "-other-join"
        this_windowed = suffixed("-this-windowed", WINDOWED_NAME)
        other_windowed = suffixed("-other-windowed", WINDOWED_NAME)
        this_prefix = OUTERTHIS_NAME if right_outer else JOINTHIS_NAME
        this_generated = b.new_processor_name(this_prefix)
        other_generated = b.new_processor_name(OUTEROTHER_NAME if left_outer
                                               else JOINOTHER_NAME)
        this_join = f"{joined.name}{this_suffix}" if joined.name else this_generated
        other_join = f"{joined.name}{other_suffix}" if joined.name else other_generated
        merge = suffixed("-merge", MERGE_NAME)
        base = joined.store_name
        this_store = (f"{base}{this_suffix}" if base else this_generated) + "-store"
        other_store = (f"{base}{other_suffix}" if base else other_generated) + "-store"
        outer_store = None
        if left_outer:  # OuterStreamJoinStoreFactory
            shared = "-outer-shared-join" if right_outer else "-left-shared-join"
            outer_store = (f"{base}{shared}" if base else
                           OUTERSHARED_NAME + this_generated[len(this_prefix):]) + "-store"

        topology = b.topology
        retention = windows.size_ms + windows.grace_ms
        trackers = TimeTrackerSupplier()
        topology.add_processor(this_windowed, lambda: KStreamJoinWindow(this_store), this_parent)
        topology.add_processor(other_windowed, lambda: KStreamJoinWindow(other_store),
                               other_parent)
        topology.add_processor(this_join, lambda: KStreamKStreamJoin(
            other_store, windows.before_ms, windows.after_ms, windows, joiner, is_left=True,
            outer=left_outer, outer_store=outer_store, trackers=trackers), this_windowed)
        topology.add_processor(other_join, lambda: KStreamKStreamJoin(
            this_store, windows.after_ms, windows.before_ms, windows, joiner, is_left=False,
            outer=right_outer, outer_store=outer_store, trackers=trackers), other_windowed)
        topology.add_processor(merge, PassThrough, this_join, other_join)
        for store, users in ((this_store, (this_windowed, other_join)),
                             (other_store, (other_windowed, this_join))):
            topology.add_state_store(StoreBuilder(store, "window", retention, windows.size_ms,
                                                  retain_duplicates=True), *users)
        if outer_store is not None:
            topology.add_state_store(StoreBuilder(outer_store, "key_value"),
                                     this_join, other_join)
        return KStream(b, merge, repartition_required=False)

    def _join(self, table: KTable | GlobalKTable, left: bool, *args: Any, **kwargs: Any
              ) -> KStream:
        if isinstance(table, GlobalKTable):
            return self._global_join(table, left, *args, **kwargs)
        if not isinstance(table, KTable) or table.builder is not self.builder:
            raise TopologyError("join() needs a KTable or GlobalKTable of the same "
                                f"StreamsBuilder, got {table!r}.")
        return self._table_join(table, left, *args, **kwargs)

    def _table_join(self, table: KTable, left: bool, joiner: Callable[[Any, Any], Any],
                    joined: Joined | None = None) -> KStream:
        """``KStreamImpl.join(KTable)``: repartition first if the key may have changed."""
        _check_function(joiner, "join")
        if joined is not None and not isinstance(joined, Joined):
            raise TopologyError(f"joined must be Joined.as_(name), got {joined!r}.")
        name = joined.name if joined is not None else None
        parent = self.name
        if self.repartition_required:
            parent = self._repartition_for_join(name if name is not None else self.name)
        node = self.builder.name_or_generate(name, LEFTJOIN_NAME if left else JOIN_NAME)
        stores = table.value_getter_stores()
        self.builder.topology.add_processor(
            node, lambda: KStreamKTableJoin(table.lookup, joiner, left), parent)
        for store in stores:
            self.builder.topology.connect_processor_and_state_stores(node, store)
        return KStream(self.builder, node, repartition_required=False)

    def _global_join(self, table: GlobalKTable, left: bool,
                     key_selector: Callable[[Any, Any], Any],
                     joiner: Callable[[Any, Any], Any], named: str | None = None) -> KStream:
        """``KStreamImpl.globalTableJoin``: no repartition, the key comes from
        ``key_selector(key, value)``. Kafka names even the inner join ``KSTREAM-LEFTJOIN-``."""
        _check_function(key_selector, "join")
        _check_function(joiner, "join")
        node = self.builder.name_or_generate(named, LEFTJOIN_NAME)
        store = table.store_name

        def lookup(context: Any, key: Any) -> Any:
            stored = context.get_state_store(store).get(key)
            return getattr(stored, "value", stored)

        self.builder.topology.add_processor(
            node, lambda: KStreamKTableJoin(lookup, joiner, left, key_selector), self.name)
        return KStream(self.builder, node, self.repartition_required)

    def __repr__(self) -> str:
        return f"KStream({self.name})"


def _grouped(grouped: Grouped | None) -> Grouped:
    if grouped is None:
        return Grouped()
    if not isinstance(grouped, Grouped):
        raise TopologyError(f"grouped must be Grouped.as_(name), got {grouped!r}.")
    return grouped


class BranchedKStream:
    """The result of ``split()``: add branches, then ``default_branch()`` or
    ``no_default_branch()`` returns the branch streams by name (``BranchedKStream``).

    Names: the splitter is ``KSTREAM-BRANCH-<n>`` (or your ``named``); a branch is the splitter's
    name followed by the branch's ``Branched.as_`` name, or by its position (1, 2, …; the default
    branch is 0). Each branch uses up a number of the counter.
    """

    def __init__(self, source: KStream, named: str | None) -> None:
        self.source = source
        self.builder = source.builder
        self.splitter_name = self.builder.name_or_generate(named, BRANCH_NAME)
        self._predicates: list[Callable[[Any, Any], bool]] = []
        self._child_names: list[str] = []
        self._outputs: dict[str, Any] = {}
        self._closed = False
        predicates, children = self._predicates, self._child_names
        self.builder.topology.add_processor(
            self.splitter_name, lambda: KStreamBranch(predicates, children), source.name)

    def branch(self, predicate: Callable[[Any, Any], bool], branched: Branched | None = None
               ) -> BranchedKStream:
        """Records for which ``predicate(key, value)`` holds (and no earlier one did)."""
        _check_function(predicate, "branch")
        self._predicates.append(predicate)
        self._create(branched, len(self._predicates))
        return self

    def default_branch(self, branched: Branched | None = None) -> dict[str, Any]:
        """Records no predicate matched; returns every branch by name."""
        self._create(branched, 0)
        self._closed = True
        return self._outputs

    def no_default_branch(self) -> dict[str, Any]:
        """Drop records no predicate matched; returns every branch by name."""
        self._closed = True
        return self._outputs

    def _create(self, branched: Branched | None, index: int) -> None:
        if self._closed:
            raise TopologyError("This split() already has its default branch; add branches "
                                "before default_branch().")
        branched = branched or Branched()
        if not isinstance(branched, Branched):
            raise TopologyError(f"branched must be a Branched, got {branched!r}.")
        name = self.splitter_name + (str(index) if branched.name is None else branched.name)
        self._child_names.append(name)
        self.builder.new_processor_name(name)  # Kafka uses up a number here too
        self.builder.topology.add_processor(name, PassThrough, self.splitter_name)
        stream = KStream(self.builder, name, self.source.repartition_required)
        if branched.function is not None:
            result = branched.function(stream)
            if result is not None:
                self._outputs[name] = result
        elif branched.consumer is not None:
            branched.consumer(stream)
        else:
            self._outputs[name] = stream
