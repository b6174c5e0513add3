"""The decided transactions a log remembers until its high watermark passes their markers
(``ProducerStateManager.unreplicatedTxns``) are forgotten as the high watermark moves
(``onHighWatermarkUpdated``), not only when someone reads the LSO: a follower's log, whose LSO
nobody reads, does not keep one entry per transaction for ever."""

from __future__ import annotations

import numpy as np

from sim.broker.log import RECORD_COLUMNS, PartitionLog
from sim.broker.transaction_index import ABORT, COMMIT
from sim.kernel import Kernel
from sim.producer import Producer


def _columns(n: int, control_type: int = -1) -> dict[str, np.ndarray]:
    cols = {name: np.zeros(n, dtype=dtype) for name, dtype in RECORD_COLUMNS.items()}
    if control_type >= 0:
        cols["key_hash"][:] = control_type
    return cols


def test_the_high_watermark_passing_a_marker_forgets_its_transaction() -> None:
    """Fifty transactions, the HW moved past each marker and the LSO never read: nothing is
    left; a marker the HW has not passed yet is still remembered (and holds the LSO)."""
    plog = PartitionLog()
    for i in range(50):
        plog.append_batch(_columns(2), 100, producer_id=i, base_sequence=0,
                          is_transactional=True)
        plog.append_batch(_columns(1, COMMIT if i % 2 else ABORT), 70, producer_id=i,
                          is_transactional=True, is_control=True)
        plog.high_watermark = plog.log_end_offset
    assert plog.transactions.completed == []
    first = plog.append_batch(_columns(2), 100, producer_id=99, base_sequence=0,
                              is_transactional=True)
    marker = plog.append_batch(_columns(1, COMMIT), 70, producer_id=99,
                               is_transactional=True, is_control=True)
    plog.high_watermark = marker  # the marker itself not yet replicated
    assert plog.transactions.completed == [(first, marker)]
    assert plog.last_stable_offset == first
    plog.high_watermark = marker + 1
    assert plog.transactions.completed == []
    assert plog.last_stable_offset == marker + 1


def test_followers_keep_no_decided_transactions_once_replicated() -> None:
    """Twenty committed transactions on a partition with three replicas: no replica's log,
    followers' included, still remembers any of them."""
    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("out", 1, 3)
    producer = Producer(kernel, {"transactional.id": "app-1", "linger.ms": 0})
    producer.init_transactions()
    for i in range(20):
        producer.begin_transaction()
        producer.send("out", key=f"k{i}", value=i, partition=0)
        producer.commit_transaction()
    kernel.run(kernel.now_ms + 2_000)
    part = kernel.cluster.partition("out", 0)
    assert len(part.logs) == 3
    assert all(log.high_watermark == log.log_end_offset == 40 for log in part.logs.values())
    assert {b: log.transactions.completed for b, log in part.logs.items()} == {
        b: [] for b in part.logs}
