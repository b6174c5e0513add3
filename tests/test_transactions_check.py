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
