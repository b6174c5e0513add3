"""Errors a consumer raises, named after Kafka's exceptions."""

from __future__ import annotations

from typing import Any

from sim.errors import KafkaLabError
from sim.records import TopicPartition


class IllegalStateError(KafkaLabError):
    """A call that does not fit the consumer's state (Kafka's ``IllegalStateException``)."""


class NoOffsetForPartitionError(KafkaLabError):
    """No committed offset and ``auto.offset.reset=none`` (``NoOffsetForPartitionException``)."""


class OffsetOutOfRangeError(KafkaLabError):
    """The position is outside the log and ``auto.offset.reset=none``."""


class OffsetNotAvailableError(KafkaLabError):
    """A partition's leader could not list the offset asked for yet (OFFSET_NOT_AVAILABLE:
    just after a failover its high watermark is below the start of its leader epoch, KIP-207;
    or the partition has no leader). Kafka's consumer retries such a lookup until
    ``default.api.timeout.ms`` and then throws ``TimeoutException``; the lab's lookups answer
    at once, so they raise this instead: run the kernel on a little and ask again."""


class LogTruncationError(OffsetOutOfRangeError):
    """After a leader change the position's leader epoch ends below the position in the new
    leader's log (records were truncated) and ``auto.offset.reset=none``
    (``LogTruncationException``, KIP-320).

    ``partition`` and ``fetch_offset`` say which position (``offsetOutOfRangePartitions()``);
    ``divergent_offset`` and ``divergent_epoch`` are the first offset known to diverge and its
    leader epoch, None when the leader knows no such epoch. The position stays unvalidated
    until the application seeks: ``consumer.seek(error.partition, error.divergent_offsets()
    [error.partition])`` resumes where the logs diverge, validated.
    """

    def __init__(self, message: str, divergent_offset: int | None = None,
                 partition: TopicPartition | None = None, fetch_offset: int | None = None,
                 divergent_epoch: int | None = None) -> None:
        super().__init__(message)
        self.divergent_offset = divergent_offset
        self.partition = partition
        self.fetch_offset = fetch_offset
        self.divergent_epoch = divergent_epoch

    def divergent_offsets(self) -> dict[TopicPartition | None, Any]:
        """Kafka's ``divergentOffsets()``: {partition: ``OffsetAndMetadata``(first diverging
        offset, its leader epoch)}, empty when the leader knows no such epoch."""
        from sim.consumer.offsets import OffsetAndMetadata  # here: offsets needs the configs

        if self.divergent_offset is None:
            return {}
        return {self.partition: OffsetAndMetadata(self.divergent_offset, self.divergent_epoch)}


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
