"""Errors a consumer raises, named after Kafka's exceptions."""

from __future__ import annotations

from sim.errors import KafkaLabError


class IllegalStateError(KafkaLabError):
    """A call that does not fit the consumer's state (Kafka's ``IllegalStateException``)."""


class NoOffsetForPartitionError(KafkaLabError):
    """No committed offset and ``auto.offset.reset=none`` (``NoOffsetForPartitionException``)."""


class OffsetOutOfRangeError(KafkaLabError):
    """The position is outside the log and ``auto.offset.reset=none``."""


class LogTruncationError(OffsetOutOfRangeError):
    """After a leader change the position's leader epoch ends below the position in the new
    leader's log (records were truncated) and ``auto.offset.reset=none``
    (``LogTruncationException``, KIP-320). ``divergent_offset`` is the first offset known to
    diverge, None when the leader knows no such epoch."""

    def __init__(self, message: str, divergent_offset: int | None = None) -> None:
        super().__init__(message)
        self.divergent_offset = divergent_offset


class CommitFailedError(KafkaLabError):
    """The member left the group's generation, so its commit was refused
    (``CommitFailedException``)."""


class CommitTimeoutError(KafkaLabError):
    """``commit_sync`` could not reach a working coordinator within ``default.api.timeout.ms``
    (Kafka's ``TimeoutException``): whether the offsets were stored is unknown."""


class RebalanceInProgressError(KafkaLabError):
    """A commit during a rebalance; ``poll()`` to finish it and commit again
    (``RebalanceInProgressException``)."""


class GroupProtocolError(KafkaLabError):
    """The group coordinator refused to let the member join (e.g. no common assignor)."""
