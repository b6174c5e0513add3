"""The consumer: poll, positions, auto.offset.reset, commits, processing, delivery semantics."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import faults
from sim.audit import audit_kernel
from sim.consumer import (
    Consumer,
    ConsumerRecords,
    IllegalStateError,
    NoOffsetForPartitionError,
    offset_reset,
    process,
)
from sim.consumer.apps import at_least_once, at_most_once, auto_commit
from sim.consumer.config import CONSUMER, parse_consumer
from sim.consumer.faults import ConsumerCrash, ConsumerRestart
from sim.errors import ConfigError, UnknownTopicError
from sim.kernel import Kernel
from sim.producer import Producer
from sim.records import TopicPartition
from sim.workloads import Workload

TP0 = TopicPartition("t", 0)
NO_LATENCY = {"lab.network.latency.ms": 0}


def preloaded(records: int = 1000, partitions: int = 1) -> Kernel:
    """One broker without network latency and ``records`` records already in topic t."""
    kernel = Kernel(seed=0, brokers=1, broker_configs=NO_LATENCY)
    kernel.cluster.create_topic("t", partitions=partitions)
    producer = Producer(kernel, {"partitioner.class": "RoundRobinPartitioner"}
                        if partitions > 1 else None)
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", records, 1e6))
    producer.flush()
    return kernel


def consumer(kernel: Kernel, **config: object) -> Consumer:
    base = {"group.id": "g", "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "max.poll.records": 100}
    return Consumer(kernel, {**base, **config})


# -- poll, positions, auto.offset.reset -----------------------------------------------------------

def test_poll_returns_at_most_max_poll_records_in_offset_order():
    """Consecutive polls return offsets 0-99, then 100-199, and advance the position."""
    kernel = preloaded()
    c = consumer(kernel)
    c.assign([TP0])
    first, second = c.poll(), c.poll()
    assert [r.offset for r in first] == list(range(100))
    assert [r.offset for r in second] == list(range(100, 200))
    assert c.position(TP0) == 200
    assert isinstance(first, ConsumerRecords)
    assert first.count() == 100


def test_consumers_never_read_at_or_above_the_high_watermark():
    """A poll stops at the high watermark even when the log end is further."""
    kernel = preloaded(50)
    kernel.cluster.partition("t", 0).log.high_watermark = 30
    c = consumer(kernel)
    c.assign([TP0])
    assert [r.offset for r in c.poll()] == list(range(30))
    assert len(c.poll(timeout_ms=20)) == 0


def test_auto_offset_reset_latest_starts_at_the_high_watermark():
    """Without a committed offset, latest skips what is already there."""
    kernel = preloaded(40)
    c = consumer(kernel, **{"auto.offset.reset": "latest"})
    c.assign([TP0])
    assert len(c.poll(timeout_ms=20)) == 0
    assert c.position(TP0) == 40


def timed_log(records: int = 1000, rate_per_s: float = 100.0) -> Kernel:
    """One broker, topic t with ``records`` records written at ``rate_per_s``, then idle."""
    kernel = Kernel(seed=0, brokers=1, broker_configs=NO_LATENCY)
    kernel.cluster.create_topic("t", partitions=1)
    Producer(kernel, workload=Workload.generate(kernel.spawn_rng(), "t", records, rate_per_s))
    kernel.run(records / rate_per_s * 1000 + 2000)
    return kernel


@pytest.mark.parametrize("duration", ["PT3S", "PT5.5S", "PT2.255S", "P0DT0H0M4,5S"])
def test_auto_offset_reset_by_duration_starts_at_the_first_record_that_recent(duration):
    """KIP-1106: by_duration:D starts at the first offset whose timestamp is ≥ now − D, as
    offsetsForTimes would: that record is recent enough, the one before it is not."""
    kernel = timed_log()
    c = consumer(kernel, **{"auto.offset.reset": f"by_duration:{duration}"})
    c.assign([TP0])
    start_ms = kernel.now_ms
    first = c.poll()[0]
    target = start_ms - offset_reset.parse_duration_ms(duration)
    stamps = kernel.cluster.partition("t", 0).log.column("timestamp_ms")
    assert 0 < first.offset < len(stamps)
    assert first.timestamp_ms >= target > stamps[first.offset - 1]


def test_auto_offset_reset_by_duration_longer_than_the_log_starts_at_the_beginning():
    """by_duration:P1D on a log 12 s old: every record is recent enough, start at offset 0."""
    kernel = timed_log()
    c = consumer(kernel, **{"auto.offset.reset": "by_duration:P1D"})
    c.assign([TP0])
    assert c.poll()[0].offset == 0


def test_auto_offset_reset_by_duration_with_no_recent_record_starts_at_the_end():
    """No record at or after now − duration (the log went quiet 2 s ago): latest, as Kafka
    does when offsetsForTimes finds nothing."""
    kernel = timed_log()
    c = consumer(kernel, **{"auto.offset.reset": "by_duration:PT1S"})
    c.assign([TP0])
    assert len(c.poll(timeout_ms=20)) == 0
    assert c.position(TP0) == 1000


@pytest.mark.parametrize(("text", "ms"), [
    ("PT1H", 3_600_000), ("P1D", 86_400_000), ("P1DT2H30M", 95_400_000), ("PT0.5S", 500),
    ("pt1m", 60_000), ("PT1H-30M", 1_800_000), ("PT1,25S", 1250), ("PT0S", 0),
])
def test_iso8601_durations_parse_as_javas_duration_parse(text, ms):
    """Java's Duration.parse grammar (days, then T with hours, minutes, decimal seconds; the
    letters in any case; signed parts)."""
    assert offset_reset.parse_duration_ms(text) == ms


@pytest.mark.parametrize(("value", "message"), [
    ("by_duration", "the :duration part is missing"),
    ("by_duration:-PT1H", "a negative duration is not allowed"),
    ("by_duration:PT-90M", "a negative duration is not allowed"),
    ("by_duration:1h", "'1h' is not an ISO-8601 duration"),
    ("by_duration:P1W", "'P1W' is not an ISO-8601 duration"),  # weeks are a Period, not a Duration
    ("by_duration:PT", "has a T with no hours, minutes or seconds"),
    ("by_duration:P", "has neither days"),
    ("by-duration:PT1H", "must be earliest, latest, none or by_duration:PnDTnHnMn.nS"),
])
def test_bad_auto_offset_reset_values_are_clear_errors(value, message):
    """AutoOffsetResetStrategy's rules: a ConfigError naming the value and the allowed forms."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_consumer({"auto.offset.reset": value})


def test_auto_offset_reset_none_without_a_commit_is_a_clear_error():
    """auto.offset.reset=none and no committed offset: NoOffsetForPartitionError names both."""
    kernel = preloaded(10)
    c = consumer(kernel, **{"auto.offset.reset": "none"})
    c.assign([TP0])
    with pytest.raises(NoOffsetForPartitionError, match=r"t-0.*group 'g'.*auto.offset.reset"):
        c.poll()


def test_a_new_consumer_starts_at_the_committed_offset():
    """commit_sync() commits last returned + 1; the next consumer of the group starts there."""
    kernel = preloaded()
    first = consumer(kernel)
    first.assign([TP0])
    first.poll()
    first.commit_sync()
    assert first.committed([TP0])[TP0].offset == 100
    first.close()
    second = consumer(kernel, **{"auto.offset.reset": "none"})
    second.assign([TP0])
    assert second.poll()[0].offset == 100


def test_seek_moves_the_next_fetch():
    """seek() makes the next poll start at the given offset."""
    kernel = preloaded()
    c = consumer(kernel)
    c.assign([TP0])
    c.seek(TP0, 500)
    assert c.poll()[0].offset == 500
    c.seek_to_beginning()
    assert c.position(TP0) == 0


def test_polls_rotate_over_partitions_so_none_starves():
    """With a small max.poll.records, successive polls serve partitions in turn."""
    kernel = preloaded(400, partitions=4)
    c = consumer(kernel, **{"max.poll.records": 50})
    c.assign([TopicPartition("t", p) for p in range(4)])
    served = [c.poll().partitions()[0].partition for _ in range(8)]
    assert sorted(set(served)) == [0, 1, 2, 3]


def test_processing_takes_processing_ms_per_record():
    """process() advances simulated time by records × processing_ms_per_record."""
    kernel = preloaded()
    c = consumer(kernel)
    c.processing_ms_per_record = 2.0
    c.assign([TP0])
    records = c.poll()
    start = kernel.now_ms
    process(records)
    assert kernel.now_ms == pytest.approx(start + 200)
    done = c.processed()
    assert list(done["offset"]) == list(range(100))
    assert np.allclose(done["processed_ms"], start + 2.0 * np.arange(1, 101))


def test_paused_partitions_are_not_fetched():
    """pause() stops fetching a partition until resume()."""
    kernel = preloaded(100, partitions=2)
    c = consumer(kernel)
    c.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
    c.pause([TopicPartition("t", 0)])
    assert c.poll().partitions() == [TopicPartition("t", 1)]


# -- clear errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("config", "message"), [
    ({"max.poll.record": 5}, "Did you mean max.poll.records"),
    ({"auto.offset.reset": "smallest"},
     "'smallest'.*must be earliest, latest, none or by_duration:PnDTnHnMn.nS"),
    ({"group.id": "g", "heartbeat.interval.ms": 45000}, "must be lower than session.timeout"),
    ({"enable.auto.commit": True}, "needs a group.id"),
    ({"group.id": "g", "partition.assignment.strategy": ["fair"]}, "unknown assignor 'fair'"),
    ({"group.id": "g", "session.timeout.ms": 3000, "heartbeat.interval.ms": 1000},
     "group.min.session.timeout.ms=6000"),
    ({"group.protocol": "consumer"}, "must be one of 'classic'"),
])
def test_bad_configs_are_clear_errors(config, message):
    """Bad consumer configs name the setting, the rule and the value."""
    kernel = Kernel(seed=0, brokers=1)
    with pytest.raises(ConfigError, match=message):
        Consumer(kernel, config)


def test_defaults_are_kafka_4_0s():
    """The defaults are Kafka 4.0's (kafka-facts §4.5)."""
    config = parse_consumer({"group.id": "g"})
    assert config["session.timeout.ms"] == 45000
    assert config["heartbeat.interval.ms"] == 3000
    assert config["max.poll.interval.ms"] == 300000
    assert config["max.poll.records"] == 500
    assert config["enable.auto.commit"] is True
    assert config["auto.commit.interval.ms"] == 5000
    assert config["auto.offset.reset"] == "latest"
    assert config["partition.assignment.strategy"] == ["range", "cooperative-sticky"]
    assert CONSUMER["isolation.level"].default == "read_uncommitted"


def test_unknown_topics_and_partitions_are_clear_errors():
    """subscribe() to a missing topic and assign() of a missing partition say what exists."""
    kernel = preloaded(1)
    c = consumer(kernel)
    with pytest.raises(UnknownTopicError, match="Unknown topic 'nope'; the cluster has: "):
        c.subscribe(["nope"])
    with pytest.raises(ConfigError, match=r"has partitions 0\.\.0, not 3"):
        c.assign([TopicPartition("t", 3)])


def test_subscribe_needs_a_group_and_excludes_assign():
    """subscribe() without group.id, or after assign(), is an IllegalStateError."""
    kernel = preloaded(1)
    with pytest.raises(IllegalStateError, match=r"needs a group\.id"):
        Consumer(kernel, {}).subscribe(["t"])
    c = consumer(kernel)
    c.assign([TP0])
    with pytest.raises(IllegalStateError, match="mutually exclusive"):
        c.subscribe(["t"])


def test_poll_inside_on_records_is_refused():
    """Learner code must not poll itself: the lab polls for it."""
    kernel = preloaded(10)
    c = consumer(kernel)
    c.assign([TP0])
    c.run(lambda consumer, records: consumer.poll())
    with pytest.raises(IllegalStateError, match="inside on_records"):
        kernel.run(kernel.now_ms + 100)


# -- delivery semantics with a scripted crash -----------------------------------------------------

def crashed_run(app, crash_after_ms: float) -> tuple[Kernel, Consumer]:
    """1000 records; one consumer (100 a poll, 2 ms a record) crashes and restarts 50 ms later.

    With no network latency, each commit takes no time, so the timeline is exact: at least
    once commits at 200, 400, 600… ms after the start; at most once commits at 0, 200, 400…
    """
    kernel = preloaded()
    c = consumer(kernel)
    c.processing_ms_per_record = 2.0
    c.assign([TP0])
    start = kernel.now_ms
    c.run(app)
    faults.schedule(kernel, start + crash_after_ms, ConsumerCrash(c.client_id))
    faults.schedule(kernel, start + crash_after_ms + 50, ConsumerRestart(c.client_id))
    kernel.run(start + 5000)
    return kernel, c


def test_at_least_once_crash_processes_the_uncommitted_part_twice():
    """Crash 450 ms in: batch 200-299 started at 400 ms, 25 records done, nothing committed.

    After the restart the consumer resumes at the committed 200, so offsets 200-224 are
    processed twice and nothing is skipped.
    """
    kernel, c = crashed_run(at_least_once, 450)
    report = audit_kernel(kernel)
    assert (report.processed_twice, report.skipped) == (25, 0)
    counts = c.processed().groupby("offset").size()
    assert list(counts[counts == 2].index) == list(range(200, 225))
    assert report.frame("processed-twice")["cause"][0]["kind"] == "fault"


def test_at_most_once_crash_skips_the_unprocessed_part():
    """Crash 450 ms in: offset 300 was committed at 400 ms, 25 of 200-299 processed.

    After the restart the consumer resumes at 300: offsets 225-299 are never processed.
    """
    kernel, _ = crashed_run(at_most_once, 450)
    report = audit_kernel(kernel)
    assert (report.skipped, report.processed_twice) == (75, 0)
    skipped = report.anomalies["skipped"][0]
    assert (skipped["first_offset"], skipped["last_offset"]) == (225, 299)
    assert skipped["cause"]["detail"].startswith("consumer_crash")


def test_auto_commit_commits_what_earlier_polls_returned():
    """Auto-commit happens inside poll() every auto.commit.interval.ms, for earlier polls."""
    kernel = preloaded()
    c = consumer(kernel, **{"enable.auto.commit": True, "auto.commit.interval.ms": 500})
    c.processing_ms_per_record = 2.0
    c.assign([TP0])
    start = kernel.now_ms
    c.run(auto_commit)
    kernel.run(start + 1300)
    commits = c.commits()
    # Polls every 200 ms; the first one at or after 500 ms (at 600) commits what the polls at
    # 0, 200 and 400 returned (offsets up to 299); the next due one, at 1200, up to 599.
    assert list(commits["offset"]) == [300, 600]
    assert list(commits["time_ms"] - start) == pytest.approx([600, 1200])


@settings(max_examples=15)
@given(crash_after_ms=st.floats(1, 1500))
def test_delivery_guarantees_hold_for_any_crash_time(crash_after_ms):
    """At least once never skips a record; at most once never processes one twice."""
    kernel, _ = crashed_run(at_least_once, crash_after_ms)
    assert audit_kernel(kernel).skipped == 0
    kernel, _ = crashed_run(at_most_once, crash_after_ms)
    assert audit_kernel(kernel).processed_twice == 0


@pytest.mark.parametrize("call", [
    lambda c: c.subscribe(5), lambda c: c.subscribe(["orders", 5]), lambda c: c.subscribe(None),
    lambda c: c.assign(["orders"]), lambda c: c.assign(5), lambda c: c.assign([("orders", "0")]),
])
def test_subscribe_and_assign_reject_what_is_not_topics_or_partitions(call) -> None:
    """A wrong argument is one ConfigError line naming what was expected, not a TypeError or
    an AttributeError from deep inside the client; nothing is subscribed."""
    kernel = Kernel(seed=1)
    kernel.cluster.create_topic("orders", partitions=2)
    consumer = Consumer(kernel, {"group.id": "g"})
    with pytest.raises(ConfigError, match=r"^(subscribe|assign)\(\) takes .*but got") as info:
        call(consumer)
    assert "\n" not in str(info.value)
    assert consumer.subscription() == set()
    assert not consumer.assignment()


@pytest.mark.parametrize("client", [Producer, Consumer])
@pytest.mark.parametrize("kernel", [None, "kernel", {}])
def test_clients_need_a_kernel_first(client, kernel) -> None:
    with pytest.raises(ConfigError, match=r"the first argument is the lab's Kernel"):
        client(kernel, {})


def test_an_idle_poll_looks_again_only_when_something_could_have_changed(monkeypatch) -> None:
    """An empty poll re-checks every ``lab.poll.check.ms`` (10 ms), but scans its partitions
    again only when a log, the metadata, the network or its own positions changed, or
    ``fetch.max.wait.ms`` (500 ms) passed: 10 idle seconds over 500 partitions are about 20
    scans, not 1,000, and a record sent later is still read within one check."""
    from sim.consumer.client import ConsumerClient

    kernel = Kernel(seed=2, brokers=1)
    kernel.cluster.create_topic("wide", partitions=500)
    consumer = Consumer(kernel, {"group.id": "g", "auto.offset.reset": "earliest"})
    consumer.assign([("wide", p) for p in range(500)])
    scans = {"n": 0}
    fetch = ConsumerClient._fetch

    def counting(self):
        scans["n"] += 1
        return fetch(self)

    monkeypatch.setattr(ConsumerClient, "_fetch", counting)
    assert len(consumer.poll(10_000)) == 0
    assert 15 <= scans["n"] <= 25
    producer = Producer(kernel)
    kernel.env.timeout(2_000).callbacks.append(
        lambda _e: producer.send("wide", key="k", value="v"))
    start = kernel.now_ms
    records = consumer.poll(10_000)
    assert len(records) == 1
    assert kernel.now_ms - start <= 2_000 + 20
