"""``Materialized``, ``Grouped`` and ``Branched``: the naming and options objects of the DSL.

Mirror the Kafka classes of the same names. A name you give replaces a generated one in
``describe()`` and in internal topic names (a store ``counts`` gets the changelog
``<application.id>-counts-changelog``; a ``Grouped`` name ``words`` the repartition topic
``<application.id>-words-repartition``), but it still uses up a number of the builder's counter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.errors import TopologyError

_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")


def validate_name(name: Any, what: str) -> str:
    """Kafka's rule for names that become topic names: 1–249 of ``[a-zA-Z0-9._-]``."""
    if not isinstance(name, str) or not _LEGAL.fullmatch(name) or len(name) > 249:
        raise TopologyError(
            f"Name {name!r} of {what} is illegal: it must be 1 to 249 characters of "
            "ASCII letters, digits, '.', '_' and '-'.")
    return name


@dataclass(frozen=True)
class Materialized:
    """How to keep a table: the store name (``Materialized.as_("store")``)."""

    store_name: str | None = None

    @classmethod
    def as_(cls, store_name: str) -> Materialized:
        return cls(validate_name(store_name, "Materialized"))


@dataclass(frozen=True)
class Grouped:
    """Options of a grouping; its name names the repartition topic (``Grouped.as_``)."""

    name: str | None = None

    @classmethod
    def as_(cls, name: str) -> Grouped:
        return cls(validate_name(name, "Grouped"))


@dataclass(frozen=True)
class Branched:
    """One branch of ``split()``: its name suffix, and what to do with the branch stream.

    ``Branched.as_("x")`` names it; ``with_function(f)`` stores ``f(branch)`` in the result map;
    ``with_consumer(f)`` calls ``f(branch)`` and leaves the branch out of the map.
    """

    name: str | None = None
    function: Callable[[Any], Any] | None = None
    consumer: Callable[[Any], None] | None = None

    @classmethod
    def as_(cls, name: str) -> Branched:
        return cls(name=name)

    @classmethod
    def with_function(cls, function: Callable[[Any], Any], name: str | None = None) -> Branched:
        return cls(name=name, function=function)

    @classmethod
    def with_consumer(cls, consumer: Callable[[Any], None], name: str | None = None) -> Branched:
        return cls(name=name, consumer=consumer)


@dataclass(frozen=True)
class Joined:
    """Options of a stream–table join; its name names the join processor and, when the stream
    must be repartitioned first, the repartition topic ``<name>-repartition`` (``Joined.as_``)."""

    name: str | None = None

    @classmethod
    def as_(cls, name: str) -> Joined:
        return cls(validate_name(name, "Joined"))


@dataclass(frozen=True)
class Repartitioned:
    """Options of ``KStream.repartition``: the topic's name (``<name>-repartition``) and, for the
    simulated cluster, its partition count (None = as many as the input)."""

    name: str | None = None
    number_of_partitions: int | None = None

    @classmethod
    def as_(cls, name: str) -> Repartitioned:
        return cls(validate_name(name, "Repartitioned"))

    def with_number_of_partitions(self, partitions: int) -> Repartitioned:
        if not isinstance(partitions, int) or partitions < 1:
            raise TopologyError(f"number of partitions must be at least 1, got {partitions!r}.")
        return Repartitioned(self.name, partitions)


@dataclass(frozen=True)
class StreamJoined:
    """Options of a stream–stream join (``StreamJoined``): ``as_(store_name)`` names its two
    stores ``<store>-this-join-store`` / ``-other-join-store``; ``with_name(name)`` names its
    processors ``<name>-this-windowed``, ``-this-join``, ``-merge``, …"""

    store_name: str | None = None
    name: str | None = None

    @classmethod
    def as_(cls, store_name: str) -> StreamJoined:
        return cls(validate_name(store_name, "StreamJoined"))

    def with_name(self, name: str) -> StreamJoined:
        return StreamJoined(self.store_name, validate_name(name, "StreamJoined"))


@dataclass(frozen=True)
class TableJoined:
    """Options of a foreign-key join (``TableJoined``): ``as_(name)`` names its processors,
    topics and store ``<name>-subscription-registration-topic``, ``<name>-result``, …"""

    name: str | None = None

    @classmethod
    def as_(cls, name: str) -> TableJoined:
        return cls(validate_name(name, "TableJoined"))
