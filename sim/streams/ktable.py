"""``KTable`` and ``GlobalKTable``: a table as a stream of updates.

Mirrors ``KTableImpl`` and ``GlobalKTableImpl``. Each record of a table upserts its key and a
None value deletes it ("a table is a stream of updates"). ``to_stream()`` turns the updates back
into a stream: a row that ``filter`` removes comes out as a delete ``(key, None)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.errors import TopologyError
from sim.streams.materialized import Materialized
from sim.streams.operations import KTableToStream, KTableTransform
from sim.streams.stores import StoreBuilder, ValueAndTimestamp

if TYPE_CHECKING:
    from sim.streams.builder import StreamsBuilder
    from sim.streams.kstream import KStream
    from sim.streams.suppress import Suppressed

FILTER_NAME = "KTABLE-FILTER-"
MAPVALUES_NAME = "KTABLE-MAPVALUES-"
TOSTREAM_NAME = "KTABLE-TOSTREAM-"
MERGE_NAME = "KTABLE-MERGE-"
JOINTHIS_NAME = "KTABLE-JOINTHIS-"
JOINOTHER_NAME = "KTABLE-JOINOTHER-"
SUPPRESS_NAME = "KTABLE-SUPPRESS-"


class KTable:
    """A changelog stream read as a table (``KTable``); ``store_name`` is its store, if any.

    A table without a store can still be looked up (by a join): a source table is then given
    the store name it reserved (``<topic>-STATE-STORE-<n>``), and a table derived by
    ``filter`` / ``map_values`` computes its value from its parent's (Kafka's value getters).
    """

    def __init__(self, builder: StreamsBuilder, name: str, store_name: str | None, *,
                 parent: KTable | None = None,
                 compute: Callable[..., Any] | None = None,
                 reserved_store: str | None = None, windows: Any = None) -> None:
        self.builder = builder
        self.windows = windows  # the windows of a windowed aggregation's result
        self.name = name
        self.store_name = store_name
        self.parents: list[KTable] = [] if parent is None else [parent]
        self.compute = compute  # compute(key, *parent_values) for a table without a store
        self.reserved_store = reserved_store
        self.missing_parents_ok = False  # a left/outer join result exists without both rows

    def value_getter_stores(self) -> list[str]:
        """The stores a lookup reads, materializing source tables if needed."""
        if self.store_name is None and self.reserved_store is not None:
            self.store_name = self.reserved_store  # KTableSource.materialize()
            self.builder.topology.add_state_store(
                StoreBuilder(self.store_name, "key_value", timestamped=True), self.name)
        if self.store_name is not None:
            return [self.store_name]
        if not self.parents:
            raise TopologyError(f"Table {self.name} cannot be looked up; keep it in a store "
                                "with Materialized.as_(name) first.")
        stores: list[str] = []
        for parent in self.parents:
            stores += [s for s in parent.value_getter_stores() if s not in stores]
        return stores

    def lookup(self, context: Any, key: Any) -> Any:
        """The table's current value for ``key`` as seen from a processor with the stores."""
        found = self.lookup_with_timestamp(context, key)
        return None if found is None else found.value

    def lookup_with_timestamp(self, context: Any, key: Any) -> ValueAndTimestamp | None:
        """The current value and its timestamp (Kafka's ``KTableValueGetter.get``)."""
        if self.store_name is not None:
            stored = context.get_state_store(self.store_name).get(key)
            if stored is None or isinstance(stored, ValueAndTimestamp):
                return stored
            return ValueAndTimestamp(stored, 0)
        assert self.compute is not None
        found = [parent.lookup_with_timestamp(context, key) for parent in self.parents]
        present = [f for f in found if f is not None]
        if not present or (len(present) < len(found) and not self.missing_parents_ok):
            return None
        value = self.compute(key, *(None if f is None else f.value for f in found))
        if value is None:
            return None
        return ValueAndTimestamp(value, max(f.timestamp for f in present))

    def _transform(self, prefix: str, compute: Callable[[Any, Any], Any],
                   materialized: Materialized | None, named: str | None) -> KTable:
        if materialized is not None and not isinstance(materialized, Materialized):
            raise TopologyError(f"materialized must be Materialized.as_(name), got "
                                f"{materialized!r}.")
        store = materialized.store_name if materialized is not None else None
        if materialized is not None and store is None:
            self.builder.new_store_name(prefix)  # an anonymous store uses up a number
        name = self.builder.name_or_generate(named, prefix)
        topology = self.builder.topology
        topology.add_processor(name, lambda: KTableTransform(compute, store), self.name)
        if store is not None:
            topology.add_state_store(StoreBuilder(store, "key_value", timestamped=True), name)
        return KTable(self.builder, name, store, parent=self, compute=compute)

    def filter(self, predicate: Callable[[Any, Any], bool],
               materialized: Materialized | None = None, *, named: str | None = None) -> KTable:
        """Rows for which ``predicate(key, value)`` holds; others become deletes."""
        if not callable(predicate):
            raise TopologyError(f"filter() needs a function, got {predicate!r}.")
        return self._transform(FILTER_NAME, lambda k, v: v if predicate(k, v) else None,
                               materialized, named)

    def filter_not(self, predicate: Callable[[Any, Any], bool],
                   materialized: Materialized | None = None, *, named: str | None = None
                   ) -> KTable:
        """Rows for which ``predicate(key, value)`` does not hold."""
        if not callable(predicate):
            raise TopologyError(f"filter_not() needs a function, got {predicate!r}.")
        return self._transform(FILTER_NAME, lambda k, v: None if predicate(k, v) else v,
                               materialized, named)

    def map_values(self, mapper: Callable[[Any], Any],
                   materialized: Materialized | None = None, *, named: str | None = None
                   ) -> KTable:
        """Each row's value replaced by ``mapper(value)``."""
        if not callable(mapper):
            raise TopologyError(f"map_values() needs a function, got {mapper!r}.")
        return self._transform(MAPVALUES_NAME, lambda _k, v: mapper(v), materialized, named)

    def suppress(self, suppressed: Suppressed) -> KTable:
        """Hold updates back: only final window results, or one update per key and time limit
        (``KTableImpl.suppress``: ``KTABLE-SUPPRESS-<n>`` with store
        ``KTABLE-SUPPRESS-STATE-STORE-<n+1>``, or ``<name>`` and ``<name>-store``)."""
        from sim.streams.suppress import KTableSuppress, Suppressed
        from sim.streams.windows import SessionWindows

        if not isinstance(suppressed, Suppressed):
            raise TopologyError(f"suppress() takes Suppressed.until_window_closes(...) or "
                                f"Suppressed.until_time_limit(...), got {suppressed!r}.")
        wait = suppressed.time_to_wait_ms
        if suppressed.final_results:
            if self.windows is None:
                raise TopologyError("Window close time is only defined for windowed "
                                    "computations: until_window_closes needs a windowed_by "
                                    "aggregation upstream.")
            wait = self.windows.grace_ms
            if isinstance(self.windows, SessionWindows):
                wait += self.windows.gap_ms
        name = suppressed.name or self.builder.new_processor_name(SUPPRESS_NAME)
        store = (f"{suppressed.name}-store" if suppressed.name
                 else self.builder.new_store_name(SUPPRESS_NAME))
        topology = self.builder.topology
        final, config = suppressed.final_results, suppressed.buffer_config
        topology.add_processor(name, lambda: KTableSuppress(wait, final, config, name),
                               self.name)
        topology.add_state_store(StoreBuilder(store, "key_value"), name)
        return KTable(self.builder, name, None, windows=self.windows)

    def join(self, other: KTable, *args: Any, **kwargs: Any) -> KTable:
        """Inner table–table join ``join(other, joiner, materialized=None, named=None)``
        (``KTableImpl.doJoin``): a key has a row while both tables have it,
        ``joiner(left_value, right_value)``; an update on either side re-joins with the other
        side's current value. Names: ``KTABLE-MERGE-<n>`` first, then ``KTABLE-JOINTHIS-<n+1>``
        and ``KTABLE-JOINOTHER-<n+2>``.

        ``join(other, foreign_key_extractor, joiner, materialized=None, named=None)`` is the
        foreign-key join (see :mod:`sim.streams.fk_join`)."""
        if len(args) >= 2 and callable(args[0]) and callable(args[1]):
            from sim.streams.fk_join import foreign_key_join

            return foreign_key_join(self, other, *args, left_join=False, **kwargs)
        return self._do_join(other, *args, mode="inner", **kwargs)

    def left_join(self, other: KTable, *args: Any, **kwargs: Any) -> KTable:
        """Every row of this table, joined with the other table's row or None
        (``KTableKTableLeftJoin`` / ``KTableKTableRightJoin``); deleting the right row re-joins
        the left row with None. With a foreign-key extractor, the foreign-key left join."""
        if len(args) >= 2 and callable(args[0]) and callable(args[1]):
            from sim.streams.fk_join import foreign_key_join

            return foreign_key_join(self, other, *args, left_join=True, **kwargs)
        return self._do_join(other, *args, mode="left", **kwargs)

    def outer_join(self, other: KTable, joiner: Callable[[Any, Any], Any],
                   materialized: Materialized | None = None, *, named: str | None = None
                   ) -> KTable:
        """A row for every key either table has (``KTableKTableOuterJoin``); the missing side
        joins as None; the row is deleted once both sides are."""
        return self._do_join(other, joiner, materialized, named=named, mode="outer")

    def _do_join(self, other: KTable, joiner: Callable[[Any, Any], Any],
                 materialized: Materialized | None = None, *, named: str | None = None,
                 mode: str) -> KTable:
        """``KTableImpl.doJoin``; ``mode`` is inner, left or outer."""
        from sim.streams.operations import KTableKTableJoin, KTableKTableJoinMerger

        if not isinstance(other, KTable) or other.builder is not self.builder:
            raise TopologyError(f"join() needs a KTable of the same StreamsBuilder, got "
                                f"{other!r}.")
        if not callable(joiner):
            raise TopologyError(f"join() needs a joiner function, got {joiner!r}.")
        if materialized is not None and not isinstance(materialized, Materialized):
            raise TopologyError(f"materialized must be Materialized.as_(name), got "
                                f"{materialized!r}.")
        b = self.builder
        if materialized is not None and materialized.store_name is None:
            b.new_store_name(MERGE_NAME)  # MaterializedInternal names the store it may need
        merge = b.name_or_generate(named, MERGE_NAME)
        this_join = b.new_processor_name(JOINTHIS_NAME)
        other_join = b.new_processor_name(JOINOTHER_NAME)
        if named is not None:
            this_join, other_join = f"{named}-join-this", f"{named}-join-other"
        store = materialized.store_name if materialized is not None else None
        this_stores = self.value_getter_stores()
        other_stores = other.value_getter_stores()
        this_mode, other_mode = {"inner": ("inner", "inner"), "left": ("left", "right"),
                                 "outer": ("outer", "outer")}[mode]
        topology = b.topology
        topology.add_processor(this_join, lambda: KTableKTableJoin(
            other.lookup_with_timestamp, joiner, this_mode), self.name)
        topology.add_processor(other_join, lambda: KTableKTableJoin(
            self.lookup_with_timestamp, lambda right, left: joiner(left, right), other_mode),
            other.name)
        topology.add_processor(merge, lambda: KTableKTableJoinMerger(store), this_join,
                               other_join)
        for name, stores in ((this_join, other_stores), (other_join, this_stores)):
            for s in stores:
                topology.connect_processor_and_state_stores(name, s)
        if store is not None:
            topology.add_state_store(StoreBuilder(store, "key_value", timestamped=True), merge)
        result = KTable(b, merge, store, compute=_join_compute(joiner, mode))
        result.parents = [self, other]
        result.missing_parents_ok = mode != "inner"
        return result

    def to_stream(self, *, named: str | None = None) -> KStream:
        """The table's updates as a KStream of (key, new value)."""
        from sim.streams.kstream import KStream

        name = self.builder.name_or_generate(named, TOSTREAM_NAME)
        self.builder.topology.add_processor(name, KTableToStream, self.name)
        return KStream(self.builder, name, repartition_required=False)

    def __repr__(self) -> str:
        return f"KTable({self.name}, store={self.store_name})"


def _join_compute(joiner: Callable[[Any, Any], Any], mode: str) -> Callable[..., Any]:
    """How an unmaterialized join result is looked up from its two tables' rows."""

    def compute(_key: Any, left: Any, right: Any) -> Any:
        if mode == "inner" and (left is None or right is None):
            return None
        if mode == "left" and left is None:
            return None
        if left is None and right is None:
            return None
        return joiner(left, right)

    return compute


@dataclass(frozen=True)
class GlobalKTable:
    """A table of a whole topic, on every instance, kept in ``store_name`` (``GlobalKTable``)."""

    store_name: str
