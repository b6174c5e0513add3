"""The fuzzer's check of transactions: exactly once, read from the logs and the readers' history.

A scenario's transactional consume-transform-produce loop (``sim.consumer.transform``) writes
one output record per input record, inside transactions that also commit the input offsets.
With a safe configuration Kafka promises (KIP-98, KIP-447):

- ``eos-lost``: an input record (below some replica's high watermark) with no output record in
  the read_committed view of the output (below the LSO, aborted transactions dropped);
- ``eos-unprocessed``: such an input past its group's committed offset when every member of
  the loop has closed because its producer was fenced (e.g. its transaction timed out at the
  coordinator, whose EndTxn then answers PRODUCER_FENCED under transaction version 1). Kafka's
  own ``ExactlyOnceMessageProcessor`` shuts down on ``ProducerFencedException`` too; the input
  is not lost — a new instance reads it from the committed offset — so it is counted, never
  a violation by itself;
- ``eos-duplicate``: an input record whose output the read_committed view holds twice or more;
- ``eos-extra``: a committed output record that no input record explains;
- ``committed-read-aborted``: a read_committed reader returned a record of an aborted
  transaction;
- ``read-above-lso``: a read_committed reader returned a transactional record before the
  marker that decided its transaction was written (it was above the LSO then), or a record
  whose transaction was never decided;
- ``lso-above-hw``: some replica's LSO was above its high watermark at a sampled instant
  (sampled every ``SAMPLE_MS`` by ``watch``);
- ``hanging-transaction``: after the settle time some output partition's LSO is still below
  its high watermark (a transaction nobody ends);
- ``uncaused-aborted-read``: a read_uncommitted reader read an aborted record (allowed) but
  the audit names no abort marker for it (every allowed anomaly must have its cause).

With an unsafe configuration (``unclean.leader.election.enable`` or ``min.insync.replicas=1``
on the input and output topics) acknowledged records can be truncated away, and Kafka's
exactly-once promise goes with them. ``check(..., tie=True)`` then keeps an ``eos-lost``,
``eos-duplicate``, ``eos-extra``, ``committed-read-aborted``, ``read-above-lso`` or
``hanging-transaction`` case only if a truncation touched it (``Truncations.cause``): the input
record or one of its outputs was removed from some replica, or a record the loop processed was
removed from the input's offset (another took its place); for the reader-side kinds, the
output partition lost records. A case no truncation explains is
``eos-uncaused`` instead, which no profile tolerates.

Example: inputs 1, 2, 3; the loop commits outputs of 1 and 2, crashes with 3's output in an
open transaction, and its successor commits 3's output again after the coordinator aborts the
first: the read_committed view holds 1, 2, 3 once each — nothing to report — while a
read_uncommitted reader may have read the aborted copy of 3 (tied to its ABORT marker).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.consumer.events import CONSUMER_OFFSET_RESET
from sim.consumer.subscription import OUT_OF_RANGE_RESET
from sim.records import TopicPartition

SAMPLE_MS = 100.0
"""How often ``watch`` compares every replica's LSO with its high watermark."""


def transactional_apps(kernel: Any) -> list[Any]:
    """The run's transactional consume-transform-produce applications."""
    from sim.audit import _transform_apps

    return [app for app in _transform_apps(kernel) if app.transactional]


def watch(kernel: Any, topics: list[str]) -> list[str]:
    """Sample ``topics``' replicas every ``SAMPLE_MS`` during the run.

    Returns the list that samples finding an LSO above the high watermark append to (read it
    after the run). The sampler only reads, so the run's other events keep their order; with no
    topics to watch it does not start (a run without a transactional loop is spared its
    1,200 wake-ups over 120 s).
    """
    problems: list[str] = []
    env = kernel.env

    def sample() -> Any:
        while True:
            yield env.timeout(SAMPLE_MS)
            for topic in topics:
                for part in kernel.cluster.topic(topic).partitions:
                    for node, log in part.logs.items():
                        lso, hw = log.last_stable_offset, log.high_watermark
                        if lso > hw and len(problems) < 10:
                            problems.append(f"{topic}-{part.partition} on broker {node}: LSO "
                                            f"{lso} > HW {hw} at {env.now:.0f} ms")

    if topics:
        env.process(sample())
    return problems


TIED_KINDS = ("eos-lost", "eos-duplicate", "eos-extra", "committed-read-aborted",
              "read-above-lso", "hanging-transaction")
"""Kinds an unsafe configuration may show, each case tied to a truncation (``tie=True``)."""


class Truncations:
    """What truncations removed from replicas (``ReplicaManager.truncated``): by partition,
    the record ids and offsets removed and the first ``log.truncate`` event doing so."""

    def __init__(self, kernel: Any) -> None:
        self.ids: dict[int, str] = {}
        self.offsets: dict[tuple[str, int, int], dict[int, str]] = {}
        self.partitions: dict[tuple[str, int], str] = {}
        self.first_seq: dict[tuple[str, int], int] = {}  # the trace seq of the first truncation
        for topic, partition, broker, records, seq in kernel.replicas.truncated:
            where = f"{topic}-{partition}"
            text = f"log.truncate of {where} on broker {broker}"
            self.partitions.setdefault((topic, partition), text)
            self.first_seq.setdefault((topic, partition), seq)
            for offset, record_id in zip(records["offset"].tolist(),
                                         records["record_id"].tolist(), strict=True):
                self.offsets.setdefault((topic, partition, int(offset)), {}).setdefault(
                    int(record_id), text)
                if record_id >= 0:
                    self.ids.setdefault(int(record_id), text)

    def cause(self, record_ids: list[int], where: tuple[str, int, int] | None = None,
              read: Any = ()) -> str:
        """The truncation that removed one of ``record_ids``, or removed from offset ``where``
        a record in ``read`` (a record the loop processed, whose place another took)."""
        for record_id in record_ids:
            if record_id in self.ids:
                return self.ids[record_id]
        removed = self.offsets.get(where, {}) if where is not None else {}
        return next((text for record_id, text in removed.items() if record_id in read), "")


def check(kernel: Any, scenario: dict[str, Any], reads: Any,
          aborted_reads: list[dict[str, Any]], lso_problems: list[str], tie: bool = False
          ) -> dict[str, tuple[int, str]]:
    """{kind: (count, first example)} for the run's transactional apps and output readers.

    ``scenario`` names each loop's input topics, ``reads`` is the consumers' read history
    (``sim.consumer.history.READ_COLUMNS``), ``aborted_reads`` the audit's ``aborted-read``
    entries, ``lso_problems`` what ``watch`` found. With ``tie`` (unsafe configs) a case of
    ``TIED_KINDS`` stays only if a truncation explains it, the rest are ``eos-uncaused``.
    """
    cases: dict[str, list[tuple[str, str]]] = {}  # kind → [(detail, cause)]
    apps = transactional_apps(kernel)
    if not apps:
        return {}
    cut = Truncations(kernel)
    committed = {c.client_id for c in _consumers(kernel)
                 if c.config.get("isolation.level") == "read_committed"}
    for app in apps:
        inputs = sorted({t for spec in scenario.get("consumers", [])
                         if spec.get("output_topic") == app.output_topic for t in spec["topics"]})
        for kind, found in _exactly_once(kernel, app, inputs, cut).items():
            cases.setdefault(kind, []).extend(found)
    for r in aborted_reads:
        if r["consumer"] in committed:
            cases.setdefault("committed-read-aborted", []).extend(
                [(f"{r['consumer']} read {r['topic']}-{r['partition']} offsets "
                  f"{r['first_offset']}–{r['last_offset']} of an aborted transaction",
                  cut.partitions.get((r["topic"], int(r["partition"])), ""))] * r["count"])
    found = _counted(cases, tie)
    uncaused = [r for r in aborted_reads if r["consumer"] not in committed and not r["cause"]]
    if uncaused:
        r = uncaused[0]
        found["uncaused-aborted-read"] = (
            len(uncaused), f"{r['consumer']} read {r['topic']}-{r['partition']} offsets "
            f"{r['first_offset']}–{r['last_offset']}: no abort marker named")
    outputs = sorted({app.output_topic for app in apps})
    late = {"read-above-lso": [(text, cut.partitions.get(key, ""))
                               for text, key in _early_reads(kernel, reads, committed, outputs)],
            "hanging-transaction": [
                (f"at the end, {t}-{p.partition}: LSO {p.log.last_stable_offset} < HW "
                 f"{p.log.high_watermark}", cut.partitions.get((t, p.partition), ""))
                for t in outputs for p in kernel.cluster.topic(t).partitions
                if p.log.last_stable_offset < p.log.high_watermark]}
    for kind, counted in _counted({k: v for k, v in late.items() if v}, tie).items():
        if kind in found:  # eos-uncaused from both
            counted = (found[kind][0] + counted[0], found[kind][1])
        found[kind] = counted
    if lso_problems:
        found["lso-above-hw"] = (len(lso_problems), lso_problems[0])
    return found


def _counted(cases: dict[str, list[tuple[str, str]]], tie: bool
             ) -> dict[str, tuple[int, str]]:
    """{kind: (count, first detail)}; with ``tie`` the cases without a cause are moved to
    ``eos-uncaused`` and the tied ones name their cause."""
    found: dict[str, tuple[int, str]] = {}
    uncaused: list[str] = []
    for kind, items in cases.items():
        if not items:
            continue
        if not tie:
            found[kind] = (len(items), items[0][0])
            continue
        tied = [(text, why) for text, why in items if why]
        uncaused += [f"{kind}: {text}" for text, why in items if not why]
        if tied:
            found[kind] = (len(tied), f"{tied[0][0]} (cause: {tied[0][1]})")
    if uncaused:
        found["eos-uncaused"] = (len(uncaused), f"{uncaused[0]}, no truncation explains it")
    return found


def _consumers(kernel: Any) -> list[Any]:
    from sim.consumer.metrics import consumers

    return consumers(kernel)


def _ids(log: Any, start: int, stop: int, read_committed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Record ids and offsets of ``start … stop-1`` that hold data (read_committed: no aborted)."""
    from sim.audit import data_mask

    ids = log.column("record_id", start, stop)
    offsets = np.arange(start, stop, dtype=np.int64)
    keep = data_mask(log, start, stop, drop_aborted=read_committed)
    return ids[keep], offsets[keep]


TOLERATED = ("eos-unprocessed",)
"""Kinds no guarantee is broken by: counted, never a violation by themselves."""


def _left_unprocessed(kernel: Any, app: Any) -> Callable[[str, int, int], bool]:
    """Whether an input at (topic, partition, offset) is past its group's committed offset
    while every member of ``app`` has closed after its producer was fenced (nobody left to
    process it; see ``eos-unprocessed``)."""
    from sim.consumer.transform import FENCED

    members = [c for c in kernel.clients if getattr(c, "app", None) is app]
    last: dict[str, str] = {}
    for outcome in app.outcomes:
        last[outcome["consumer"]] = outcome["result"]
    if not members or any(last.get(c.client_id) != FENCED
                          or (c.lifecycle == "running" and not c.closing) for c in members):
        return lambda _topic, _partition, _offset: False
    coordinator = kernel.cluster.group_coordinator
    group_id = members[0].group_id

    def past_commit(topic: str, partition: int, offset: int) -> bool:
        tp = TopicPartition(topic, partition)
        committed = coordinator.fetch_offsets(group_id, [tp])[tp]
        return committed is None or offset >= committed

    return past_commit


def _exactly_once(kernel: Any, app: Any, topics: list[str], cut: Truncations
                  ) -> dict[str, list[tuple[str, str]]]:
    """Every input record's output in the read_committed view of the output exactly once:
    {kind: [(detail, cause)]}, the cause a truncation that touched the case (or "")."""
    inputs: dict[int, tuple[str, int, int]] = {}
    for topic in topics:
        for part in kernel.cluster.topic(topic).partitions:
            log = part.log
            # committed: below the highest HW of any replica (a new leader's HW can lag the
            # old leader's, which the loop may have read up to)
            stop = min(max(r.high_watermark for r in part.logs.values()), log.log_end_offset)
            ids, offsets = _ids(log, log.log_start_offset, stop, True)
            for record_id, offset in zip(ids.tolist(), offsets.tolist(), strict=True):
                inputs[record_id] = (topic, part.partition, offset)
    read = set(app.sources.values())
    outputs_of: dict[int, list[int]] = {}
    for output, source in app.sources.items():
        outputs_of.setdefault(source, []).append(output)
    copies: Counter[int] = Counter()
    extras: list[tuple[str, str]] = []
    for part in kernel.cluster.topic(app.output_topic).partitions:
        log = part.log
        ids, offsets = _ids(log, log.log_start_offset, log.last_stable_offset, True)
        for output, offset in zip(ids.tolist(), offsets.tolist(), strict=True):
            source = app.sources.get(output)
            if source is None or source not in inputs:
                extras.append((f"{app.output_topic}-{part.partition}@{offset} explains no "
                               f"input record",
                               cut.cause([output] + ([source] if source is not None else []),
                                         (app.output_topic, part.partition, offset))))
            else:
                copies[source] += 1

    def at(record_id: int) -> str:
        return "{}-{}@{}".format(*inputs[record_id])

    reread = _reread_after_truncation(kernel, app, cut)

    def why(record_id: int) -> str:
        where = inputs[record_id]
        return (cut.cause([record_id, *outputs_of.get(record_id, [])], where, read)
                or next((text for start, stop, text in reread.get(where[:2], ())
                         if start <= where[2] < stop), ""))

    unprocessed = _left_unprocessed(kernel, app)
    missing = [r for r in inputs if copies[r] == 0]
    left = {r for r in missing if unprocessed(*inputs[r])}
    return {"eos-lost": [(f"input {at(r)} has no committed output in {app.output_topic}",
                          why(r)) for r in missing if r not in left],
            "eos-unprocessed": [(f"input {at(r)} is past the group's committed offset",
                                 "every member of the loop closed, its producer fenced")
                                for r in missing if r in left],
            "eos-duplicate": [(f"input {at(r)} has {copies[r]} committed outputs in "
                               f"{app.output_topic}", why(r))
                              for r in sorted(r for r, n in copies.items() if n > 1)
                              for _ in range(copies[r] - 1)],
            "eos-extra": extras}


def _reread_after_truncation(kernel: Any, app: Any, cut: Truncations
                             ) -> dict[tuple[str, int], list[tuple[int, int, str]]]:
    """Input offsets the loop read again because a truncation took an input partition's log
    end below its position: (topic, partition) → [(first, stop, cause)].

    A position set without a leader epoch is not validated after a leader change
    (``SubscriptionState.validatePosition``): the loop's seek back after an abort
    (``KafkaConsumer.seek(tp, offset)``), or a committed offset stored without its epoch
    (``OffsetAndMetadata(offset)``, as Kafka's examples commit). Past a truncated log end the
    fetch is OFFSET_OUT_OF_RANGE and ``auto.offset.reset`` moves the position back (to the log
    start with ``earliest``), so inputs whose outputs were committed are processed again.
    """
    groups = {c.group_id for c in kernel.clients if getattr(c, "app", None) is app}
    frame = kernel.trace.frame(CONSUMER_OFFSET_RESET)
    found: dict[tuple[str, int], list[tuple[int, int, str]]] = {}
    if frame.empty:
        return found
    for seq, group, topic, partition, old, new, reason in zip(
            frame["seq"], frame["group"], frame["topic"], frame["partition"],
            frame["from_offset"], frame["offset"], frame["reason"], strict=True):
        where = (topic, int(partition))
        if (group in groups and str(reason).startswith(OUT_OF_RANGE_RESET)
                and int(seq) > cut.first_seq.get(where, math.inf) and int(new) < int(old)):
            found.setdefault(where, []).append(
                (int(new), int(old), f"{cut.partitions[where]}: the loop's position {int(old)} "
                                     f"was past the log end, reset to {int(new)}"))
    return found


def _early_reads(kernel: Any, reads: Any, committed: set[str], topics: list[str]
                 ) -> list[tuple[str, tuple[str, int]]]:
    """read_committed reads of transactional records before their transaction's marker.

    A control batch's ``timestamp_ms`` is the (floored) time it was appended, so a read at
    ``t`` of a record whose deciding marker has a larger timestamp happened while the
    transaction was still open: above the LSO.
    """
    out: list[tuple[str, tuple[str, int]]] = []
    if reads.empty or not committed:
        return out
    mine = reads[reads["consumer"].isin(sorted(committed)) & reads["topic"].isin(topics)]
    for (topic, partition), rows in mine.groupby(["topic", "partition"], sort=True):
        log = kernel.cluster.partition(topic, int(partition)).log
        decided = _decided_at(log)
        for offset, time_ms, consumer in zip(rows["offset"].tolist(), rows["time_ms"].tolist(),
                                             rows["consumer"].tolist(), strict=True):
            at = decided.get(int(offset))
            if at is not None and at > time_ms:
                out.append((f"{consumer} read {topic}-{partition}@{offset} at {time_ms:.0f} "
                            f"ms, its transaction decided at "
                            f"{'no time' if at == np.inf else f'{at:.0f} ms'}",
                            (str(topic), int(partition))))
    return out


def _decided_at(log: Any) -> dict[int, float]:
    """Offset of every transactional data record in ``log`` → when its marker was appended."""
    batches = [b for b in log.batches_overlapping(log.log_start_offset, log.log_end_offset)
               if b.is_transactional]
    out: dict[int, float] = {}
    pending: dict[int, list[Any]] = {}
    for batch in batches:
        if not batch.is_control:
            pending.setdefault(batch.producer_id, []).append(batch)
            continue
        at = float(log.column("timestamp_ms", batch.base_offset, batch.base_offset + 1)[0])
        for data in pending.pop(batch.producer_id, []):
            out.update(dict.fromkeys(range(data.base_offset, data.last_offset + 1), at))
    for open_batches in pending.values():
        for data in open_batches:
            out.update(dict.fromkeys(range(data.base_offset, data.last_offset + 1), np.inf))
    return out
