"""What crosses between a submission's process and the checker: data only, in a restricted form.

Every message is one line of JSON. Values are ``None``, booleans, numbers, strings and lists as
themselves; anything else is an object tagged with ``"$"``: ``bytes``, ``tuple``, ``set``,
``dict`` (as key/value pairs), ``ellipsis``, ``tp`` (a TopicPartition), ``cluster`` (a
partitioner's ClusterMetadata), ``records`` (consumer records, field by field), ``sinkrecord``
(a Connect ``SinkRecord``: topic, partition, key, value, offset, timestamp; no schemas), and
three kinds of *handles*: ``class`` / ``function`` / ``object`` (learner code living in the
submission's process, called back through :class:`Link`) and ``remote`` (a checker object, such
as a consumer, that learner code may call back, only through the methods in
:data:`REMOTE_METHODS`).

:func:`decode` is strict: unknown tags, more than :data:`MAX_DEPTH` levels, integers of more than
:data:`MAX_DIGITS` digits, oversized strings and non-string field names are refused with
:class:`WireError`, whoever sent them. Nothing is ever unpickled or evaluated.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from sim.connect.records import SinkRecord
from sim.consumer.fetcher import ConsumerRecord, ConsumerRecords, chunks_of
from sim.grading.checklist import LearnerError, LearnerNotImplementedError
from sim.partitioners import ClusterMetadata
from sim.records import TopicPartition

__all__ = [
    "MAX_DEPTH",
    "MAX_DIGITS",
    "REMOTE_METHODS",
    "LearnerError",
    "LearnerNotImplementedError",
    "WireError",
    "decode",
    "encode",
    "loads",
]

MAX_DEPTH = 40
MAX_DIGITS = 200
MAX_STRING = 100_000
MAX_ITEMS = 200_000
REMOTE_METHODS = frozenset({
    "process", "commit_sync", "commit_async", "committed", "position", "seek",
    "seek_to_beginning", "seek_to_end", "pause", "resume", "paused", "assignment", "subscription",
})
"""The consumer methods learner code may call on the checker's consumer (scripted, as Kafka's
``on_records`` contract allows)."""
_RECORD_FIELDS = ("topic", "partition", "offset", "timestamp_ms", "key_hash", "value_size",
                  "record_id")
_KINDS = {k.name: k for k in (inspect.Parameter.POSITIONAL_ONLY,
                              inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.KEYWORD_ONLY,
                              inspect.Parameter.VAR_KEYWORD)}


class WireError(ValueError):
    """A message that is not in the restricted form."""


def loads(line: bytes | str) -> Any:
    """Parse one message line; any malformation (depth, huge numbers) is a :class:`WireError`."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise WireError(f"not a readable message ({type(exc).__name__})") from None


# --- encoding -------------------------------------------------------------------------------------


def encode(value: Any, handle: Callable[[Any], dict[str, Any]], depth: int = 0) -> Any:
    """``value`` in the restricted form; ``handle`` turns anything else into a handle dict."""
    if depth > MAX_DEPTH:
        raise WireError(f"nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        number = int(value)
        if abs(number) >= 10**MAX_DIGITS:
            raise WireError(f"an integer of more than {MAX_DIGITS} digits")
        return number
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else {"$": "float", "v": repr(number)}
    if value is Ellipsis:
        return {"$": "ellipsis"}
    if isinstance(value, bytes | bytearray):
        return {"$": "bytes", "v": bytes(value).hex()}
    if isinstance(value, TopicPartition):
        return {"$": "tp", "topic": value.topic, "partition": int(value.partition)}
    if isinstance(value, ConsumerRecord):
        value = [value]
    if isinstance(value, ConsumerRecords) or (
        isinstance(value, list) and value and all(isinstance(r, ConsumerRecord) for r in value)
    ):
        return {"$": "records", "v": [[getattr(r, f) for f in _RECORD_FIELDS] for r in value]}
    if isinstance(value, SinkRecord):
        return {"$": "sinkrecord", "v": [encode(v, handle, depth + 1) for v in (
            value.topic, value.kafka_partition, value.key, value.value, value.kafka_offset,
            value.timestamp)]}
    if isinstance(value, ClusterMetadata):
        return {"$": "cluster", "v": encode(dict(value.partitions), handle, depth + 1),
                "unavailable": encode(sorted(value.unavailable), handle, depth + 1)}
    if isinstance(value, list):
        return [encode(v, handle, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"$": "tuple", "v": [encode(v, handle, depth + 1) for v in value]}
    if isinstance(value, set | frozenset):
        items = [encode(v, handle, depth + 1) for v in value]
        return {"$": "set", "v": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(value, Mapping):
        return {"$": "dict", "v": [[encode(k, handle, depth + 1), encode(v, handle, depth + 1)]
                                   for k, v in value.items()]}
    return handle(value)


def signature_of(fn: Any) -> list[list[Any]] | None:
    """A function's parameters as data: ``[[name, kind, has_default], ...]``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, p.default is not inspect.Parameter.empty]
            for p in signature.parameters.values()]


def signature_from(data: Any) -> inspect.Signature | None:
    """The inverse of :func:`signature_of`, strictly checked."""
    if not isinstance(data, list):
        return None
    parameters = []
    try:
        for name, kind, has_default in data:
            if not (isinstance(name, str) and name.isidentifier() and kind in _KINDS):
                return None
            default = None if has_default else inspect.Parameter.empty
            parameters.append(inspect.Parameter(name, _KINDS[kind], default=default))
        return inspect.Signature(parameters)
    except (TypeError, ValueError):
        return None


# --- decoding -------------------------------------------------------------------------------------


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise WireError(f"{what} must be a string of at most {MAX_STRING} characters")
    return value


def _whole(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"{what} must be a whole number")
    return value


def decode(data: Any, handle: Callable[[dict[str, Any]], Any], depth: int = 0) -> Any:
    """Rebuild a value from the restricted form; ``handle`` rebuilds handle dicts."""
    if depth > MAX_DEPTH:
        raise WireError(f"nested more than {MAX_DEPTH} levels deep")
    if data is None or isinstance(data, bool):
        return data
    if isinstance(data, int):
        if abs(data) >= 10**MAX_DIGITS:
            raise WireError(f"an integer of more than {MAX_DIGITS} digits")
        return data
    if isinstance(data, float):
        return data
    if isinstance(data, str):
        return _text(data, "a string")
    if isinstance(data, list):
        if len(data) > MAX_ITEMS:
            raise WireError(f"a list of more than {MAX_ITEMS} items")
        return [decode(v, handle, depth + 1) for v in data]
    if not isinstance(data, dict):
        raise WireError(f"unexpected {type(data).__name__}")
    tag = data.get("$")
    inner = data.get("v")
    if tag == "ellipsis":
        return Ellipsis
    if tag == "float":
        text = _text(inner, "a float")
        if text not in ("nan", "inf", "-inf"):
            raise WireError("a float must be finite, nan, inf or -inf")
        return float(text)
    if tag == "bytes":
        try:
            return bytes.fromhex(_text(inner, "bytes"))
        except ValueError:
            raise WireError("bytes must be hexadecimal") from None
    if tag in ("tuple", "set", "dict", "records", "sinkrecord") and not isinstance(inner, list):
        raise WireError(f"{tag} needs a list")
    if tag == "tuple":
        return tuple(decode(inner, handle, depth + 1))
    if tag == "set":
        items = decode(inner, handle, depth + 1)
        try:
            return set(items)
        except TypeError:
            raise WireError("a set of unhashable items") from None
    if tag == "dict":
        out: dict[Any, Any] = {}
        for pair in inner:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("a dict is a list of key/value pairs")
            key = decode(pair[0], handle, depth + 1)
            try:
                out[key] = decode(pair[1], handle, depth + 1)
            except TypeError:
                raise WireError("a dict key that is not hashable") from None
        return out
    if tag == "tp":
        return TopicPartition(_text(data.get("topic"), "a topic"),
                              _whole(data.get("partition"), "a partition"))
    if tag == "records":
        if len(inner) > MAX_ITEMS:
            raise WireError("too many records")
        records = []
        for row in inner:
            if not isinstance(row, list) or len(row) != len(_RECORD_FIELDS):
                raise WireError("a record has the wrong fields")
            topic = _text(row[0], "a topic")
            numbers_ = [_whole(v, f) for v, f in zip(row[1:], _RECORD_FIELDS[1:], strict=True)]
            records.append(ConsumerRecord(topic, *numbers_))
        return ConsumerRecords(chunks_of(records))
    if tag == "sinkrecord":
        if len(inner) != 6:
            raise WireError("a sink record has the wrong fields")
        topic, partition, key, value, offset, timestamp = (decode(v, handle, depth + 1)
                                                           for v in inner)
        return SinkRecord(_text(topic, "a topic"), kafka_partition=_whole(partition, "a partition"),
                          key=key, value=value, kafka_offset=_whole(offset, "an offset"),
                          timestamp=None if timestamp is None else _whole(timestamp, "a timestamp"))
    if tag == "cluster":
        partitions = decode(inner, handle, depth + 1)
        unavailable = decode(data.get("unavailable", []), handle, depth + 1)
        if not isinstance(partitions, dict) or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in partitions.items()
        ):
            raise WireError("cluster metadata maps topics to partition counts")
        return ClusterMetadata(partitions, frozenset(
            tuple(p) for p in unavailable if isinstance(p, tuple | list)))
    if tag in ("class", "function", "object", "remote"):
        return handle(data)
    raise WireError(f"unknown tag {str(tag)[:20]!r}")


def dumps(message: Mapping[str, Any]) -> str:
    """One message line (no newline)."""
    return json.dumps(message, separators=(",", ":"))
