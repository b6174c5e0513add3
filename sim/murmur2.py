"""Kafka's keyed partitioning hash: murmur2, exactly as the Java client computes it.

A keyed record goes to ``toPositive(murmur2(keyBytes)) % numPartitions`` (Kafka's
``BuiltInPartitioner.partitionForKey``), where ``murmur2`` and ``toPositive`` are
``org.apache.kafka.common.utils.Utils.murmur2`` and ``Utils.toPositive``. The lab must give the same
partition as a real producer for every key, so every bit here matches the Java code.

**Signs.** Java computes in signed 32-bit ``int`` arithmetic that wraps on overflow; Python integers
never overflow. We therefore compute with unsigned 32-bit values (masking with ``0xFFFFFFFF``
after each multiply, so ``>>`` behaves like Java's unsigned ``>>>``) and turn the final value into
a signed one: ``h - 2**32`` when bit 31 is set. Worked example: for the key ``b"21"`` the unsigned
result is 3321034988; Java prints the same 32 bits as ``3321034988 - 2**32 = -973932308``.

**Why toPositive is a mask, not abs().** ``toPositive(x) = x & 0x7fffffff`` clears the sign bit,
which maps a negative ``x`` to ``x + 2**31``; ``abs(x)`` maps it to ``-x``. For ``b"21"``:
the mask gives ``-973932308 + 2**31 = 1173551340``, abs() would give ``973932308``, and the two
differ modulo almost any partition count. (Java's ``Math.abs(Integer.MIN_VALUE)`` is also still
negative, which is why Kafka uses the mask.) Using abs() sends such keys to the wrong partition:
key ``b"b"`` with 3 partitions belongs to partition 2, abs() would say 0.

**Many keys.** :func:`murmur2_array` and :func:`partitions_for_keys` hash whole arrays of keys with
NumPy, far faster than a Python loop, especially when the keys are already in a NumPy array
(turning a Python list into an array costs more than hashing it). The simulator goes one step
further: it hashes each *distinct* key once and looks every record's partition up in that table,
about a nanosecond per record. The distinct keys are a scenario's key space, or
``np.unique(key_ids, return_inverse=True)`` over the records' integer key ids; ``np.unique`` over
the key bytes themselves also works but sorts byte strings, which costs more than hashing them
(see ``benchmarks/bench_partitioning.py``).
"""

from __future__ import annotations

import functools
import operator
import struct
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from sim.errors import ConfigError

__all__ = [
    "murmur2",
    "murmur2_array",
    "partition_for_key",
    "partitions_for_keys",
    "to_positive",
]

_SEED = 0x9747B28C  # Kafka's fixed seed
_M = 0x5BD1E995  # multiplier
_R = 24  # shift used when mixing each 4-byte block
_MASK32 = 0xFFFFFFFF
_SIGN_BIT = 0x80000000

_M_U32 = np.uint32(_M)
_SEED_U32 = np.uint32(_SEED)
_TAIL_MASKS = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF], dtype=np.uint32)  # by number of tail bytes

# Vectorised hashing works on padded blocks of keys; these bound its memory use and overheads.
_CHUNK_ROWS = 1 << 16  # keys per padded matrix (the working set then stays in cache)
_MATRIX_BUDGET = 1 << 24  # bytes per padded matrix; wider keys get fewer rows per matrix
_SCALAR_ROWS = 8  # this few keys left to mix: finish them in plain Python (cheaper per block)
_NARROW_SPREAD = 2  # block counts differ by at most this: mix full columns rather than sort rows


# --------------------------------------------------------------------------------------------
# One key at a time
# --------------------------------------------------------------------------------------------


def _finish_unsigned(h: int, data: bytes | memoryview, first_block: int) -> int:
    """Mix ``data``'s blocks from ``first_block`` on into state ``h``, then its tail; finalise.

    ``h`` and the result are unsigned 32-bit values. ``murmur2`` starts at block 0 with
    ``h = seed ^ len``; the vectorised code uses a later ``first_block`` for its last few keys.
    """
    length = len(data)
    count = (length >> 2) - first_block
    if count > 0:
        for k in _block_reader(count)(data, 4 * first_block):  # little-endian unsigned words
            k = (k * _M) & _MASK32
            k ^= k >> _R
            k = (k * _M) & _MASK32
            h = ((h * _M) & _MASK32) ^ k
    tail = length & 3
    if tail:  # Java's switch falls through: XOR in the 1-3 leftover bytes, then multiply once
        h ^= int.from_bytes(data[length - tail :], "little")
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h


_BLOCK_READERS = [struct.Struct(f"<{n}I").unpack_from for n in range(64)]


def _block_reader(count: int) -> Callable[[Any, int], tuple[int, ...]]:
    if count < len(_BLOCK_READERS):
        return _BLOCK_READERS[count]
    return struct.Struct(f"<{count}I").unpack_from


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 hash of ``data``, as a signed int (Java ``Utils.murmur2``).

    >>> murmur2(b"21")
    -973932308

    ``data`` is the *serialized* key (``StringSerializer``: UTF-8 bytes), so text must be encoded
    first: ``murmur2("카프카".encode("utf-8"))``.
    """
    if type(data) is bytes:
        return _murmur2_remembered(data)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(_not_bytes_message(data, "murmur2(data)"))
    return _murmur2_signed(data)


def _murmur2_signed(data: bytes | bytearray | memoryview) -> int:
    h = _finish_unsigned(_SEED ^ len(data), data, 0)
    return h - (1 << 32) if h & _SIGN_BIT else h


_murmur2_remembered = functools.lru_cache(maxsize=1 << 16)(_murmur2_signed)
"""Per-record partitioners hash the same few keys over and over: remember recent answers."""


def to_positive(x: int) -> int:
    """Clear the sign bit of a 32-bit hash: ``x & 0x7fffffff`` (Java ``Utils.toPositive``).

    Not ``abs(x)``: a negative ``x`` becomes ``x + 2**31`` (``-973932308`` → ``1173551340``),
    which is what Kafka computes, and the result is never negative.
    """
    return x & 0x7FFFFFFF


def partition_for_key(key_bytes: bytes, num_partitions: int) -> int:
    """The partition Kafka's producer picks for a keyed record (``BuiltInPartitioner``).

    ``toPositive(murmur2(key_bytes)) % num_partitions``, where ``num_partitions`` counts *all*
    partitions of the topic, available or not.

    >>> partition_for_key(b"user-42", 6)
    4
    """
    n = _check_num_partitions(num_partitions)
    return to_positive(murmur2(key_bytes)) % n


def _check_num_partitions(num_partitions: Any) -> int:
    if type(num_partitions) is int and 1 <= num_partitions <= 0x7FFFFFFF:
        return num_partitions  # the common case, checked cheaply
    if isinstance(num_partitions, bool | np.bool_):
        raise ConfigError(
            f"Invalid value {num_partitions!r} for num_partitions: expected a whole number of "
            "partitions, got a bool."
        )
    try:
        n = operator.index(num_partitions)
    except TypeError:
        raise ConfigError(
            f"Invalid value {num_partitions!r} for num_partitions: expected a whole number of "
            f"partitions, got {type(num_partitions).__name__}."
        ) from None
    if n < 1:
        raise ConfigError(
            f"Invalid value {n} for num_partitions: a topic has at least 1 partition, so keys "
            "can only be hashed onto num_partitions >= 1."
        )
    if n > 0x7FFFFFFF:
        raise ConfigError(
            f"Invalid value {n} for num_partitions: Kafka counts partitions in a Java int, "
            "so at most 2147483647."
        )
    return n


def _not_bytes_message(item: object, where: str) -> str:
    hint = " (encode text keys first: key.encode('utf-8'))" if isinstance(item, str) else ""
    return (
        f"{where} needs bytes, got {type(item).__name__}{hint}; Kafka hashes the serialized "
        "key bytes."
    )


# --------------------------------------------------------------------------------------------
# Many keys at once
# --------------------------------------------------------------------------------------------


def _mix_block(h: np.ndarray, block: np.ndarray) -> None:
    """One body step on every row, in place: ``k *= m; k ^= k >>> r; k *= m; h *= m; h ^= k``."""
    k = block * _M_U32  # a new contiguous array, so ``block`` (a matrix column) is untouched
    k ^= k >> _R
    k *= _M_U32
    h *= _M_U32
    h ^= k


def _hash_matrix(words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Unsigned murmur2 of each row of a padded key matrix.

    ``words`` has one key per row, read as little-endian uint32 words, with at least one word
    more than the longest key fills completely (so every row's tail word exists); what follows a
    key's last byte is ignored. ``lengths`` holds each key's true length in bytes.
    """
    rows, width = words.shape
    flat = words.reshape(-1)  # flat indexing is much faster than 2-D fancy indexing
    row_start = np.arange(0, rows * width, width)
    n_blocks = lengths >> 2
    h = lengths.astype(np.uint32)
    h ^= _SEED_U32
    lo, hi = int(n_blocks.min()), int(n_blocks.max())

    # Blocks every key has: whole columns.
    for j in range(lo):
        _mix_block(h, words[:, j])

    # Blocks only longer keys have.
    finished: dict[int, int] = {}
    if 0 < hi - lo <= _NARROW_SPREAD:
        # Lengths are close: mix whole columns, keep the result where the row has block j.
        for j in range(lo, hi):
            mixed = h.copy()
            _mix_block(mixed, words[:, j])
            np.copyto(h, mixed, where=n_blocks > j)
    elif hi > lo:
        # Lengths vary a lot: visit the rows longest first, so that the rows having block j are
        # always a prefix of that order; once very few are left, finish them in plain Python,
        # which costs less per block than a NumPy call.
        rank_type = np.int16 if hi < 2**15 else np.int64  # NumPy radix-sorts 16-bit integers
        order = np.argsort((hi - n_blocks).astype(rank_type), kind="stable")
        longer_than = rows - np.cumsum(np.bincount(n_blocks, minlength=hi))  # [j]: rows with > j
        h_sorted = h[order]
        start_sorted = row_start[order]
        for j in range(lo, hi):
            count = int(longer_than[j])
            if count <= _SCALAR_ROWS:
                as_bytes = words.view(np.uint8)
                for r, state in zip(order[:count].tolist(), h_sorted[:count].tolist(), strict=True):
                    key = as_bytes[r, : int(lengths[r])].tobytes()
                    finished[r] = _finish_unsigned(state, key, j)
                break
            _mix_block(h_sorted[:count], flat[start_sorted[:count] + j])
        h[order] = h_sorted

    # Tail: the 0-3 leftover bytes are the low bytes of word n_blocks of each row; masking off
    # the rest and XOR-ing the word XORs exactly those bytes. Then one multiply where there were
    # any (Java's switch falls through to a single ``h *= m``).
    tail = lengths & 3
    tail_word = flat[row_start + n_blocks]
    tail_word &= _TAIL_MASKS[tail]
    h ^= tail_word
    np.multiply(h, _M_U32, out=h, where=tail != 0)

    h ^= h >> 13
    h *= _M_U32
    h ^= h >> 15
    if finished:
        h[list(finished)] = list(finished.values())
    return h


def _hash_rows(
    out: np.ndarray,
    lengths: np.ndarray,
    start: int,
    stop: int,
    padded: Callable[[int, int, int], np.ndarray],
    key_at: Callable[[int], bytes],
) -> None:
    """Fill ``out[start:stop]`` with unsigned hashes, halving the range while it is too wide.

    ``padded(start, stop, width)`` returns those keys as a padded uint8 matrix of ``width``
    bytes per row (a multiple of 4); ``key_at(i)`` returns key ``i`` as bytes.
    """
    rows = stop - start
    if rows <= _SCALAR_ROWS:
        for i in range(start, stop):
            key = key_at(i)
            out[i] = _finish_unsigned(_SEED ^ len(key), key, 0)
        return
    seg = lengths[start:stop]
    width = 4 * ((int(seg.max()) >> 2) + 1)  # room for every block plus a tail word
    if rows * width > _MATRIX_BUDGET:
        mid = start + rows // 2
        _hash_rows(out, lengths, start, mid, padded, key_at)
        _hash_rows(out, lengths, mid, stop, padded, key_at)
        return
    words = padded(start, stop, width).view("<u4")
    out[start:stop] = _hash_matrix(words, seg)


def _hash_all(
    lengths: np.ndarray,
    padded: Callable[[int, int, int], np.ndarray],
    key_at: Callable[[int], bytes],
) -> np.ndarray:
    n = len(lengths)
    out = np.empty(n, dtype=np.uint32)
    with np.errstate(over="ignore"):  # uint32 wrap-around is the algorithm, not an error
        for start in range(0, n, _CHUNK_ROWS):
            _hash_rows(out, lengths, start, min(start + _CHUNK_ROWS, n), padded, key_at)
    return out.view(np.int32)


def _hash_bytes_list(keys: list[Any]) -> np.ndarray:
    try:
        lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    except TypeError:
        _raise_first_non_bytes(keys, 0)
        raise

    def padded(start: int, stop: int, width: int) -> np.ndarray:
        # A void ("V") array copies each bytes object byte for byte, trailing NULs included, and,
        # unlike an "S" array, refuses str items instead of silently encoding them as ASCII.
        # Bytes past each key's length are never trusted (see the tail mask in _hash_matrix).
        try:
            block = np.array(keys[start:stop], dtype=f"V{width}")
        except (TypeError, ValueError):
            _raise_first_non_bytes(keys[start:stop], start)
            raise
        return block.view(np.uint8).reshape(stop - start, width)

    def key_at(i: int) -> bytes:
        key = keys[i]
        if not isinstance(key, bytes):
            raise TypeError(_not_bytes_message(key, f"murmur2_array: key {i}"))
        return key

    return _hash_all(lengths, padded, key_at)


def _raise_first_non_bytes(keys: list[Any], offset: int) -> None:
    for i, k in enumerate(keys):
        if not isinstance(k, bytes):
            raise TypeError(_not_bytes_message(k, f"murmur2_array: key {offset + i}"))


def _hash_fixed_width(keys: np.ndarray) -> np.ndarray:
    str_len = getattr(np, "strings", np.char).str_len
    lengths = np.asarray(str_len(keys), dtype=np.int64)

    def padded(start: int, stop: int, width: int) -> np.ndarray:
        block = keys[start:stop]
        if block.dtype.itemsize != width or not block.flags.c_contiguous:
            block = np.ascontiguousarray(block.astype(f"S{width}"))
        return block.view(np.uint8).reshape(stop - start, width)

    def key_at(i: int) -> bytes:
        return bytes(keys[i])

    return _hash_all(lengths, padded, key_at)


def murmur2_array(keys: Iterable[bytes] | np.ndarray) -> np.ndarray:
    """Kafka's murmur2 of many keys at once: an int32 array equal to ``[murmur2(k) for k in keys]``.

    ``keys`` may be a list or tuple (or any iterable) of ``bytes``, or a NumPy array of
    ``dtype=object`` holding bytes; both are exact for every byte string, including the empty key
    and keys that end in ``b"\\x00"``. A fixed-width bytes array (``dtype="S..."``) also works,
    but NumPy strips trailing NUL bytes from ``S`` items, so its keys must not end in ``b"\\x00"``.
    An array input keeps its shape.

    How: keys are copied into a padded matrix (a chunk of rows at a time), each 4-byte block
    position is mixed for all keys at once as a column of uint32 words (NumPy's uint32 arithmetic
    wraps just like Java's ``int``), the 0-3 tail bytes are read as one masked word, and the
    result is reinterpreted as int32. Converting a Python list costs more than the hashing itself;
    see the module notes for hashing each distinct key once.
    """
    if isinstance(keys, np.ndarray):
        shape = keys.shape
        flat = keys.reshape(-1)
        if flat.dtype.kind == "O":
            result = _hash_bytes_list(flat.tolist()) if flat.size else _empty()
        elif flat.dtype.kind == "S":
            result = _hash_fixed_width(flat) if flat.size else _empty()
        elif flat.dtype.kind == "U":
            raise TypeError(
                "murmur2_array needs bytes keys, got a str array; Kafka hashes the serialized "
                "key, so encode it first: np.char.encode(keys, 'utf-8')."
            )
        else:
            raise TypeError(
                f"murmur2_array needs bytes keys (a list of bytes, or an object or 'S' array), "
                f"got an array of dtype {flat.dtype}."
            )
        return result.reshape(shape)
    if isinstance(keys, bytes | bytearray | memoryview | str):
        raise TypeError(
            "murmur2_array needs a collection of keys, got a single key; use murmur2(key) or "
            "wrap it in a list."
        )
    key_list = keys if isinstance(keys, list) else list(keys)
    return _hash_bytes_list(key_list) if key_list else _empty()


def _empty() -> np.ndarray:
    return np.empty(0, dtype=np.int32)


def partitions_for_keys(keys: Iterable[bytes] | np.ndarray, num_partitions: int) -> np.ndarray:
    """The keyed partition of every key: ``toPositive(murmur2(k)) % num_partitions``, as int32.

    Same inputs as :func:`murmur2_array`; equal to ``[partition_for_key(k, n) for k in keys]``.
    """
    n = _check_num_partitions(num_partitions)
    positive = murmur2_array(keys) & np.int32(0x7FFFFFFF)
    return positive % np.int32(n)
