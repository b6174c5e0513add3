"""The delivery audit: what producers were told was written against what consumers saw and did.

The vocabulary is Jepsen's Kafka checker (``jepsen/src/jepsen/tests/kafka.clj``), so the
lessons and the audit speak the language of the published analyses:

- ``lost-write``: an acknowledged record never read, although some consumer read a *higher*
  offset of its partition; it should have been seen, so it is gone.
- ``unseen``: an acknowledged record never read, with nothing read past it yet.
- ``duplicate``: one record at more than one offset (a retry written twice).
- ``nonmonotonic-send``: a record sent after another to the same partition but written at a
  lower offset (retries without idempotence reorder).
- ``inconsistent-offsets``: two different records at one offset (a log that was truncated and
  written again).
- ``poll-skip`` / ``nonmonotonic-poll``: one consumer's consecutive polls of a partition jump
  forward over offsets / go back or repeat. Expected when consumers ``subscribe()``, because a
  rebalance moves partitions between them; they count as errors only with ``assign()``.

And, for what the application did with the records (delivery semantics, per group):

- ``skipped``: never processed, although the group moved past it (committed a higher offset or
  processed later records): at most once.
- ``processed-twice``: processed more than once: at least once.

Records are told apart by their record id (producer id << 40 | index, stored in the log), so a
record read at another offset than it was acknowledged at is noticed. Every anomaly names the
events that explain it (trace ``seq`` and time): the polls, the crash or rebalance that stopped
its consumer, the commit that moved past it. Replication adds its own causes of loss: put the
names of event kinds with ``topic``, ``partition`` and ``offset`` fields (the first offset
removed, e.g. a truncation) in ``LOSS_EVENT_KINDS`` and lost writes point at them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.availability import nonmonotonic_sends, unavailability

KINDS = ("lost-write", "unseen", "duplicate", "inconsistent-offsets", "nonmonotonic-send",
         "poll-skip", "nonmonotonic-poll", "skipped", "processed-twice")
ALLOWED_WITH_SUBSCRIBE = ("poll-skip", "nonmonotonic-poll")
DELIVERY_KINDS = ("skipped", "processed-twice")
"""Outcomes of the application's commit strategy, reported but never an invalid run."""

LOSS_EVENT_KINDS: set[str] = {"log.truncate"}
"""Event kinds that remove records from a log (see the module docstring)."""

CONSUMER_STOP_KINDS = ("fault", "consumer.left", "consumer.lost", "consumer.revoked",
                       "group.member.removed")
CAUSE_COLUMNS = ["seq", "time_ms", "kind", "component", "detail", "topic", "partition",
                 "offset"]
DETAIL_LIMIT = 32  # like Jepsen's condensed report, JSON lists show at most this many


@dataclass
class AuditReport:
    """The audit's findings; ``to_json()`` is what the CLI prints."""

    acknowledged: int
    read: int
    processed: int
    anomalies: dict[str, list[dict[str, Any]]]
    counts: dict[str, int]
    subscribed: bool = True
    lost_records: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[dict[str, Any]] = field(default_factory=list)
    """Windows when a partition took no writes (``sim.availability.unavailability``)."""

    @property
    def lost(self) -> int:
        return self.counts["lost-write"]

    @property
    def unseen(self) -> int:
        return self.counts["unseen"]

    @property
    def duplicates(self) -> int:
        return self.counts["duplicate"]

    @property
    def skipped(self) -> int:
        return self.counts["skipped"]

    @property
    def processed_twice(self) -> int:
        return self.counts["processed-twice"]

    @property
    def bad_kinds(self) -> list[str]:
        """Anomaly kinds that make the run invalid (Jepsen's ``bad-error-types``)."""
        allowed = set(DELIVERY_KINDS) | {"unseen"}
        if self.subscribed:
            allowed |= set(ALLOWED_WITH_SUBSCRIBE)
        return [k for k in KINDS if self.counts[k] and k not in allowed]

    @property
    def valid(self) -> bool:
        return not self.bad_kinds

    def frame(self, kind: str) -> pd.DataFrame:
        """The anomalies of one kind as a DataFrame."""
        return pd.DataFrame(self.anomalies[kind])

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid, "bad_kinds": self.bad_kinds,
            "acknowledged": self.acknowledged, "read": self.read, "processed": self.processed,
            "lost": self.lost, "unseen": self.unseen, "duplicates": self.duplicates,
            "skipped": self.skipped, "processed_twice": self.processed_twice,
            "lost_records": [_plain(r) for r in self.lost_records[:DETAIL_LIMIT]],
            "unavailable_ms": sum(w["duration_ms"] for w in self.unavailable),
            "unavailability": [_plain(w) for w in self.unavailable[:DETAIL_LIMIT]],
            "anomalies": dict(self.counts),
            "details": {k: [_plain(a) for a in v[:DETAIL_LIMIT]]
                        for k, v in self.anomalies.items() if v and k != "lost-write"},
        }

    def __repr__(self) -> str:
        found = ", ".join(f"{k}={n}" for k, n in self.counts.items() if n) or "no anomalies"
        return (f"AuditReport({'valid' if self.valid else 'INVALID'}: acknowledged="
                f"{self.acknowledged}, read={self.read}, processed={self.processed}; {found})")


def audit(writes: pd.DataFrame, reads: pd.DataFrame, processed: pd.DataFrame | None = None,
          commits: pd.DataFrame | None = None, causes: pd.DataFrame | None = None,
          subscribed: bool = True, final: pd.DataFrame | None = None,
          stored: set[int] | None = None) -> AuditReport:
    """Check a run's writes against its reads and processing.

    Args:
        writes: one row per record a producer sent: ``writer``, ``record_id``, ``topic``,
            ``partition``, ``offset`` (-1 when unknown, as with acks=0), ``ack_ms`` (NaN if
            never acknowledged).
        reads: one row per record a poll returned: ``consumer``, ``incarnation``, ``poll``,
            ``poll_seq``, ``time_ms``, ``topic``, ``partition``, ``offset``, ``record_id``.
        processed: one row per finished processing: ``consumer``, ``group``, ``topic``,
            ``partition``, ``offset``, ``processed_ms``, ``poll_seq``.
        commits: one row per partition per commit: ``consumer``, ``group``, ``time_ms``,
            ``topic``, ``partition``, ``offset``, ``error``, ``seq``.
        causes: events that can explain anomalies (``CAUSE_COLUMNS``).
        subscribed: consumers used ``subscribe()``, so poll-skips are expected.
        final: Jepsen's *final polls*: every partition read once more at the end
            (``topic``, ``partition``, ``offset``, ``record_id``); it counts for lost-write,
            unseen, duplicate and inconsistent-offsets, not for the consumers' own checks.
        stored: record ids still in the leaders' logs at the end, committed or not; an
            acknowledged record that is not among them is lost.
    """
    processed = processed if processed is not None else pd.DataFrame(
        columns=["consumer", "group", "topic", "partition", "offset", "processed_ms"])
    commits = commits if commits is not None else pd.DataFrame(
        columns=["consumer", "group", "time_ms", "topic", "partition", "offset", "error", "seq"])
    causes = causes if causes is not None else pd.DataFrame(columns=CAUSE_COLUMNS)
    acked = writes[np.isfinite(writes["ack_ms"].to_numpy(dtype=float))]
    seen = reads if final is None or final.empty else pd.concat(
        [reads[["topic", "partition", "offset", "record_id"]], final], ignore_index=True)
    anomalies: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    anomalies["inconsistent-offsets"], anomalies["duplicate"] = _offset_checks(acked, seen)
    anomalies["lost-write"], anomalies["unseen"] = _lost_and_unseen(acked, seen, causes,
                                                                    stored)
    anomalies["nonmonotonic-send"] = nonmonotonic_sends(writes)
    anomalies["poll-skip"], anomalies["nonmonotonic-poll"] = _poll_order(reads, causes)
    anomalies["skipped"], anomalies["processed-twice"] = _delivery(reads, processed, commits,
                                                                  causes)
    counts = {k: _count(k, v) for k, v in anomalies.items()}
    read_keys = reads.drop_duplicates(["topic", "partition", "offset"])
    processed_keys = processed.drop_duplicates(["topic", "partition", "offset"])
    return AuditReport(len(acked), len(read_keys), len(processed_keys), anomalies,
                       counts, subscribed, anomalies["lost-write"])


def _count(kind: str, rows: list[dict[str, Any]]) -> int:
    """Records involved for per-record kinds, cases for the others."""
    if kind in ("skipped", "processed-twice", "lost-write", "unseen"):
        return int(sum(r.get("count", 1) for r in rows))
    return len(rows)


# -- the producer-side checks ------------------------------------------------------------------

def _offset_checks(acked: pd.DataFrame, reads: pd.DataFrame
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """inconsistent-offsets (one offset, two records) and duplicate (one record, two offsets)."""
    keys = ["topic", "partition", "offset", "record_id"]
    seen = pd.concat([acked.loc[acked["offset"] >= 0, keys],
                      reads.loc[reads["record_id"] >= 0, keys]], ignore_index=True)
    seen = seen.drop_duplicates()
    inconsistent = []
    keys3 = ["topic", "partition", "offset"]
    ids_per_offset = seen.groupby(keys3, sort=True)["record_id"].transform("size")
    for (topic, partition, offset), ids in seen[ids_per_offset > 1].groupby(keys3, sort=True)[
            "record_id"]:
        inconsistent.append({"topic": topic, "partition": int(partition), "offset": int(offset),
                             "record_ids": sorted(map(int, ids))})
    duplicates = []
    offsets_per_id = seen.groupby("record_id")["offset"].transform("size")
    for record_id, rows in seen[offsets_per_id > 1].groupby("record_id", sort=True):
        duplicates.append({"record_id": int(record_id), "count": len(rows),
                           "offsets": [f"{t}-{p}@{o}" for t, p, o in zip(
                               rows["topic"], rows["partition"], rows["offset"], strict=True)]})
    return inconsistent, duplicates


def _lost_and_unseen(acked: pd.DataFrame, reads: pd.DataFrame, causes: pd.DataFrame,
                     stored: set[int] | None = None
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Jepsen's lost-write: acknowledged, unread, at or below the highest offset read.

    With ``stored`` (every record id still in a leader's log, committed or not), an unread
    record that is stored nowhere is lost too, even past the highest offset read: no later
    read can ever see it.
    """
    read_ids = set(reads.loc[reads["record_id"] >= 0, "record_id"].tolist())
    no_id = reads[reads["record_id"] < 0]
    read_at = set(zip(no_id["topic"], no_id["partition"], no_id["offset"], strict=True))
    seen = acked["record_id"].isin(read_ids).to_numpy() | np.array(
        [(t, p, o) in read_at for t, p, o in zip(acked["topic"], acked["partition"],
                                                 acked["offset"], strict=True)], dtype=bool)
    missing = acked[~seen]
    bound = reads.groupby(["topic", "partition"])["offset"].max()
    lost, unseen = [], []
    for row in missing.itertuples(index=False):
        highest = bound.get((row.topic, row.partition))
        entry = {"topic": row.topic, "partition": int(row.partition), "offset": int(row.offset),
                 "record_id": int(row.record_id), "writer": row.writer,
                 "ack_ms": float(row.ack_ms)}
        gone = stored is not None and int(row.record_id) not in stored
        if gone or (row.offset >= 0 and highest is not None and row.offset <= highest):
            entry["max_read_offset"] = int(highest) if highest is not None else -1
            entry["cause"] = _loss_cause(causes, row)
            lost.append(entry)
        else:
            unseen.append(entry)
    return lost, _ranges(unseen, "unseen")


def _loss_cause(causes: pd.DataFrame, row: Any) -> dict[str, Any] | None:
    """The first event after the ack that removed this offset from its partition's log."""
    removals = causes.attrs.setdefault("removals", {})
    key = (row.topic, row.partition)
    if key not in removals:  # filter once per partition: there may be many lost records
        removals[key] = causes[causes["kind"].isin(LOSS_EVENT_KINDS)
                               & (causes["topic"] == row.topic)
                               & (causes["partition"] == row.partition)]
    mine = removals[key]
    mine = mine[(mine["offset"] <= row.offset) & (mine["time_ms"] >= row.ack_ms)]
    return _event(mine.iloc[0]) if len(mine) else None


# -- the consumer-side checks -----------------------------------------------------------------

def _poll_order(reads: pd.DataFrame, causes: pd.DataFrame
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """poll-skip and nonmonotonic-poll, per consumer process (incarnation) and partition."""
    if reads.empty:
        return [], []
    keys = ["consumer", "incarnation", "topic", "partition"]
    polls = reads.groupby([*keys, "poll"], sort=True).agg(
        first=("offset", "min"), last=("offset", "max"), poll_seq=("poll_seq", "first"),
        time_ms=("time_ms", "first")).reset_index()
    polls["prev_last"] = polls.groupby(keys)["last"].shift()
    polls["prev_seq"] = polls.groupby(keys)["poll_seq"].shift()
    polls["prev_time"] = polls.groupby(keys)["time_ms"].shift()
    polls = polls.dropna(subset=["prev_last"])
    delta = polls["first"] - polls["prev_last"]
    skips, backs = [], []
    for row, d in zip(polls.itertuples(index=False), delta, strict=True):
        if d == 1:
            continue
        entry = {"consumer": row.consumer, "topic": row.topic, "partition": int(row.partition),
                 "from_offset": int(row.prev_last), "to_offset": int(row.first),
                 "delta": int(d), "polls": [int(row.prev_seq), int(row.poll_seq)],
                 "cause": _stop_between(causes, row.consumer, row.prev_time, row.time_ms)}
        (skips if d > 1 else backs).append(entry)
    return skips, backs


def _delivery(reads: pd.DataFrame, processed: pd.DataFrame, commits: pd.DataFrame,
              causes: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """skipped and processed-twice, per group (or per consumer without a group) and partition."""
    skipped: list[dict[str, Any]] = []
    twice: list[dict[str, Any]] = []
    if reads.empty:
        return skipped, twice
    reads = reads.assign(owner=_owner(reads))
    processed = processed.assign(owner=_owner(processed))
    ok = commits[commits["error"].fillna("") == ""]
    ok = ok.assign(owner=_owner(ok))
    for (owner, topic, partition), mine in reads.groupby(["owner", "topic", "partition"],
                                                         sort=True):
        done = processed[(processed["owner"] == owner) & (processed["topic"] == topic)
                         & (processed["partition"] == partition)]
        counts = done.groupby("offset").size()
        mine_commits = ok[(ok["owner"] == owner) & (ok["topic"] == topic)
                          & (ok["partition"] == partition)].sort_values("time_ms",
                                                                       kind="stable")
        committed = int(mine_commits["offset"].iloc[-1]) if len(mine_commits) else 0
        frontier = max(committed, int(counts.index.max()) + 1 if len(counts) else 0)
        start = int(mine["offset"].min())
        never = np.setdiff1d(np.arange(start, frontier), counts.index.to_numpy())
        base = {"group": owner, "topic": topic, "partition": int(partition)}
        highest_done = int(counts.index.max()) if len(counts) else -1
        for first, last in _runs(never):
            readers = mine[(mine["offset"] >= first) & (mine["offset"] <= last)]
            entry = {**base, "first_offset": first, "last_offset": last,
                     "count": last - first + 1, "cause": None}
            if len(readers):
                reader = readers.sort_values("time_ms", kind="stable").iloc[-1]
                entry["read_by"] = reader["consumer"]
                entry["poll_seq"] = int(reader["poll_seq"])
                entry["cause"] = _stop_between(causes, reader["consumer"], reader["time_ms"],
                                               np.inf)
                later = mine_commits[(mine_commits["offset"] > first)
                                     & (mine_commits["time_ms"] >= reader["time_ms"])]
                if len(later):
                    entry["commit_seq"] = _int_or_none(later.iloc[0].get("seq"))
            # Records still waiting in a running consumer's batch are not skipped (yet).
            if last < highest_done or entry["cause"] is not None:
                skipped.append(entry)
        for first, last in _runs(counts.index[counts > 1].to_numpy()):
            rows = done[done["offset"] == first].sort_values("processed_ms", kind="stable")
            one, two = rows.iloc[0], rows.iloc[1]
            twice.append({**base, "first_offset": first, "last_offset": last,
                          "count": last - first + 1, "first_by": one["consumer"],
                          "second_by": two["consumer"],
                          "polls": [int(one["poll_seq"]), int(two["poll_seq"])],
                          "cause": _stop_between(causes, one["consumer"], one["processed_ms"],
                                                 two["processed_ms"])})
    return skipped, twice


def _owner(frame: pd.DataFrame) -> pd.Series:
    if frame.empty:
        return pd.Series([], dtype=object, index=frame.index)
    group = frame["group"] if "group" in frame else pd.Series(None, index=frame.index)
    return group.where(group.notna(), "consumer:" + frame["consumer"].astype(str))


def _stop_between(causes: pd.DataFrame, consumer: str, after_ms: float,
                  before_ms: float) -> dict[str, Any] | None:
    """The first crash, hang, revocation or departure of ``consumer`` in the interval."""
    mine = causes[causes["kind"].isin(CONSUMER_STOP_KINDS) & (causes["component"] == consumer)
                  & (causes["time_ms"] >= after_ms) & (causes["time_ms"] <= before_ms)]
    return _event(mine.iloc[0]) if len(mine) else None


def _event(row: pd.Series) -> dict[str, Any]:
    return {"seq": int(row["seq"]), "time_ms": float(row["time_ms"]), "kind": row["kind"],
            "component": row["component"], "detail": _text(row.get("detail"))}


def _runs(offsets: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive offsets: [3, 4, 5, 9] → [(3, 5), (9, 9)]."""
    if len(offsets) == 0:
        return []
    offsets = np.sort(np.asarray(offsets, dtype=np.int64))
    breaks = np.flatnonzero(np.diff(offsets) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(offsets) - 1]])
    return [(int(offsets[s]), int(offsets[e])) for s, e in zip(starts, ends, strict=True)]


def _ranges(entries: list[dict[str, Any]], _kind: str) -> list[dict[str, Any]]:
    """Merge per-record entries of one partition into runs of consecutive offsets."""
    out: list[dict[str, Any]] = []
    for entry in sorted(entries, key=lambda e: (e["topic"], e["partition"], e["offset"])):
        last = out[-1] if out else None
        if (last is not None and last["topic"] == entry["topic"] and last["partition"]
                == entry["partition"] and entry["offset"] >= 0
                and last["last_offset"] + 1 == entry["offset"]):
            last["last_offset"] = entry["offset"]
            last["count"] += 1
            continue
        out.append({"topic": entry["topic"], "partition": entry["partition"],
                    "first_offset": entry["offset"], "last_offset": entry["offset"],
                    "count": 1, "writer": entry["writer"]})
    return out


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _plain(value: Any) -> Any:
    """JSON-friendly copy (numpy numbers → Python numbers)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


# -- gathering a run's data from a kernel -----------------------------------------------------

def writes_of(kernel: Any) -> pd.DataFrame:
    """Every record the kernel's producers were asked to send, with its record id."""
    parts = []
    for producer in kernel.clients:
        if not hasattr(producer, "results"):
            continue
        results = producer.results()
        index = np.arange(len(results), dtype=np.int64)
        if hasattr(producer, "record_ids"):
            ids = producer.record_ids(index)
        else:
            ids = (np.int64(producer.producer_id) << 40) | index
        parts.append(results.assign(writer=producer.client_id, record_id=ids))
    columns = ["writer", "record_id", "topic", "partition", "offset", "ack_ms"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "ack_ms" else object)
                             for c in columns})
    return pd.concat(parts, ignore_index=True)[columns]


def audit_kernel(kernel: Any, final_read: bool = True) -> AuditReport:
    """Audit a finished run: its producers' results against its consumers' reads.

    With ``final_read`` every partition's log is read once more at the end, below its high
    watermark, as Jepsen's final polls do: an acknowledged record that is not there (nor was
    ever read) is a lost write even if no consumer ran, and records a consumer group never
    started at (``auto.offset.reset=latest``) are not mistaken for lost ones.
    """
    from sim.consumer.history import COMMIT_COLUMNS, PROCESSED_COLUMNS, READ_COLUMNS
    from sim.consumer.metrics import consumers

    members = consumers(kernel)
    reads = _concat([c.reads() for c in members], READ_COLUMNS)
    processed = _concat([c.processed() for c in members], PROCESSED_COLUMNS)
    commits = _concat([c.commits() for c in members], COMMIT_COLUMNS)
    subscribed = all(c.subscriptions.manual is None for c in members)
    final = final_reads_of(kernel) if final_read else None
    stored = stored_ids_of(kernel) if final_read else None
    report = audit(writes_of(kernel), reads, processed, commits, causes_of(kernel), subscribed,
                   final, stored)
    report.unavailable = unavailability(kernel.trace.to_frame())
    return report


def final_reads_of(kernel: Any) -> pd.DataFrame:
    """Every record below the high watermark of every partition but the internal topics."""
    parts = []
    for topic in kernel.cluster.topics.values():
        if topic.name.startswith("__"):
            continue
        for part in topic.partitions:
            log = part.log
            start, stop = log.log_start_offset, log.high_watermark
            if stop > start:
                parts.append(pd.DataFrame({
                    "topic": topic.name, "partition": part.partition,
                    "offset": np.arange(start, stop, dtype=np.int64),
                    "record_id": log.column("record_id", start, stop)}))
    return _concat(parts, ["topic", "partition", "offset", "record_id"])


def stored_ids_of(kernel: Any) -> set[int]:
    """Record ids in every leader's whole log (committed or not), internal topics aside."""
    ids: set[int] = set()
    for topic in kernel.cluster.topics.values():
        if not topic.name.startswith("__"):
            for part in topic.partitions:
                ids.update(part.log.column("record_id").tolist())
    return ids


def causes_of(kernel: Any) -> pd.DataFrame:
    """Trace events that can explain anomalies, in ``CAUSE_COLUMNS``."""
    kinds = set(CONSUMER_STOP_KINDS) | LOSS_EVENT_KINDS
    frame = kernel.trace.to_frame()
    if frame.empty:
        return pd.DataFrame(columns=CAUSE_COLUMNS)
    frame = frame[frame["kind"].isin(kinds)].copy()
    detail = pd.Series("", index=frame.index, dtype=object)
    for name in ("fault", "detail", "reason", "partitions"):
        if name in frame:
            text = frame[name].where(frame[name].notna(), "").astype(str)
            detail = (detail + " " + text).str.strip()
    frame["detail"] = detail
    for name in ("topic", "partition", "offset"):
        if name not in frame:
            frame[name] = np.nan
    return frame[CAUSE_COLUMNS].reset_index(drop=True)


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)
