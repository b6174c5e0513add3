"""The fuzzer's check of Kafka Streams applications, read from the logs.

**Stateless applications** (``tag``, ``rekey`` in ``sim.streams.scenario``) map every input
record to one output record with a known key and the input's timestamp. With
``processing.guarantee=at_least_once`` Kafka promises that every input record's result reaches
the output — maybe more than once (a task that moves is reprocessed from its last commit), never
zero times — and nothing else does. Read from the partition logs below the high watermark:

- ``streams-lost``: an input record whose result is not in the output topic;
- ``streams-extra``: an output record that no input record explains;
- ``streams-duplicate``: a result written more than once (allowed under at-least-once, so it is
  counted, never a violation by itself).

Records are matched as a multiset of (key, timestamp): two input records with the same key and
timestamp need two results.

Example: input ``(a, 10), (b, 20)``, output of ``tag`` ``(a, 10), (a, 10)`` → ``b`` is lost and
``a`` is duplicated once.

**The stateful ``count`` application** writes each key's new count to the output (record cache
off, so every update). The true count of a key is the number of its input records. Its output
is read as a ``read_committed`` consumer reads it (no aborted transactions, no markers):

- ``streams-undercount``: a key's last count is below its true count (a record never counted);
  no guarantee allows it — with one exception under ``at_least_once``,
  ``streams-stale-write``: the key's count did reach its true count, and the last output
  carries the timestamp of an earlier input than the key's last one, after its task moved.
  That is a write of an earlier result that landed after the final one: a thread that lost
  its task (hung past its session timeout) still had it in its producer, which retried it
  after the new owner's writes. At-least-once fences no such zombie (only exactly_once_v2
  does, KIP-447), so Kafka can do the same; counted, never a violation by itself.
- under ``exactly_once_v2``, ``streams-count-wrong``: a key's committed counts are not exactly
  1, 2, …, n for its n records — a count applied twice, skipped, or an aborted transaction's
  output seen. Kafka promises exact counts whatever crashes happen (KIP-447: the changelog
  writes, the output and the input offsets commit in one transaction).
- under ``at_least_once``, ``streams-overcount``: a key's last count is above its true count.
  Allowed, and counted, when the task of the key's partition was created more than once (it moved,
  or its instance crashed or was fenced, so it was reprocessed from its last commit while the
  changelog already held the counts: kafka-facts §5.4). Without such a cause it is
  ``streams-overcount-uncaused``, a violation.

Example: key ``a`` has 3 input records; the committed output says 1, 2, 3, 3 → under EOS a
wrong count (3 twice); under at-least-once a last count of 3, correct.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sim.consumer.fetcher import _visible
from sim.payloads import payload
from sim.records import TopicPartition
from sim.streams.config import EXACTLY_ONCE_V2
from sim.streams.events import STREAMS_TASK
from sim.streams.scenario import key_after

TOLERATED = ("streams-duplicate", "streams-overcount", "streams-stale-write")
"""Kinds the guarantee allows: counted, never a violation by themselves."""


def committed(kernel: Any, topic: str) -> Counter[tuple[Any, int]]:
    """(key, timestamp) of every record below the high watermark of ``topic``'s leaders."""
    found: Counter[tuple[Any, int]] = Counter()
    for key, _value, stamp, _p in read_committed(kernel, topic):
        found[(key, stamp)] += 1
    return found


def read_committed(kernel: Any, topic: str) -> list[tuple[Any, Any, int, int]]:
    """(key, value, timestamp, partition) of every record a ``read_committed`` consumer reads
    below the high watermark, partition by partition in offset order (the records of aborted
    transactions, markers and records the log cleaner removed left out)."""
    rows = []
    for p, part in enumerate(kernel.cluster.topic(topic).partitions):
        log = part.log
        chunks = _visible(log, TopicPartition(topic, p), log.log_start_offset,
                          log.high_watermark, True)
        for chunk in chunks:
            for record_id, stamp in zip(chunk.columns["record_id"].tolist(),
                                        chunk.columns["timestamp_ms"].tolist(), strict=True):
                key, value = payload(kernel, record_id)
                rows.append((key, value, int(stamp), p))
    return rows


def check(kernel: Any, spec: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """{kind: (count, first example)} for one application spec of a scenario."""
    if spec.get("app") == "count":
        return check_count(kernel, spec)
    wanted: Counter[tuple[Any, int]] = Counter()
    for (key, stamp), count in committed(kernel, spec["input"]).items():
        wanted[(key_after(spec.get("app", "tag"), key), stamp)] += count
    got = committed(kernel, spec["output"])
    app = spec["application.id"]
    found = {}
    lost = wanted - got
    extra = Counter({k: n for k, n in got.items() if k not in wanted})
    doubled = Counter({k: got[k] - wanted[k] for k in got if k in wanted and got[k] > wanted[k]})
    for kind, missing, say in (("streams-lost", lost, "has no result in"),
                               ("streams-extra", extra, "explains nothing in the input of"),
                               ("streams-duplicate", doubled, "is written more than once to")):
        if missing:
            (key, stamp), _n = sorted(missing.items(), key=lambda kv: (kv[0][1], str(kv[0][0])))[0]
            found[kind] = (sum(missing.values()),
                           f"{app}: record key {key!r} at {stamp} ms {say} {spec['output']}")
    return found


def task_creations(kernel: Any, application_id: str) -> Counter[str]:
    """How many times each task of the application was created (on any thread), from the
    trace's ``streams.task`` events: more than once means it moved or was revived."""
    rows = kernel.trace.frame(STREAMS_TASK)
    rows = rows[(rows["action"] == "created")
                & rows["component"].astype(str).str.startswith(f"{application_id}-")]
    return Counter(rows["task"].astype(str).tolist())


def check_count(kernel: Any, spec: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """The ``count`` application's findings (see the module docstring)."""
    app = spec["application.id"]
    eos = spec.get("config", {}).get("processing.guarantee") == EXACTLY_ONCE_V2
    truth: Counter[Any] = Counter()
    last_input_ms: dict[Any, int] = {}
    for key, _v, stamp, _p in read_committed(kernel, spec["input"]):
        truth[key] += 1
        last_input_ms[key] = max(stamp, last_input_ms.get(key, stamp))
    outputs: dict[Any, list[Any]] = {}
    partition_of: dict[Any, int] = {}
    last_output_ms: dict[Any, int] = {}
    for key, value, stamp, p in read_committed(kernel, spec["output"]):
        outputs.setdefault(key, []).append(value)
        partition_of[key] = p
        last_output_ms[key] = stamp
    created = task_creations(kernel, app)
    cases: dict[str, list[tuple[Any, str]]] = {}
    for key in sorted(set(truth) | set(outputs), key=str):
        n, seen = truth[key], outputs.get(key, [])
        last = seen[-1] if seen else 0
        if last < n:
            task = f"0_{partition_of[key]}" if key in partition_of else ""
            if (not eos and max(seen, default=0) >= n and created[task] > 1
                    and last_output_ms[key] < last_input_ms[key]):
                cases.setdefault("streams-stale-write", []).append(
                    (key, f"key {key!r} counted {last} for {n} input records after reaching "
                          f"{n}: its last output carries an earlier input's timestamp, written "
                          f"late by an old owner of task {task} (at_least_once)"))
            else:
                cases.setdefault("streams-undercount", []).append(
                    (key, f"key {key!r} counted {last} for {n} input records"))
        elif eos and seen != list(range(1, n + 1)):
            shown = seen if len(seen) <= 8 else [*seen[:4], "…", *seen[-3:]]
            cases.setdefault("streams-count-wrong", []).append(
                (key, f"key {key!r} has {n} input records but its committed counts are "
                      f"{shown} under exactly_once_v2"))
        elif not eos and last > n:
            task = f"0_{partition_of[key]}"
            if created[task] > 1:
                cases.setdefault("streams-overcount", []).append(
                    (key, f"key {key!r} counted {last} for {n} input records: task {task} was "
                          f"created {created[task]} times, so it reprocessed the records "
                          "after its last commit (at_least_once)"))
            else:
                cases.setdefault("streams-overcount-uncaused", []).append(
                    (key, f"key {key!r} counted {last} for {n} input records, and task {task} "
                          "never moved or restarted"))
    return {kind: (len(found), f"{app}: {found[0][1]} in {spec['output']}")
            for kind, found in cases.items()}

