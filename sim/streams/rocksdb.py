"""Persistent stores' bytes: real RocksDB databases (through ``rocksdict``) and the key format.

Kafka Streams keeps a persistent store in a RocksDB database under
``<state.dir>/<application.id>/<task id>/rocksdb/<store>``; RocksDB holds bytes and iterates them
in byte order, so a range query's order is the order of the serialized keys. The lab does the
same: :func:`encode_key` turns a key into bytes whose byte order is the order the in-memory stores
use (:func:`sim.streams.stores.key_order`: by type name, then by value), for the key types of the
lab — ``None``, ``bool``, ``float``, ``int`` (64-bit), ``str`` and tuples of them. Strings are
escaped and terminated so that a key followed by more bytes (a window start) still sorts by key
first. Values are ``pickle``-d; a store value with a timestamp (``ValueAndTimestamp``) is stored
as Kafka's timestamped stores do: the 8-byte timestamp first, then the value.

Open a store's database yourself (while the application is stopped or crashed; a running one
holds it) with :func:`read_rocksdb`, or with ``rocksdict`` directly:
``Rdict(path, options=Options(raw_mode=True))`` and :func:`decode_key` / :func:`decode_value`.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict

from sim.errors import StreamsError

_NONE, _BOOL, _FLOAT, _INT, _STR, _TUPLE, _OTHER = range(1, 8)
"""Type tags, in the order of the types' names (``NoneType`` < ``bool`` < ``float`` < ``int`` <
``str`` < ``tuple``), so that mixed-type keys sort as ``key_order`` sorts them."""
_END = b"\x00"
_SIGN = 1 << 63


def encode_key(key: Any) -> bytes:
    """Order-preserving bytes of a store key (see the module docstring)."""
    out = bytearray()
    _encode(key, out)
    return bytes(out)


def _encode(key: Any, out: bytearray) -> None:
    if key is None:
        out.append(_NONE)
    elif isinstance(key, bool):
        out += bytes((_BOOL, int(key)))
    elif isinstance(key, float):
        bits = struct.unpack(">Q", struct.pack(">d", key))[0]
        bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits & _SIGN else bits | _SIGN
        out.append(_FLOAT)
        out += bits.to_bytes(8, "big")
    elif isinstance(key, int):
        if not -_SIGN <= key < _SIGN:
            raise StreamsError(f"Store key {key!r} does not fit in a 64-bit long.")
        out.append(_INT)
        out += (key + _SIGN).to_bytes(8, "big")
    elif isinstance(key, str):
        out.append(_STR)
        out += key.encode("utf-8").replace(b"\x00", b"\x00\xff") + _END
    elif isinstance(key, tuple):
        out.append(_TUPLE)
        for item in key:
            _encode(item, out)
        out += _END
    else:  # kept and found again, but ordered by its pickle, not by value
        data = pickle.dumps(key, protocol=4)
        out.append(_OTHER)
        out += len(data).to_bytes(4, "big") + data


def decode_key(data: bytes) -> Any:
    """The key :func:`encode_key` made ``data`` from."""
    key, end = _decode(data, 0)
    if end != len(data):
        raise StreamsError(f"{len(data) - end} bytes left over after the key in {data!r}.")
    return key


def _decode(data: bytes, i: int) -> tuple[Any, int]:
    tag = data[i]
    i += 1
    if tag == _NONE:
        return None, i
    if tag == _BOOL:
        return bool(data[i]), i + 1
    if tag == _FLOAT:
        bits = int.from_bytes(data[i:i + 8], "big")
        bits = bits ^ _SIGN if bits & _SIGN else bits ^ 0xFFFFFFFFFFFFFFFF
        return struct.unpack(">d", bits.to_bytes(8, "big"))[0], i + 8
    if tag == _INT:
        return int.from_bytes(data[i:i + 8], "big") - _SIGN, i + 8
    if tag == _STR:
        raw = bytearray()
        while True:
            byte = data[i]
            if byte == 0:
                if i + 1 < len(data) and data[i + 1] == 0xFF:
                    raw.append(0)
                    i += 2
                    continue
                return raw.decode("utf-8"), i + 1
            raw.append(byte)
            i += 1
    if tag == _TUPLE:
        items = []
        while data[i] != 0:
            item, i = _decode(data, i)
            items.append(item)
        return tuple(items), i + 1
    if tag == _OTHER:
        size = int.from_bytes(data[i:i + 4], "big")
        return pickle.loads(data[i + 4:i + 4 + size]), i + 4 + size
    raise StreamsError(f"Unknown key type tag {tag} in {data!r}.")


def encode_value(value: Any) -> bytes:
    """A store value's bytes: ``T`` + 8-byte timestamp + value for a ``ValueAndTimestamp``,
    ``P`` + value otherwise (values are pickled)."""
    from sim.streams.stores import ValueAndTimestamp

    if isinstance(value, ValueAndTimestamp):
        return b"T" + struct.pack(">q", value.timestamp) + pickle.dumps(value.value, protocol=4)
    return b"P" + pickle.dumps(value, protocol=4)


def decode_value(data: bytes) -> Any:
    """The value :func:`encode_value` made ``data`` from."""
    from sim.streams.stores import ValueAndTimestamp

    if data[:1] == b"T":
        return ValueAndTimestamp(pickle.loads(data[9:]), struct.unpack(">q", data[1:9])[0])
    return pickle.loads(data[1:])


def open_rocksdb(path: Path) -> Rdict:
    """Open (create) the RocksDB database at ``path`` in raw (bytes) mode."""
    path.mkdir(parents=True, exist_ok=True)
    return Rdict(str(path), options=Options(raw_mode=True))


def read_rocksdb(path: str | Path) -> list[tuple[Any, Any]]:
    """Every (key, value) of the store database at ``path``, in RocksDB's (byte) order.

    Window and session stores' keys are tuples (key, window start[, end or sequence number]).
    """
    db = open_rocksdb(Path(path))
    try:
        return [(decode_key(k), decode_value(v)) for k, v in db.items()]
    finally:
        db.close()


class RocksDBMap:
    """A dict-like view of one RocksDB database with Python keys and values: what the in-memory
    stores keep in a ``dict``, the persistent stores keep here. Iteration is in byte order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_rocksdb(path)

    def get(self, key: Any, default: Any = None) -> Any:
        data = self.db.get(encode_key(key))
        return default if data is None else decode_value(data)

    def __getitem__(self, key: Any) -> Any:
        data = self.db.get(encode_key(key))
        if data is None:
            raise KeyError(key)
        return decode_value(data)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.db[encode_key(key)] = encode_value(value)

    def __delitem__(self, key: Any) -> None:
        encoded = encode_key(key)
        if self.db.get(encoded) is None:
            raise KeyError(key)
        del self.db[encoded]

    def __contains__(self, key: Any) -> bool:
        return self.db.get(encode_key(key)) is not None

    def pop(self, key: Any, default: Any = None) -> Any:
        encoded = encode_key(key)
        data = self.db.get(encoded)
        if data is None:
            return default
        del self.db[encoded]
        return decode_value(data)

    def __len__(self) -> int:
        """Counted by iterating: RocksDB keeps no exact count."""
        return sum(1 for _ in self.db.keys())  # noqa: SIM118 - Rdict.__iter__ is not keys()

    def __iter__(self) -> Iterator[Any]:
        return (decode_key(k) for k in self.db.keys())  # noqa: SIM118

    def keys(self) -> list[Any]:
        return list(self)

    def items(self) -> list[tuple[Any, Any]]:
        return [(decode_key(k), decode_value(v)) for k, v in self.db.items()]

    def items_with_prefix(self, prefix: tuple[Any, ...]) -> Iterator[tuple[Any, Any]]:
        """The entries whose tuple key starts with the items of ``prefix``, in key order: a
        RocksDB range scan from the prefix's bytes (``prefixScan``), not a full iteration."""
        encoded = encode_key(prefix)[:-1]  # the tuple without its terminator
        for key, value in self.db.items(from_key=encoded):
            if not key.startswith(encoded):
                return
            yield decode_key(key), decode_value(value)

    def values(self) -> list[Any]:
        return [decode_value(v) for v in self.db.values()]

    def clear(self) -> None:
        for key in list(self.db.keys()):
            del self.db[key]

    def close(self) -> None:
        self.db.close()
