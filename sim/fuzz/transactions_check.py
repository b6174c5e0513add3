"""The fuzzer's check of transactions: exactly once, read from the logs and the readers' history.

A scenario's transactional consume-transform-produce loop (``sim.consumer.transform``) writes
one output record per input record, inside transactions that also commit the input offsets.
With a safe configuration Kafka promises (KIP-98, KIP-447):

- ``eos-lost``: an input record (below some replica's high watermark) with no output record in
  the read_committed view of the output (below the LSO, aborted transactions dropped);
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

Example: inputs 1, 2, 3; the loop commits outputs of 1 and 2, crashes with 3's output in an
open transaction, and its successor commits 3's output again after the coordinator aborts the
first: the read_committed view holds 1, 2, 3 once each — nothing to report — while a
read_uncommitted reader may have read the aborted copy of 3 (tied to its ABORT marker).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

SAMPLE_MS = 100.0
"""How often ``watch`` compares every replica's LSO with its high watermark."""


def transactional_apps(kernel: Any) -> list[Any]:
    """The run's transactional consume-transform-produce applications."""
    from sim.audit import _transform_apps

    return [app for app in _transform_apps(kernel) if app.transactional]


def watch(kernel: Any, topics: list[str]) -> list[str]:
    """Sample ``topics``' replicas every ``SAMPLE_MS`` during the run.

    Returns the list that samples finding an LSO above the high watermark append to (read it
    after the run). The sampler only reads, so the run's other events keep their order.
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

    env.process(sample())
    return problems


def check(kernel: Any, scenario: dict[str, Any], reads: Any,
          aborted_reads: list[dict[str, Any]], lso_problems: list[str]
          ) -> dict[str, tuple[int, str]]:
    """{kind: (count, first example)} for the run's transactional apps and output readers.

    ``scenario`` names each loop's input topics, ``reads`` is the consumers' read history
    (``sim.consumer.history.READ_COLUMNS``), ``aborted_reads`` the audit's ``aborted-read``
    entries, ``lso_problems`` what ``watch`` found.
    """
    found: dict[str, tuple[int, str]] = {}
    apps = transactional_apps(kernel)
    if not apps:
        return found
    committed = {c.client_id for c in _consumers(kernel)
                 if c.config.get("isolation.level") == "read_committed"}
    for app in apps:
        inputs = sorted({t for spec in scenario.get("consumers", [])
                         if spec.get("output_topic") == app.output_topic for t in spec["topics"]})
        found.update(_exactly_once(kernel, app, inputs))
    bad = [r for r in aborted_reads if r["consumer"] in committed]
    if bad:
        r = bad[0]
        found["committed-read-aborted"] = (
            sum(r["count"] for r in bad), f"{r['consumer']} read {r['topic']}-{r['partition']} "
            f"offsets {r['first_offset']}–{r['last_offset']} of an aborted transaction")
    uncaused = [r for r in aborted_reads if r["consumer"] not in committed and not r["cause"]]
    if uncaused:
        r = uncaused[0]
        found["uncaused-aborted-read"] = (
            len(uncaused), f"{r['consumer']} read {r['topic']}-{r['partition']} offsets "
            f"{r['first_offset']}–{r['last_offset']}: no abort marker named")
    outputs = sorted({app.output_topic for app in apps})
    early = _early_reads(kernel, reads, committed, outputs)
    if early:
        found["read-above-lso"] = (len(early), early[0])
    if lso_problems:
        found["lso-above-hw"] = (len(lso_problems), lso_problems[0])
    hanging = [f"{t}-{p.partition}: LSO {p.log.last_stable_offset} < HW {p.log.high_watermark}"
               for t in outputs for p in kernel.cluster.topic(t).partitions
               if p.log.last_stable_offset < p.log.high_watermark]
    if hanging:
        found["hanging-transaction"] = (len(hanging), f"at the end, {hanging[0]}")
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


def _exactly_once(kernel: Any, app: Any, topics: list[str]) -> dict[str, tuple[int, str]]:
    """Every input record's output in the read_committed view of the output exactly once."""
    inputs: dict[int, str] = {}
    for topic in topics:
        for part in kernel.cluster.topic(topic).partitions:
            log = part.log
            # committed: below the highest HW of any replica (a new leader's HW can lag the
            # old leader's, which the loop may have read up to)
            stop = min(max(r.high_watermark for r in part.logs.values()), log.log_end_offset)
            ids, offsets = _ids(log, log.log_start_offset, stop, True)
            for record_id, offset in zip(ids.tolist(), offsets.tolist(), strict=True):
                inputs[record_id] = f"{topic}-{part.partition}@{offset}"
    copies: Counter[int] = Counter()
    first_extra = ""
    extra = 0
    for part in kernel.cluster.topic(app.output_topic).partitions:
        log = part.log
        ids, offsets = _ids(log, log.log_start_offset, log.last_stable_offset, True)
        for output, offset in zip(ids.tolist(), offsets.tolist(), strict=True):
            source = app.sources.get(output)
            if source is None or source not in inputs:
                extra += 1
                first_extra = first_extra or f"{app.output_topic}-{part.partition}@{offset}"
            else:
                copies[source] += 1
    found = {}
    lost = [r for r in inputs if copies[r] == 0]
    if lost:
        found["eos-lost"] = (len(lost), f"input {inputs[lost[0]]} has no committed output "
                                        f"in {app.output_topic}")
    doubled = sorted(r for r, n in copies.items() if n > 1)
    if doubled:
        found["eos-duplicate"] = (sum(copies[r] - 1 for r in doubled),
                                  f"input {inputs[doubled[0]]} has {copies[doubled[0]]} "
                                  f"committed outputs in {app.output_topic}")
    if extra:
        found["eos-extra"] = (extra, f"{first_extra} explains no input record")
    return found


def _early_reads(kernel: Any, reads: Any, committed: set[str], topics: list[str]) -> list[str]:
    """read_committed reads of transactional records before their transaction's marker.

    A control batch's ``timestamp_ms`` is the (floored) time it was appended, so a read at
    ``t`` of a record whose deciding marker has a larger timestamp happened while the
    transaction was still open: above the LSO.
    """
    out: list[str] = []
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
                out.append(f"{consumer} read {topic}-{partition}@{offset} at {time_ms:.0f} ms, "
                           f"its transaction decided at "
                           f"{'no time' if at == np.inf else f'{at:.0f} ms'}")
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
