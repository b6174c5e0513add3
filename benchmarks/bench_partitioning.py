"""How fast is keyed partitioning? kafka-python's murmur2 against the lab's NumPy versions.

Run: ``python benchmarks/bench_partitioning.py`` (about 15 seconds on two cores).

One million keys ``b"user-<n>"`` (n drawn with a fixed seed from a key space of one million
users) are partitioned onto 12 partitions four ways:

(a) baseline: kafka-python's pure-Python ``murmur2``, then ``& 0x7fffffff`` and ``% 12``, per key;
(b) ``partitions_for_keys`` given a Python ``list[bytes]``;
(c) ``partitions_for_keys`` given the same keys pre-built as a NumPy ``S`` array;
(d) the simulator's approach: find the distinct keys (``np.unique`` with ``return_inverse``),
    hash each distinct key once, then look every record's partition up in that table;
(d') the same, but as the simulator's workloads have it: each record carries the integer id of
    its key and the key space (id -> key bytes) is built once per scenario, so ``np.unique``
    runs over integers instead of sorting byte strings.

Every timing is the median of a few repetitions after a warm-up run (memory touched for the
first time is slow on small virtual machines). All four must give identical partitions.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from sim.murmur2 import partition_for_key, partitions_for_keys

N_KEYS = 1_000_000
KEY_SPACE = 1_000_000
NUM_PARTITIONS = 12
SEED = 20241025
TARGET_RATIO = 50.0
REPEATS = 5
BASELINE_REPEATS = 3


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one untimed warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_kafka_python_murmur2() -> Callable[[bytes], int] | None:
    """kafka-python's pure-Python murmur2 (module path depends on its version), or None."""
    with warnings.catch_warnings():  # importing kafka-python emits deprecation warnings
        warnings.simplefilter("ignore")
        for module_name in ("kafka.partitioner.default", "kafka.partitioner.hashed"):
            try:
                module = __import__(module_name, fromlist=["murmur2"])
                return module.murmur2
            except (ImportError, AttributeError):
                continue
    return None


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def main() -> int:
    kp_murmur2 = load_kafka_python_murmur2()
    if kp_murmur2 is None:
        print("kafka-python is not installed; it is the baseline, so there is nothing to compare.")
        return 1

    print("Keyed partitioning benchmark")
    print(
        f"  python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"kafka-python {version_of('kafka-python')}, {os.cpu_count()} CPUs"
    )

    rng = np.random.default_rng(SEED)
    key_ids = rng.integers(0, KEY_SPACE, size=N_KEYS)
    keys = [b"user-%d" % n for n in key_ids.tolist()]
    key_array = np.array(keys)  # fixed-width "S" array; no key ends in a NUL byte
    n_distinct = len(set(keys))
    print(
        f"  {N_KEYS:,} keys b'user-<n>' (n from 0..{KEY_SPACE - 1:,}, {n_distinct:,} distinct, "
        f"{min(map(len, keys))}-{max(map(len, keys))} bytes), {NUM_PARTITIONS} partitions, "
        f"medians of {REPEATS} runs ({BASELINE_REPEATS} for the baseline)"
    )
    print()

    n = NUM_PARTITIONS

    def baseline() -> list[int]:
        return [(kp_murmur2(k) & 0x7FFFFFFF) % n for k in keys]

    def from_list() -> np.ndarray:
        return partitions_for_keys(keys, n)

    def from_array() -> np.ndarray:
        return partitions_for_keys(key_array, n)

    def distinct_then_lookup() -> np.ndarray:
        distinct, inverse = np.unique(key_array, return_inverse=True)
        table = partitions_for_keys(distinct, n)
        return table[inverse]

    # The key space of a scenario: key id -> key bytes, built once (not timed).
    key_space = np.array([b"user-%d" % i for i in range(KEY_SPACE)])

    def distinct_ids_then_lookup() -> np.ndarray:
        distinct_ids, inverse = np.unique(key_ids, return_inverse=True)
        table = partitions_for_keys(key_space[distinct_ids], n)
        return table[inverse]

    # Every method must agree before any of them is timed.
    expected = np.array(baseline(), dtype=np.int64)
    for method in (from_list, from_array, distinct_then_lookup, distinct_ids_then_lookup):
        if not np.array_equal(method(), expected):
            print(f"MISMATCH: {method.__name__} disagrees with kafka-python")
            return 1
    sample = keys[:20_000]
    if [partition_for_key(k, n) for k in sample] != expected[: len(sample)].tolist():
        print("MISMATCH: partition_for_key disagrees with kafka-python")
        return 1

    t_base = median_seconds(baseline, BASELINE_REPEATS)
    rows = [
        ("(b) partitions_for_keys(list[bytes])", median_seconds(from_list, REPEATS)),
        ("(c) partitions_for_keys(np 'S' array)", median_seconds(from_array, REPEATS)),
        ("(d) np.unique + hash distinct + lookup", median_seconds(distinct_then_lookup, REPEATS)),
        ("(d') same, np.unique over key ids", median_seconds(distinct_ids_then_lookup, REPEATS)),
    ]

    # Pieces of (d): the table costs are paid once per key space, the lookup once per record.
    distinct, inverse = np.unique(key_array, return_inverse=True)
    table = partitions_for_keys(distinct, n)
    t_unique = median_seconds(lambda: np.unique(key_array, return_inverse=True), REPEATS)
    t_table = median_seconds(lambda: partitions_for_keys(distinct, n), REPEATS)
    t_lookup = median_seconds(lambda: table[inverse], REPEATS)

    # For reference: the lab's own scalar function, one key at a time (on 200k keys, scaled).
    subset = keys[:200_000]
    t_scalar = median_seconds(lambda: [partition_for_key(k, n) for k in subset], 3)
    t_scalar *= N_KEYS / len(subset)

    def ns_per_key(seconds: float) -> float:
        return seconds / N_KEYS * 1e9

    base_ns = ns_per_key(t_base)
    print(f"{'method':<42} {'ns/key':>9} {'vs (a)':>9}  target >= {TARGET_RATIO:.0f}x")
    print(f"{'(a) kafka-python murmur2 & mask % n':<42} {base_ns:>9.1f} {'1.0x':>9}  (baseline)")
    for label, seconds in rows:
        ratio = t_base / seconds
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        print(f"{label:<42} {ns_per_key(seconds):>9.1f} {ratio:>8.1f}x  {verdict}")
    print()
    print("Pieces of (d), per key of the 1M-record input:")
    pieces = [
        ("np.unique(keys, return_inverse=True)", t_unique, ""),
        (
            f"hash the {len(distinct):,} distinct keys",
            t_table,
            f"({t_table / len(distinct) * 1e9:.1f} ns per distinct key)",
        ),
        ("table[inverse] lookup", t_lookup, f"({t_base / t_lookup:,.0f}x the baseline)"),
    ]
    for label, seconds, note in pieces:
        print(f"  {label:<40} {ns_per_key(seconds):>9.1f} ns  {note}".rstrip())
    print()
    print(
        f"Reference: sim.murmur2.partition_for_key one key at a time: "
        f"{ns_per_key(t_scalar):.1f} ns/key ({t_base / t_scalar:.1f}x), timed on 200k keys, scaled."
    )
    print(
        "Notes: (b) is bound by turning the Python list into arrays (two Python-level passes);\n"
        "(d) is bound by np.unique sorting byte strings; once a key table exists, each record\n"
        "costs only the lookup."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
