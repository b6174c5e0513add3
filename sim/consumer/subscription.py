"""What a consumer subscribes to, which partitions it owns, and where it is in each.

Mirrors Kafka's ``SubscriptionState``. A consumer either *subscribes* (to topics or a pattern;
the group assigns partitions) or is *assigned* partitions by hand (``assign()``, no group), never
both. For each owned partition it keeps a *position*: the offset of the next record to fetch.
A partition without a position starts at the group's committed offset, or, without one, where
``auto.offset.reset`` says: ``earliest`` (the log start), ``latest`` (the high watermark),
``none`` (an error) or ``by_duration:…`` (the first record at most that old; see
``sim.consumer.offset_reset``). A position outside the log (after retention, say) is reset
the same way (OFFSET_OUT_OF_RANGE).

A reset asks the partition leader (ListOffsets), which may refuse: just after a failover,
while its high watermark is below the start of its leader epoch, it answers no "latest" and no
lookup by time past its high watermark (OFFSET_NOT_AVAILABLE, KIP-207,
``sim.broker.list_offsets.offset_not_available``), and without a leader nothing. The partition
then waits without a position (Kafka's AWAIT_RESET: not fetched, not committed) and the reset
is retried ``retry.backoff.ms`` later (``OffsetFetcherUtils.onFailedResponseForResetting
Positions`` → ``requestFailed``), on the next poll.

A position read from records also keeps the leader epoch of the last record read (Kafka's
``FetchPosition.offsetEpoch``) and the partition leader's epoch it was taken under. When the
leader changes, the position is validated before the next fetch (KIP-320,
``maybeValidatePositionForCurrentLeader`` / ``maybeCompleteValidation``): the new leader says
where that epoch ends in its log (OffsetsForLeaderEpoch). If it ends below the position, the
records past it were truncated (an unclean election, say): the consumer seeks to that first
diverging offset, or with ``auto.offset.reset=none`` raises ``LogTruncationError``. A leader
that knows no such epoch gets the position reset by ``auto.offset.reset``.

A truncation raised that way leaves the position *awaiting validation*
(``maybeCompleteValidation`` returns a ``LogTruncation`` and leaves the state as it is): nothing
is fetched from the partition, its position is not committed (``allConsumed`` takes valid
positions only), and OffsetsForLeaderEpoch is sent again ``request.timeout.ms`` after the last
one (``setNextAllowedRetry``), which finds the same truncation and raises again, until the
application seeks: to an offset, or to ``error.divergent_offsets()[tp]``, an
``OffsetAndMetadata`` whose leader epoch gets that position validated in turn
(``KafkaConsumer.seek(TopicPartition, OffsetAndMetadata)`` → ``seekUnvalidated``).

Committing the positions commits that epoch too (``allConsumed``: ``position.offsetEpoch``),
and a position restored from a committed offset that has one is validated the same way before
its first fetch (``refreshCommittedOffsets`` → ``seekUnvalidated``): a member that takes a
partition over from a commit past a truncation resumes where the logs diverge, even if the
log has grown past the committed offset again since. ``seek()`` to an ``OffsetAndMetadata``
with a leader epoch is validated the same way. Positions without an epoch are not
validated: ``seek()`` to an offset, a committed offset given by hand without an epoch, and a
reset by ``auto.offset.reset`` (Kafka's ``resetPositionIfNeeded`` leaves the epoch out on
purpose; ListOffsets' leader epoch only refreshes the consumer's metadata).

Only valid positions are committed (``allConsumed`` takes those whose state
``hasValidPosition``): a position awaiting validation, restored from a commit or taken under an
earlier leader epoch, is left out of ``commit_sync()``, ``commit_async()`` and auto-commits until
the leader is reached and validates it, so a commit while the new leader is out of reach keeps
the group's last offset instead of a position that may lie past a truncation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from sim.broker import list_offsets, remote_log_manager
from sim.broker.replication import UNDEFINED, offsets_for_leader_epoch
from sim.consumer import offset_reset
from sim.consumer.errors import (
    IllegalStateError,
    LogTruncationError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from sim.consumer.fetcher import log_start_offset, out_of_range
from sim.consumer.history import ConsumerHistory
from sim.errors import ConfigError
from sim.records import TopicPartition

REQUEST_TIMEOUT_MS = 30000
"""``request.timeout.ms`` (consumer default): after an OffsetsForLeaderEpoch request, the
partitions in it are validated again no sooner than this (``setNextAllowedRetry``)."""
OUT_OF_RANGE_RESET = "OFFSET_OUT_OF_RANGE: auto.offset.reset="
"""How a reset after an OFFSET_OUT_OF_RANGE fetch is traced (the policy's name follows)."""
RETRY_BACKOFF_MS = 100
"""``retry.backoff.ms`` (consumer default): a reset the leader refused is retried this much
later."""


class SubscriptionState:
    """Subscription, assignment, positions and paused partitions of one consumer."""

    def __init__(self, cluster: Any, client_id: str, group_id: str | None,
                 auto_offset_reset: str, history: ConsumerHistory,
                 read_committed: bool = False) -> None:
        self.cluster = cluster
        self.read_committed = read_committed
        self.client_id = client_id
        self.group_id = group_id
        self.auto_offset_reset = auto_offset_reset
        self.history = history
        self.on_reset: Any = None  # told (tp, from, to, reason) after a reset
        self.topics: list[str] = []
        self.pattern: re.Pattern[str] | None = None
        self.manual: list[TopicPartition] | None = None
        self.listener: Any = None
        self._metadata_version = -1
        self._snapshot: list[tuple[str, int]] = []
        self.version = 0  # bumped whenever owned partitions, positions or pauses change
        self.clear()

    def clear(self) -> None:
        """Forget assignment and positions (a restarted process keeps only its subscription)."""
        self.owned: list[TopicPartition] = list(self.manual or [])
        self.positions: dict[TopicPartition, int] = {}
        self.offset_epochs: dict[TopicPartition, int] = {}  # epoch of the last record read
        self.leader_epochs: dict[TopicPartition, int] = {}  # leader epoch positions are under
        # positions left awaiting validation after a LogTruncationError: when validation is
        # retried (nextRetryTimeMs), and the first diverging offset and epoch it found
        self.truncated: dict[TopicPartition, tuple[float, int | None, int | None]] = {}
        # partitions whose reset the leader refused (AWAIT_RESET): when it is retried, the
        # position it replaces, why it is reset (traced once done, or None) and the strategy
        self.awaiting_reset: dict[TopicPartition,
                                  tuple[float, int | None, str | None, str]] = {}
        self.paused: set[TopicPartition] = set()
        self.version += 1

    # -- subscribing ------------------------------------------------------------------------------

    def subscribe(self, topics: str | Iterable[str] | re.Pattern[str], listener: Any) -> None:
        if self.manual is not None:
            raise IllegalStateError("Subscription to topics, partitions and pattern are "
                                    "mutually exclusive: call unsubscribe() after assign().")
        if isinstance(topics, str) and topics.startswith("^"):
            topics = re.compile(topics)
        if isinstance(topics, re.Pattern):
            self.pattern, self.topics = topics, []
        else:
            names = [topics] if isinstance(topics, str) else _topic_names(topics)
            for name in names:
                self.cluster.topic(name)  # a clear error for an unknown topic
            self.pattern, self.topics = None, sorted(set(names))
        self.listener = listener
        self.metadata_changed()

    def assign(self, partitions: Iterable[Any]) -> None:
        if self.topics or self.pattern is not None:
            raise IllegalStateError("Subscription to topics, partitions and pattern are "
                                    "mutually exclusive: call unsubscribe() first.")
        wanted = _topic_partitions(partitions)
        for tp in wanted:
            count = len(self.cluster.topic(tp.topic).partitions)
            if not 0 <= tp.partition < count:
                raise ConfigError(f"assign(): topic {tp.topic!r} has partitions 0..{count - 1}, "
                                  f"not {tp.partition}.")
        self.manual = wanted
        self.owned = list(wanted)
        self.version += 1
        for tp in list(self.positions):
            if tp not in wanted:
                del self.positions[tp]
                self.offset_epochs.pop(tp, None)
                self.truncated.pop(tp, None)

    def unsubscribe(self) -> None:
        self.topics, self.pattern, self.manual = [], None, None
        self.clear()

    @property
    def has_subscription(self) -> bool:
        """True after subscribe() (the group assigns partitions)."""
        return bool(self.topics) or self.pattern is not None

    @property
    def has_any(self) -> bool:
        return self.has_subscription or self.manual is not None

    def subscribed_topics(self) -> list[str]:
        """The topics subscribed to; a pattern's matches, internal topics left out."""
        if self.pattern is not None:
            return sorted(t for t in self.cluster.topics
                          if self.pattern.fullmatch(t) and not t.startswith("__"))
        return list(self.topics)

    def metadata_changed(self) -> bool:
        """True when the subscribed topics or their partition counts changed since last time."""
        if self.cluster.metadata_version == self._metadata_version:
            return False
        self._metadata_version = self.cluster.metadata_version
        snapshot = [(t, len(self.cluster.topics[t].partitions)) for t in self.subscribed_topics()
                    if t in self.cluster.topics]
        changed = bool(self._snapshot) and snapshot != self._snapshot
        self._snapshot = snapshot
        return changed

    # -- owning partitions -------------------------------------------------------------------------

    def add(self, partitions: Iterable[TopicPartition]) -> None:
        owned = set(self.owned)
        self.owned.extend(tp for tp in dict.fromkeys(partitions) if tp not in owned)
        self.version += 1

    def remove(self, partitions: Iterable[TopicPartition]) -> None:
        gone = set(partitions)
        self.owned = [tp for tp in self.owned if tp not in gone]
        self.version += 1
        for tp in gone:
            self.positions.pop(tp, None)
            self.offset_epochs.pop(tp, None)
            self.truncated.pop(tp, None)
            self.awaiting_reset.pop(tp, None)
            self.paused.discard(tp)

    def check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self.owned:
            shown = ",".join(map(str, self.owned)) or "none"
            raise IllegalStateError(f"No current assignment for partition {tp} (consumer "
                                    f"{self.client_id} has: {shown}).")

    # -- positions ---------------------------------------------------------------------------------

    def missing_positions(self) -> list[TopicPartition]:
        """Owned partitions without a position that do not await a reset (INITIALIZING: they
        start from the committed offset, if any)."""
        return [tp for tp in self.owned
                if tp not in self.positions and tp not in self.awaiting_reset]

    def resets_due(self, now_ms: float) -> list[TopicPartition]:
        """Partitions awaiting a reset whose retry is due."""
        return [tp for tp, (retry_ms, *_) in self.awaiting_reset.items() if retry_ms <= now_ms]

    def reset(self, tp: TopicPartition, now_ms: float, position: int | None = None,
              reason: str | None = None, strategy: str | None = None) -> int | None:
        """Reset ``tp`` by ``strategy`` (default ``auto.offset.reset``; ``position`` is the one
        replaced, if any, and ``reason`` is traced once done); the offset, or None when the
        leader refused and the partition awaits a retry (module docstring)."""
        strategy = strategy or self.auto_offset_reset
        offset = self.reset_offset(tp, now_ms, position, strategy)
        if offset is None:
            self.positions.pop(tp, None)
            self.awaiting_reset[tp] = (now_ms + RETRY_BACKOFF_MS, position, reason, strategy)
            self.version += 1
            return None
        self.seek(tp, offset, now_ms)
        if reason is not None and self.on_reset is not None:
            self.on_reset(tp, position, offset, reason)
        return offset

    def retry_reset(self, tp: TopicPartition, now_ms: float) -> int | None:
        """Retry the reset the leader refused for ``tp``."""
        _, position, reason, strategy = self.awaiting_reset.pop(tp)
        return self.reset(tp, now_ms, position, reason, strategy)

    def seek(self, tp: TopicPartition, offset: int, now_ms: float,
             offset_epoch: int | None = None) -> None:
        """Set the position of ``tp``; ``offset_epoch`` is the leader epoch of the record
        before it, when known (then the position is validated after a leader change). A
        position left awaiting validation by a truncation is replaced (``seekValidated``)."""
        self.positions[tp] = int(offset)
        self.truncated.pop(tp, None)
        self.awaiting_reset.pop(tp, None)
        if offset_epoch is None:
            self.offset_epochs.pop(tp, None)
        else:
            self.offset_epochs[tp] = offset_epoch
        self.leader_epochs[tp] = self.cluster.partition(tp.topic, tp.partition).leader_epoch
        self.version += 1
        self.history.positions.append((now_ms, tp.topic, tp.partition, int(offset)))

    def seek_unvalidated(self, tp: TopicPartition, offset: int, now_ms: float,
                         offset_epoch: int | None) -> None:
        """Set a position restored from a committed offset (Kafka's ``seekUnvalidated``): with
        an ``offset_epoch`` it is validated against the leader before it is fetched from."""
        self.seek(tp, offset, now_ms, offset_epoch)
        if offset_epoch is not None:
            del self.leader_epochs[tp]  # validated under no leader yet (AWAIT_VALIDATION)

    def has_valid_position(self, tp: TopicPartition) -> bool:
        """Whether ``tp``'s position may be committed (Kafka's ``hasValidPosition``: the
        FETCHING state). Not when there is none yet (INITIALIZING), nor while it awaits
        validation (AWAIT_VALIDATION, KIP-320): restored from a committed offset or an
        ``OffsetAndMetadata`` with a leader epoch and not validated yet (``seekUnvalidated``),
        taken under an earlier leader epoch than the partition's and not validated against
        the new leader yet (``maybeValidatePosition``, once the metadata names a leader), or
        left so by a truncation. A position without an epoch skips validation
        (``validatePosition``)."""
        if tp not in self.positions or tp in self.truncated:
            return False
        if tp not in self.offset_epochs:
            return True
        if tp not in self.leader_epochs:
            return False  # seekUnvalidated: not validated under any leader yet
        part = self.cluster.partition(tp.topic, tp.partition)
        return self.leader_epochs[tp] == part.leader_epoch or part.leader < 0

    def consumed(self) -> dict[TopicPartition, int]:
        """Positions of the owned partitions: what ``commit_sync()`` commits by default
        (``allConsumed``: valid positions only, see ``has_valid_position``)."""
        return {tp: self.positions[tp] for tp in self.owned if self.has_valid_position(tp)}

    def consumed_epochs(self) -> dict[TopicPartition, int]:
        """The leader epochs committed with ``consumed()`` (``FetchPosition.offsetEpoch``), for
        the positions that have one."""
        return {tp: self.offset_epochs[tp] for tp in self.consumed() if tp in self.offset_epochs}

    def end_offset(self, tp: TopicPartition) -> int | None:
        """ListOffsets "latest": the high watermark, or with read_committed the last stable
        offset (``IsolationLevel.READ_COMMITTED``); None while the leader refuses
        (``sim.broker.list_offsets.latest_offset``)."""
        return list_offsets.latest_offset(self.cluster.partition(tp.topic, tp.partition),
                                          self.read_committed)

    def reset_offset(self, tp: TopicPartition, now_ms: float,
                     out_of_range_at: int | None = None,
                     strategy: str | None = None) -> int | None:
        """Where ``strategy`` (default ``auto.offset.reset``) starts ``tp`` (see the module
        docstring); None while the leader refuses to say."""
        strategy = strategy or self.auto_offset_reset
        part = self.cluster.partition(tp.topic, tp.partition)
        log = part.log
        if strategy == "earliest":
            return int(log_start_offset(self.cluster, part))
        if strategy == "latest":
            return self.end_offset(tp)
        duration_ms = offset_reset.duration_ms(strategy)
        if duration_ms is not None:
            target = max(0, math.ceil(now_ms - duration_ms))  # tiered: the remote tier first
            remote = remote_log_manager.offset_for_timestamp(self.cluster, part, target)
            offset = (remote.offset if remote is not None
                      else offset_reset.offset_for_time(log, now_ms - duration_ms))
            if offset is None and list_offsets.offset_not_available(part):
                return None  # nothing below the high watermark, which may lag: refused
            return int(log.high_watermark) if offset is None else offset
        if out_of_range_at is not None:
            raise OffsetOutOfRangeError(
                f"consumer {self.client_id}: position {out_of_range_at} of {tp} is outside the "
                f"log ({log.log_start_offset}..{log.log_end_offset}) and auto.offset.reset="
                "none; seek() to a valid offset or set auto.offset.reset.")
        raise NoOffsetForPartitionError(
            f"consumer {self.client_id}: no committed offset for {tp} in group "
            f"{self.group_id!r} and auto.offset.reset=none; commit an offset first, seek(), or "
            "set auto.offset.reset to earliest or latest.")

    def fetchable(self, now_ms: float) -> list[TopicPartition]:
        """Owned, positioned, not paused partitions whose leader this client can reach.

        A position outside its log is reset first (Kafka's OFFSET_OUT_OF_RANGE).
        """
        out = []
        network = self.cluster.network
        for tp in self.owned:
            if tp not in self.positions or tp in self.paused:
                continue
            part = self.cluster.partition(tp.topic, tp.partition)
            leader = part.leader
            if leader < 0 or not self.cluster.brokers[leader].alive or not network.connected(
                    self.client_id, leader):
                continue
            if not self.maybe_validate_position(tp, part, now_ms):
                continue  # awaiting validation after a truncation: nothing is fetched
            if tp not in self.positions:
                continue  # validation found a truncation, and its reset was refused
            position = self.positions[tp]
            if out_of_range(part.log, position, log_start_offset(self.cluster, part)) and \
                    self.reset(tp, now_ms, position,
                               OUT_OF_RANGE_RESET + self.auto_offset_reset) is None:
                continue  # the leader refused the reset: retried later
            out.append(tp)
        return out

    def maybe_validate_position(self, tp: TopicPartition, part: Any, now_ms: float) -> bool:
        """Validate ``tp``'s position if it was taken under another leader epoch than the
        partition's now, or restored unvalidated (``maybeValidatePositionForCurrentLeader``);
        only a position that knows its epoch can be. The caller reaches the leader.

        Returns False while the position awaits validation after a truncation was raised and
        its retry is not due (``partitionsNeedingValidation`` skips it); a due retry, or a
        leader change meanwhile, validates it again.
        """
        truncated = self.truncated.get(tp)
        if truncated is not None and now_ms < truncated[0] \
                and self.leader_epochs.get(tp) == part.leader_epoch:
            return False
        if truncated is not None or self.leader_epochs.get(tp) != part.leader_epoch:
            self.leader_epochs[tp] = part.leader_epoch
            if tp in self.offset_epochs:
                self._validate_position(tp, part, now_ms)
        return True

    def validation_due(self, now_ms: float) -> bool:
        """Whether a position awaiting validation after a truncation is due to be retried."""
        return any(retry_ms <= now_ms for retry_ms, _, _ in self.truncated.values())

    def truncation_error(self, tp: TopicPartition) -> LogTruncationError:
        """The ``LogTruncationError`` of ``tp``'s position, left awaiting validation."""
        _, divergent, epoch = self.truncated[tp]
        where = ("the leader knows no such epoch" if divergent is None
                 else f"the first offset known to diverge is {divergent}")
        return LogTruncationError(
            f"consumer {self.client_id}: truncation detected for {tp} at position "
            f"{self.positions[tp]} (leader epoch {self.offset_epochs[tp]}): {where}, and "
            "auto.offset.reset=none; seek() to a valid offset or set auto.offset.reset.",
            divergent, tp, self.positions[tp], epoch)

    def _validate_position(self, tp: TopicPartition, part: Any, now_ms: float) -> None:
        """KIP-320 after a leader change: ask the new leader where the position's epoch ends
        (OffsetsForLeaderEpoch) and handle a truncation as ``maybeCompleteValidation`` does."""
        position = self.positions[tp]
        epoch, end = offsets_for_leader_epoch(part, self.offset_epochs[tp])
        if epoch != UNDEFINED and end >= position:
            if self.truncated.pop(tp, None) is not None:  # completeValidation
                self.version += 1
            return  # validated: nothing the consumer read was truncated
        divergent = None if epoch == UNDEFINED else end
        if self.auto_offset_reset == "none":  # stays AWAIT_VALIDATION, retried later
            self.truncated[tp] = (now_ms + REQUEST_TIMEOUT_MS, divergent,
                                  None if divergent is None else epoch)
            self.version += 1
            raise self.truncation_error(tp)
        if divergent is None:
            self.reset(tp, now_ms, position,
                       "truncation detected: auto.offset.reset=" + self.auto_offset_reset)
            return
        self.seek(tp, divergent, now_ms, epoch)
        if self.on_reset is not None:
            self.on_reset(tp, position, divergent,
                          "truncation detected: the first offset known to diverge")


def _topic_names(topics: Any) -> list[str]:
    """``subscribe()``'s topics as a list of names, or a one-line error saying what is wanted."""
    names = list(topics) if isinstance(topics, Iterable) and not isinstance(topics, bytes | dict) \
        else None
    if names is None or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"subscribe() takes a topic name, a list of topic names or a regex "
                          f"pattern, e.g. ['orders'], but got {topics!r}.")
    return names


def _topic_partitions(partitions: Any) -> list[TopicPartition]:
    """``assign()``'s partitions as ``TopicPartition``s, or a one-line error."""
    items = list(partitions) if isinstance(partitions, Iterable) \
        and not isinstance(partitions, str | bytes | dict) else None
    wanted: list[TopicPartition] = []
    for tp in items if items is not None else [partitions]:
        if isinstance(tp, TopicPartition):
            wanted.append(tp)
        elif isinstance(tp, tuple) and len(tp) == 2 and isinstance(tp[0], str) \
                and isinstance(tp[1], int) and not isinstance(tp[1], bool):
            wanted.append(TopicPartition(*tp))
        else:
            raise ConfigError(f"assign() takes a list of partitions, each a TopicPartition or "
                              f"a (topic, partition) pair such as ('orders', 0), but got "
                              f"{partitions!r}.")
    return wanted
