"""``KGroupedStream`` and ``TimeWindowedKStream``: aggregations per key, optionally per window.

Mirrors ``KGroupedStreamImpl``, ``TimeWindowedKStreamImpl`` and ``GroupedStreamAggregateBuilder``.
An aggregation's store is named by ``Materialized.as_`` or generated
(``KSTREAM-AGGREGATE-STATE-STORE-<n>``). If the stream needs repartitioning, the builder first
adds, in this order, a sink to ``<store or Grouped name>-repartition``, a pass-through filter and a
source reading that topic back; the aggregation then starts a new sub-topology. Worked example
(WordCount): source 0, flat_map_values 1, group_by's key selector 2, ``count()`` takes store 3,
processor ``KSTREAM-AGGREGATE-0000000004``, sink 5, filter 6, source 7.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.errors import TopologyError
from sim.streams.ktable import KTable
from sim.streams.materialized import Materialized
from sim.streams.operations import (
    KStreamAggregate,
    KStreamSessionWindowAggregate,
    KStreamWindowAggregate,
)
from sim.streams.repartition import add_repartition, repartition_names
from sim.streams.sliding import KStreamSlidingWindowAggregate
from sim.streams.stores import StoreBuilder
from sim.streams.windows import SessionWindows, SlidingWindows, TimeWindows

if TYPE_CHECKING:
    from sim.streams.builder import StreamsBuilder
    from sim.streams.topology import ProcessorSupplier

AGGREGATE_NAME = "KSTREAM-AGGREGATE-"
REDUCE_NAME = "KSTREAM-REDUCE-"


def _materialized(materialized: Materialized | None) -> Materialized | None:
    if materialized is not None and not isinstance(materialized, Materialized):
        raise TopologyError(f"materialized must be Materialized.as_(name), got "
                            f"{materialized!r}.")
    return materialized


class _Aggregating:
    """What KGroupedStream and TimeWindowedKStream share: naming and wiring an aggregation."""

    def __init__(self, builder: StreamsBuilder, parent: str, repartition_required: bool,
                 grouped_name: str | None) -> None:
        self.builder = builder
        self.parent = parent
        self.repartition_required = repartition_required
        self.grouped_name = grouped_name

    def _store_name(self, materialized: Materialized | None, prefix: str, *,
                    burn_if_anonymous: bool) -> str:
        materialized = _materialized(materialized)
        if materialized is not None and materialized.store_name is not None:
            return materialized.store_name
        if materialized is not None and burn_if_anonymous:
            # count(Materialized) without a name uses up one more number in Kafka
            self.builder.new_store_name(prefix)
        return self.builder.new_store_name(prefix)

    def _build(self, name: str, store: StoreBuilder, supplier: ProcessorSupplier,
               windows: Any = None) -> KTable:
        parent = self.parent
        if self.repartition_required:
            names = repartition_names(self.builder, self.grouped_name or store.name)
            parent = add_repartition(self.builder, self.parent, names)
        topology = self.builder.topology
        topology.add_processor(name, supplier, parent)
        topology.add_state_store(store, name)
        return KTable(self.builder, name, store.name, windows=windows)


class KGroupedStream(_Aggregating):
    """A stream grouped by key, ready to aggregate (``KGroupedStream``)."""

    def count(self, materialized: Materialized | None = None, *, named: str | None = None
              ) -> KTable:
        """Number of records per key (records with a None key or value are dropped)."""
        store = self._store_name(materialized, AGGREGATE_NAME, burn_if_anonymous=True)
        name = self.builder.name_or_generate(named, AGGREGATE_NAME)
        return self._build(name, StoreBuilder(store, "key_value", timestamped=True),
                           lambda: KStreamAggregate(store, lambda: 0,
                                                    lambda _k, _v, agg: agg + 1))

    def reduce(self, reducer: Callable[[Any, Any], Any],
               materialized: Materialized | None = None, *, named: str | None = None) -> KTable:
        """Combine values per key: the first value, then ``reducer(aggregate, value)``."""
        if not callable(reducer):
            raise TopologyError(f"reduce() needs a function, got {reducer!r}.")
        store = self._store_name(materialized, REDUCE_NAME, burn_if_anonymous=False)
        name = self.builder.name_or_generate(named, REDUCE_NAME)
        return self._build(name, StoreBuilder(store, "key_value", timestamped=True),
                           lambda: KStreamAggregate(store, None,
                                                    lambda _k, v, agg: reducer(agg, v)))

    def aggregate(self, initializer: Callable[[], Any],
                  aggregator: Callable[[Any, Any, Any], Any],
                  materialized: Materialized | None = None, *, named: str | None = None
                  ) -> KTable:
        """Fold values per key: ``aggregator(key, value, aggregate)`` from ``initializer()``."""
        if not callable(initializer) or not callable(aggregator):
            raise TopologyError("aggregate() needs an initializer and an aggregator function.")
        store = self._store_name(materialized, AGGREGATE_NAME, burn_if_anonymous=False)
        name = self.builder.name_or_generate(named, AGGREGATE_NAME)
        return self._build(name, StoreBuilder(store, "key_value", timestamped=True),
                           lambda: KStreamAggregate(store, initializer, aggregator))

    def windowed_by(self, windows: TimeWindows | SlidingWindows | SessionWindows
                    ) -> TimeWindowedKStream | SessionWindowedKStream:
        """Aggregate per key and per time window (tumbling, hopping, sliding) or session."""
        if isinstance(windows, SessionWindows):
            return SessionWindowedKStream(self.builder, self.parent, self.repartition_required,
                                          self.grouped_name, windows)
        if not isinstance(windows, TimeWindows | SlidingWindows):
            raise TopologyError(f"windowed_by() takes TimeWindows, SlidingWindows or "
                                f"SessionWindows, got {windows!r}.")
        return TimeWindowedKStream(self.builder, self.parent, self.repartition_required,
                                   self.grouped_name, windows)


class TimeWindowedKStream(_Aggregating):
    """A grouped stream cut into time windows (``TimeWindowedKStream``), fixed or sliding;
    results are keyed by ``Windowed(key, window)``. The store keeps fixed windows for size +
    grace, sliding ones for 2 × difference + grace."""

    def __init__(self, builder: StreamsBuilder, parent: str, repartition_required: bool,
                 grouped_name: str | None, windows: TimeWindows | SlidingWindows) -> None:
        super().__init__(builder, parent, repartition_required, grouped_name)
        self.windows = windows

    def _window_build(self, name: str, store: str, initializer: Callable[[], Any] | None,
                      aggregator: Callable[[Any, Any, Any], Any]) -> KTable:
        windows = self.windows
        if isinstance(windows, SlidingWindows):
            diff = windows.time_difference_ms
            builder = StoreBuilder(store, "window", 2 * diff + windows.grace_ms, diff,
                                   timestamped=True)
            return self._build(name, builder, lambda: KStreamSlidingWindowAggregate(
                store, windows, initializer, aggregator), windows)
        builder = StoreBuilder(store, "window", windows.size_ms + windows.grace_ms,
                               windows.size_ms, timestamped=True)
        return self._build(name, builder, lambda: KStreamWindowAggregate(
            store, windows, initializer, aggregator), windows)

    def count(self, materialized: Materialized | None = None, *, named: str | None = None
              ) -> KTable:
        """Number of records per key and window."""
        store = self._store_name(materialized, AGGREGATE_NAME, burn_if_anonymous=True)
        name = self.builder.name_or_generate(named, AGGREGATE_NAME)
        return self._window_build(name, store, lambda: 0, lambda _k, _v, agg: agg + 1)

    def reduce(self, reducer: Callable[[Any, Any], Any],
               materialized: Materialized | None = None, *, named: str | None = None) -> KTable:
        """Combine values per key and window."""
        if not callable(reducer):
            raise TopologyError(f"reduce() needs a function, got {reducer!r}.")
        store = self._store_name(materialized, REDUCE_NAME, burn_if_anonymous=False)
        name = self.builder.name_or_generate(named, REDUCE_NAME)
        return self._window_build(name, store, None, lambda _k, v, agg: reducer(agg, v))

    def aggregate(self, initializer: Callable[[], Any],
                  aggregator: Callable[[Any, Any, Any], Any],
                  materialized: Materialized | None = None, *, named: str | None = None
                  ) -> KTable:
        """Fold values per key and window."""
        if not callable(initializer) or not callable(aggregator):
            raise TopologyError("aggregate() needs an initializer and an aggregator function.")
        store = self._store_name(materialized, AGGREGATE_NAME, burn_if_anonymous=False)
        name = self.builder.name_or_generate(named, AGGREGATE_NAME)
        return self._window_build(name, store, initializer, aggregator)


class SessionWindowedKStream(_Aggregating):
    """A grouped stream cut into sessions (``SessionWindowedKStream``); results are keyed by
    ``Windowed(key, SessionWindow)``. The store keeps sessions for gap + grace."""

    def __init__(self, builder: StreamsBuilder, parent: str, repartition_required: bool,
                 grouped_name: str | None, windows: SessionWindows) -> None:
        super().__init__(builder, parent, repartition_required, grouped_name)
        self.windows = windows

    def _session_store(self, store: str) -> StoreBuilder:
        return StoreBuilder(store, "session", self.windows.gap_ms + self.windows.grace_ms)

    def count(self, materialized: Materialized | None = None, *, named: str | None = None
              ) -> KTable:
        """Number of records per key and session; merged sessions add their counts."""
        store = self._store_name(materialized, AGGREGATE_NAME, burn_if_anonymous=True)
        name = self.builder.name_or_generate(named, AGGREGATE_NAME)
        windows = self.windows
        return self._build(name, self._session_store(store),
                           lambda: KStreamSessionWindowAggregate(
                               store, windows, lambda: 0, lambda _k, _v, agg: agg + 1,
                               lambda _k, one, two: one + two), windows)

    def reduce(self, reducer: Callable[[Any, Any], Any],
               materialized: Materialized | None = None, *, named: str | None = None) -> KTable:
        """Combine values per key and session; merging sessions reduces their aggregates."""
        if not callable(reducer):
            raise TopologyError(f"reduce() needs a function, got {reducer!r}.")
        store = self._store_name(materialized, REDUCE_NAME, burn_if_anonymous=False)
        name = self.builder.name_or_generate(named, REDUCE_NAME)
        windows = self.windows
        return self._build(name, self._session_store(store),
                           lambda: KStreamSessionWindowAggregate(
                               store, windows, None, lambda _k, v, agg: reducer(agg, v),
                               lambda _k, one, two: reducer(one, two)), windows)

    def aggregate(self, initializer: Callable[[], Any],
                  aggregator: Callable[[Any, Any, Any], Any],
                  merger: Callable[[Any, Any, Any], Any],
                  materialized: Materialized | None = None, *, named: str | None = None
                  ) -> KTable:
        """Fold values per key and session; ``merger(key, agg1, agg2)`` joins two sessions."""
        if not all(callable(f) for f in (initializer, aggregator, merger)):
            raise TopologyError("aggregate() needs an initializer, an aggregator and a merger.")
        store = self._store_name(materialized, AGGREGATE_NAME, burn_if_anonymous=False)
        name = self.builder.name_or_generate(named, AGGREGATE_NAME)
        windows = self.windows
        return self._build(name, self._session_store(store),
                           lambda: KStreamSessionWindowAggregate(
                               store, windows, initializer, aggregator, merger), windows)
