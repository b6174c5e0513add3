"""Checks for exercise 01 (lesson "partitioners"): a VIP partitioner and a hashing prediction.

01.a — the learner's ``VipPartitioner`` follows Kafka's ``Partitioner`` interface
(``partition(topic, key, key_bytes, value, value_bytes, cluster) -> int``, optional
``configure(configs)``). The spec: the ``orders`` topic has 10 partitions; records whose key starts
with ``"vip-"`` go to partitions 0–7, all others to 8–9; a key always goes to the same partition;
keys spread evenly within each group (murmur2, like Kafka). The checks feed it a fixed workload:
2000 distinct keys (1600 VIP, 400 others) and 4000 records of which 80 % are from VIPs, drawn
from :data:`SEED` so every run sees the same keys in the same order.

01.b — a prediction, compared with :func:`sim.partitioners.partition_for_key` at check time.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import cache

import numpy as np

from sim.grading.answers import describe as _describe
from sim.grading.checklist import Checklist
from sim.grading.registry import question
from sim.partitioners import ClusterMetadata, partition_for_key

EXERCISE = "01_partitioners"
HIDDEN_WHILE_GRADED = True  # the notebook never imports this module; its helpers know answers

SEED = 1  # the only source of the test keys and their order
TOPIC = "orders"
NUM_PARTITIONS = 10
VIP_PARTITIONS = range(0, 8)
OTHER_PARTITIONS = range(8, 10)
VIP_PREFIX = "vip-"
VIP_KEYS = 1600
OTHER_KEYS = 400
RECORDS = 4000
VIP_SHARE = 0.8  # VIP customers send this share of the records
SHARE_TOLERANCE = 0.02  # measured share of records on 0–7 may differ by this much
BALANCE_RANGE = (0.5, 1.5)  # each partition's keys, as a multiple of its fair share

_HINTS = {
    "range": (
        "Partitions are whole numbers from 0 to num_partitions - 1. Hashes can be negative: "
        "to_positive(...) before %, or let partition_for_key(key_bytes, n) do both."
    ),
    "stable": (
        "Compute the partition from the key bytes alone: no counters, no random numbers and "
        "no Python hash() (it changes from one run to the next)."
    ),
    "routing": (
        'Test the prefix with key_bytes.startswith(b"vip-"); hash VIP keys onto 8 partitions, '
        "and everyone else onto 2 partitions shifted up by 8."
    ),
    "balance": (
        "Hash the whole key bytes with murmur2 (partition_for_key does) rather than using the "
        "key's length, first letter or a fixed partition."
    ),
    "keyless": (
        "A key-less record has key and key_bytes None: handle it before hashing "
        "(it is not a VIP record)."
    ),
}


@dataclass(frozen=True)
class _Workload:
    vip_keys: tuple[str, ...]
    other_keys: tuple[str, ...]
    records: tuple[str, ...]  # one key per record, in sending order

    @property
    def keys(self) -> tuple[str, ...]:
        return self.vip_keys + self.other_keys


@cache
def _workload() -> _Workload:
    rng = np.random.default_rng(SEED)
    vip = tuple(f"{VIP_PREFIX}{n}" for n in rng.choice(100_000, VIP_KEYS, replace=False))
    other = tuple(f"customer-{n}" for n in rng.choice(100_000, OTHER_KEYS, replace=False))
    n_vip = round(RECORDS * VIP_SHARE)
    picks = [vip[i] for i in rng.integers(0, VIP_KEYS, n_vip)]
    picks += [other[i] for i in rng.integers(0, OTHER_KEYS, RECORDS - n_vip)]
    order = rng.permutation(RECORDS)
    return _Workload(vip, other, tuple(picks[i] for i in order))


def _show(value: object) -> str:
    """``12``, ``3.0 (a float)``, ``'3' (a str)`` — the value as the learner should see it."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    return _describe(value, 40)


def _is_partition(value: object, count: int) -> bool:
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and 0 <= int(value) < count
    )


def _in_group(value: object, group: range) -> bool:
    return _is_partition(value, NUM_PARTITIONS) and int(value) in group  # type: ignore[call-overload]


def _new(cls: type) -> object:
    instance = cls()
    configure = getattr(instance, "configure", None)
    if callable(configure):
        configure({})
    return instance


def _route(partitioner: object, key: str | None, cluster: ClusterMetadata, n: int = 0) -> object:
    value = f"order {n}"
    key_bytes = None if key is None else key.encode()
    return partitioner.partition(  # type: ignore[attr-defined]
        TOPIC, key, key_bytes, value, value.encode(), cluster
    )


LAB_EXAMPLE_CONFIGS = {"vip.partitions": 4, "vip.prefix": "gold-"}
PROBE_KEYS = 12


def _lab_example_probes() -> dict[str, list[tuple[str | bytes | None, bytes | None]]]:
    """Calls on which the lab's example differs from any partitioner written to the spec.

    ``configured``: after ``configure(LAB_EXAMPLE_CONFIGS)`` the example gives "gold-" keys
    partitions 0–3; the spec has no such configs, so they are ordinary keys (8–9).
    ``mismatched``: the example tests the prefix on ``key`` (a ``str`` only) but hashes
    ``key_bytes``; the spec's records have ``key_bytes == key.encode()``, so a partitioner
    written to it never needs to look at both.
    """
    configured = [(f"gold-{n}", f"gold-{n}".encode()) for n in range(PROBE_KEYS)]
    configured += [(f"vip-{n}", f"vip-{n}".encode()) for n in range(PROBE_KEYS)]
    mismatched: list[tuple[str | bytes | None, bytes | None]] = [
        (f"vip-{n}", f"customer-{n}".encode()) for n in range(PROBE_KEYS)
    ]
    mismatched += [(f"vip-{n}".encode(), f"vip-{n}".encode()) for n in range(PROBE_KEYS)]
    return {"configured": configured, "mismatched": mismatched}


def _acts_like_the_labs_example(cls: type, cluster: ClusterMetadata) -> str | None:
    """Which probe the learner's class answers exactly as the lab's example, if any.

    Compares behaviour, not names: a subclass of the example, a class that delegates to it or
    a copy of it all answer like it; a partitioner that raises on a probe differs from it.
    """
    from sim.partitioners import VipPartitioner

    for probe, calls in _lab_example_probes().items():
        theirs, mine = VipPartitioner(), cls()
        configs = LAB_EXAMPLE_CONFIGS if probe == "configured" else {}
        theirs.configure(configs)
        configure = getattr(mine, "configure", None)
        try:
            if callable(configure):
                configure(dict(configs))
            same = all(
                mine.partition(TOPIC, key, key_bytes, "v", b"v", cluster)  # type: ignore[attr-defined]
                == theirs.partition(TOPIC, key, key_bytes, "v", b"v", cluster)
                for key, key_bytes in calls
            )
        except Exception:  # an error on a probe is a difference
            same = False
        if same:
            return f"{probe} probe, {len(calls)} calls"
    return None


@question(
    "01.a",
    points=8,
    answer="VipPartitioner",
    title="VIP partitioner",
    hint=_HINTS["routing"],
)
def vip_partitioner(answer: object, sheet: Checklist) -> None:
    """Grade a VIP partitioner: creation, range, stability, routing, share, balance, no key."""
    cls = answer if isinstance(answer, type) else type(answer)
    name = cls.__name__
    w = _workload()
    cluster = ClusterMetadata({TOPIC: NUM_PARTITIONS})
    last = NUM_PARTITIONS - 1

    with sheet.item(f"{name}() can be created and configured", points=1) as item:
        if not callable(getattr(cls, "partition", None)):
            item.fail(
                "expected a partitioner class with a partition(topic, key, key_bytes, value, "
                f"value_bytes, cluster) method, got {_describe(answer, 40)}"
            )
        else:
            first = _new(cls)
            if (probe := _acts_like_the_labs_example(cls, cluster)) is not None:
                item.fail(
                    f"{name} behaves exactly like the lab's own example, "
                    f"sim.partitioners.VipPartitioner ({probe}); write your own class",
                    "Define class VipPartitioner in your notebook with its own partition() "
                    "method, without calling or extending the lab's example.",
                )
    if not item.passed:
        return sheet.stop("there is no partitioner to try")

    routed: list[object] = []
    with sheet.item(
        f"partition() returns a whole number in 0–{last} for all {RECORDS} records", points=1
    ) as item:
        for n, key in enumerate(w.records):
            p = _route(first, key, cluster, n)
            routed.append(p)
            if not _is_partition(p, NUM_PARTITIONS):
                item.fail(
                    f"{name}.partition(topic={TOPIC!r}, key={key!r}, ...) returned {_show(p)}, "
                    f"but the topic has {NUM_PARTITIONS} partitions: allowed range is 0–{last}",
                    _HINTS["range"],
                )
    if item.crashed or item.stub:
        return sheet.stop("partition() did not return for every record")

    table: dict[str, object] = {}
    with sheet.item(
        "each key always goes to the same partition, also in a second, fresh partitioner",
        points=1,
    ) as item:
        for key, p in zip(w.records, routed, strict=True):
            if table.setdefault(key, p) != p:
                item.fail(
                    f"key {key!r} went to partition {_show(table[key])} and later to {_show(p)}",
                    _HINTS["stable"],
                )
        for key in w.keys:
            table.setdefault(key, _route(first, key, cluster))
        second = _new(cls)
        for key in reversed(w.keys):
            p = _route(second, key, cluster)
            if p != table[key]:
                item.fail(
                    f"key {key!r} went to partition {_show(table[key])} from one {name} and to "
                    f"{_show(p)} from another: the choice must depend on the key only",
                    _HINTS["stable"],
                )
    if item.crashed or item.stub:
        return sheet.stop("partition() did not return for every key")

    with sheet.item(
        f"VIP keys go only to partitions 0–{VIP_PARTITIONS[-1]}, all others only to "
        f"{OTHER_PARTITIONS[0]}–{OTHER_PARTITIONS[-1]}",
        points=2,
    ) as item:
        for keys, allowed, who in (
            (w.vip_keys, VIP_PARTITIONS, "VIP"),
            (w.other_keys, OTHER_PARTITIONS, "non-VIP"),
        ):
            stray = [k for k in keys if not _in_group(table[k], allowed)]
            if stray:
                item.fail(
                    f"{who} key {stray[0]!r} went to partition {_show(table[stray[0]])} "
                    f"({len(stray)} of {len(keys)} {who} keys left partitions "
                    f"{allowed[0]}–{allowed[-1]})",
                    _HINTS["routing"],
                )

    with sheet.item(
        f"about {VIP_SHARE:.0%} of the records (the VIP share) land on partitions "
        f"0–{VIP_PARTITIONS[-1]}",
        points=1,
    ) as item:
        share = sum(_in_group(p, VIP_PARTITIONS) for p in routed) / len(routed)
        if abs(share - VIP_SHARE) > SHARE_TOLERANCE:
            item.fail(
                f"{share:.1%} of the records landed on partitions 0–{VIP_PARTITIONS[-1]}; VIP "
                f"customers send {VIP_SHARE:.0%} of them, so expect {VIP_SHARE:.0%} "
                f"± {SHARE_TOLERANCE:.0%}",
                _HINTS["routing"],
            )

    low, high = BALANCE_RANGE
    with sheet.item(
        f"keys spread evenly within each group ({len(w.keys)} distinct keys; every partition "
        f"gets {low}–{high}× its fair share)",
        points=1,
    ) as item:
        for keys, group, who in (
            (w.vip_keys, VIP_PARTITIONS, "VIP"),
            (w.other_keys, OTHER_PARTITIONS, "non-VIP"),
        ):
            fair = len(keys) / len(group)
            counts = {p: 0 for p in group}
            for k in keys:
                if _in_group(table[k], group):
                    counts[int(table[k])] += 1  # type: ignore[call-overload]
            for p, count in counts.items():
                if not low * fair <= count <= high * fair:
                    item.fail(
                        f"partition {p} got {count} of the {len(keys)} {who} keys, "
                        f"{count / fair:.2f}× its fair share of {fair:g}",
                        _HINTS["balance"],
                    )

    with sheet.item(f"a key-less record (key None) gets a partition in 0–{last}", points=1) as item:
        p = _route(first, None, cluster)
        if not _is_partition(p, NUM_PARTITIONS):
            item.fail(
                f"{name}.partition(topic={TOPIC!r}, key=None, key_bytes=None, ...) returned "
                f"{_show(p)}; allowed range is 0–{last}",
                _HINTS["keyless"],
            )
    return None


@question(
    "01.b",
    points=2,
    answer="alice_partition",
    title="Predict: which partition does 'alice' land on?",
    hint="Kafka hashes the UTF-8 bytes of the key: to_positive(murmur2(b'alice')) % 6.",
)
def alice_prediction(answer: object, sheet: Checklist) -> None:
    """Grade the prediction for key ``"alice"`` on a 6-partition topic."""
    partitions = 6
    expected = partition_for_key(b"alice", partitions)  # computed now, never stored
    with sheet.item(
        f"alice_partition is where Kafka puts key 'alice' with {partitions} partitions",
        points=2,
    ) as item:
        if isinstance(answer, str) and answer.strip().isdigit():
            item.fail(
                f"expected a whole number, got {_show(answer)}: remove the quotes",
            )
        elif not _is_partition(answer, partitions):
            item.fail(
                f"expected a partition number from 0 to {partitions - 1}, got {_show(answer)}"
            )
        elif int(answer) != expected:  # type: ignore[call-overload]
            item.fail(f"{int(answer)} is not the partition Kafka picks for 'alice'")  # type: ignore[call-overload]


BURST_RECORDS = 1000
BURST_RATE_PER_S = 7000  # one record every 1/7 ms: no record lands exactly on a linger deadline
BURST_LINGER_MS = 5


def keyless_burst_batches(records: int = BURST_RECORDS, rate_per_s: float = BURST_RATE_PER_S,
                          linger_ms: float = BURST_LINGER_MS) -> int:
    """Batches the simulator's producer sends for a key-less burst to a 1-partition topic."""
    from sim.kernel import Kernel
    from sim.producer import Producer
    from sim.workloads import Workload

    kernel = Kernel(seed=SEED, brokers=1)
    kernel.cluster.create_topic("clicks", partitions=1)
    burst = Workload.generate(kernel.spawn_rng(), "clicks", records, rate_per_s, value_bytes=100)
    Producer(kernel, {"linger.ms": linger_ms}, workload=burst)
    kernel.run()
    return kernel.cluster.partition("clicks", 0).log.batch_count


@question(
    "01.c",
    points=2,
    answer="keyless_batches",
    title="Predict: how many batches does a key-less burst make?",
    hint=(
        "A batch is sent when it is full (batch.size bytes, about 149 records of 100 bytes) or "
        "when it has waited linger.ms — whichever comes first. How many records arrive in 5 ms?"
    ),
)
def keyless_batches(answer: object, sheet: Checklist) -> None:
    """Grade the batch-count prediction against a simulation run at check time."""
    expected = keyless_burst_batches()
    with sheet.item(
        f"keyless_batches is the number of batches for {BURST_RECORDS} key-less records at "
        f"{BURST_RATE_PER_S}/s with linger.ms={BURST_LINGER_MS}",
        points=2,
    ) as item:
        if not isinstance(answer, numbers.Integral) or isinstance(answer, bool):
            item.fail(f"expected a whole number of batches, got {_describe(answer, 40)}")
        elif abs(int(answer) - expected) > 1:
            item.fail(f"{int(answer)} batches is not what the simulator's producer sends; "
                      "count how many records fit in one linger.ms window")
        elif int(answer) != expected:
            item.fail(f"{int(answer)} is close but off by one: does the record that arrives "
                      "just after the deadline join the batch?")
