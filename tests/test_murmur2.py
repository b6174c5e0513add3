"""Specification of keyed partitioning: Kafka's murmur2, toPositive and the keyed partition rule.

Expected values come from Kafka itself (``UtilsTest``), from kafka-python's compatibility test,
and from running Kafka's ``Utils.murmur2`` on a JVM (the team's reference sheet, section 1).
kafka-python's pure-Python murmur2 serves as an independent oracle for random keys.
"""

from __future__ import annotations

import importlib
import struct
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import ConfigError
from sim.murmur2 import (
    murmur2,
    murmur2_array,
    partition_for_key,
    partitions_for_keys,
    to_positive,
)
from tests.strategies import java_ints, key_batches, key_bytes, num_partitions, utf8_keys

# --- Vectors from Kafka and kafka-python ---------------------------------------------------------

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (clients/src/test/java/...).
KAFKA_UTILS_TEST_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (bytes([ord("a"), ord("b"), ord("c")]), 479470107),
]

# kafka-python test/producer/test_partitioner.py::test_murmur2_java_compatibility (1000 partitions).
KAFKA_PYTHON_1000_PARTITIONS = [
    (b"", 681),
    (b"a", 524),
    (b"ab", 434),
    (b"abc", 107),
    (b"123456789", 566),
    (b"\x00 ", 742),
]

# Reference sheet §1.4: UTF-8 key -> (murmur2, partition of 3, of 6, of 10).
STRING_KEY_VECTORS = [
    ("", 275646681, 0, 3, 1),
    ("a", -1563381124, 1, 4, 4),
    ("b", -1853091852, 2, 2, 6),
    ("c", -1877468854, 1, 4, 4),
    ("abc", 479470107, 0, 3, 7),
    ("key", -1079937367, 1, 1, 1),
    ("key1", 28543940, 2, 2, 0),
    ("key2", 1674751211, 2, 5, 1),
    ("key3", -1745673403, 1, 1, 5),
    ("foo", 597841616, 2, 2, 6),
    ("bar", 988958145, 0, 3, 5),
    ("hello", 2132663229, 0, 3, 9),
    ("world", 24190312, 1, 4, 2),
    ("user-1", 1404122828, 2, 2, 8),
    ("user-2", -324981792, 2, 2, 6),
    ("user-3", 1141442267, 2, 5, 7),
    ("alice", 1951417749, 0, 3, 9),
    ("bob", -2048144690, 0, 0, 8),
    ("carol", 271431602, 2, 2, 2),
    ("0", 971027396, 2, 2, 6),
    ("1", -1993445489, 0, 3, 9),
    ("2", 648968168, 2, 2, 8),
    ("21", -973932308, 0, 0, 0),
    ("foobar", -790332482, 0, 0, 6),
    ("VIP", 312863442, 0, 0, 2),
    ("user-42", 1459644460, 1, 4, 0),
    ("order-1001", 297523878, 0, 0, 8),
    ("é", 186971271, 0, 3, 1),
    ("키", 1505507041, 1, 1, 1),
    ("카프카", -1792248277, 1, 1, 1),
]

# Reference sheet §1.4: IntegerSerializer keys (4 bytes, big-endian) -> (murmur2, partition of 3).
INTEGER_KEY_VECTORS = [(1, -173113808, 0), (0, 850957120, 1), (42, 1606757304, 0)]

# Reference sheet §1.4: keys where abs() instead of the mask picks another partition.
ABS_PITFALL_VECTORS = [(b"b", 3, 2, 0), (b"1", 3, 0, 2), (b"key", 4, 1, 3)]


@pytest.mark.parametrize(("key", "expected"), KAFKA_UTILS_TEST_VECTORS)
def test_murmur2_matches_kafka_utils_test(key: bytes, expected: int) -> None:
    """murmur2 returns the signed values that Kafka's own UtilsTest expects."""
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), KAFKA_PYTHON_1000_PARTITIONS)
def test_partition_matches_kafka_python_java_compatibility(key: bytes, expected: int) -> None:
    """With 1000 partitions, keys land where kafka-python's Java-compatibility test says."""
    assert partition_for_key(key, 1000) == expected


@pytest.mark.parametrize(("text", "hash_", "p3", "p6", "p10"), STRING_KEY_VECTORS)
def test_string_keys_match_kafka(text: str, hash_: int, p3: int, p6: int, p10: int) -> None:
    """UTF-8 keys hash and partition (3, 6, 10 partitions) exactly as Kafka's Java code does."""
    key = text.encode("utf-8")
    assert murmur2(key) == hash_
    assert to_positive(hash_) == hash_ & 0x7FFFFFFF
    assert [partition_for_key(key, n) for n in (3, 6, 10)] == [p3, p6, p10]


@pytest.mark.parametrize(("value", "hash_", "p3"), INTEGER_KEY_VECTORS)
def test_integer_keys_hash_their_big_endian_bytes(value: int, hash_: int, p3: int) -> None:
    """An IntegerSerializer key is hashed as its 4 big-endian bytes."""
    key = struct.pack(">i", value)
    assert murmur2(key) == hash_
    assert partition_for_key(key, 3) == p3


@pytest.mark.parametrize(("key", "n", "with_mask", "with_abs"), ABS_PITFALL_VECTORS)
def test_to_positive_is_a_mask_not_abs(key: bytes, n: int, with_mask: int, with_abs: int) -> None:
    """The partition uses x & 0x7fffffff; abs() would pick a different partition for these keys."""
    h = murmur2(key)
    assert partition_for_key(key, n) == with_mask
    assert abs(h) % n == with_abs != with_mask


def test_vectors_agree_between_scalar_and_array() -> None:
    """murmur2_array and partitions_for_keys reproduce every table vector in one call."""
    keys = [k for k, _ in KAFKA_UTILS_TEST_VECTORS]
    keys += [text.encode("utf-8") for text, *_ in STRING_KEY_VECTORS]
    expected = [h for _, h in KAFKA_UTILS_TEST_VECTORS] + [h for _, h, *_ in STRING_KEY_VECTORS]
    assert murmur2_array(keys).tolist() == expected
    string_keys = [text.encode("utf-8") for text, *_ in STRING_KEY_VECTORS]
    assert partitions_for_keys(string_keys, 6).tolist() == [p6 for *_, p6, _ in STRING_KEY_VECTORS]


@given(key_bytes)
def test_remembered_hashes_equal_fresh_ones(key: bytes) -> None:
    """bytes answers come from a cache of recent keys: they equal hashing a bytearray or a
    memoryview of the same bytes (never cached), asked twice."""
    first = murmur2(key)
    assert murmur2(key) == first
    assert murmur2(bytearray(key)) == first
    assert murmur2(memoryview(key)) == first


# --- Sign handling -------------------------------------------------------------------------------


def test_murmur2_result_is_a_signed_java_int() -> None:
    """The result is the signed reading of the 32 bits: b"21" is 3321034988 - 2**32."""
    assert murmur2(b"21") == 3321034988 - 2**32


@given(java_ints)
def test_to_positive_clears_only_the_sign_bit(x: int) -> None:
    """to_positive keeps non-negative ints and maps a negative x to x + 2**31."""
    y = to_positive(x)
    assert 0 <= y < 2**31
    assert y == (x if x >= 0 else x + 2**31)


def test_to_positive_of_int_min_is_zero() -> None:
    """Integer.MIN_VALUE, where Math.abs fails, becomes 0 and is still a valid index."""
    assert to_positive(-(2**31)) == 0


# --- Cross-check against kafka-python -------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle() -> Callable[[bytes], int]:
    """kafka-python's murmur2 (which returns the unsigned value), converted to a signed int."""
    pytest.importorskip("kafka", reason="kafka-python is not installed")
    found = None
    with warnings.catch_warnings():  # kafka-python's import emits deprecation warnings
        warnings.simplefilter("ignore")
        for module_name in ("kafka.partitioner.default", "kafka.partitioner.hashed"):
            try:
                found = importlib.import_module(module_name).murmur2
                break
            except (ImportError, AttributeError):
                continue
    if found is None:
        pytest.skip("this kafka-python version has no murmur2 function")
    kp_murmur2: Callable[[bytes], int] = found

    def signed(key: bytes) -> int:
        u = kp_murmur2(key) & 0xFFFFFFFF
        return u - 2**32 if u >= 2**31 else u

    return signed


@settings(max_examples=300)
@given(key=key_bytes)
def test_murmur2_agrees_with_kafka_python(oracle: Callable[[bytes], int], key: bytes) -> None:
    """For any key, murmur2 equals kafka-python's independent port."""
    assert murmur2(key) == oracle(key)


@given(key=utf8_keys)
def test_murmur2_agrees_with_kafka_python_on_text(
    oracle: Callable[[bytes], int], key: bytes
) -> None:
    """For any UTF-8 encoded text key, murmur2 equals kafka-python's independent port."""
    assert murmur2(key) == oracle(key)


def test_random_batch_agrees_with_kafka_python(oracle: Callable[[bytes], int]) -> None:
    """2000 seeded random keys of 0..64 bytes hash as kafka-python says, one by one and batched."""
    rng = np.random.default_rng(20241025)
    keys = [rng.bytes(int(n)) for n in rng.integers(0, 65, size=2000)]
    expected = [oracle(k) for k in keys]
    assert [murmur2(k) for k in keys] == expected
    assert murmur2_array(keys).tolist() == expected


# --- murmur2_array ------------------------------------------------------------------------------

EDGE_KEYS = [
    b"",
    b"\x00",
    b"\x00\x00\x00",
    b"\x00\x00\x00\x00",
    b"a\x00",
    b"abc\x00",
    b"abcd\x00\x00\x00",
    b"\xff" * 7,
    bytes(range(256)),
    "é".encode(),
    "키".encode(),
    "카프카".encode(),
    b"x" * 300,
    b"y" * 301 + b"\x00\x00",
]


def _all_tail_lengths() -> list[bytes]:
    return [bytes(range(1, n + 1)) for n in range(0, 21)]  # 0..5 blocks, tails 0..3


def _scalar(keys: list[bytes]) -> list[int]:
    return [murmur2(k) for k in keys]


def test_array_matches_scalar_on_edge_keys() -> None:
    """Empty keys, NUL-terminated keys, non-ASCII UTF-8 and long keys hash as one at a time."""
    got = murmur2_array(EDGE_KEYS)
    assert got.dtype == np.int32
    assert got.tolist() == _scalar(EDGE_KEYS)


def test_array_matches_scalar_for_every_tail_length() -> None:
    """Keys of 0..20 bytes (every tail length 0..3 with 0..5 blocks) hash as one at a time."""
    keys = _all_tail_lengths()
    assert murmur2_array(keys).tolist() == _scalar(keys)


@pytest.mark.parametrize("length", range(12))
def test_array_of_equal_length_keys_matches_scalar(length: int) -> None:
    """A batch whose keys all have the same length (no ragged blocks) hashes as one at a time."""
    rng = np.random.default_rng(length)
    keys = [rng.bytes(length) for _ in range(50)]
    assert murmur2_array(keys).tolist() == _scalar(keys)


@pytest.mark.parametrize(("shortest", "longest"), [(6, 11), (0, 8), (0, 40), (0, 400)])
def test_array_matches_scalar_for_ranges_of_lengths(shortest: int, longest: int) -> None:
    """Batches whose key lengths spread narrowly or widely hash as one at a time."""
    rng = np.random.default_rng(longest)
    keys = [rng.bytes(int(n)) for n in rng.integers(shortest, longest + 1, size=300)]
    assert murmur2_array(keys).tolist() == _scalar(keys)


def test_array_matches_scalar_for_mixed_lengths_in_one_call() -> None:
    """Short, long and NUL-ended keys mixed in one call each get their own hash."""
    rng = np.random.default_rng(7)
    keys = [rng.bytes(int(n)) for n in rng.integers(0, 400, size=500)]
    keys += [k + b"\x00" for k in keys[:50]] + EDGE_KEYS + _all_tail_lengths()
    order = rng.permutation(len(keys))
    keys = [keys[i] for i in order]
    assert murmur2_array(keys).tolist() == _scalar(keys)


def test_large_batch_with_a_few_very_long_keys() -> None:
    """Tens of thousands of short keys plus a few very long ones still match the scalar hash."""
    keys = [b"user-%d" % i for i in range(70_000)]
    keys[3] = bytes(range(256)) * 400  # ~100 KB
    keys[40_000] = b"k" * 5_001
    keys[69_999] = b"\x00" * 1_027
    assert murmur2_array(keys).tolist() == _scalar(keys)


@given(key_batches)
def test_array_equals_scalar_for_any_batch(keys: list[bytes]) -> None:
    """For any list of keys, murmur2_array equals murmur2 applied to each key."""
    got = murmur2_array(keys)
    assert got.dtype == np.int32
    assert got.tolist() == _scalar(keys)


def test_array_accepts_tuples_and_object_arrays() -> None:
    """A tuple, and an object array holding bytes (any shape), give the same hashes."""
    expected = _scalar(EDGE_KEYS)
    assert murmur2_array(tuple(EDGE_KEYS)).tolist() == expected
    objects = np.array(EDGE_KEYS, dtype=object)
    assert murmur2_array(objects).tolist() == expected
    grid = objects.reshape(2, 7)
    assert murmur2_array(grid).shape == (2, 7)
    assert murmur2_array(grid).ravel().tolist() == expected


def test_array_accepts_fixed_width_bytes_arrays() -> None:
    """An 'S' array hashes its items; NumPy has already dropped trailing NULs from them."""
    keys = [k for k in EDGE_KEYS if not k.endswith(b"\x00")]
    assert murmur2_array(np.array(keys, dtype="S")).tolist() == _scalar(keys)
    wide = np.array(keys, dtype="S400")
    assert murmur2_array(wide).tolist() == _scalar(keys)
    # The documented caveat: an 'S' item cannot end in NUL, so b"a\x00" is read as b"a".
    assert murmur2_array(np.array([b"a\x00"], dtype="S2")).tolist() == [murmur2(b"a")]


@pytest.mark.parametrize(
    "empty", [[], (), np.array([], dtype=object), np.array([], dtype="S1")], ids=repr
)
def test_array_of_no_keys_is_empty(empty: object) -> None:
    """No keys in, an empty int32 array out."""
    got = murmur2_array(empty)  # type: ignore[arg-type]
    assert got.dtype == np.int32
    assert got.shape == (0,)


def test_array_emits_no_overflow_warnings() -> None:
    """The uint32 wrap-around is part of the algorithm and raises no NumPy warnings."""
    keys = [b"\xff" * n for n in range(40)] + EDGE_KEYS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        murmur2_array(keys)
        murmur2_array(np.array([k for k in keys if not k.endswith(b"\x00")], dtype="S"))
        partitions_for_keys(keys, 7)


@pytest.mark.parametrize(
    "keys",
    [["user-1"], [b"ok", "키"], [b"ok"] * 20 + ["user-1"], [b"ok", 42], [b"ok", None]],
    ids=repr,
)
def test_array_rejects_keys_that_are_not_bytes(keys: list[object]) -> None:
    """Text and other objects are refused: Kafka hashes serialized bytes, so encode first."""
    with pytest.raises(TypeError, match="needs bytes"):
        murmur2_array(keys)  # type: ignore[arg-type]


def test_array_rejects_str_arrays_single_keys_and_numbers() -> None:
    """A str array asks for encoding; a lone key asks for murmur2 or a list; numbers are refused."""
    with pytest.raises(TypeError, match="encode"):
        murmur2_array(np.array(["user-1"]))
    with pytest.raises(TypeError, match="single key"):
        murmur2_array(b"user-1")
    with pytest.raises(TypeError, match="dtype int64"):
        murmur2_array(np.arange(3, dtype=np.int64))


def test_scalar_accepts_any_bytes_like_key() -> None:
    """bytearray and memoryview keys hash like the same bytes."""
    for key in EDGE_KEYS:
        assert murmur2(bytearray(key)) == murmur2(memoryview(key)) == murmur2(key)


def test_scalar_rejects_text() -> None:
    """murmur2 refuses a str and says how to serialize it."""
    with pytest.raises(TypeError, match=r"encode\('utf-8'\)"):
        murmur2("user-1")  # type: ignore[arg-type]


# --- The keyed partition rule -------------------------------------------------------------------


@given(key=key_bytes, n=num_partitions)
def test_partition_is_in_range_and_stable(key: bytes, n: int) -> None:
    """A key's partition is in [0, n) and is the same every time it is asked for."""
    p = partition_for_key(key, n)
    assert 0 <= p < n
    assert partition_for_key(bytes(key), n) == p


@given(key=key_bytes, n=num_partitions)
def test_partition_is_masked_hash_modulo_partition_count(key: bytes, n: int) -> None:
    """partition_for_key is toPositive(murmur2(key)) % n, nothing more."""
    assert partition_for_key(key, n) == (murmur2(key) & 0x7FFFFFFF) % n


@given(keys=key_batches, n=num_partitions)
def test_partitions_for_keys_equals_one_at_a_time(keys: list[bytes], n: int) -> None:
    """The vectorised rule gives every key the partition partition_for_key gives it."""
    got = partitions_for_keys(keys, n)
    assert got.tolist() == [partition_for_key(k, n) for k in keys]
    assert ((got >= 0) & (got < n)).all()


def test_one_partition_takes_every_key() -> None:
    """With a single partition, every key goes to partition 0."""
    assert partitions_for_keys(EDGE_KEYS, 1).tolist() == [0] * len(EDGE_KEYS)


@pytest.mark.parametrize("bad", [0, -1, -5])
def test_partition_count_below_one_is_a_config_error(bad: int) -> None:
    """Hashing onto fewer than one partition is refused with a message naming the value."""
    pattern = rf"Invalid value {bad} for num_partitions: a topic has at least 1 partition"
    with pytest.raises(ConfigError, match=pattern):
        partition_for_key(b"key", bad)
    with pytest.raises(ConfigError, match=pattern):
        partitions_for_keys([b"key"], bad)


@pytest.mark.parametrize("bad", [2.5, "3", True, None])
def test_partition_count_must_be_a_whole_number(bad: object) -> None:
    """A partition count that is not an int is refused as a config error."""
    with pytest.raises(ConfigError, match="num_partitions"):
        partition_for_key(b"key", bad)  # type: ignore[arg-type]


def test_partition_count_beyond_java_int_is_a_config_error() -> None:
    """Kafka counts partitions in a Java int, so 2**31 partitions is refused."""
    with pytest.raises(ConfigError, match="at most 2147483647"):
        partition_for_key(b"key", 2**31)


def test_numpy_integer_partition_count_is_accepted() -> None:
    """A NumPy integer partition count works like the same Python int."""
    assert partition_for_key(b"user-42", np.int64(6)) == 4  # type: ignore[arg-type]
    assert partitions_for_keys([b"user-42"], np.int32(6)).tolist() == [4]  # type: ignore[arg-type]


def test_config_error_is_also_a_value_error() -> None:
    """Callers that catch ValueError also catch a bad partition count."""
    with pytest.raises(ValueError, match="num_partitions"):
        partitions_for_keys([b"a"], 0)


@given(st.lists(key_bytes, min_size=1, max_size=30), num_partitions)
def test_partition_table_lookup_equals_hashing_every_record(keys: list[bytes], n: int) -> None:
    """Hashing distinct keys once and looking records up in a table gives the same partitions."""
    records = keys * 3
    distinct, inverse = np.unique(np.array(records, dtype=object), return_inverse=True)
    table = partitions_for_keys(distinct, n)
    assert table[inverse].tolist() == partitions_for_keys(records, n).tolist()
