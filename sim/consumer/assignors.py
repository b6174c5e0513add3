"""Client-side partition assignors of the classic consumer-group protocol.

In the classic protocol the group coordinator picks one member as leader; the leader runs the
assignor named by ``partition.assignment.strategy`` over every member's subscription and sends the
result back through SyncGroup. The assignors here are pure functions of their inputs:

    assignor.assign(partitions_per_topic, subscriptions) -> {member_id: [TopicPartition, ...]}

``partitions_per_topic`` maps a topic name to its partition count, ``subscriptions`` maps each
member id to its :class:`Subscription`. Every member appears in the result, possibly with ``[]``.

Rules shared by all assignors (kafka-facts §4.1):

* Strings are ordered as Java's ``String.compareTo`` orders them: UTF-16 code unit by code unit.
  For ASCII (and any text without characters above U+FFFF) that is plain Python string order;
  :func:`java_string_key` gives the Java order for everything else.
* A topic a member subscribes to but ``partitions_per_topic`` does not know (or knows with 0
  partitions) is ignored, as Kafka skips topics without metadata. Topics nobody subscribes to are
  ignored too.
* Rack-aware variants (``client.rack``) are not modelled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from sim.errors import ConfigError
from sim.records import TopicPartition

Assignment = dict[str, list[TopicPartition]]

EAGER = "eager"
COOPERATIVE = "cooperative"
DEFAULT_GENERATION = -1


@dataclass(frozen=True)
class Subscription:
    """What one member sends in JoinGroup (``ConsumerPartitionAssignor.Subscription``).

    ``owned_partitions`` and ``generation`` describe the member's previous assignment; only the
    sticky assignors read them. ``group_instance_id`` is set for static members.
    """

    topics: tuple[str, ...]
    owned_partitions: tuple[TopicPartition, ...] = ()
    generation: int = DEFAULT_GENERATION
    group_instance_id: str | None = None


# --- Java behaviour that decides tie-breaks ---------------------------------------------------

def java_string_key(text: str) -> bytes:
    """Sort key that orders strings like Java's ``String.compareTo`` (UTF-16 code units)."""
    return text.encode("utf-16-be", "surrogatepass")


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode``: sum of unit * 31^(n-1-i) over UTF-16 units, as a signed int."""
    data = java_string_key(text)
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def java_hashmap_order(keys: Iterable[str]) -> list[str]:
    """The order in which a ``java.util.HashMap<String, ...>`` built by ``put`` iterates ``keys``.

    The table starts with 16 buckets and doubles whenever size > 0.75 * buckets. A key lands in
    bucket ``(h ^ (h >>> 16)) & (buckets - 1)`` with ``h = hashCode``; iteration walks buckets in
    ascending order and, inside a bucket, keeps insertion order. Example: "C0".."C3" hash to
    2125..2128, i.e. buckets 13, 14, 15, 0, so the order is C3, C0, C1, C2. (Buckets holding 8+
    colliding keys turn into trees in Java; that case is not modelled.)
    """
    unique = list(dict.fromkeys(keys))
    buckets = 16
    while len(unique) > buckets * 3 // 4:
        buckets *= 2

    def bucket(key: str) -> int:
        h = java_string_hash(key) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (buckets - 1)

    return sorted(unique, key=bucket)  # sorted() is stable: insertion order within a bucket


def _tp_key(tp: TopicPartition) -> tuple[bytes, int]:
    return java_string_key(tp.topic), tp.partition


def member_order(subscriptions: Mapping[str, Subscription]) -> list[str]:
    """Members as range and round-robin order them (``AbstractPartitionAssignor.MemberInfo``).

    Static members (with ``group_instance_id``) come first, sorted by instance id; dynamic
    members follow, sorted by member id. Static ids keep the order stable across restarts, when
    the broker hands out fresh member ids.
    """

    def key(member_id: str) -> tuple[int, bytes, bytes]:
        instance_id = subscriptions[member_id].group_instance_id
        if instance_id is not None:
            return 0, java_string_key(instance_id), java_string_key(member_id)
        return 1, java_string_key(member_id), b""

    return sorted(subscriptions, key=key)


def _subscribed_counts(
    partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
) -> dict[str, int]:
    """Partition counts of the topics somebody subscribes to and the cluster knows."""
    wanted = {topic for sub in subscriptions.values() for topic in sub.topics}
    return {t: n for t, n in partitions_per_topic.items() if t in wanted and n > 0}


# --- The assignors ----------------------------------------------------------------------------

class ConsumerPartitionAssignor(ABC):
    """Base of all assignors (``org.apache.kafka.clients.consumer.ConsumerPartitionAssignor``).

    ``supported_protocols`` lists the rebalance protocols in order of preference, as Kafka does.
    """

    name: ClassVar[str]
    java_class: ClassVar[str]
    supported_protocols: ClassVar[tuple[str, ...]] = (EAGER,)

    @abstractmethod
    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> Assignment:
        """Map every member id to the partitions it gets."""


class RangeAssignor(ConsumerPartitionAssignor):
    """Per-topic ranges, mirrors ``org.apache.kafka.clients.consumer.RangeAssignor``.

    For each topic: the subscribed members in :func:`member_order`; with P partitions and C
    members the first ``P % C`` members get ``P // C + 1`` consecutive partitions, the rest
    ``P // C``. Because every topic starts again at the first member, the first members collect
    the extras of every topic (C0, C1 on two 3-partition topics: C0 gets 4, C1 gets 2).

    Each member's list is sorted by topic, then partition. (Kafka appends topic by topic in its
    HashMap's order of topic names and treats the list as unordered; its tests compare sets.)
    """

    name = "range"
    java_class = "org.apache.kafka.clients.consumer.RangeAssignor"

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> Assignment:
        result: Assignment = {member: [] for member in subscriptions}
        ordered = member_order(subscriptions)
        for topic, count in _subscribed_counts(partitions_per_topic, subscriptions).items():
            members = [m for m in ordered if topic in subscriptions[m].topics]
            share, extra = divmod(count, len(members))
            start = 0
            for index, member in enumerate(members):
                length = share + 1 if index < extra else share
                result[member] += [TopicPartition(topic, p) for p in range(start, start + length)]
                start += length
        for partitions in result.values():
            partitions.sort(key=_tp_key)
        return result


class RoundRobinAssignor(ConsumerPartitionAssignor):
    """Deal partitions like cards, mirrors ``org.apache.kafka.clients.consumer.RoundRobinAssignor``.

    All partitions of all subscribed topics (topics by name, partitions ascending) are dealt to
    the members in :func:`member_order`, cyclically; a member not subscribed to the partition's
    topic is skipped and the deal goes on from the next one. The turn carries over between topics.

    Each member's list comes out sorted by topic, then partition (the deal order), as in Kafka.
    """

    name = "roundrobin"
    java_class = "org.apache.kafka.clients.consumer.RoundRobinAssignor"

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> Assignment:
        result: Assignment = {member: [] for member in subscriptions}
        ordered = member_order(subscriptions)
        counts = _subscribed_counts(partitions_per_topic, subscriptions)
        turn = 0
        for topic in sorted(counts, key=java_string_key):
            for partition in range(counts[topic]):
                while topic not in subscriptions[ordered[turn]].topics:
                    turn = (turn + 1) % len(ordered)
                result[ordered[turn]].append(TopicPartition(topic, partition))
                turn = (turn + 1) % len(ordered)
        return result


@dataclass
class StickyOutcome:
    """The sticky algorithm's result before any cooperative adjustment.

    ``transferring`` maps each partition that changes hands between two current members to its
    new owner (``AbstractStickyAssignor.partitionsTransferringOwnership``).
    """

    assignment: Assignment
    transferring: dict[TopicPartition, str]


class AbstractStickyAssignor(ConsumerPartitionAssignor):
    """Balanced and sticky, mirrors ``...consumer.internals.AbstractStickyAssignor``.

    Previous ownership comes from each member's ``owned_partitions``; when two members claim the
    same partition the higher ``generation`` wins, and on equal generations neither keeps it.
    With equal subscriptions the "constrained" algorithm of kafka-facts §4.4 runs exactly
    (including Java's HashMap order); otherwise a "general" balance-then-keep heuristic runs
    (see :func:`_general_assignment`). Members are ordered by member id only: the sticky
    assignors do not look at ``group_instance_id``.

    Each member's list is in Kafka's order: the partitions it keeps first, then new ones in the
    order they were handed out.
    """

    def sticky_assignment(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> StickyOutcome:
        """Run the shared sticky algorithm; the eager and cooperative assignors post-process it."""
        counts = _subscribed_counts(partitions_per_topic, subscriptions)
        if not subscriptions:
            return StickyOutcome({}, {})
        # Kafka walks its HashMap of members, so that order decides who keeps extra partitions.
        # The order of ``subscriptions`` stands in for Kafka's insertion order; it only matters
        # for member ids that land in the same bucket.
        hash_order = java_hashmap_order(subscriptions)
        owned, doubly_claimed = _resolve_owned(counts, subscriptions, hash_order)
        first_topics = set(next(iter(subscriptions.values())).topics)
        if all(set(sub.topics) == first_topics for sub in subscriptions.values()):
            assignment, transferring = _constrained_assignment(
                counts, hash_order, owned, doubly_claimed
            )
        else:
            assignment = _general_assignment(counts, subscriptions, owned)
            transferring = _transfers_by_difference(subscriptions, assignment)
        return StickyOutcome({m: assignment[m] for m in subscriptions}, transferring)


class StickyAssignor(AbstractStickyAssignor):
    """Eager sticky assignor, mirrors ``org.apache.kafka.clients.consumer.StickyAssignor``."""

    name = "sticky"
    java_class = "org.apache.kafka.clients.consumer.StickyAssignor"

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> Assignment:
        return self.sticky_assignment(partitions_per_topic, subscriptions).assignment


class CooperativeStickyAssignor(AbstractStickyAssignor):
    """Incremental sticky assignor, mirrors ``...consumer.CooperativeStickyAssignor``.

    Same algorithm, then every partition that moves between two members is withheld from its
    new owner for this generation: the old owner sees it missing, revokes just that partition and
    rejoins, and the follow-up rebalance hands it to the new owner. Example: consumer1 owns
    p0-p2 and consumer2 joins. Sticky gives consumer2 p2; cooperative gives consumer2 nothing in
    round 1 and p2 in round 2, after consumer1 released it.
    """

    name = "cooperative-sticky"
    java_class = "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"
    supported_protocols = (COOPERATIVE, EAGER)

    def assign(
        self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription]
    ) -> Assignment:
        outcome = self.sticky_assignment(partitions_per_topic, subscriptions)
        for partition, new_owner in outcome.transferring.items():
            outcome.assignment[new_owner].remove(partition)
        return outcome.assignment


# --- Sticky internals -------------------------------------------------------------------------

def _resolve_owned(
    counts: Mapping[str, int], subscriptions: Mapping[str, Subscription], order: list[str]
) -> tuple[Assignment, set[TopicPartition]]:
    """Each member's still-valid owned partitions, and the partitions claimed twice.

    Claims of partitions that do not exist are dropped. Claims are read in ``order``: a later
    claim with a higher generation takes the partition from the earlier claimer, a lower one is
    ignored, an equal one drops it from both (e.g. c1 and c2 both say "p0, generation 1":
    nobody keeps p0, and whoever gets it is marked as transferring).
    """
    owned: Assignment = {member: [] for member in order}
    claimed_by: dict[TopicPartition, str] = {}
    doubly_claimed: set[TopicPartition] = set()
    for member in order:
        generation = subscriptions[member].generation
        for tp in subscriptions[member].owned_partitions:
            if not 0 <= tp.partition < counts.get(tp.topic, 0):
                continue  # topic or partition no longer exists
            other = claimed_by.get(tp)
            if other is None:
                owned[member].append(tp)
                claimed_by[tp] = member
                continue
            other_generation = subscriptions[other].generation
            if generation == other_generation:
                doubly_claimed.add(tp)
            elif generation > other_generation:
                owned[member].append(tp)
            else:
                continue  # the older claim stays with the other member
            if tp in owned[other]:
                owned[other].remove(tp)
            claimed_by[tp] = member
    return owned, doubly_claimed


def _constrained_assignment(
    counts: Mapping[str, int],
    hash_order: list[str],
    owned: Assignment,
    doubly_claimed: set[TopicPartition],
) -> tuple[Assignment, dict[TopicPartition, str]]:
    """kafka-facts §4.4 "constrained" algorithm, used when all subscriptions are equal."""
    total = sum(counts.values())
    min_quota, expected_over = divmod(total, len(hash_order))
    max_quota = min_quota + 1 if expected_over else min_quota
    over = 0  # members that got max_quota so far
    assignment: Assignment = {member: [] for member in hash_order}
    revocable: dict[TopicPartition, str] = {}  # owned partitions not kept -> their owner
    under_min: list[str] = []
    exactly_min: list[str] = []  # at min_quota, may still take one more

    # Step 1: keep owned partitions, members in HashMap order.
    # E.g. 5 partitions, 2 members owning 2 each: quotas 2..3, expected_over 1; both keep 2 and
    # wait on the exactly-min list for the fifth partition.
    for member in hash_order:
        mine = sorted(
            (tp for tp in owned[member] if tp not in doubly_claimed),
            key=lambda tp: (tp.partition, java_string_key(tp.topic)),
        )
        if len(mine) < min_quota:
            keep = len(mine)
            under_min.append(member)
        elif len(mine) >= max_quota and over < expected_over:
            keep = max_quota
            over += 1
            if over == expected_over:
                exactly_min.clear()  # all extra slots are taken
        else:
            keep = min_quota
            if over < expected_over:
                exactly_min.append(member)
        assignment[member].extend(mine[:keep])
        for tp in mine[keep:]:
            revocable[tp] = member

    # Step 2: everything not kept, by topic name then partition.
    kept = {tp for partitions in assignment.values() for tp in partitions}
    unassigned = [
        TopicPartition(topic, p)
        for topic in sorted(counts, key=java_string_key)
        for p in range(counts[topic])
        if TopicPartition(topic, p) not in kept
    ]

    # Step 3: deal round-robin over the under-min members; once they all reach min_quota, give
    # one extra partition each to members from the front of the exactly-min list.
    under_min.sort(key=java_string_key)
    exactly_min.sort(key=java_string_key)
    transferring: dict[TopicPartition, str] = {}
    cursor = 0  # position in under_min, wrapping around like Kafka's restarted iterator
    for tp in unassigned:
        from_under_min = bool(under_min)
        if cursor < len(under_min):
            member = under_min[cursor]
            cursor += 1
        elif under_min:
            member = under_min[0]
            cursor = 1
        elif exactly_min:
            member = exactly_min.pop(0)
        else:
            raise AssertionError("constrained assignment ran out of members")
        assignment[member].append(tp)
        # Step 4: a partition another current member owned has to be revoked from it first.
        if (tp in revocable and revocable[tp] != member) or tp in doubly_claimed:
            transferring[tp] = member
        if from_under_min and len(assignment[member]) == min_quota:
            cursor -= 1
            under_min.pop(cursor)
            exactly_min.append(member)
        elif len(assignment[member]) == max_quota:
            over += 1
    return assignment, transferring


def _general_assignment(
    counts: Mapping[str, int], subscriptions: Mapping[str, Subscription], owned: Assignment
) -> Assignment:
    """Balance-then-keep heuristic for unequal subscriptions.

    Follows the outline of Kafka's general algorithm: (1) keep every owned partition the member
    is still subscribed to; (2) hand each remaining partition, topics with the fewest subscribers
    first, to the least-loaded subscriber (ties by member id); (3) move partitions from a member
    to a subscriber with at least two fewer, until no such move exists; (4) undo step 3 if it did
    not lower the balance score (sum of pairwise count differences) and something was kept.
    Kafka's extra rules (preferring the previous generation's owner, avoiding ping-pong moves of
    one topic between two members) are left out, so only Kafka's test vectors are pinned here.
    """
    members = list(subscriptions)
    topics_of = {m: {t for t in subscriptions[m].topics if t in counts} for m in members}
    subscribers = {t: [m for m in members if t in topics_of[m]] for t in counts}
    current: Assignment = {m: [tp for tp in owned[m] if tp.topic in topics_of[m]] for m in members}
    revocation_required = any(len(current[m]) < len(owned[m]) for m in members)
    holder = {tp: m for m in members for tp in current[m]}
    initializing = not holder

    topic_order = sorted(counts, key=lambda t: (len(subscribers[t]), java_string_key(t)))
    all_partitions = [TopicPartition(t, p) for t in topic_order for p in range(counts[t])]
    unassigned = [tp for tp in all_partitions if tp not in holder]

    def least_loaded(topic: str) -> str:
        return min(subscribers[topic], key=lambda m: (len(current[m]), java_string_key(m)))

    def move(tp: TopicPartition, target: str) -> None:
        current[holder[tp]].remove(tp)
        current[target].append(tp)
        holder[tp] = target

    for tp in unassigned:
        move_to = least_loaded(tp.topic)
        current[move_to].append(tp)
        holder[tp] = move_to

    def rebalance(partitions: list[TopicPartition]) -> bool:
        moved_any = False
        while True:  # ends: each move lowers the sum of squared member counts
            moved = False
            for tp in partitions:
                target = least_loaded(tp.topic)
                if len(current[holder[tp]]) > len(current[target]) + 1:
                    move(tp, target)
                    moved = moved_any = True
            if not moved:
                return moved_any

    shared = {t for t in counts if len(subscribers[t]) >= 2}  # only these partitions can move
    flexible = [m for m in members if topics_of[m] & shared]

    def score(assignment: Assignment) -> int:
        sizes = [len(assignment[m]) for m in flexible]
        return sum(abs(a - b) for i, a in enumerate(sizes) for b in sizes[i + 1 :])

    before = {m: list(current[m]) for m in members}
    if not revocation_required:  # first try moving only the partitions handed out just now
        rebalance([tp for tp in unassigned if tp.topic in shared])
    moved = rebalance([tp for tp in all_partitions if tp.topic in shared])
    if not initializing and moved and score(current) >= score(before):
        current = before
    return current


def _transfers_by_difference(
    subscriptions: Mapping[str, Subscription], assignment: Assignment
) -> dict[TopicPartition, str]:
    """Partitions some member gains that another member owned and now loses."""
    gained: dict[TopicPartition, str] = {}
    lost: set[TopicPartition] = set()
    for member, partitions in assignment.items():
        owned = set(subscriptions[member].owned_partitions)
        gained.update((tp, member) for tp in partitions if tp not in owned)
        lost.update(owned.difference(partitions))
    return {tp: member for tp, member in gained.items() if tp in lost}


# --- Registry ---------------------------------------------------------------------------------

ASSIGNORS: dict[str, type[ConsumerPartitionAssignor]] = {
    cls.name: cls
    for cls in (RangeAssignor, RoundRobinAssignor, StickyAssignor, CooperativeStickyAssignor)
}


def assignor_for(name_or_class: str | type[ConsumerPartitionAssignor]) -> ConsumerPartitionAssignor:
    """An assignor for a ``partition.assignment.strategy`` value.

    Accepts Kafka's short names ("range", "roundrobin", "sticky", "cooperative-sticky"), the
    Java class names (``org.apache.kafka.clients.consumer.RangeAssignor`` ...) or an assignor
    class. Raises :class:`ConfigError` for anything else.
    """
    if isinstance(name_or_class, type) and issubclass(name_or_class, ConsumerPartitionAssignor):
        return name_or_class()
    if isinstance(name_or_class, str):
        wanted = name_or_class.strip()
        for cls in ASSIGNORS.values():
            if wanted in (cls.name, cls.java_class):
                return cls()
    allowed = ", ".join(ASSIGNORS)
    java_names = ", ".join(cls.java_class for cls in ASSIGNORS.values())
    raise ConfigError(
        f"Invalid value {name_or_class!r} for configuration partition.assignment.strategy: "
        f"unknown assignor. Allowed values: {allowed} (or the class names {java_names})."
    )
