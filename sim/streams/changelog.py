"""Changelog topics: every change of a logged store, written to Kafka.

Mirrors ``ProcessorStateManager.storeChangelogTopic``, the ``ChangeLogging*Store`` layers and the
changelog topic configs (``UnwindowedUnversionedChangelogTopicConfig``,
``WindowedChangelogTopicConfig``):

- Name: ``<application.id>-<store>-changelog``; one partition per task of the store's
  sub-topology, the task's partition number = the changelog partition it writes.
- Config: a key-value store's changelog is ``cleanup.policy=compact`` (only the latest value per
  key matters); a window or session store's is ``compact,delete`` with ``retention.ms`` = the
  store's retention + ``windowstore.changelog.additional.retention.ms`` (1 day).
- Record: the store key (a window store's: (key, window start[, sequence number]); a session
  store's: (key, start, end)) and the stored value — a delete is a tombstone (value None). A
  timestamped store (the DSL's aggregations and tables) keeps a ``ValueAndTimestamp``; its
  changelog record holds only the **plain value**, and the timestamp travels as the record's own
  timestamp (``ChangeLoggingTimestampedKeyValueBytesStore.log``: ``rawValue`` and ``timestamp``
  of the stored bytes). A restore puts the two together again
  (``StateStore.restore_record``, Kafka's ``RecordConverters.rawValueToTimestampedValue``).
  Example: ``count()`` stores ``ValueAndTimestamp(3, 1200)`` for key ``a`` → changelog record
  key ``a``, value ``3``, timestamp 1200.
- With the record cache on (``statestore.cache.max.bytes`` > 0), changes wait in the cache and
  reach the changelog together with the downstream records when it is flushed (commit or
  eviction), only the latest per key: fewer changelog records.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sim.records import TopicPartition
from sim.streams.stores import StateStore, StoreBuilder, ValueAndTimestamp

CHANGELOG_SUFFIX = "-changelog"
"""``ProcessorStateManager.STATE_CHANGELOG_TOPIC_SUFFIX``."""

Send = Callable[[str, int, Any, Any, int], int]
"""Sends (topic, partition, key, value, timestamp); returns the producer's record index."""


def changelog_topic(application_id: str, store: str) -> str:
    """``<application.id>-<store>-changelog`` (``ProcessorStateManager.storeChangelogTopic``)."""
    return f"{application_id}-{store}{CHANGELOG_SUFFIX}"


def changelog_topic_config(builder: StoreBuilder, additional_retention_ms: int) -> dict[str, Any]:
    """The topic configs of a store's changelog."""
    if builder.kind in ("window", "session"):
        return {"cleanup.policy": "compact,delete",
                "retention.ms": builder.retention_ms + additional_retention_ms}
    return {"cleanup.policy": "compact"}


class TaskChangelogs:
    """The changelog writer of one task's logged stores (the ``ChangeLogging*Store`` layers and
    the task's ``RecordCollector``)."""

    def __init__(self, partition: int, topics: dict[str, str], send: Send,
                 timestamp: Callable[[], int], cached: bool) -> None:
        self.partition = partition
        self.topics = topics  # store name -> changelog topic
        self.send = send
        self.timestamp = timestamp
        self.cached = cached
        self.pending: OrderedDict[tuple[str, Any], tuple[Any, int]] = OrderedDict()
        self.last_sent: dict[TopicPartition, int] = {}  # producer record index of last write
        self.records_sent = 0

    def attach(self, stores: dict[str, StateStore]) -> None:
        """Start logging the changes of the logged stores among ``stores``."""
        for name in sorted(self.topics):
            stores[name].logger = (lambda key, value, n=name: self.log(n, key, value))

    @staticmethod
    def detach(stores: dict[str, StateStore]) -> None:
        for store in stores.values():
            store.logger = None

    def log(self, store: str, key: Any, value: Any) -> None:
        """Write (or cache) one change: a ``ValueAndTimestamp`` goes as its plain value with its
        timestamp as the record's; anything else with the current record's timestamp."""
        if isinstance(value, ValueAndTimestamp):
            value, timestamp = value.value, value.timestamp
        else:
            timestamp = self.timestamp()
        if self.cached:
            self.pending.pop((store, key), None)  # latest update last
            self.pending[(store, key)] = (value, timestamp)
        else:
            self._send(store, key, value, timestamp)

    def flush(self) -> int:
        """Write what the cache held, in the order of each key's latest update."""
        pending, self.pending = self.pending, OrderedDict()
        for (store, key), (value, timestamp) in pending.items():
            self._send(store, key, value, timestamp)
        return len(pending)

    def _send(self, store: str, key: Any, value: Any, timestamp: int) -> None:
        topic = self.topics[store]
        index = self.send(topic, self.partition, key, value, max(0, int(timestamp)))
        self.last_sent[TopicPartition(topic, self.partition)] = index
        self.records_sent += 1
