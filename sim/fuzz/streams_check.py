"""The fuzzer's check of Kafka Streams applications: at-least-once, read from the logs.

A scenario's Streams application (``sim.streams.scenario``) maps every input record to one
output record with a known key and the input's timestamp. With
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
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sim.payloads import payload
from sim.streams.scenario import key_after


def committed(kernel: Any, topic: str) -> Counter[tuple[Any, int]]:
    """(key, timestamp) of every record below the high watermark of ``topic``'s leaders."""
    found: Counter[tuple[Any, int]] = Counter()
    for part in kernel.cluster.topic(topic).partitions:
        log = part.log
        end = log.high_watermark
        for record_id, stamp in zip(log.column("record_id", log.log_start_offset, end).tolist(),
                                    log.column("timestamp_ms", log.log_start_offset, end).tolist(),
                                    strict=True):
            found[(payload(kernel, record_id)[0], int(stamp))] += 1
    return found


def check(kernel: Any, spec: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """{kind: (count, first example)} for one application spec of a scenario."""
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
