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

And for what the brokers' storage rules removed before anyone read it (allowed by Kafka,
never an invalid run, each tied to the event that removed the record):

- ``deleted-by-retention``: never read, and gone because retention deleted its segment (a
  ``log.segment.delete`` event of the final leader's replica): a consumer too slow for
  ``retention.ms`` / ``retention.bytes``.
- ``compacted-away``: never read, and removed by the log cleaner (a ``log.clean`` event)
  because a later record with the same key (or a tombstone past ``delete.retention.ms``)
  superseded it.

Records are told apart by their record id (producer id << 40 | index, stored in the log), so a
record read at another offset than it was acknowledged at is noticed. Every anomaly names the
events that explain it (trace ``seq`` and time): the polls, the crash or rebalance that stopped
its consumer, the commit that moved past it.

A lost write points at the event that removed *that* record (``loss_history_of``): a
``log.truncate`` or ``log.lost`` (a restart with an empty disk) that dropped its record id
from a replica — the final leader's, the source of truth, when it once held it; otherwise the
first removal of it from any replica. A record no removal ever touched was left behind by a
leader election: a zombie leader's write by the election that had already replaced it, the
real leader's write by the first later election of another broker (of a partition's elections
at one instant, only the last counts: no broker acted on the others). ``left_behind_by`` names
that election beside a removal too, when the final leader never had the record.

``TERMS`` defines every word the audit prints; ``python -m sim explain TERM`` shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from sim import trace
from sim.availability import CAUSE_KINDS as AVAILABILITY_CAUSE_KINDS
from sim.availability import FAILURE_KINDS, nonmonotonic_sends, windows
from sim.broker.remote_log_manager import TIER_DELETE, remote_deletions, remote_record_ids
from sim.errors import KafkaLabError

KINDS = ("lost-write", "unseen", "duplicate", "inconsistent-offsets", "nonmonotonic-send",
         "poll-skip", "nonmonotonic-poll", "skipped", "processed-twice", "deleted-by-retention",
         "compacted-away")
STORAGE_KINDS = ("deleted-by-retention", "compacted-away")
"""Records the storage rules removed before anyone read them: reported, never invalid."""
ALLOWED_WITH_SUBSCRIBE = ("poll-skip", "nonmonotonic-poll")
DELIVERY_KINDS = ("skipped", "processed-twice")
"""Outcomes of the application's commit strategy, reported but never an invalid run."""

REMOVAL_KINDS = ("log.truncate", "log.lost")
"""Event kinds that remove records from a replica's log (see ``LossHistory.removed``)."""

TERMS: dict[str, str] = {
    "valid": "no anomaly that breaks a Kafka guarantee was found; unseen, skipped and "
             "processed-twice records (and, with subscribe(), poll-skip and nonmonotonic-poll) "
             "never make a run INVALID.",
    "INVALID": "at least one anomaly that Kafka promises cannot happen under the run's "
               "configuration was found (the kinds listed as bad_kinds in --json).",
    "lost-write": "an acknowledged record that is gone: no consumer read it although one read "
                  "a later offset of its partition, or no leader's log holds it any more. The "
                  "audit names the truncation, lost disk or leader election that removed it.",
    "unseen": "an acknowledged record nobody has read yet, with nothing read past it; it is "
              "still in the log, so it is not lost.",
    "duplicate": "one record stored at more than one offset: a retry written twice (retries "
                 "without idempotence).",
    "inconsistent-offsets": "two different records seen at the same partition offset: a "
                            "replica's log was truncated and the offset written again.",
    "nonmonotonic-send": "a record sent after another to the same partition but written at a "
                         "lower offset: retries reordered the producer's writes.",
    "poll-skip": "a consumer's next poll of a partition jumped forward over offsets it never "
                 "read. Expected with subscribe(), where rebalances move partitions; an error "
                 "with assign().",
    "nonmonotonic-poll": "a consumer's next poll of a partition went back to or repeated "
                         "offsets. Expected with subscribe() after a rebalance; an error with "
                         "assign().",
    "skipped": "a record the consumer group moved past (committed past or processed later "
               "records) but never processed: at-most-once delivery, an application outcome "
               "that does not make the run invalid.",
    "processed-twice": "a record the consumer group processed more than once: at-least-once "
                       "delivery, an application outcome that does not make the run invalid.",
    "deleted-by-retention": "an acknowledged record no consumer read before retention "
                            "(retention.ms or retention.bytes) deleted its segment; the audit "
                            "names the log.segment.delete event. Kafka allows it: the consumer "
                            "was slower than the topic's retention.",
    "compacted-away": "an acknowledged record no consumer read before the log cleaner removed "
                      "it, because a later record with the same key (or a tombstone past "
                      "delete.retention.ms) superseded it; the audit names the log.clean "
                      "event. Kafka allows it: compaction keeps the latest value per key.",
    "unavailable": "a window when a partition took no writes: from a failed produce attempt to "
                   "the next batch its leader appended; an open window lasted to the end of "
                   "the run.",
    "aborted-read": "a read_uncommitted consumer read a record of a transaction that was then "
                    "aborted (it acted on data that officially never existed); read_committed "
                    "consumers never do. The audit names the abort marker.",
    "output-duplicate": "a consume-transform-produce application wrote the output of one "
                        "input record more than once, as read_committed readers of the output "
                        "see it: at least once, after the crash or rebalance the audit names. "
                        "With transactions this would break exactly once (INVALID).",
    "zombie-write": "a write by a producer whose epoch was bumped (fenced: a newer instance "
                    "with the same transactional.id, or a transaction timeout). Refused ones "
                    "are Kafka's fencing at work; the audit names the fencing event.",
    "in_flight": "records a producer was given that were neither acknowledged nor failed when "
                 "the run ended (still batched or waiting for a response).",
}
"""Every word the audit and the producer table print, defined once (``explain``)."""

LEGEND = ("unseen, skipped, processed-twice are consumer outcomes, never INVALID · "
          "python -m sim explain TERM")
"""One line under every text audit, saying what its verdict words mean."""


def explain(term: str) -> str:
    """The definition of ``term`` (``processed twice`` and ``processed_twice`` work too)."""
    wanted = term.strip().replace("_", "-").replace(" ", "-").lower()
    for name, text in TERMS.items():
        if name.replace("_", "-").lower() == wanted:
            return f"{name}: {text}"
    raise KafkaLabError(f"Unknown audit term {term!r}; known terms: {', '.join(TERMS)}.")


CONSUMER_STOP_KINDS = ("fault", "consumer.left", "consumer.lost", "consumer.revoked",
                       "group.member.removed")
CAUSE_COLUMNS = ["seq", "time_ms", "kind", "component", "detail", "topic", "partition",
                 "offset"]
DETAIL_LIMIT = 32  # like Jepsen's condensed report, JSON detail lists show at most this many


@dataclass
class LossHistory:
    """What replication did that can lose acknowledged records (see the module docstring).

    Attributes:
        removed: one row per record a truncation or a lost disk removed from a replica:
            ``seq`` (of the removal event), ``time_ms``, ``node``, ``topic``, ``partition``,
            ``offset``, ``record_id``.
        events: the removal and ``leader.election`` events, one row each, indexed by ``seq``:
            ``time_ms``, ``kind``, ``component``, ``topic``, ``partition``, ``node``,
            ``offset``, ``records``, ``leader``, ``election``, ``leader_epoch``.
        appends: the ``log.append`` events: ``time_ms``, ``node``, ``topic``, ``partition``,
            ``producer`` (which broker acknowledged a record).
        leaders: each partition's leader at the end (the last one while it is offline): the
            replica whose log is the source of truth.
    """

    removed: pd.DataFrame
    events: pd.DataFrame
    appends: pd.DataFrame
    leaders: dict[tuple[str, int], int]


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
    transactions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Transaction anomalies (``TRANSACTION_KINDS``), present when the run used transactions
    or a consume-transform-produce application (``transaction_anomalies``)."""

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
    def shown_counts(self) -> dict[str, int]:
        """The counts a text report prints: storage kinds only when some record has one."""
        return {k: n for k, n in self.counts.items() if n or k not in STORAGE_KINDS}

    @property
    def bad_kinds(self) -> list[str]:
        """Anomaly kinds that make the run invalid (Jepsen's ``bad-error-types``).

        Of the transaction kinds only an output duplicate under transactions is: the others
        are what read_uncommitted or at-least-once promise, or fencing doing its job.
        """
        allowed = set(DELIVERY_KINDS) | set(STORAGE_KINDS) | {"unseen"}
        if self.subscribed:
            allowed |= set(ALLOWED_WITH_SUBSCRIBE)
        bad = [k for k in KINDS if self.counts[k] and k not in allowed]
        if any(e["transactional"] for e in self.transactions.get("output-duplicate", [])):
            bad.append("output-duplicate")
        return bad

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
            "lost_records": [_plain(r) for r in lost_ranges(self.lost_records)],
            "unavailable_ms": sum(w["duration_ms"] for w in self.unavailable),
            "unavailability": [_plain(w) for w in self.unavailable],
            "anomalies": dict(self.counts),
            "details": {k: _detail(v) for k, v in self.anomalies.items() if v},
            **({"transactions": {k: _detail(v) for k, v in self.transactions.items()}}
               if self.transactions else {}),
        }

    def __repr__(self) -> str:
        found = ", ".join(f"{k}={n}" for k, n in self.counts.items() if n) or "no anomalies"
        return (f"AuditReport({'valid' if self.valid else 'INVALID'}: acknowledged="
                f"{self.acknowledged}, read={self.read}, processed={self.processed}; {found})")


def _detail(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON detail list, saying when it shows only the first ``DETAIL_LIMIT`` entries."""
    return {"total": len(entries), "truncated": len(entries) > DETAIL_LIMIT,
            "items": [_plain(e) for e in entries[:DETAIL_LIMIT]]}


def _seq(event: dict[str, Any] | None) -> int | None:
    return None if event is None else event.get("seq")


def audit(writes: pd.DataFrame, reads: pd.DataFrame, processed: pd.DataFrame | None = None,
          commits: pd.DataFrame | None = None, causes: pd.DataFrame | None = None,
          subscribed: bool = True, final: pd.DataFrame | None = None,
          stored: set[int] | np.ndarray | None = None,
          history: LossHistory | Callable[[], LossHistory] | None = None,
          hidden: Hidden | None = None,
          storage: StorageHistory | None = None) -> AuditReport:
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
        history: what replication removed and elected (``loss_history_of``); lost writes
            point at their causes only with it. It may be given as the function that builds
            it: most runs lose nothing, and then it is never built.
        hidden: offsets consumers never get (transaction markers; for read_committed
            consumers also aborted records, ``hidden_of``): not skipped, not a poll-skip.
        storage: what retention and the log cleaner removed (``storage_history_of``);
            unread records they removed are reported as such, not as lost.
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
    unread, storage_kinds = _storage_removed(acked, seen, history, storage)
    anomalies.update(storage_kinds)
    anomalies["lost-write"], anomalies["unseen"] = _lost_and_unseen(unread, seen, history,
                                                                    stored)
    anomalies["nonmonotonic-send"] = nonmonotonic_sends(writes)
    hidden = hidden or Hidden()
    anomalies["poll-skip"], anomalies["nonmonotonic-poll"] = _poll_order(reads, causes, hidden,
                                                                         storage)
    anomalies["skipped"], anomalies["processed-twice"] = _delivery(reads, processed, commits,
                                                                  causes, hidden, storage)
    counts = {k: _count(k, v) for k, v in anomalies.items()}
    read_keys = reads.drop_duplicates(["topic", "partition", "offset"])
    processed_keys = processed.drop_duplicates(["topic", "partition", "offset"])
    return AuditReport(len(acked), len(read_keys), len(processed_keys), anomalies,
                       counts, subscribed, anomalies["lost-write"])


def _count(kind: str, rows: list[dict[str, Any]]) -> int:
    """Records involved for per-record kinds, cases for the others."""
    if kind in ("skipped", "processed-twice", "lost-write", "unseen", *STORAGE_KINDS):
        return int(sum(r.get("count", 1) for r in rows))
    return len(rows)


# -- the producer-side checks ------------------------------------------------------------------

def _offset_checks(acked: pd.DataFrame, reads: pd.DataFrame
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """inconsistent-offsets (one offset, two records) and duplicate (one record, two offsets).

    Over the distinct (topic, partition, offset, record id) of the acknowledged writes and the
    reads, sorted once by those columns: whole columns, no per-record Python.
    """
    written = acked["offset"].to_numpy(dtype=np.int64) >= 0
    read = reads["record_id"].to_numpy(dtype=np.int64) >= 0
    topics = _Topics()
    names = np.concatenate([topics.codes(acked["topic"])[written],
                            topics.codes(reads["topic"])[read]])
    rank = topics.ranks()[names]
    partitions, offsets, ids = (np.concatenate([
        acked[c].to_numpy(dtype=np.int64)[written], reads[c].to_numpy(dtype=np.int64)[read]])
        for c in ("partition", "offset", "record_id"))
    order = np.lexsort((ids, offsets, partitions, rank))  # by topic name, … record id
    new = _changes([rank[order], partitions[order], offsets[order], ids[order]])
    distinct = np.sort(order[new])  # the first of each distinct row, in the rows' order
    by_position = order[new]  # the same rows, sorted by topic name, …, record id
    starts = np.flatnonzero(_changes([rank[by_position], partitions[by_position],
                                      offsets[by_position]]))
    sizes = np.diff(np.append(starts, len(by_position)))
    names_of = topics.names_array()
    inconsistent = [{"topic": t, "partition": p, "offset": o, "record_ids": ids[
                        by_position[s:s + n]].tolist()}
                    for t, p, o, s, n in zip(
                        names_of[names[by_position[starts]]].tolist(),
                        partitions[by_position[starts]].tolist(),
                        offsets[by_position[starts]].tolist(), starts.tolist(), sizes.tolist(),
                        strict=True) if n > 1]
    by_id = distinct[np.argsort(ids[distinct], kind="stable")]
    starts = np.flatnonzero(_changes([ids[by_id]]))
    sizes = np.diff(np.append(starts, len(by_id)))
    duplicates = []
    for s, n in zip(starts.tolist(), sizes.tolist(), strict=True):
        if n > 1:
            rows = by_id[s:s + n]
            duplicates.append({"record_id": int(ids[rows[0]]), "count": n, "offsets": [
                f"{t}-{p}@{o}" for t, p, o in zip(names_of[names[rows]].tolist(),
                                                   partitions[rows].tolist(),
                                                   offsets[rows].tolist(), strict=True)]})
    return inconsistent, duplicates


def _changes(columns: list[np.ndarray]) -> np.ndarray:
    """True where a row differs from the row before in any of ``columns`` (and at row 0)."""
    size = len(columns[0]) if columns else 0
    change = np.zeros(size, dtype=bool)
    if size:
        change[0] = True
        for column in columns:
            change[1:] |= column[1:] != column[:-1]
    return change


class _Topics:
    """Small integer codes for topic names, shared by every column coded with one instance
    (the audit compares and sorts codes, never strings)."""

    def __init__(self) -> None:
        self.code_of: dict[Any, int] = {}

    def codes(self, values: Any) -> np.ndarray:
        """The codes of a column (Series or array) of topic names."""
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        table = np.array([self.code_of.setdefault(u, len(self.code_of)) for u in uniques],
                         dtype=np.int64)
        return table[codes] if len(table) else np.zeros(len(codes), dtype=np.int64)

    def names_array(self) -> np.ndarray:
        """The names, indexed by code."""
        names = np.empty(len(self.code_of), dtype=object)
        names[:] = list(self.code_of)
        return names

    def ranks(self) -> np.ndarray:
        """Each code's rank when the names are sorted."""
        ranks = np.empty(len(self.code_of), dtype=np.int64)
        ranks[sorted(range(len(ranks)), key=list(self.code_of).__getitem__)] = np.arange(
            len(ranks))
        return ranks


def _partition_keys(topic_codes: np.ndarray, partitions: np.ndarray) -> np.ndarray:
    """One integer per (topic code, partition)."""
    return topic_codes.astype(np.int64) << 32 | (partitions.astype(np.int64) & 0xFFFFFFFF)


def _built(history: LossHistory | Callable[[], LossHistory] | None) -> LossHistory | None:
    """``history``, built now if it was given as the function that builds it."""
    return history() if callable(history) else history


def _compact(*columns: np.ndarray) -> list[np.ndarray]:
    """The integers of ``columns`` renumbered 0, 1, … (equal values, equal numbers)."""
    codes = pd.factorize(np.concatenate(columns))[0].astype(np.int64)
    return np.split(codes, np.cumsum([len(c) for c in columns])[:-1])


def _lost_and_unseen(acked: pd.DataFrame, reads: pd.DataFrame,
                     history: LossHistory | Callable[[], LossHistory] | None = None,
                     stored: set[int] | np.ndarray | None = None
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Jepsen's lost-write: acknowledged, unread, at or below the highest offset read.

    With ``stored`` (every record id still in a leader's log, committed or not), an unread
    record that is stored nowhere is lost too, even past the highest offset read: no later
    read can ever see it. Whole columns at a time: the only per-record Python is building
    the lost records' entries.
    """
    position = ["topic", "partition", "offset"]
    seen = acked["record_id"].isin(reads.loc[reads["record_id"] >= 0, "record_id"]).to_numpy(
        copy=True)
    no_id = reads[reads["record_id"] < 0]
    if len(no_id):
        seen |= pd.MultiIndex.from_frame(acked[position]).isin(
            pd.MultiIndex.from_frame(no_id[position]))
    missing = acked[~seen]
    topics = _Topics()
    names = topics.codes(missing["topic"])
    partitions = missing["partition"].to_numpy(dtype=np.int64)
    keys = _partition_keys(names, partitions)
    offsets = missing["offset"].to_numpy(dtype=np.int64)
    ids = missing["record_id"].to_numpy(dtype=np.int64)
    writers = missing["writer"].to_numpy(dtype=object)
    max_read = _max_read_offsets(reads, topics, keys)
    below = (offsets >= 0) & (offsets <= max_read)  # -1: no offset of the partition was read
    if stored is not None:
        stored_ids = stored if isinstance(stored, np.ndarray) else np.fromiter(
            stored, dtype=np.int64, count=len(stored))
        below |= ~np.isin(ids, stored_ids)
    rows = np.flatnonzero(below)
    ack_ms = missing["ack_ms"].to_numpy(dtype=float)[rows]
    causes, behind = _loss_causes(topics, keys[rows], offsets[rows], ids[rows], ack_ms,
                                  history)
    names_of = topics.names_array()
    lost = [{"topic": t, "partition": p, "offset": o, "record_id": r, "writer": w,
             "ack_ms": a, "max_read_offset": m, "cause": c, "left_behind_by": b}
            for t, p, o, r, w, a, m, c, b in zip(
                names_of[names[rows]].tolist(), partitions[rows].tolist(),
                offsets[rows].tolist(), ids[rows].tolist(), writers[rows].tolist(),
                ack_ms.tolist(), max_read[rows].tolist(), causes, behind, strict=True)]
    rest = np.flatnonzero(~below)
    return lost, _ranges(names_of[names[rest]], partitions[rest], offsets[rest], writers[rest])


def _max_read_offsets(reads: pd.DataFrame, topics: _Topics, keys: np.ndarray) -> np.ndarray:
    """The highest offset read of each record's partition (``keys``), -1 where none was."""
    if reads.empty or not len(keys):
        return np.full(len(keys), -1, dtype=np.int64)
    read_keys = _partition_keys(topics.codes(reads["topic"]),
                                reads["partition"].to_numpy(dtype=np.int64))
    read_codes, wanted = _compact(read_keys, keys)
    highest = np.full(int(max(read_codes.max(), wanted.max())) + 1, -1, dtype=np.int64)
    np.maximum.at(highest, read_codes, reads["offset"].to_numpy(dtype=np.int64))
    return highest[wanted]


def _leaders_of(leaders: dict[tuple[str, int], int], topics: _Topics,
                keys: np.ndarray) -> np.ndarray:
    """``leaders[(topic, partition)]`` of each partition key (-1 when unknown), one lookup
    per partition."""
    distinct, inverse = np.unique(keys, return_inverse=True)
    names = topics.names_array()
    per_key = np.array([leaders.get((names[k >> 32], k & 0xFFFFFFFF), -1)
                        for k in distinct.tolist()], dtype=np.int64)
    return per_key[inverse.reshape(-1)] if len(keys) else np.zeros(0, dtype=np.int64)


@dataclass
class StorageHistory:
    """What the brokers' storage rules removed (see the module docstring).

    Attributes:
        deletions: one row per deleted segment (``log.segment.delete``): ``seq``, ``time_ms``,
            ``node``, ``topic``, ``partition``, ``base_offset``, ``end_offset``, ``reason``.
        cleaned: one row per record a cleaning removed: ``seq`` (of its ``log.clean``
            event), ``time_ms``, ``node``, ``topic``, ``partition``, ``offset``, ``record_id``.
        leaders: each partition's final leader (whose replica is the source of truth).
    """

    deletions: pd.DataFrame
    cleaned: pd.DataFrame
    leaders: dict[tuple[str, int], int]


def _storage_removed(acked: pd.DataFrame, seen: pd.DataFrame,
                     history: LossHistory | Callable[[], LossHistory] | None,
                     storage: StorageHistory | None
                     ) -> tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]:
    """Split off the unread acknowledged records that retention or the cleaner removed from
    the final leader's replica; the rest go on to the lost / unseen checks.

    A record whose acknowledged copy a truncation or lost disk removed from the final
    leader's replica stays with those checks (its loss came before any storage rule touched
    it); one removed only from another replica, which the final leader kept until its cleaner
    or retention removed it, does not, nor one whose removal from the final leader took an
    earlier copy of its record id (a batch the leader of the time wrote but never
    acknowledged, truncated before a retry wrote it again).
    """
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in STORAGE_KINDS}
    if storage is None or acked.empty or (storage.deletions.empty and storage.cleaned.empty):
        return acked, found
    read_ids = seen.loc[seen["record_id"] >= 0, "record_id"]
    unread = acked[~acked["record_id"].isin(read_ids)]
    history = _built(history)
    if history is not None and len(history.removed) and len(unread):
        unread = unread[~_removed_from_final(unread, history.removed, storage.leaders)]
    frame = unread.reset_index()
    final = np.array([storage.leaders.get((t, p), -1) for t, p in zip(
        frame["topic"], frame["partition"], strict=True)], dtype=np.int64)
    frame = frame.assign(final=final)
    taken: dict[int, tuple[str, dict[str, Any]]] = {}
    cleaned = storage.cleaned
    if len(cleaned):
        hits = frame.merge(cleaned, on=["topic", "partition", "record_id"],
                           suffixes=("", "_clean"))
        hits = hits[hits["node"] == hits["final"]].drop_duplicates("index")
        for row in hits.itertuples(index=False):
            taken[int(row.index)] = ("compacted-away", {
                "seq": int(row.seq), "time_ms": float(row.time_ms), "kind": "log.clean",
                "node": int(row.node),
                "text": f"broker {int(row.node)} compacted {row.topic}-{int(row.partition)}"})
    deletions = storage.deletions
    if len(deletions):
        hits = frame.merge(deletions, on=["topic", "partition"], suffixes=("", "_del"))
        hits = hits[(hits["node"] == hits["final"]) & (hits["base_offset"] <= hits["offset"])
                    & (hits["offset"] < hits["end_offset"])]
        hits = hits.sort_values("seq", kind="stable").drop_duplicates("index")
        for row in hits.itertuples(index=False):
            taken.setdefault(int(row.index), ("deleted-by-retention", {
                "seq": int(row.seq), "time_ms": float(row.time_ms),
                "kind": "log.segment.delete", "node": int(row.node),
                "text": (f"broker {int(row.node)} deleted segment "
                         f"{int(row.base_offset):020d}.log of {row.topic}-{int(row.partition)} "
                         f"(offsets {int(row.base_offset)}–{int(row.end_offset) - 1}, "
                         f"{row.reason})")}))
    rows = acked.loc[sorted(taken)]
    for index, t, p, o, r, w, a in zip(rows.index, rows["topic"], rows["partition"],
                                       rows["offset"], rows["record_id"], rows["writer"],
                                       rows["ack_ms"], strict=True):
        kind, cause = taken[int(index)]
        found[kind].append({"topic": t, "partition": int(p), "offset": int(o),
                            "record_id": int(r), "writer": w, "ack_ms": float(a),
                            "cause": cause})
    return acked.drop(index=list(taken)), {k: _storage_ranges(v) for k, v in found.items()}


def _removed_from_final(records: pd.DataFrame, removed: pd.DataFrame,
                        leaders: dict[tuple[str, int], int]) -> np.ndarray:
    """True for the acknowledged records a truncation or lost disk removed from the final
    leader's replica: their acknowledged copy (``_removals_of``: at its offset, once
    acknowledged), not an earlier copy of the same record id that a retry wrote again."""
    topics = _Topics()
    keys = _keys_of(records, topics)
    row, hit = _removals_of(topics, keys, records["offset"].to_numpy(dtype=np.int64),
                            records["record_id"].to_numpy(dtype=np.int64),
                            records["ack_ms"].to_numpy(dtype=float), removed)
    on_final = removed["node"].to_numpy(dtype=np.int64)[hit] == _leaders_of(
        leaders, topics, keys[row])
    gone = np.zeros(len(records), dtype=bool)
    gone[row[on_final]] = True
    return gone


def _storage_gone(storage: StorageHistory, topic: str, partition: int,
                  offsets: np.ndarray) -> np.ndarray:
    """True for the offsets retention or the cleaner removed from the final leader's log."""
    return np.isfinite(_storage_removed_ms(storage, topic, partition, offsets))


def _storage_removed_ms(storage: StorageHistory, topic: str, partition: int,
                        offsets: np.ndarray) -> np.ndarray:
    """When retention or the cleaner first removed each offset from the final leader's log
    (infinity for an offset they did not remove)."""
    final = storage.leaders.get((topic, partition), -1)
    removed = np.full(len(offsets), np.inf)
    dels = storage.deletions
    if len(dels):
        mine = dels[(dels["topic"] == topic) & (dels["partition"] == partition)
                    & (dels["node"] == final)]
        for base, end, at in zip(mine["base_offset"], mine["end_offset"], mine["time_ms"],
                                 strict=True):
            inside = (offsets >= base) & (offsets < end)
            removed[inside] = np.minimum(removed[inside], float(at))
    cleaned = storage.cleaned
    if len(cleaned):
        mine = cleaned[(cleaned["topic"] == topic) & (cleaned["partition"] == partition)
                       & (cleaned["node"] == final)]
        first = mine.groupby("offset")["time_ms"].min()
        at = pd.Series(offsets).map(first).to_numpy(dtype=float)
        removed = np.fmin(removed, at)  # fmin: NaN (not cleaned) leaves the other side
    return removed


def _moved_past_ms(offsets: np.ndarray, done: pd.DataFrame, commits: pd.DataFrame
                   ) -> np.ndarray:
    """When a group first moved past each offset: it processed a later offset, or committed
    one (infinity if it never did)."""
    moved = np.full(len(offsets), np.inf)
    for later, times in ((done["offset"], done["processed_ms"]),
                         (commits["offset"], commits["time_ms"])):  # past offsets below
        if not len(later):
            continue
        first = times.groupby(later.to_numpy()).min().sort_index()
        # earliest time at any offset above each one: a running minimum from the top
        suffix = np.minimum.accumulate(first.to_numpy(dtype=float)[::-1])[::-1]
        index = np.searchsorted(first.index.to_numpy(), offsets, side="right")
        above = index < len(first)
        moved[above] = np.minimum(moved[above], suffix[index[above]])
    return moved


def _storage_ranges(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records removed by one event as runs of consecutive offsets (one entry per run)."""
    runs: list[dict[str, Any]] = []
    for entry in sorted(entries, key=lambda e: (e["topic"], e["partition"], e["offset"])):
        last = runs[-1] if runs else None
        if (last is not None and (last["topic"], last["partition"]) == (entry["topic"],
                                                                       entry["partition"])
                and last["cause"]["seq"] == entry["cause"]["seq"]
                and last["last_offset"] + 1 == entry["offset"]):
            last["last_offset"] = entry["offset"]
            last["count"] += 1
            continue
        runs.append({"topic": entry["topic"], "partition": entry["partition"],
                     "first_offset": entry["offset"], "last_offset": entry["offset"],
                     "count": 1, "cause": entry["cause"]})
    return runs


def _loss_causes(topics: _Topics, keys: np.ndarray, offsets: np.ndarray, ids: np.ndarray,
                 ack_ms: np.ndarray, history: LossHistory | Callable[[], LossHistory] | None
                 ) -> tuple[list[dict[str, Any] | None], list[dict[str, Any] | None]]:
    """For each lost record (its partition key, offset, id and acknowledgement time): the
    event that removed it, and the election that left it behind.

    Sorted searches over the removed records and the elections, for all lost records at once,
    so the cost grows with the number of lost records plus the trace, never with their product.
    """
    n = len(ids)
    history = _built(history) if n else None
    if history is None:
        return [None] * n, [None] * n
    removed = history.removed
    cause_seq = np.full(n, -1, dtype=np.int64)
    on_final = np.zeros(n, dtype=bool)
    row, hit = (_removals_of(topics, keys, offsets, ids, ack_ms, removed) if len(removed)
                else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    if len(row):
        final = _leaders_of(history.leaders, topics, keys)
        seqs = removed["seq"].to_numpy(dtype=np.int64)[hit]
        mine = removed["node"].to_numpy(dtype=np.int64)[hit] == final[row]
        # the last removal from the final leader's replica if there is one, else the first
        order = np.lexsort((np.where(mine, seqs, -seqs), mine, row))
        last = order[np.append(row[order][1:] != row[order][:-1], True)]
        cause_seq[row[last]] = seqs[last]
        on_final[row[last]] = mine[last]
    behind_seq = np.full(n, -1, dtype=np.int64)
    need = np.flatnonzero(~on_final)
    rows, elected = _left_behind(topics, keys[need], ids[need], ack_ms[need], history)
    rows = need[rows]
    uncaused = cause_seq[rows] < 0
    cause_seq[rows[uncaused]] = elected[uncaused]
    behind_seq[rows[~uncaused]] = elected[~uncaused]
    made = _event_dicts(history.events, np.union1d(cause_seq, behind_seq))
    return ([made.get(s) for s in cause_seq.tolist()],
            [made.get(s) for s in behind_seq.tolist()])


def _keys_of(frame: pd.DataFrame, topics: _Topics) -> np.ndarray:
    """The partition key of each row of a frame with ``topic`` and ``partition``."""
    return _partition_keys(topics.codes(frame["topic"]),
                           frame["partition"].to_numpy(dtype=np.int64))


def _removals_of(topics: _Topics, keys: np.ndarray, offsets: np.ndarray, ids: np.ndarray,
                 ack_ms: np.ndarray, removed: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(lost record, row of ``removed``) pairs: the removals of that record from any replica,
    after it was acknowledged and at its offset (any offset when it has none, as acks=0)."""
    removed_ids = removed["record_id"].to_numpy(dtype=np.int64)
    by_id = np.argsort(removed_ids, kind="stable")
    sorted_ids = removed_ids[by_id]
    lo = np.searchsorted(sorted_ids, ids, "left")
    counts = np.searchsorted(sorted_ids, ids, "right") - lo
    row = np.repeat(np.arange(len(ids)), counts)
    hit = by_id[np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(len(row))]
    keep = ((keys[row] == _keys_of(removed, topics)[hit])
            & (removed["time_ms"].to_numpy(dtype=float)[hit] >= ack_ms[row])
            & ((offsets[row] < 0)
               | (removed["offset"].to_numpy(dtype=np.int64)[hit] == offsets[row])))
    return row[keep], hit[keep]


def _left_behind(topics: _Topics, keys: np.ndarray, ids: np.ndarray, ack_ms: np.ndarray,
                 history: LossHistory) -> tuple[np.ndarray, np.ndarray]:
    """(rows, election seqs) for lost records: the election after which the leader lacked them.

    A record acknowledged by a broker that was no longer the leader (a zombie) was left behind
    by the last election before its acknowledgement; one acknowledged by the leader, by the
    first later election of another broker.
    """
    events = history.events
    leaders = events["leader"].to_numpy(dtype=float)
    elected = events["kind"].to_numpy(dtype=object) == "leader.election"
    # of a partition's elections at one instant (the controller fencing several brokers one
    # after another) only the last took effect: no broker acted on the others
    rows = np.flatnonzero(elected)
    rows = rows[np.argsort(events.index.to_numpy(dtype=np.int64)[rows], kind="stable")]
    instants = pd.DataFrame({"key": _keys_of(events.iloc[rows], topics),
                             "time_ms": events["time_ms"].to_numpy(dtype=float)[rows]})
    superseded = np.zeros(len(events), dtype=bool)
    superseded[rows] = instants.duplicated(keep="last").to_numpy()
    chosen = elected & ~superseded & (leaders >= 0)
    none = np.zeros(0, dtype=np.int64)
    if not len(ids) or not chosen.any():
        return none, none
    elections = events[chosen]
    leader = leaders[chosen].astype(np.int64)
    seq = elections.index.to_numpy(dtype=np.int64)
    elected_ms = elections["time_ms"].to_numpy(dtype=float)
    order = np.lexsort((seq, elected_ms))  # elections in time order, ties in trace order
    codes, election_codes = _compact(keys, _keys_of(elections, topics)[order])
    leader, seq, elected_ms = leader[order], seq[order], elected_ms[order]
    acked_by = np.full(len(ids), -1, dtype=np.int64)
    appends = history.appends
    if len(appends):
        # which broker appended the producer's batch to that partition last, by then
        mine, theirs = _compact(keys, _keys_of(appends, topics))
        producers, appenders = _compact(ids >> 40, appends["producer"].to_numpy(dtype=np.int64))
        width = int(max(producers.max(), appenders.max())) + 1
        last = _as_of(mine * width + producers, ack_ms, theirs * width + appenders,
                      appends["time_ms"].to_numpy(dtype=float), forward=False)
        found = last >= 0
        acked_by[found] = appends["node"].to_numpy(dtype=np.int64)[last[found]]
    before = _as_of(codes, ack_ms, election_codes, elected_ms, forward=False)
    zombie = (before >= 0) & (acked_by >= 0) & (leader[np.maximum(before, 0)] != acked_by)
    rows = [np.flatnonzero(zombie)]
    seqs = [seq[before[zombie]]]
    for broker in np.unique(acked_by[~zombie]):
        mine = np.flatnonzero(~zombie & (acked_by == broker))
        others = leader != broker
        after = _as_of(codes[mine], ack_ms[mine], election_codes[others], elected_ms[others],
                       forward=True)
        rows.append(mine[after >= 0])
        seqs.append(seq[others][after[after >= 0]])
    return np.concatenate(rows), np.concatenate(seqs)


def _as_of(groups: np.ndarray, times: np.ndarray, event_groups: np.ndarray,
           event_times: np.ndarray, forward: bool) -> np.ndarray:
    """For each (group, time): the index of the event of its group as of that time, -1 if none.

    Backward: the last event at or before the time; forward: the first one strictly after it
    (``pandas.merge_asof`` with ``allow_exact_matches=False``). Among events at one time the
    later one in ``event_*`` order is last, the earlier one first.
    """
    if not len(groups) or not len(event_groups):
        return np.full(len(groups), -1, dtype=np.int64)
    stamps = np.unique(np.concatenate([times, event_times]))
    width = len(stamps) + 1
    keys = event_groups * width + np.searchsorted(stamps, event_times)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    wanted = groups * width + np.searchsorted(stamps, times)
    at = np.searchsorted(keys, wanted, "right")
    if not forward:
        at -= 1
    inside = (at >= 0) & (at < len(keys))
    clipped = np.clip(at, 0, len(keys) - 1)
    same = inside & (keys[clipped] // width == groups)
    return np.where(same, order[clipped], -1)


def _event_dicts(events: pd.DataFrame, seqs: np.ndarray) -> dict[int, dict[str, Any]]:
    """One cause dict per trace event (``seq``), shared by the many records it explains."""
    seqs = seqs[seqs >= 0]
    if not len(seqs):
        return {}
    rows = events.loc[seqs]
    columns = {name: rows[name].tolist() for name in rows.columns}
    made = {}
    for k, seq in enumerate(seqs.tolist()):
        row = {name: values[k] for name, values in columns.items()}
        made[seq] = {"seq": seq, "time_ms": float(row["time_ms"]), "kind": str(row["kind"]),
                     "component": str(row["component"]), "detail": _removal_text(row),
                     "node": _node_of(row)}
    return made


def _node_of(row: dict[str, Any]) -> int:
    """The broker an event is about: whose replica lost records, or who was elected."""
    value = row["leader"] if row["kind"] == "leader.election" else row["node"]
    return int(value) if pd.notna(value) else -1


def _removal_text(row: dict[str, Any]) -> str:
    where = f"{row['topic']}-{int(row['partition'])}"
    if row["kind"] == "log.truncate":
        return (f"broker {int(row['node'])} truncated {where} to offset {int(row['offset'])}, "
                f"dropping {int(row['records'])} records")
    if row["kind"] == "log.lost":
        return (f"broker {int(row['node'])} restarted with an empty disk: {int(row['records'])} "
                f"records of {where} from offset {int(row['offset'])} gone")
    return (f"{row['election']} election of broker {int(row['leader'])} for {where}, leader "
            f"epoch {int(row['leader_epoch'])}")


# -- the consumer-side checks -----------------------------------------------------------------

def _poll_order(reads: pd.DataFrame, causes: pd.DataFrame, hidden: Hidden,
                storage: StorageHistory | None = None
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """poll-skip and nonmonotonic-poll, per consumer process (incarnation) and partition.

    A jump over offsets that retention or the log cleaner had removed is no skip: there was
    nothing there to read.
    """
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
        if d > 1 and hidden.any:  # markers (and aborted records) between polls are no gap
            gap = hidden.offsets(row.topic, row.partition, row.consumer in hidden.committed)
            d -= int(np.count_nonzero((gap > row.prev_last) & (gap < row.first)))
        if d == 1:
            continue
        if d > 1 and storage is not None:
            between = np.arange(int(row.prev_last) + 1, int(row.first), dtype=np.int64)
            if hidden.any:
                between = np.setdiff1d(between, hidden.offsets(
                    row.topic, row.partition, row.consumer in hidden.committed))
            if _storage_gone(storage, str(row.topic), int(row.partition), between).all():
                continue
        entry = {"consumer": row.consumer, "topic": row.topic, "partition": int(row.partition),
                 "from_offset": int(row.prev_last), "to_offset": int(row.first),
                 "delta": int(d), "polls": [int(row.prev_seq), int(row.poll_seq)],
                 "cause": _stop_between(causes, row.consumer, row.prev_time, row.time_ms)}
        (skips if d > 1 else backs).append(entry)
    return skips, backs


def _delivery(reads: pd.DataFrame, processed: pd.DataFrame, commits: pd.DataFrame,
              causes: pd.DataFrame, hidden: Hidden, storage: StorageHistory | None = None
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """skipped and processed-twice, per group (or per consumer without a group) and partition.

    Offsets retention or the log cleaner removed before the group read them, or after it read
    them but before it moved past them (processed a later offset or committed past them), are
    not skipped: there was nothing left to process (the storage kinds report them).
    """
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
        if hidden.any:
            committed_reader = bool(mine["consumer"].isin(hidden.committed).any())
            never = np.setdiff1d(never, hidden.offsets(topic, partition, committed_reader))
        if storage is not None and len(never):
            # a record storage removed before the group moved past it was not skipped, even
            # if the group had read it once: its next fetch returns the next record still in
            # the log (one it never read is judged by the storage kinds alone)
            removed = _storage_removed_ms(storage, str(topic), int(partition), never)
            read = np.isin(never, mine["offset"].to_numpy())
            never = never[np.isinf(removed) | (read & (removed >= _moved_past_ms(
                never, done, mine_commits)))]
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


@dataclass
class Hidden:
    """Offsets no consumer returns: markers, and for ``read_committed`` consumers (named in
    ``committed``) the records of aborted transactions."""

    markers: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    aborted: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    committed: set[str] = field(default_factory=set)

    @property
    def any(self) -> bool:
        return bool(self.markers)

    def offsets(self, topic: str, partition: int, read_committed: bool) -> np.ndarray:
        key = (topic, int(partition))
        empty = np.empty(0, np.int64)
        markers = self.markers.get(key, empty)
        return np.union1d(markers, self.aborted.get(key, empty)) if read_committed else markers


def hidden_of(kernel: Any, consumers: list[Any]) -> Hidden:
    """Every partition's markers and aborted records (leaders' logs), and which consumers
    read with ``isolation.level=read_committed``."""
    hidden = Hidden(committed={c.client_id for c in consumers
                               if c.config.get("isolation.level") == "read_committed"})
    for topic in kernel.cluster.topics.values():
        for part in topic.partitions:
            log = part.log
            if topic.name.startswith("__") or not log.transactions.any:
                continue
            start, stop = log.log_start_offset, log.log_end_offset
            offsets = np.arange(start, stop, dtype=np.int64)
            data = data_mask(log, start, stop, drop_aborted=False)
            visible = data_mask(log, start, stop, drop_aborted=True)
            hidden.markers[(topic.name, part.partition)] = offsets[~data]
            hidden.aborted[(topic.name, part.partition)] = offsets[data & ~visible]
    return hidden


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


def _ranges(topics: np.ndarray, partitions: np.ndarray, offsets: np.ndarray,
            writers: np.ndarray) -> list[dict[str, Any]]:
    """Records of one partition as runs of consecutive offsets, each with its first record's
    writer; a record without an offset (-1) starts a run of its own."""
    if not len(topics):
        return []
    order = _position_order(topics, partitions, offsets)
    offsets = offsets[order]
    starts = _run_starts([_topic_rank(topics)[order], partitions[order]], offsets,
                         join_unknown=False)
    return [{"topic": t, "partition": p, "first_offset": first, "last_offset": last,
             "count": count, "writer": w}
            for t, p, first, last, count, w in _run_fields(
                starts, topics[order], partitions[order], offsets, writers[order])]


def _topic_rank(topics: np.ndarray) -> np.ndarray:
    """Each topic's rank among the distinct topics in sorted order."""
    return pd.factorize(np.asarray(topics, dtype=object), sort=True,
                        use_na_sentinel=False)[0]


def _position_order(topics: np.ndarray, partitions: np.ndarray, offsets: np.ndarray
                    ) -> np.ndarray:
    """The stable order by (topic, partition, offset)."""
    return np.lexsort((offsets, partitions, _topic_rank(topics)))


def _run_starts(keys: list[np.ndarray], offsets: np.ndarray, join_unknown: bool
                ) -> np.ndarray:
    """Where runs of consecutive offsets with equal ``keys`` start, in records sorted by them.

    A record joins the run before it when its offset follows the previous record's; with
    ``join_unknown`` a record without an offset (negative) always joins, else never does.
    """
    follows = np.zeros(len(offsets), dtype=bool)
    follows[1:] = offsets[1:] == offsets[:-1] + 1
    if join_unknown:
        follows |= offsets < 0
    else:
        follows &= offsets >= 0
    for key in keys:
        follows[1:] &= key[1:] == key[:-1]
    follows[0] = False
    return np.flatnonzero(~follows)


def _run_fields(starts: np.ndarray, topics: np.ndarray, partitions: np.ndarray,
                offsets: np.ndarray, *firsts: np.ndarray) -> Any:
    """Per run: topic, partition, first and last offset, count, and each of ``firsts`` taken
    from the run's first record."""
    stops = np.append(starts[1:], len(offsets))
    return zip(topics[starts].tolist(), partitions[starts].tolist(),
               offsets[starts].tolist(), offsets[stops - 1].tolist(),
               (stops - starts).tolist(), *(f[starts].tolist() for f in firsts), strict=True)


def lost_ranges(lost: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lost records as runs of consecutive offsets, per partition and per cause, in full.

    Each run: ``topic``, ``partition``, ``first_offset``, ``last_offset``, ``count``,
    ``cause`` and ``left_behind_by``. Records without a known offset (acks=0) form one run of
    their partition with both offsets -1.
    """
    if not lost:
        return []
    topics = np.array([e["topic"] for e in lost], dtype=object)
    partitions = np.array([e["partition"] for e in lost], dtype=np.int64)
    offsets = np.array([e["offset"] for e in lost], dtype=np.int64)
    causes = np.empty(len(lost), dtype=object)
    causes[:] = [e.get("cause") for e in lost]
    behind = np.empty(len(lost), dtype=object)
    behind[:] = [e.get("left_behind_by") for e in lost]
    order = _position_order(topics, partitions, offsets)
    cause_seqs = np.array([_seq(c) for c in causes[order].tolist()], dtype=object)
    behind_seqs = np.array([_seq(b) for b in behind[order].tolist()], dtype=object)
    keys = [_topic_rank(topics)[order], partitions[order], cause_seqs, behind_seqs]
    starts = _run_starts(keys, offsets[order], join_unknown=True)
    return [{"topic": t, "partition": p, "first_offset": first, "last_offset": last,
             "count": count, "cause": cause, "left_behind_by": left}
            for t, p, first, last, count, cause, left in _run_fields(
                starts, topics[order], partitions[order], offsets[order], causes[order],
                behind[order])]


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

def writes_of(kernel: Any, results: Mapping[Any, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Every record the kernel's producers were asked to send, with its record id.

    ``results`` holds producers' ``results()`` frames already built (by producer), so that a
    caller that reads them too (the fuzz checker) builds each once.
    """
    built = results or {}
    parts = []
    for producer in kernel.clients:
        if not hasattr(producer, "results"):
            continue
        frame = built[producer] if producer in built else producer.results()
        index = np.arange(len(frame), dtype=np.int64)
        if hasattr(producer, "record_ids"):
            ids = producer.record_ids(index)
        else:
            ids = (np.int64(producer.producer_id) << 40) | index
        parts.append(frame[["topic", "partition", "offset", "ack_ms"]].assign(
            writer=producer.client_id, record_id=ids))
    columns = ["writer", "record_id", "topic", "partition", "offset", "ack_ms"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "ack_ms" else object)
                             for c in columns})
    return pd.concat(parts, ignore_index=True)[columns]


def audit_kernel(kernel: Any, final_read: bool = True, unavailability: bool = True,
                 results: Mapping[Any, pd.DataFrame] | None = None) -> AuditReport:
    """Audit a finished run: its producers' results against its consumers' reads.

    With ``final_read`` every partition's log is read once more at the end, below its high
    watermark, as Jepsen's final polls do: an acknowledged record that is not there (nor was
    ever read) is a lost write even if no consumer ran, and records a consumer group never
    started at (``auto.offset.reset=latest``) are not mistaken for lost ones. Without
    ``unavailability`` the report's ``unavailable`` windows are left empty (the fuzz checker
    judges none, and finding them is a sixth of the audit of a run with failed attempts).
    ``results`` passes producers' ``results()`` frames already built (see ``writes_of``).
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
    # what explains a consumer's anomalies is looked up only when some consumer read, and
    # what explains a loss only when a record is lost (most runs lose nothing)
    causes = causes_of(kernel) if len(reads) else None
    report = audit(writes_of(kernel, results), reads, processed, commits, causes, subscribed,
                   final, stored, cache(lambda: loss_history_of(kernel)),
                   hidden_of(kernel, members), storage_history_of(kernel))
    failed = unavailability and any(kernel.trace.count(trace.KINDS[kind])
                                    for kind in FAILURE_KINDS
                                    if kind in trace.KINDS)  # no failed attempt: no window
    report.unavailable = windows(events_of(kernel, FAILURE_KINDS),
                                 kernel.trace.frame(trace.LOG_APPEND),
                                 events_of(kernel, AVAILABILITY_CAUSE_KINDS), kernel.now_ms
                                 ) if failed else []
    report.transactions = transaction_anomalies(kernel, reads, processed, members)
    return report


def events_of(kernel: Any, kinds: tuple[str, ...]) -> pd.DataFrame:
    """The trace's events of ``kinds`` only, in emission order (cheaper than the whole trace).

    Every field of every named kind is a column, even when no event of that kind happened.
    """
    known = [trace.KINDS[k] for k in kinds if k in trace.KINDS]
    columns = list(dict.fromkeys([*trace.BASE_COLUMNS, *(f for k in known for f in k.fields)]))
    parts = [kernel.trace.frame(kind) for kind in known if kernel.trace.count(kind)]
    if not parts:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(parts, ignore_index=True).sort_values("seq", kind="stable")
    return frame.reset_index(drop=True).reindex(columns=columns)


def final_reads_of(kernel: Any) -> pd.DataFrame:
    """Every record below the high watermark of every partition but the internal topics
    (for a tiered topic, what only the remote tier holds too)."""
    parts = []
    for topic in kernel.cluster.topics.values():
        if topic.name.startswith("__"):
            continue
        for part in topic.partitions:
            offsets, ids = remote_record_ids(kernel.cluster, part)
            if len(offsets):
                parts.append(pd.DataFrame({"topic": topic.name, "partition": part.partition,
                                           "offset": offsets, "record_id": ids}))
            log = part.log
            start, stop = log.log_start_offset, log.high_watermark
            if stop > start:
                offsets = np.arange(start, stop, dtype=np.int64)
                ids = log.column("record_id", start, stop)
                keep = log.retained(start, stop)  # the log cleaner's gaps hold no record
                if log.transactions.any:  # markers are no records a consumer reads
                    keep &= data_mask(log, start, stop, drop_aborted=False)
                offsets, ids = offsets[keep], ids[keep]
                parts.append(pd.DataFrame({"topic": topic.name, "partition": part.partition,
                                           "offset": offsets, "record_id": ids}))
    return _concat(parts, ["topic", "partition", "offset", "record_id"])


def stored_ids_of(kernel: Any) -> np.ndarray:
    """Record ids in every leader's whole log (committed or not, the remote tier's part
    included), internal topics aside; records the log cleaner removed are not stored."""
    parts = [ids for topic in kernel.cluster.topics.values()
             if not topic.name.startswith("__") for part in topic.partitions
             for ids in (remote_record_ids(kernel.cluster, part)[1],
                         part.log.column("record_id")[part.log.retained()])]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def storage_history_of(kernel: Any) -> StorageHistory:
    """What the run's retention and log cleaning removed (``StorageHistory``)."""
    columns = ["seq", "time_ms", "node", "topic", "partition", "base_offset", "end_offset",
               "reason"]
    deleted = trace.KINDS.get("log.segment.delete")
    deletions = (kernel.trace.frame(deleted)[columns] if deleted and kernel.trace.count(deleted)
                 else pd.DataFrame(columns=columns))
    leaders = {(topic.name, part.partition): part.leader if part.leader >= 0 else part.last_leader
               for topic in kernel.cluster.topics.values() for part in topic.partitions}
    if kernel.trace.count(TIER_DELETE):  # no event: no remote segment was ever deleted
        remote = remote_deletions(kernel.trace, leaders)
        if len(remote):
            deletions = pd.concat([deletions, remote[columns]], ignore_index=True)
    cleaner = getattr(kernel.replicas, "cleaner", None)
    cleaned = [pd.DataFrame({"seq": seq, "node": node, "topic": topic, "partition": partition,
                             "offset": offsets, "record_id": ids})
               for topic, partition, node, offsets, ids, seq in (cleaner.cleaned if cleaner
                                                                 else [])]
    cleaned_frame = _concat(cleaned, ["seq", "node", "topic", "partition", "offset",
                                      "record_id"])
    if len(cleaned_frame):
        times = kernel.trace.frame(trace.KINDS["log.clean"]).set_index("seq")["time_ms"]
        cleaned_frame["time_ms"] = times.reindex(cleaned_frame["seq"]).to_numpy(dtype=float)
    else:
        cleaned_frame["time_ms"] = pd.Series(dtype=float)
    return StorageHistory(deletions, cleaned_frame, leaders)


def loss_history_of(kernel: Any) -> LossHistory:
    """What the run's truncations, lost disks and elections did (``LossHistory``)."""
    removed = [pd.DataFrame({"seq": seq, "node": broker, "topic": topic, "partition": partition,
                             "offset": records["offset"].to_numpy(dtype=np.int64),
                             "record_id": records["record_id"].to_numpy(dtype=np.int64)})
               for topic, partition, broker, records, seq in kernel.replicas.truncated]
    columns = ["time_ms", "kind", "component", "topic", "partition", "node", "offset",
               "records", "leader", "election", "leader_epoch"]
    events = [kernel.trace.frame(trace.KINDS[name])
              for name in (*REMOVAL_KINDS, "leader.election") if name in trace.KINDS]
    events = pd.concat([e for e in events if len(e)] or [pd.DataFrame(columns=["seq"])],
                       ignore_index=True).set_index("seq").reindex(columns=columns)
    removals = _concat(removed, ["seq", "node", "topic", "partition", "offset", "record_id"])
    removals["time_ms"] = events["time_ms"].reindex(removals["seq"]).to_numpy(dtype=float)
    appends = kernel.trace.frame(trace.LOG_APPEND)
    leaders = {(topic.name, part.partition): part.leader if part.leader >= 0 else part.last_leader
               for topic in kernel.cluster.topics.values() for part in topic.partitions}
    return LossHistory(removals, events,
                       appends[["time_ms", "node", "topic", "partition", "producer"]], leaders)


def causes_of(kernel: Any) -> pd.DataFrame:
    """Trace events that can explain a consumer's anomalies, in ``CAUSE_COLUMNS``."""
    frame = events_of(kernel, CONSUMER_STOP_KINDS)
    if frame.empty:
        return pd.DataFrame(columns=CAUSE_COLUMNS)
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


# -- transactions -------------------------------------------------------------------------------

TRANSACTION_KINDS = ("aborted-read", "output-duplicate", "zombie-write")
"""Anomalies of transactional runs (see ``TERMS``)."""


def data_mask(log: Any, start: int, stop: int, drop_aborted: bool) -> np.ndarray:
    """Offsets ``start … stop-1`` that hold data: not markers, and with ``drop_aborted`` not
    records of aborted transactions (what read_committed returns)."""
    keep = np.ones(stop - start, bool)
    aborted = log.transactions.aborted_between(start, stop) if drop_aborted else []
    for batch in log.batches_overlapping(start, stop):
        if batch.is_control or (batch.is_transactional and any(
                t.producer_id == batch.producer_id
                and t.first_offset <= batch.base_offset <= t.last_offset for t in aborted)):
            keep[max(batch.base_offset - start, 0):batch.last_offset + 1 - start] = False
    return keep


def transaction_anomalies(kernel: Any, reads: pd.DataFrame, processed: pd.DataFrame | None = None,
                          consumers: list[Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Aborted reads, output duplicates and zombie writes, each with the event behind it, and
    (``read-committed-wait``) how long read_committed consumers waited for records at most: an
    open transaction holds the LSO back.

    Empty when the run used neither a transactional producer nor a consume-transform-produce
    application, so that other runs' reports do not change.
    """
    apps = _transform_apps(kernel)
    coordinator = getattr(kernel.cluster, "transaction_coordinator", None)
    if coordinator is None and not apps:
        return {}
    markers = events_of(kernel, ("txn.marker",))
    return {"aborted-read": _aborted_reads(kernel, reads, markers),
            "output-duplicate": _output_duplicates(kernel, apps),
            "zombie-write": _zombie_writes(kernel),
            "read-committed-wait": _committed_waits(kernel, processed, consumers or [])}


def _committed_waits(kernel: Any, processed: pd.DataFrame | None, consumers: list[Any]
                     ) -> list[dict[str, Any]]:
    """Per read_committed consumer of transactional data: the record it got latest after it
    was produced."""
    committed = [c.client_id for c in consumers
                 if c.config.get("isolation.level") == "read_committed"]
    if processed is None or processed.empty or not committed:
        return []
    out = []
    for consumer in committed:
        mine = processed[processed["consumer"] == consumer]
        transactional = [kernel.cluster.partition(t, int(p)).log.transactions.any
                         for t, p in zip(mine["topic"], mine["partition"], strict=True)]
        mine = mine[np.array(transactional, bool)]
        if mine.empty:
            continue
        worst = mine.loc[mine["latency_ms"].idxmax()]
        out.append({"consumer": consumer, "topic": worst["topic"],
                    "partition": int(worst["partition"]), "offset": int(worst["offset"]),
                    "max_latency_ms": float(worst["latency_ms"]),
                    "median_latency_ms": float(mine["latency_ms"].median())})
    return out


def _transform_apps(kernel: Any) -> list[Any]:
    apps: dict[int, Any] = {}
    for client in kernel.clients:
        app = getattr(client, "app", None)
        if app is not None and hasattr(app, "sources"):
            apps[id(app)] = app
    return list(apps.values())


def _aborted_reads(kernel: Any, reads: pd.DataFrame,
                   markers: pd.DataFrame) -> list[dict[str, Any]]:
    """Reads of records whose transaction was aborted, one entry per consumer and abort."""
    out = []
    if reads.empty:
        return out
    for (topic, partition), rows in reads.groupby(["topic", "partition"], sort=True):
        if str(topic).startswith("__"):
            continue
        log = kernel.cluster.partition(topic, int(partition)).log
        if not log.transactions.aborted:
            continue
        offsets = rows["offset"].to_numpy(dtype=np.int64)
        for txn in log.transactions.aborted:
            batches = [b for b in log.batches_overlapping(txn.first_offset, txn.last_offset)
                       if b.producer_id == txn.producer_id and not b.is_control]
            hit = np.zeros(len(offsets), bool)
            for b in batches:
                hit |= (offsets >= b.base_offset) & (offsets <= b.last_offset)
            for consumer, mine in rows[hit].groupby("consumer", sort=True):
                marker = _abort_marker(markers, log, topic, partition, txn)
                out.append({"consumer": consumer, "topic": topic, "partition": int(partition),
                            "first_offset": int(mine["offset"].min()),
                            "last_offset": int(mine["offset"].max()), "count": len(mine),
                            "producer_id": txn.producer_id,
                            "cause": _event(marker) if marker is not None else None})
    return out


def _abort_marker(markers: pd.DataFrame, log: Any, topic: str, partition: int,
                  txn: Any) -> pd.Series | None:
    """The acknowledged ``txn.marker`` that aborted ``txn`` in this partition (None: none).

    Usually the one at the transaction's last offset. But a leader may append the marker, see
    a follower copy it and lose its leadership before its high watermark covers the marker:
    the coordinator's WriteTxnMarkers then fails and is retried at the new leader, which holds
    the copied marker (the transaction already ended there) and appends a second one
    (``TransactionMarkerRequestCompletionHandler`` retries on NOT_LEADER_OR_FOLLOWER; the
    second marker ends no transaction, ``ProducerAppendInfo.appendEndTxnMarker``). Only that
    retry is acknowledged: it is the producer's next batch in this log after the end, an ABORT
    marker. A data batch of the producer first means a later transaction began, and an ABORT
    marker after it is that transaction's, not this one's. Either marker is this producer's
    ABORT: an acknowledged marker of another that an unclean election truncated may have held
    the same offset.
    """
    here = markers[(markers["topic"] == topic) & (markers["partition"] == partition)
                   & (markers["producer_id"] == txn.producer_id) & (markers["marker"] == "ABORT")]
    exact = here[here["offset"] == txn.last_offset]
    if len(exact):
        return exact.iloc[0]
    following = next((b for b in log.batches_overlapping(txn.last_offset + 1, log.log_end_offset)
                      if b.producer_id == txn.producer_id), None)
    if following is None or not following.is_control:
        return None
    retried = here[here["offset"] == following.base_offset]
    return retried.iloc[0] if len(retried) else None


def _output_duplicates(kernel: Any, apps: list[Any]) -> list[dict[str, Any]]:
    """Input records whose output the final read_committed view holds more than once."""
    causes = causes_of(kernel)
    out = []
    for app in apps:
        writers = app.writers
        seen: dict[int, list[tuple[int, int, int]]] = {}  # input → (partition, offset, output)
        for part in kernel.cluster.topic(app.output_topic).partitions:
            log = part.log
            start, stop = log.log_start_offset, log.last_stable_offset
            ids = log.column("record_id", start, stop)
            offsets = np.arange(start, stop, dtype=np.int64)
            if log.transactions.any:
                keep = data_mask(log, start, stop, drop_aborted=True)
                ids, offsets = ids[keep], offsets[keep]
            for output, offset in zip(ids.tolist(), offsets.tolist(), strict=True):
                source = app.sources.get(output)
                if source is not None:
                    seen.setdefault(source, []).append((part.partition, offset, output))
        for source, copies in sorted(seen.items()):
            if len(copies) < 2:
                continue
            first = writers.get(copies[0][2] >> 40, "?")
            stops = causes[(causes["component"] == first)]
            out.append({"input_record_id": int(source), "topic": app.output_topic,
                        "copies": [(int(p), int(o)) for p, o, _ in copies],
                        "transactional": app.transactional, "first_writer": first,
                        "cause": _event(stops.iloc[-1]) if len(stops) else None})
    return out


def _zombie_writes(kernel: Any) -> list[dict[str, Any]]:
    """Writes of fenced producers after their last commit: refused by a leader
    (INVALID_PRODUCER_EPOCH) or written in a transaction that was then aborted; each names the
    state change that bumped the epoch (a new instance's InitProducerId, or a timeout)."""
    from sim.errors import ProducerFencedError

    states = events_of(kernel, ("txn.state",))
    out = []
    for producer in kernel.clients:
        txn = getattr(producer, "txn", None)
        if txn is None or not isinstance(txn.error, ProducerFencedError):
            continue  # only an instance that lived on to be fenced is a zombie
        results = producer.results().iloc[txn.committed_upto:]
        if results.empty:
            continue
        fencing = states[(states["transactional_id"] == txn.transactional_id)
                         & (states["producer_epoch"] > txn.producer_epoch)]
        refused = results["error"] == "INVALID_PRODUCER_EPOCH"
        for (topic, partition), rows in results.groupby(["topic", "partition"], sort=True):
            out.append({"producer": producer.client_id, "topic": topic,
                        "partition": int(partition), "count": len(rows),
                        "refused": int(refused[rows.index].sum()),
                        "cause": _event(fencing.iloc[0]) if len(fencing) else None})
    return out

