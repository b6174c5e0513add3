"""The last stable offset (LSO) of a partition log: a decided transaction stays unstable until
the high watermark passes its marker, as Kafka 4.0's ``ProducerStateManager`` keeps it in
``unreplicatedTxns`` (``completeTxn``) until ``onHighWatermarkUpdated`` drops it."""

from __future__ import annotations

import numpy as np

from sim.broker.log import RECORD_COLUMNS, PartitionLog
from sim.broker.transaction_index import ABORT, COMMIT


def _columns(n: int, control_type: int = -1) -> dict[str, np.ndarray]:
    """``n`` records; a control record carries its ``ControlRecordType`` in ``key_hash``."""
    cols = {name: np.zeros(n, dtype=dtype) for name, dtype in RECORD_COLUMNS.items()}
    if control_type >= 0:
        cols["key_hash"][:] = control_type
    return cols


def _transaction(plog: PartitionLog, pid: int, records: int, control_type: int) -> int:
    """Append ``records`` transactional records of producer ``pid`` and their marker; return
    the marker's offset."""
    plog.append_batch(_columns(records), 100, producer_id=pid, base_sequence=0,
                      is_transactional=True)
    return plog.append_batch(_columns(1, control_type), 70, producer_id=pid,
                             is_transactional=True, is_control=True)


def test_committed_transaction_is_unstable_until_the_hw_passes_its_marker() -> None:
    """Records 0-2 replicated (HW 3), COMMIT marker at 3 on the leader only: the LSO stays at
    0, so a read_committed reader is not handed records whose marker a new leader may lack
    (fuzz finding transactions--read-above-lso-marker-not-replicated)."""
    plog = PartitionLog()
    plog.append_batch(_columns(3), 100, producer_id=7, base_sequence=0, is_transactional=True)
    plog.high_watermark = 3
    assert plog.last_stable_offset == 0  # open
    marker = plog.append_batch(_columns(1, COMMIT), 70, producer_id=7, is_transactional=True,
                               is_control=True)
    assert marker == 3
    assert plog.last_stable_offset == 0  # decided, marker not yet below the HW
    plog.high_watermark = 4
    assert plog.last_stable_offset == 4


def test_lso_is_the_oldest_of_open_and_unreplicated_transactions() -> None:
    """Producer 7 aborts (marker at 2), producer 8 commits (marker at 5), producer 9 is open
    from 6: the LSO moves from 0 to 3 to 6 as the HW passes each marker, never past 9's first
    record."""
    plog = PartitionLog()
    assert _transaction(plog, 7, 2, ABORT) == 2
    assert _transaction(plog, 8, 2, COMMIT) == 5
    plog.append_batch(_columns(2), 100, producer_id=9, base_sequence=0, is_transactional=True)
    lso = []
    for hw in range(1, plog.log_end_offset + 1):
        plog.high_watermark = hw
        lso.append(plog.last_stable_offset)
    assert lso == [0, 0, 3, 3, 3, 6, 6, 6]
