"""Foreign-key table–table joins (KIP-213): ``left.join(right, foreign_key_extractor, joiner)``.

Mirrors ``KTableImpl.doJoinOnForeignKey`` and ``kstream.internals.foreignkeyjoin``. Each row of
the left table names a row of the right table by ``foreign_key_extractor(value)``; the two
tables may be partitioned differently, so the join runs as a conversation over two internal
topics:

1. **Subscription** (``SubscriptionSendProcessorSupplier``): a left-table change is sent, keyed
   by the foreign key, to ``KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic`` with the left
   key, a hash of the new left value and an instruction (a changed foreign key also unsubscribes
   from the old one).
2. On the right table's side the subscription is kept in
   ``KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-<n>`` (keyed by foreign key + primary key) and
   answered with the right row's current value (``SubscriptionJoinProcessorSupplier``); a change
   of a right row answers every subscriber (``ForeignTableJoinProcessorSupplier``).
3. **Response** to ``KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-<n>-topic``, keyed by the left key.
   The resolver (``ResponseJoinProcessorSupplier``) joins it with the left row *only if the
   left value's hash still equals the one the subscription carried*: an answer to a stale
   subscription (the row changed since) is dropped and counted, so no out-of-date result
   appears.

The result table is ``KTABLE-FK-JOIN-OUTPUT-<n>``. An inner join deletes the result when the
right row is missing; a left join gives ``joiner(left_value, None)``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.errors import TopologyError
from sim.records import serialize
from sim.streams.materialized import Materialized, TableJoined
from sim.streams.operations import Change, KTableSource
from sim.streams.processor import Processor, Record
from sim.streams.stores import KeyValueStore, StoreBuilder, ValueAndTimestamp, key_order

if TYPE_CHECKING:
    from sim.streams.ktable import KTable

FK_JOIN = "KTABLE-FK-JOIN-"
FK_JOIN_STATE_STORE_NAME = FK_JOIN + "SUBSCRIPTION-STATE-STORE-"
SUBSCRIPTION_REGISTRATION = FK_JOIN + "SUBSCRIPTION-REGISTRATION-"
SUBSCRIPTION_RESPONSE = FK_JOIN + "SUBSCRIPTION-RESPONSE-"
SUBSCRIPTION_PROCESSOR = FK_JOIN + "SUBSCRIPTION-PROCESSOR-"
SUBSCRIPTION_RESPONSE_RESOLVER_PROCESSOR = FK_JOIN + "SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-"
FK_JOIN_OUTPUT_NAME = FK_JOIN + "OUTPUT-"
TOPIC_SUFFIX = "-topic"
SINK_NAME = "KTABLE-SINK-"
SOURCE_NAME = "KTABLE-SOURCE-"


class Instruction(enum.Enum):
    """What the right side does with a subscription (``SubscriptionWrapper.Instruction``)."""

    DELETE_KEY_NO_PROPAGATE = 0
    DELETE_KEY_AND_PROPAGATE = 1
    PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE = 2
    PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE = 3


@dataclass(frozen=True)
class SubscriptionWrapper:
    """A left row's subscription to a foreign key (``SubscriptionWrapper``)."""

    hash: str | None
    instruction: Instruction
    primary_key: Any
    primary_partition: int | None = None


@dataclass(frozen=True)
class SubscriptionResponseWrapper:
    """The right side's answer (``SubscriptionResponseWrapper``)."""

    original_value_hash: str | None
    foreign_value: Any
    primary_partition: int | None = None


@dataclass(frozen=True)
class CombinedKey:
    """Foreign key + primary key, the subscription store's key (``CombinedKey``); ordered by
    foreign key first, so one foreign key's subscribers are found by a prefix scan."""

    foreign_key: Any
    primary_key: Any

    def __lt__(self, other: CombinedKey) -> bool:
        return ((key_order(self.foreign_key), key_order(self.primary_key))
                < (key_order(other.foreign_key), key_order(other.primary_key)))


def value_hash(value: Any) -> str | None:
    """A 128-bit hash of a left value's serialized bytes (Kafka: Murmur3-128); None for None.
    Values the lab's serializer does not take (bool, ints over 32 bits) hash their repr."""
    if value is None:
        return None
    try:
        data = serialize(value)
    except (TypeError, OverflowError):
        data = repr(value).encode("utf-8")
    assert data is not None
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _drop(processor: Processor) -> None:
    processor.context.record_dropped()  # type: ignore[attr-defined]


def _partition(context: Any) -> int | None:
    return getattr(context, "partition", None)


class SubscriptionSend(Processor):
    """A left-table change → subscription records keyed by foreign key
    (``SubscriptionSendProcessorSupplier``). A record with a null foreign key is dropped in an
    inner join; in a left join it is still sent (it resolves to ``joiner(value, None)``)."""

    def __init__(self, extractor: Callable[[Any], Any], left_join: bool) -> None:
        self.extractor = extractor
        self.left_join = left_join

    def process(self, record: Record) -> None:
        change: Change = record.value
        self._hash = value_hash(change.new_value)
        old, new = change.old_value, change.new_value
        if self.left_join:
            if old is not None:
                old_fk = self.extractor(old)
                new_fk = None if new is None else self.extractor(new)
                if old_fk is not None and new_fk != old_fk:
                    self._send(record, old_fk, Instruction.DELETE_KEY_AND_PROPAGATE)
                self._send(record, new_fk, Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)
            elif new is not None:
                self._send(record, self.extractor(new),
                           Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)
            return
        if old is not None:
            old_fk = self.extractor(old)
            if old_fk is None:
                _drop(self)
                return
            if new is None:
                self._send(record, old_fk, Instruction.DELETE_KEY_AND_PROPAGATE)
                return
            new_fk = self.extractor(new)
            if new_fk is None:
                _drop(self)
                return
            if new_fk != old_fk:
                self._send(record, old_fk, Instruction.DELETE_KEY_NO_PROPAGATE)
            self._send(record, new_fk, Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)
        elif new is not None:
            new_fk = self.extractor(new)
            if new_fk is None:
                _drop(self)
            else:
                self._send(record, new_fk, Instruction.PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE)

    def _send(self, record: Record, foreign_key: Any, instruction: Instruction) -> None:
        wrapper = SubscriptionWrapper(self._hash, instruction, record.key,
                                      _partition(self.context))
        self.context.forward(record.with_key(foreign_key).with_value(wrapper))


class SubscriptionReceive(Processor):
    """Keep (or remove) the subscription in the subscription store and pass it on as a change
    of that store (``SubscriptionReceiveProcessorSupplier``)."""

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: KeyValueStore = context.get_state_store(self.store_name)

    def process(self, record: Record) -> None:
        wrapper: SubscriptionWrapper = record.value
        null_ok = wrapper.instruction is Instruction.PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE
        if record.key is None and not null_ok:
            _drop(self)
            return
        new = ValueAndTimestamp(wrapper, record.timestamp)
        key = CombinedKey(record.key, wrapper.primary_key)
        old = None
        if record.key is not None:
            old = self.store.get(key)
            if wrapper.instruction in (Instruction.DELETE_KEY_AND_PROPAGATE,
                                       Instruction.DELETE_KEY_NO_PROPAGATE):
                self.store.delete(key)
            else:
                self.store.put(key, new)
        self.context.forward(record.with_key(key).with_value(Change(new, old)))


class SubscriptionJoin(Processor):
    """Answer a subscription with the right row's current value
    (``SubscriptionJoinProcessorSupplier``); the answer's timestamp is the later of the two."""

    def __init__(self, lookup: Callable[[Any, Any], ValueAndTimestamp | None]) -> None:
        self.lookup = lookup

    def process(self, record: Record) -> None:
        key: CombinedKey = record.key
        subscription: ValueAndTimestamp = record.value.new_value
        wrapper: SubscriptionWrapper = subscription.value
        foreign = None if key.foreign_key is None else self.lookup(self.context,
                                                                   key.foreign_key)
        timestamp = (subscription.timestamp if foreign is None
                     else max(subscription.timestamp, foreign.timestamp))
        instruction = wrapper.instruction
        if instruction is Instruction.DELETE_KEY_NO_PROPAGATE:
            return
        if instruction is Instruction.PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE and foreign is None:
            return
        value = None
        if instruction is not Instruction.DELETE_KEY_AND_PROPAGATE and foreign is not None:
            value = foreign.value
        response = SubscriptionResponseWrapper(wrapper.hash, value, wrapper.primary_partition)
        self.context.forward(Record(key.primary_key, response, timestamp, record.headers))


class ForeignTableJoin(Processor):
    """A right-row change → an answer to every subscriber of that foreign key, with the new
    right value (``ForeignTableJoinProcessorSupplier``)."""

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: KeyValueStore = context.get_state_store(self.store_name)

    def process(self, record: Record) -> None:
        if record.key is None:
            _drop(self)
            return
        change: Change = record.value
        for key, stored in self.store.all():
            if key.foreign_key != record.key:
                continue
            wrapper: SubscriptionWrapper = stored.value
            response = SubscriptionResponseWrapper(wrapper.hash, change.new_value,
                                                   wrapper.primary_partition)
            self.context.forward(record.with_key(key.primary_key).with_value(response))


class ResponseJoin(Processor):
    """Join an answer with the left row, if the left value still hashes as it did when it
    subscribed; otherwise the answer is stale: drop and count it
    (``ResponseJoinProcessorSupplier``)."""

    def __init__(self, lookup: Callable[[Any, Any], ValueAndTimestamp | None],
                 joiner: Callable[[Any, Any], Any], left_join: bool) -> None:
        self.lookup = lookup
        self.joiner = joiner
        self.left_join = left_join

    def process(self, record: Record) -> None:
        response: SubscriptionResponseWrapper = record.value
        current = self.lookup(self.context, record.key)
        current_value = None if current is None else current.value
        if response.original_value_hash != value_hash(current_value):
            _drop(self)
            return
        if response.foreign_value is None and (not self.left_join or current is None):
            result = None
        else:
            result = self.joiner(current_value, response.foreign_value)
        self.context.forward(record.with_value(result))


def foreign_key_join(left: KTable, right: KTable, foreign_key_extractor: Callable[[Any], Any],
                     joiner: Callable[[Any, Any], Any],
                     *options: TableJoined | Materialized | None,
                     named: str | None = None, left_join: bool) -> KTable:
    """``KTableImpl.doJoinOnForeignKey``: add the processors, topics and store, naming them as
    Kafka does. ``options``: a ``TableJoined.as_(name)`` (or ``named=``) names everything
    ``<name>-subscription-registration-topic`` and so on, a ``Materialized.as_(store)`` keeps
    the result queryable; every name draws a number of the builder's counter, given or not."""
    from sim.streams.ktable import KTable

    materialized: Materialized | None = None
    for option in options:
        if option is None:
            continue
        if isinstance(option, TableJoined):
            named = option.name if option.name is not None else named
        elif isinstance(option, Materialized) and materialized is None:
            materialized = option
        else:
            raise TopologyError(f"A foreign-key join takes TableJoined.as_(name) and "
                                f"Materialized.as_(store) options, got {option!r}.")

    if not isinstance(right, KTable) or right.builder is not left.builder:
        raise TopologyError(f"A foreign-key join needs a KTable of the same StreamsBuilder, "
                            f"got {right!r}.")
    for function, what in ((foreign_key_extractor, "foreign_key_extractor"),
                           (joiner, "joiner")):
        if not callable(function):
            raise TopologyError(f"A foreign-key join needs a {what} function, got "
                                f"{function!r}.")
    b = left.builder
    topology = b.topology

    def name(suffix: str, prefix: str) -> str:
        generated = b.new_processor_name(prefix)
        return f"{named}{suffix}" if named is not None else generated

    right_stores = right.value_getter_stores()  # both sides send old values: materialized
    left_stores = left.value_getter_stores()
    subscription_topic = name("-subscription-registration", SUBSCRIPTION_REGISTRATION) + \
        TOPIC_SUFFIX
    send = name("-subscription-registration-processor", SUBSCRIPTION_REGISTRATION)
    topology.add_processor(send, lambda: SubscriptionSend(foreign_key_extractor, left_join),
                           left.name)
    sink = name("-subscription-registration-sink", SINK_NAME)
    topology.add_sink(sink, subscription_topic, send)
    source = name("-subscription-registration-source", SOURCE_NAME)
    topology.add_source(source, subscription_topic)
    topology.internal_topics.append(subscription_topic)
    store = name("-subscription-store", FK_JOIN_STATE_STORE_NAME)
    receive = name("-subscription-receive", SUBSCRIPTION_PROCESSOR)
    topology.add_processor(receive, lambda: SubscriptionReceive(store), source)
    topology.add_state_store(StoreBuilder(store, "key_value", timestamped=True), receive)
    join_foreign = name("-subscription-join-foreign", SUBSCRIPTION_PROCESSOR)
    topology.add_processor(join_foreign, lambda: SubscriptionJoin(right.lookup_with_timestamp),
                           receive)
    for s in right_stores:
        topology.connect_processor_and_state_stores(join_foreign, s)
    foreign_join = name("-foreign-join-subscription", SUBSCRIPTION_PROCESSOR)
    topology.add_processor(foreign_join, lambda: ForeignTableJoin(store), right.name)
    topology.connect_processor_and_state_stores(foreign_join, store)
    response_topic = name("-subscription-response", SUBSCRIPTION_RESPONSE) + TOPIC_SUFFIX
    response_sink = name("-subscription-response-sink", SINK_NAME)
    topology.add_sink(response_sink, response_topic, join_foreign, foreign_join)
    response_source = name("-subscription-response-source", SOURCE_NAME)
    topology.add_source(response_source, response_topic)
    topology.internal_topics.append(response_topic)
    resolver = name("-subscription-response-resolver", SUBSCRIPTION_RESPONSE_RESOLVER_PROCESSOR)
    topology.add_processor(resolver, lambda: ResponseJoin(left.lookup_with_timestamp, joiner,
                                                          left_join), response_source)
    for s in left_stores:
        topology.connect_processor_and_state_stores(resolver, s)
    output = name("-result", FK_JOIN_OUTPUT_NAME)
    queryable = materialized is not None and materialized.store_name is not None
    result_store = (materialized.store_name if queryable and materialized is not None
                    else b.new_store_name(FK_JOIN_OUTPUT_NAME))
    result = KTable(b, output, result_store if queryable else None,
                    reserved_store=result_store)
    topology.add_processor(output, lambda: KTableSource(result.store_name), resolver)
    if queryable:
        topology.add_state_store(StoreBuilder(result_store, "key_value", timestamped=True), output)
    return result
