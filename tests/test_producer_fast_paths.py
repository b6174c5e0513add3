"""The producer's shortcuts for its usual cases give exactly what the general code gives.

Each test runs the same steps through the shortcut and through the general code and compares
everything they leave behind, so a shortcut that drifts from the general code fails here.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.producer.accumulator import RecordAccumulator


def _batches(acc: RecordAccumulator) -> list[tuple]:
    return [(b.records, b.size_bytes, b.limit_bytes, b.created_ms, b.full_ms, b.max_time_ms,
             b.indices().tolist()) for b in acc.deques[0]]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 400),
       st.lists(st.tuples(st.integers(1, 500), st.floats(0, 10), st.booleans()), max_size=60))
def test_appending_one_record_matches_the_general_append(batch_size, records):
    """``append_record`` leaves the same batches as ``append`` of the one record: joining the
    open batch, opening one, or (refusing, then ``append``) closing a full batch and taking a
    record bigger than ``batch.size``; a batch drained in between is not reopened."""
    short, general = (RecordAccumulator(1, batch_size, records=None) for _ in range(2))
    now = 0.0
    for i, (size, gap, drain) in enumerate(records):
        now += gap
        idx = np.array([i])
        if not short.append_record(0, idx, size, now):
            short.append(0, idx, cs=np.array([size], np.int32), times=np.array([now]))
        general.append(0, idx, cs=np.array([size], np.int32), times=np.array([now]))
        assert _batches(short) == _batches(general)
        if drain:  # the sender takes the head batch, open or not
            for acc in (short, general):
                batch = acc.take_first(0)
                if batch.full_ms == math.inf:
                    batch.full_ms = now
    assert (short.version, short.sizes, short.nonempty) == (
        general.version, general.sizes, general.nonempty)
