"""The fuzzer's exactly-once check (``sim.fuzz.transactions_check``): which inputs without a
committed output are left unprocessed (every member of the loop closed, fenced) rather than
lost."""

from __future__ import annotations

from types import SimpleNamespace

from sim.consumer.transform import FENCED
from sim.fuzz import transactions_check
from sim.records import TopicPartition


class _Coordinator:
    def __init__(self, committed: dict[TopicPartition, int | None]) -> None:
        self.committed = committed

    def fetch_offsets(self, _group: str, tps: list[TopicPartition]) -> dict:
        return {tp: self.committed.get(tp) for tp in tps}


def kernel_with(app, members, committed):
    cluster = SimpleNamespace(group_coordinator=_Coordinator(committed))
    return SimpleNamespace(clients=members, cluster=cluster)


def member(name, app, lifecycle="running", closing=True):
    return SimpleNamespace(client_id=name, app=app, group_id="eos", lifecycle=lifecycle,
                           closing=closing)


def loop(*results):
    return SimpleNamespace(outcomes=[{"consumer": c, "result": r} for c, r in results])


TP = TopicPartition("payments", 0)


def test_inputs_past_the_commit_are_unprocessed_once_every_member_closed_fenced():
    """Kafka's ExactlyOnceMessageProcessor shuts down on ProducerFencedException: with every
    member gone, inputs past the committed offset wait for a new instance (not lost); those
    below it were consumed and committed without an output (lost)."""
    app = loop(("eos-1", "committed"), ("eos-1", FENCED), ("eos-2", FENCED))
    kernel = kernel_with(app, [member("eos-1", app), member("eos-2", app, "closed")], {TP: 40})
    past_commit = transactions_check._left_unprocessed(kernel, app)
    assert past_commit("payments", 0, 40)
    assert past_commit("payments", 0, 99)
    assert not past_commit("payments", 0, 39)
    assert transactions_check.TOLERATED == ("eos-unprocessed",)


def test_inputs_stay_lost_while_a_member_is_alive_or_was_not_fenced():
    """A member still running (or whose last transaction was not fenced) should have
    processed them by the end of the run: they stay eos-lost."""
    app = loop(("eos-1", FENCED), ("eos-2", "committed"))
    kernel = kernel_with(app, [member("eos-1", app), member("eos-2", app)], {TP: 40})
    assert not transactions_check._left_unprocessed(kernel, app)("payments", 0, 99)
    app = loop(("eos-1", FENCED), ("eos-2", FENCED))
    alive = member("eos-2", app, closing=False)
    kernel = kernel_with(app, [member("eos-1", app), alive], {TP: 40})
    assert not transactions_check._left_unprocessed(kernel, app)("payments", 0, 99)


def _resets(*rows):
    """A trace whose consumer.offset.reset frame holds ``rows``:
    (seq, group, topic, partition, from_offset, offset, reason)."""
    import pandas as pd

    columns = ["seq", "group", "topic", "partition", "from_offset", "offset", "reason"]
    frame = pd.DataFrame(list(rows), columns=columns)
    return SimpleNamespace(frame=lambda _kind: frame)


def _cut(first_seq):
    cut = SimpleNamespace(partitions={}, first_seq={})
    for where, seq in first_seq.items():
        cut.partitions[where] = f"log.truncate of {where[0]}-{where[1]} on broker 1"
        cut.first_seq[where] = seq
    return cut


def test_inputs_read_again_after_an_out_of_range_reset_are_tied_to_the_truncation():
    """An unvalidated position (a seek without a leader epoch) past a truncated log end is
    OFFSET_OUT_OF_RANGE; auto.offset.reset=earliest re-reads from 0. Only such a reset by the
    loop's own group, after the partition's first truncation, re-reads [0, 424)."""
    app = loop()
    reason = transactions_check.OUT_OF_RANGE_RESET + "earliest"
    trace = _resets((50, "eos", "payments", 1, 424, 0, reason),  # the one that counts
                    (5, "eos", "payments", 0, 300, 0, reason),  # before payments-0's truncation
                    (51, "other", "payments", 1, 600, 0, reason),  # another group
                    (52, "eos", "payments", 1, 500, 189,
                     "truncation detected: the first offset known to diverge"),
                    (53, "eos", "payments", 2, 99, 0, reason))  # payments-2 was not truncated
    kernel = SimpleNamespace(clients=[member("eos-1", app)], trace=trace)
    cut = _cut({("payments", 1): 40, ("payments", 0): 40})
    reread = transactions_check._reread_after_truncation(kernel, app, cut)
    assert list(reread) == [("payments", 1)]
    [(first, stop, cause)] = reread[("payments", 1)]
    assert (first, stop) == (0, 424)
    assert cause.startswith("log.truncate of payments-1")
    assert "reset to 0" in cause
