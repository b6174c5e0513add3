"""Hypothesis strategies shared by the test suite.

A plain module of strategy definitions: import what you need, add new ones at the end of the
section they belong to.
"""

from __future__ import annotations

from hypothesis import strategies as st

# --- Record keys --------------------------------------------------------------------------------

#: Serialized record keys: any bytes, including the empty key and keys with NUL bytes.
key_bytes = st.binary(max_size=200)

#: Keys as ``StringSerializer`` produces them: UTF-8 encoded text (any Unicode, not only ASCII).
utf8_keys = st.text(max_size=60).map(lambda s: s.encode("utf-8"))

#: Batches of keys of mixed lengths, as handed to the vectorised hash.
key_batches = st.lists(st.one_of(key_bytes, utf8_keys), max_size=60)

# --- Topics ------------------------------------------------------------------------------------

#: A valid partition count for a topic.
num_partitions = st.integers(min_value=1, max_value=10_000)

# --- 32-bit values -------------------------------------------------------------------------------

#: Any Java ``int`` (signed 32-bit).
java_ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)

# --- Producer internals ---------------------------------------------------------------------------

#: Partitions of the small topic the ready-time heap is tested on.
READY_PARTITIONS = 12

#: Changes of partitions' ready times: (partition, new time), with ``inf`` (nothing due) and
#: repeated times, as sender passes and appends make them.
ready_time_changes = st.lists(
    st.tuples(st.integers(0, READY_PARTITIONS - 1),
              st.one_of(st.just(float("inf")), st.integers(0, 20).map(float))),
    max_size=80,
)

# --- Broker producer state ----------------------------------------------------------------------

#: Sequences near both ends of the range, so that batches wrap past ``Integer.MAX_VALUE``.
_sequences = st.one_of(st.integers(0, 12), st.integers(2**31 - 6, 2**31 - 1))

#: One batch seen by a partition's producer state: (producer id, producer epoch, base
#: sequence, records), the epoch -1 (no epoch) included.
producer_batches = st.tuples(st.integers(1, 2), st.integers(-1, 2), _sequences,
                             st.integers(1, 4))

# --- Consumer groups (partition assignors) -----------------------------------------------------

#: Member ids: short ASCII text, so Python's and Java's string orders agree.
member_ids = st.text(alphabet="abcC-0123456789", min_size=1, max_size=6)

#: Topic names, including pairs whose order surprises ("topic10" < "topic2").
topic_names = st.sampled_from(["orders", "payments", "t0", "t1", "t2", "topic10", "topic2"])

#: ``partitions_per_topic`` for a small cluster.
partition_counts = st.dictionaries(topic_names, st.integers(1, 7), min_size=1, max_size=4)


@st.composite
def equal_subscription_groups(draw, max_members: int = 6):
    """(partitions_per_topic, subscriptions): fresh dynamic members, all on the same topics."""
    from sim.consumer.assignors import Subscription

    counts = draw(partition_counts)
    members = draw(st.lists(member_ids, min_size=1, max_size=max_members, unique=True))
    topics = tuple(counts)
    return counts, {member: Subscription(topics) for member in members}


@st.composite
def mixed_subscription_groups(draw, max_members: int = 6):
    """(partitions_per_topic, subscriptions): fresh dynamic members, each on its own topics."""
    from sim.consumer.assignors import Subscription

    counts = draw(partition_counts)
    members = draw(st.lists(member_ids, min_size=1, max_size=max_members, unique=True))
    topic_subsets = st.lists(st.sampled_from(sorted(counts)), min_size=1, unique=True)
    return counts, {member: Subscription(tuple(draw(topic_subsets))) for member in members}


@st.composite
def groups_with_owned_partitions(draw, equal: bool | None = None):
    """A group whose members report previous owners, each partition claimed at most once.

    ``equal`` picks equal (True) or mixed (False) subscriptions; None lets Hypothesis choose.
    Every claim carries generation 1, as after one completed rebalance.
    """
    from sim.consumer.assignors import Subscription
    from sim.records import TopicPartition

    if equal is None:
        equal = draw(st.booleans())
    groups = equal_subscription_groups() if equal else mixed_subscription_groups()
    counts, subscriptions = draw(groups)
    members = list(subscriptions)
    owned: dict[str, list[TopicPartition]] = {member: [] for member in members}
    for topic, count in counts.items():
        for partition in range(count):
            owner = draw(st.sampled_from([None, *members]))
            if owner is not None:
                owned[owner].append(TopicPartition(topic, partition))
    return counts, {
        member: Subscription(sub.topics, tuple(owned[member]), generation=1)
        for member, sub in subscriptions.items()
    }


# --- Fault schedules (replication) --------------------------------------------------------------


@st.composite
def fault_schedules(draw, brokers: int = 3, horizon_ms: int = 60_000, max_faults: int = 6):
    """(at_ms, fault) pairs: crashes (some losing the disk), restarts, network cuts and heals,
    lossy client links. Every crash is followed by a restart of the same broker within the
    horizon, and every cut by a heal, so a run can end with the whole cluster back together.
    """
    from sim import faults

    events: list[tuple[float, object]] = []
    for _ in range(draw(st.integers(0, max_faults))):
        start = draw(st.integers(0, horizon_ms - 1000))
        end = draw(st.integers(start + 1, horizon_ms))
        broker = draw(st.integers(0, brokers - 1))
        kind = draw(st.sampled_from(["crash", "cut", "cut-controller", "loss"]))
        if kind == "crash":
            lose_disk = draw(st.booleans())
            events += [(start, faults.CrashBroker(broker, lose_disk)),
                       (end, faults.RestartBroker(broker))]
        elif kind == "cut":
            other = draw(st.integers(0, brokers - 1).filter(lambda b, me=broker: b != me))
            events += [(start, faults.NetworkPartition((broker,), (other,))),
                       (end, faults.HealNetwork((broker,), (other,)))]
        elif kind == "cut-controller":
            events += [(start, faults.NetworkPartition((broker,), ("controller",))),
                       (end, faults.HealNetwork((broker,), ("controller",)))]
        else:
            probability = draw(st.sampled_from([0.1, 0.3, 0.6]))
            events += [(start, faults.LinkLoss(broker, "app", probability)),
                       (end, faults.LinkLoss(broker, "app", 0.0))]
    return sorted(events, key=lambda e: e[0])


# --- Fuzzer schedules (sim.fuzz) --------------------------------------------------------------

@st.composite
def fuzz_schedules(draw, profile: str = "safe", records: int = 600):
    """A scenario dict from the fault-schedule fuzzer, picked by campaign seed and index."""
    from sim.fuzz import PROFILES, generate

    seed = draw(st.integers(0, 2**32 - 1))
    index = draw(st.integers(0, 100_000))
    return generate(PROFILES[profile].scaled(records), seed, index)


# --- Hostile scenario files (the command line's error contract) --------------------------------

#: Values a careless or hostile scenario file may hold where anything else was expected.
HOSTILE_VALUES = (None, "", "abc", "10", "1e3", True, False, 1.5, -1, 0, -0.0, float("nan"),
                  float("inf"), float("-inf"), 10**30, 2**63, -10**12, [], [1, 2], {},
                  {"x": 1}, "é✓\u202e", "a" * 300, [[[[[]]]]], 1e-9, "..", "broker-9", 999)

#: The name every added unknown field gets, so that an error can be checked to name it.
UNKNOWN_FIELD = "bogus_field"


def _paths(node, path=()):
    """Every place in a YAML document: the root, each mapping value and each list item."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


def hostile_mutant(rng, scenario: dict) -> tuple[dict, bool]:
    """A copy of ``scenario`` with one hostile change, and whether it added an unknown field.

    The change replaces a value anywhere with one of ``HOSTILE_VALUES``, deletes a field, or
    adds ``UNKNOWN_FIELD`` to a mapping anywhere. ``rng`` is a ``random.Random``.
    """
    import copy

    data = copy.deepcopy(scenario)
    path = rng.choice(list(_paths(data)))
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    node = parent[path[-1]] if path else data
    roll = rng.random()
    if isinstance(node, dict) and roll < 0.25:
        node[UNKNOWN_FIELD] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
        return data, True
    if isinstance(node, dict) and node and roll < 0.4:
        del node[rng.choice(sorted(node, key=str))]
        return data, False
    value = copy.deepcopy(rng.choice(HOSTILE_VALUES))
    if not path:
        return {"value": value}, False
    parent[path[-1]] = value
    return data, False
