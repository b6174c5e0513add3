"""The producer: send(), batching by batch.size and linger.ms, in-flight limits, partitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import trace as events
from sim.errors import ConfigError, PartitionerError, UnknownTopicError
from sim.kernel import Kernel
from sim.murmur2 import murmur2_array, partition_for_key
from sim.producer import Producer
from sim.producer.accumulator import (
    RECORD_BATCH_OVERHEAD,
    RecordAccumulator,
    batch_size_upper_bound,
    lookup_record_sizes,
    record_sizes,
)
from sim.producer.sender import call_at, timer_at
from sim.producer.streams import RecordStream
from sim.workloads import NoKeys, UniformKeys, Workload


def varint_bytes(value: int) -> int:
    """Bytes of Kafka's zig-zag varint (ByteUtils.sizeOfVarint), written out independently."""
    zigzag = (value << 1) ^ (value >> 31)
    size = 1
    while zigzag >= 0x80:
        zigzag >>= 7
        size += 1
    return size


def kafka_record_size(key_len: int | None, value_len: int) -> int:
    """DefaultRecord.sizeInBytes with 1-byte timestamp and offset deltas and no headers."""
    key_part = 1 if key_len is None else varint_bytes(key_len) + key_len
    body = 1 + 1 + 1 + key_part + varint_bytes(value_len) + value_len + 1
    return body + varint_bytes(body)


def make(
    partitions: int = 1, brokers: int = 1, seed: int = 0, **configs
) -> tuple[Kernel, Producer]:
    kernel = Kernel(seed=seed, brokers=brokers)
    kernel.cluster.create_topic("t", partitions=partitions)
    return kernel, Producer(kernel, configs)


def burst(kernel: Kernel, records: int, rate: float, keys=None, value_bytes: int = 100) -> Workload:
    return Workload.generate(kernel.spawn_rng(), "t", records, rate, keys=keys,
                             value_bytes=value_bytes)


@pytest.mark.parametrize(("key_len", "value_len"), [(None, 100), (5, 100), (0, 0), (200, 5000)])
def test_record_sizes_follow_kafkas_record_format(key_len, value_len):
    """record_sizes matches DefaultRecord.sizeInBytes written out by hand."""
    size = record_sizes(np.array([-1 if key_len is None else key_len]), np.array([value_len]))
    assert int(size[0]) == kafka_record_size(key_len, value_len)


@given(st.lists(st.integers(-1, 300), min_size=1, max_size=8),
       st.lists(st.tuples(st.integers(-1, 20), st.integers(-1, 70_000)), max_size=60),
       st.sampled_from([1.0, 0.5, 0.31]), st.sampled_from([1, 2, 300, 70_000]))
def test_looked_up_record_sizes_equal_sizes_computed_per_record(key_lengths, records, ratio,
                                                                 value_span):
    """Sizes looked up per distinct key length and value size (with -1 = no key picking the
    last key length, and compression) equal record_sizes computed record by record."""
    lengths = np.array(key_lengths, np.int64)
    key_ids = np.array([min(k, len(key_lengths) - 2) if k >= 0 else -1 for k, _ in records],
                       np.int32)
    values = np.array([v % value_span - 1 for _, v in records], np.int32)  # a table or not
    expected = record_sizes(lengths[key_ids], values)
    if ratio != 1.0:
        expected = np.ceil(expected * ratio)
    got = lookup_record_sizes(lengths, key_ids, values, ratio)
    assert got.tolist() == expected.astype(np.int64).tolist()


def test_keyed_send_lands_on_the_murmur2_partition():
    """send(key=…).get() reports toPositive(murmur2(key)) % partitions and offsets 0, 1, …"""
    _, producer = make(partitions=6)
    first = producer.send("t", key="alice", value="a").get()
    second = producer.send("t", key="alice", value="b").get()
    assert first.partition == second.partition == partition_for_key(b"alice", 6) == 3
    assert (first.offset, second.offset) == (0, 1)


def test_keys_from_send_and_workloads_share_one_hash_table():
    """Keys met first in send(), then in a workload (old and new keys, past the table's first
    growth), then in send() again: each record lands on murmur2's partition for its key."""
    kernel, producer = make(partitions=7)
    producer.send("t", key="key-150", value="early")
    producer.send("t", key=b"raw-bytes", value="early")
    workload = burst(kernel, 2_000, 100_000, keys=UniformKeys(300))
    producer.add_workload(workload)
    kernel.run()
    producer.send("t", key="key-7", value="late")
    producer.send("t", key="new-key", value="late")
    producer.flush()
    results = producer.results()
    drawn = {workload.keys[i] for i in workload.key_ids}
    assert set(results["key"]) == drawn | {b"raw-bytes", "new-key"}
    assert len(drawn) > 64
    expected = [partition_for_key(k if isinstance(k, bytes) else k.encode(), 7)
                for k in results["key"]]
    assert results["partition"].tolist() == expected


def test_keyless_send_waits_for_linger_ms():
    """A lone record waits linger.ms in its batch before it is sent."""
    for linger in (0, 20):
        _, producer = make(**{"linger.ms": linger})
        latency = producer.send("t", value="x").get().latency_ms
        assert linger <= latency < linger + 5


def test_acks_zero_reports_offset_minus_one_but_the_log_still_gets_the_record():
    """acks=0: the producer never hears the offset (RecordMetadata offset -1)."""
    kernel, producer = make(acks="0")
    meta = producer.send("t", value="x").get()
    assert meta.offset == -1
    kernel.run()
    assert len(kernel.cluster.partition("t", 0).log) == 1


def test_full_batches_hold_as_many_records_as_fit_in_batch_size():
    """A burst into one partition fills batches to floor((batch.size - 61) / record size)."""
    kernel, producer = make(**{"linger.ms": 1000})
    producer.add_workload(burst(kernel, 1000, 1_000_000))
    kernel.run()
    per_batch = (16384 - RECORD_BATCH_OVERHEAD) // kafka_record_size(None, 100)
    sizes = kernel.cluster.partition("t", 0).log.batches()["records"].tolist()
    full, rest = divmod(1000, per_batch)
    assert sizes == [per_batch] * full + [rest]


def test_batch_size_zero_sends_one_record_per_batch():
    """batch.size=0 disables batching: every record travels alone."""
    kernel, producer = make(**{"batch.size": 0})
    producer.add_workload(burst(kernel, 50, 10_000))
    kernel.run()
    assert set(kernel.cluster.partition("t", 0).log.batches()["records"]) == {1}


def run_bounded(kernel: Kernel, max_steps: int) -> bool:
    """Run to the end, or give up after ``max_steps`` events: False means the run would hang."""
    # Kernel.step() is False once nothing is left but the brokers' periodic background timers.
    return any(not kernel.step() for _ in range(max_steps))


@pytest.mark.parametrize("batch_size", [0, 1, 60, 61])
def test_batch_size_below_a_record_still_delivers_every_record_alone(batch_size):
    """batch.size 0, 1, 60, 61: smaller than the 61-byte batch header plus a record, so each
    record takes a batch of its own — and the run ends (KafkaProducer raises batch.size=0 to 1;
    RecordAccumulator.append allocates max(batch.size, the record's upper bound))."""
    kernel, producer = make(partitions=3, brokers=3, **{"batch.size": batch_size})
    producer.add_workload(burst(kernel, 300, 10_000, keys=UniformKeys(10)))
    assert run_bounded(kernel, 20_000)
    results = producer.results()
    assert results["offset"].ge(0).all()
    assert len(results) == 300
    for p in range(3):
        batches = kernel.cluster.partition("t", p).log.batches()
        assert batches["records"].eq(1).all()


@pytest.mark.parametrize("batch_size", [0, 1, 60, 61])
def test_tiny_records_share_a_batch_within_the_first_records_upper_bound(batch_size):
    """With batch.size below a record, the write limit is the first record's upper bound
    (61 + DefaultRecord.MAX_RECORD_OVERHEAD 21 + 3 = 85 bytes for a key-less empty record of 7
    bytes), and MemoryRecordsBuilder.hasRoomFor lets two more 7-byte records in: 3 per batch."""
    kernel, producer = make(**{"batch.size": batch_size, "linger.ms": 1000})
    producer.add_workload(burst(kernel, 30, 1_000_000, value_bytes=0))
    assert run_bounded(kernel, 20_000)
    assert kernel.cluster.partition("t", 0).log.batches()["records"].tolist() == [3] * 10


def test_a_record_bigger_than_batch_size_travels_alone_between_full_batches():
    """A 20,000-byte record in a stream of 100-byte ones closes the open batch, takes a batch
    of its own, and the next records open a new batch (RecordAccumulator.tryAppend)."""
    kernel, producer = make(**{"linger.ms": 1000})
    for value in ["x" * 100] * 5 + ["y" * 20_000] + ["z" * 100] * 5:
        producer.send("t", value=value)
    producer.flush()
    assert kernel.cluster.partition("t", 0).log.batches()["records"].tolist() == [5, 1, 5]


def test_linger_collects_records_of_a_slow_stream_into_one_batch():
    """At 1000 records/s, linger.ms=50 puts about 50 records in each batch."""
    kernel, producer = make(**{"linger.ms": 50})
    producer.add_workload(burst(kernel, 1000, 1000))
    kernel.run()
    records = kernel.cluster.partition("t", 0).log.batches()["records"]
    assert records.iloc[:-1].between(50, 52).all()


def test_in_flight_requests_never_exceed_the_limit():
    """max.in.flight.requests.per.connection bounds outstanding requests per broker."""
    kernel, producer = make(partitions=3, **{"max.in.flight.requests.per.connection": 2,
                                             "linger.ms": 0})
    kernel.cluster.brokers[0].set_slowdown(50)
    producer.add_workload(burst(kernel, 5000, 100_000, keys=UniformKeys(50)))
    kernel.run()
    sent = kernel.trace.frame(events.REQUEST_SENT)[["seq", "node"]].assign(step=1)
    done = kernel.trace.frame(events.REQUEST_COMPLETED)[["seq", "node"]].assign(step=-1)
    timeline = pd.concat([sent, done]).sort_values("seq")
    outstanding = timeline.groupby("node")["step"].cumsum()
    assert outstanding.max() == 2
    assert producer.acked == 5000


def test_one_request_in_flight_keeps_a_partitions_order_across_a_leader_change():
    """With max.in.flight.requests.per.connection 1 (Connect's producer, not idempotent) a
    partition is muted while one of its batches is in flight (``Sender.guaranteeMessageOrder``,
    ``RecordAccumulator.mutePartition``): when the leader moves while a request to the old one
    is lost, the later records wait for that batch's retry instead of overtaking it through
    the new leader's connection."""
    kernel = Kernel(seed=0, brokers=3)
    kernel.cluster.create_topic("t", partitions=1, replication_factor=3)
    producer = Producer(kernel, {"max.in.flight.requests.per.connection": 1,
                                 "enable.idempotence": False, "acks": "all", "linger.ms": 0,
                                 "request.timeout.ms": 2000, "client.id": "app"})
    part = kernel.cluster.partition("t", 0)
    old = part.leader
    kernel.cluster.network.cut("app", old)
    first = producer.send("t", value=1, partition=0)  # lost on its way to the old leader
    kernel.run(kernel.now_ms + 10)
    kernel.controller.fence(old, "test")
    assert part.leader not in (old, -1)
    later = [producer.send("t", value=i, partition=0) for i in range(2, 5)]
    kernel.run(kernel.now_ms + 10_000)
    offsets = [f.get().offset for f in [first, *later]]
    assert offsets == [0, 1, 2, 3]


def test_workload_and_send_put_keys_on_the_same_partitions():
    """The bulk path and send() agree on every key's partition."""
    kernel, producer = make(partitions=7)
    producer.add_workload(burst(kernel, 2000, 50_000, keys=UniformKeys(300)))
    kernel.run()
    bulk = producer.results().groupby("key")["partition"].unique()
    assert all(len(parts) == 1 for parts in bulk)
    _, single = make(partitions=7)
    for key, parts in bulk.items():
        assert single.send("t", key=key).get().partition == parts[0]


@settings(max_examples=25, deadline=None)
@given(keys=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30),
       partitions=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_every_record_is_acknowledged_once_with_gapless_offsets(keys, partitions, seed):
    """Whatever the keys, offsets per partition are 0..n-1 and each key keeps its partition."""
    kernel = Kernel(seed=seed)
    kernel.cluster.create_topic("t", partitions=partitions)
    producer = Producer(kernel)
    futures = [producer.send("t", key=k) for k in keys]
    producer.flush()
    results = producer.results()
    assert results["ack_ms"].notna().all()
    for p, group in results.groupby("partition"):
        assert sorted(group["offset"]) == list(range(len(group)))
        assert len(kernel.cluster.partition("t", p).log) == len(group)
    for key, future in zip(keys, futures, strict=True):
        assert future.get().partition == partition_for_key(key.encode(), partitions)


def test_uniform_sticky_switches_after_a_batch_worth_of_bytes():
    """KIP-794: each sticky stint produces between batch.size and 2 × batch.size bytes."""
    kernel, producer = make(partitions=4, brokers=2, **{"batch.size": 4096})
    producer.add_workload(burst(kernel, 20_000, 200_000))
    kernel.run()
    record = kafka_record_size(None, 100)
    batches = kernel.trace.count(events.LOG_APPEND)
    produced = 20_000 * record + batches * RECORD_BATCH_OVERHEAD
    switches = kernel.trace.count(events.STICKY_SWITCH)
    assert produced / (2 * 4096 + record) <= switches + 1 <= produced / 4096 + 1


def test_ignore_keys_spreads_keyed_records_like_keyless_ones():
    """partitioner.ignore.keys=true: one key ends up on several partitions."""
    kernel, producer = make(partitions=4, **{"partitioner.ignore.keys": True, "batch.size": 1024})
    producer.add_workload(burst(kernel, 2000, 100_000, keys=UniformKeys(1)))
    kernel.run()
    assert producer.results()["partition"].nunique() > 1


def test_round_robin_spreads_evenly_in_kafka_4():
    """RoundRobinPartitioner without the double call: exactly N/P records per partition."""
    kernel, producer = make(partitions=4, **{"partitioner.class": "RoundRobinPartitioner"})
    producer.add_workload(burst(kernel, 400, 10_000))
    kernel.run()
    assert producer.results()["partition"].value_counts().tolist() == [100] * 4


@pytest.mark.parametrize(("partitions", "expected"), [(2, {1}), (3, {0, 1, 2}), (4, {1, 3})])
def test_round_robin_skips_partitions_before_kafka_4(partitions, expected):
    """KAFKA-9965: when each record opens a new batch, partition() runs twice per record."""
    kernel, producer = make(partitions=partitions, **{
        "partitioner.class": "RoundRobinPartitioner", "lab.kafka.version": "3.8",
        "linger.ms": 0})
    producer.add_workload(burst(kernel, 60, 100))
    kernel.run()
    sequence = producer.results()["partition"].tolist()
    assert set(sequence) == expected
    if partitions == 3:
        assert sequence[:6] == [1, 0, 2, 1, 0, 2]  # kafka-facts §2.4, derived


class Returns:
    """A learner's partitioner that returns a fixed value."""

    def __init__(self, value):
        self.value = value

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        return self.value


class Raises:
    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        raise ZeroDivisionError("oops")


@pytest.mark.parametrize(
    ("partitioner", "message"),
    [
        (Returns(12), r"returned 12 for record #0 .*partitions 0\.\.9"),
        (Returns("3"), r"returned '3' \(str\).*must return an int"),
        (Returns(-1), r"returned -1"),
        (Raises(), r"raised ZeroDivisionError: oops"),
    ],
)
@pytest.mark.parametrize("version", ["4.0", "3.8"])
def test_bad_custom_partitioner_stops_the_run_with_a_clear_error(partitioner, message, version):
    """Out-of-range, non-int or raising partitioners name themselves, the record and the rule
    (whether records are partitioned in chunks, at sender passes or ahead, with linger.ms=0)."""
    kernel = Kernel(seed=0)
    kernel.cluster.create_topic("t", partitions=10)
    producer = Producer(kernel, {"partitioner.class": partitioner, "lab.kafka.version": version,
                                 "linger.ms": 0 if version == "3.8" else 5})
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", 10, 1000,
                                            keys=UniformKeys(3)))
    with pytest.raises(PartitionerError, match=message) as err:
        kernel.run()
    assert type(partitioner).__name__ in str(err.value)


def test_custom_partitioner_is_configured_and_closed():
    """configure(configs) before the first record, close() when the producer closes."""
    calls = []

    class Spy:
        def configure(self, configs):
            calls.append(("configure", configs["linger.ms"]))

        def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
            return 0

        def close(self):
            calls.append(("close",))

    kernel = Kernel(seed=0)
    kernel.cluster.create_topic("t", partitions=2)
    producer = Producer(kernel, {"partitioner.class": Spy, "linger.ms": 7})
    producer.send("t", key="k")
    producer.close()
    assert calls == [("configure", 7), ("close",)]


def test_unknown_topic_and_bad_configs_are_named():
    """Sending to a missing topic or using an unknown config gives a clear error."""
    kernel, producer = make()
    with pytest.raises(UnknownTopicError, match=r"'nope'.*t"):
        producer.send("nope", value="x")
    with pytest.raises(ConfigError, match=r"linger\.ms"):
        Producer(kernel, {"linger.ms": -1})
    with pytest.raises(ConfigError, match=r"Did you mean batch\.size"):
        Producer(kernel, {"batch.sise": 10})


def test_a_slow_broker_attracts_kip480_sticky_records():
    """KIP-480 (linger.ms=0): the slow broker's open batches fill up, so it gets more data."""
    shares = {}
    for version, partitioner in (("3.8", "DefaultPartitioner"), ("4.0", None)):
        kernel = Kernel(seed=3, brokers=3)
        kernel.cluster.create_topic("t", partitions=6)
        slow = kernel.cluster.partition("t", 0).leader
        kernel.cluster.brokers[slow].set_slowdown(30)
        producer = Producer(kernel, {"partitioner.class": partitioner, "linger.ms": 0,
                                     "lab.kafka.version": version})
        producer.add_workload(burst(kernel, 30_000, 100_000, keys=NoKeys()))
        kernel.run()
        results = producer.results()
        leader_of = {p.partition: p.leader for p in kernel.cluster.topic("t").partitions}
        shares[version] = float((results["partition"].map(leader_of) == slow).mean())
    assert shares["3.8"] > 0.6
    assert shares["4.0"] < shares["3.8"] - 0.2


class AvailabilityRecorder:
    """A partitioner that notes, per key, how many partitions were available when asked."""

    def __init__(self) -> None:
        self.available: dict[str, int] = {}

    def partition(self, topic, key, key_bytes, value, value_bytes, cluster):
        self.available.setdefault(key, len(cluster.available_partitions_for_topic(topic)))
        return int(key) % cluster.partition_count_for_topic(topic)


def availability_seen(version: str, linger_ms: int) -> tuple[AvailabilityRecorder, list]:
    """A producer sending one record per ms while broker 1 (leading 2 of the 6 partitions) is
    down from 200.5 to 400.5 ms: what its partitioner saw, and when the metadata changed."""
    from sim.faults import CrashBroker, RestartBroker, schedule

    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("t", partitions=6)
    recorder = AvailabilityRecorder()
    producer = Producer(kernel, {"partitioner.class": recorder, "lab.kafka.version": version,
                                 "linger.ms": linger_ms})
    changes = [(0.0, 6)]
    kernel.cluster.metadata_listeners.append(lambda: changes.append(
        (kernel.now_ms, len(kernel.cluster.metadata().available_partitions_for_topic("t")))))
    records = 600
    keys = [str(i) for i in range(records)]
    producer.add_workload(Workload("t", np.arange(records, dtype=float) * 1.0 + 0.25,
                                   np.arange(records), np.full(records, 100), keys))
    schedule(kernel, 200.5, CrashBroker(1))
    schedule(kernel, 400.5, RestartBroker(1))
    kernel.run()
    assert {n for _t, n in changes} >= {6, 4}  # the crash did take partitions away
    return recorder, changes


def in_force(changes: list, time_ms: float) -> int:
    return [n for t, n in changes if t <= time_ms][-1]


@pytest.mark.parametrize("linger_ms", [0, 50])
def test_per_record_partitioner_sees_the_metadata_of_each_records_send_time(linger_ms):
    """Before 4.0 partition() runs in KafkaProducer.send, so it sees the cluster as it was when
    the record was sent — even when the sender takes records in later, between passes."""
    recorder, changes = availability_seen("3.8", linger_ms)
    for i in range(600):
        sent_ms = i + 0.25
        assert recorder.available[str(i)] == in_force(changes, sent_ms), f"record {i}"


@pytest.mark.parametrize("linger_ms", [0, 50])
def test_kafka_4_custom_partitioner_learns_of_a_dead_leader_within_retry_backoff(linger_ms):
    """Kafka 4.0 custom partitioners are asked ahead, at most retry.backoff.ms (100 ms) before
    a record is sent: what they see is never older than that."""
    recorder, changes = availability_seen("4.0", linger_ms)
    for i in range(600):
        sent_ms = i + 0.25
        seen = recorder.available[str(i)]
        recent = {in_force(changes, t) for t in np.linspace(max(sent_ms - 100, 0), sent_ms, 401)}
        assert seen in recent, f"record {i}"
        if in_force(changes, max(sent_ms - 100, 0)) == in_force(changes, sent_ms):
            assert seen == in_force(changes, sent_ms), f"record {i}"


@pytest.mark.parametrize("keys", [["x", "y"], [1, 2], [b"a"], [None], ["x", None], [3, "mixed"]])
def test_results_columns_are_typed_as_pandas_types_their_values(keys):
    """results() gathers topic, key and error from their distinct values; the columns must
    come out as pandas would type the plain per-record values."""
    kernel, producer = make(partitions=2)
    sent = [keys[i % len(keys)] for i in range(12)]
    for key in sent:
        producer.send("t", key=key, value="v")
    producer.flush()
    results = producer.results()
    plain = pd.DataFrame({"topic": np.array(["t"] * 12, dtype=object),
                          "key": np.array(sent, dtype=object)})
    pd.testing.assert_frame_equal(results[["topic", "key"]], plain)
    assert Producer(kernel).results().empty


def test_record_metadata_shows_times_to_the_microsecond():
    """A latency summed from simulated delays (6.200487799999999 in binary floats) is shown
    rounded to 3 decimals; the field keeps the exact value."""
    _, producer = make(partitions=3)
    meta = producer.send("t", key="a", value="x").get()
    shown = repr(meta).split("latency_ms=")[1].rstrip(")")
    assert shown == repr(round(meta.latency_ms, 3))
    assert len(shown.split(".")[1]) <= 3
    assert meta.latency_ms != round(meta.latency_ms, 3)  # the noise is really there


def test_send_keeps_each_records_headers_for_its_consumers():
    """ProducerRecord.headers: (key, value) pairs in order, repeats kept; a consumer reading
    the record gets them back; a record without headers has none."""
    from sim.connect.topics import record_headers
    from sim.consumer import Consumer

    kernel = Kernel(seed=1)
    kernel.cluster.create_topic("h", 1, 1)
    producer = Producer(kernel, {"linger.ms": 0})
    producer.send("h", key="k", value="v", headers=[("trace", b"1"), ("trace", b"2")]).get()
    producer.send("h", key="k", value="w").get()
    consumer = Consumer(kernel, {"group.id": "g", "auto.offset.reset": "earliest"})
    consumer.subscribe(["h"])
    records = []
    while len(records) < 2:
        records += list(consumer.poll(1000))
    assert [record_headers(kernel, r.record_id) for r in records] == [
        [("trace", b"1"), ("trace", b"2")], []]


def test_a_header_needs_a_string_key():
    """RecordHeader refuses a null key; a header that is not a pair is refused too."""
    from sim.errors import ProduceError

    kernel = Kernel(seed=1)
    kernel.cluster.create_topic("h", 1, 1)
    producer = Producer(kernel)
    with pytest.raises(ProduceError, match="string key"):
        producer.send("h", value="v", headers=[(None, b"x")])
    with pytest.raises(ProduceError, match="pairs"):
        producer.send("h", value="v", headers=5)
    assert producer.buffer.n == 0  # nothing was sent


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(-1, 500)), min_size=1, max_size=12),
       st.integers(0, 2**32 - 1))
def test_acknowledgements_recorded_per_batch_read_back_per_record(batches, seed):
    """Batches acknowledged one by one (records in any order, offsets known or not) read back,
    record by record, as partition, consecutive offsets in batch order, and ack time."""
    from sim.producer import buffer as buffer_module

    total = sum(n for n, _ in batches)
    buf = buffer_module.RecordBuffer()
    buf.extend(total + 3)
    order = np.random.default_rng(seed).permutation(total)
    expected = {"partition": np.full(total + 3, -1), "offset": np.full(total + 3, -1),
                "ack_ms": np.full(total + 3, np.nan)}
    at = 0
    for b, (n, base) in enumerate(batches):
        idx = order[at : at + n]
        at += n
        buf.ack(idx, b % 7, 10.0 * b, base)
        expected["partition"][idx] = b % 7
        expected["ack_ms"][idx] = 10.0 * b
        if base >= 0:
            expected["offset"][idx] = np.arange(base, base + n)
        if b == 2:  # a read in between writes what was recorded so far
            assert buf.ack_ms[idx[0]] == 20.0
    for name, values in expected.items():
        np.testing.assert_array_equal(getattr(buf, name)[: total + 3], values)


def test_create_time_is_the_given_timestamp_else_the_send_time_on_the_producers_clock():
    """Records sent with a timestamp keep it; the others get the send time plus the producer's
    clock skew, floored to whole milliseconds, in the log."""
    kernel = Kernel(seed=3, brokers=1)
    kernel.cluster.create_topic("t", partitions=1)
    producer = Producer(kernel, {"lab.clock.skew.ms": 2, "linger.ms": 5})
    kernel.run(until_ms=10.25)
    producer.send("t", key="a", value="x", timestamp=7)
    producer.send("t", key="a", value="y")
    producer.send("t", key="a", value="z", timestamp=0)
    producer.flush()
    stored = kernel.cluster.partition("t", 0).log.column("timestamp_ms")
    assert stored.tolist() == [7, 12, 0]  # floor(10.25 + 2)


def test_each_batch_of_a_request_is_stored_with_its_own_records():
    """A request carries one batch per partition, as indices into the producer's buffer;
    each leader writes them when its log is read (``Producer.record_columns``): each
    partition's log holds exactly its own records' CreateTime, key hash, value size and record
    id."""
    kernel = Kernel(seed=3, brokers=1)
    kernel.cluster.create_topic("t", partitions=3)
    producer = Producer(kernel, {"lab.clock.skew.ms": 2, "linger.ms": 5})
    kernel.run(until_ms=10.25)
    keys = [f"key-{i}" for i in range(12)]
    for i, key in enumerate(keys):
        producer.send("t", key=key, value="v" * (i + 1), partition=i % 3,
                      timestamp=100 + i if i % 4 == 0 else None)
    producer.flush()
    assert kernel.trace.frame(events.REQUEST_SENT)["batches"].tolist() == [3]
    hashes = murmur2_array([key.encode() for key in keys])
    for p in range(3):
        mine = np.arange(p, 12, 3)  # this partition's records, in send order
        log = kernel.cluster.partition("t", p).log
        assert log.column("timestamp_ms").tolist() == [100 + i if i % 4 == 0 else 12
                                                       for i in mine]  # floor(10.25 + 2)
        assert log.column("key_hash").tolist() == hashes[mine].tolist()
        assert log.column("value_size").tolist() == producer.buffer.value_bytes[mine].tolist()
        assert log.column("record_id").tolist() == producer.record_ids(mine).tolist()


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1e6, allow_nan=False), st.floats(0, 1e3, allow_nan=False))
def test_a_request_timer_fires_when_call_at_would(now, latency):
    """``timer_at`` works the delay out as ``call_at`` does: ``(now + latency) - now`` is not
    always ``latency`` in floating point, and a timer off by one ulp would reorder events."""
    env = simpy.Environment(initial_time=now)
    fired: list[tuple[str, float]] = []
    call_at(env, now + latency, lambda: fired.append(("call_at", env.now)))
    timer_at(env, env.now, now + latency, lambda _timer: fired.append(("timer_at", env.now)))
    timer_at(env, env.now, now - 1.0, lambda _timer: fired.append(("past", env.now)))
    env.run()
    assert dict(fired)["timer_at"] == dict(fired)["call_at"]
    assert dict(fired)["past"] == now  # a time already past fires at once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=60), st.integers(1, 1200),
       st.data())
def test_appends_in_any_pieces_give_the_batches_of_one_record_at_a_time(sizes, batch_size,
                                                                        data):
    """``RecordAccumulator.append`` cuts the batches a record-at-a-time producer would: a
    record joins the open batch if it fits its write limit, else it closes that batch and
    opens one of ``max(batch.size, upper bound)`` — however the records are split into calls.
    A batch is opened at its first record's time, is full from the time of the record that
    filled it exactly or did not fit (``MemoryRecordsBuilder.isFull``), and keeps the latest
    send time of its records, whether or not they come in time order."""
    in_order = data.draw(st.booleans())
    times = (np.arange(len(sizes), dtype=np.float64) if in_order
             else np.array(data.draw(st.permutations(range(len(sizes)))), np.float64))
    # per batch: records, bytes, write limit, created_ms, full_ms, latest send time
    expected: list[list[float]] = []
    full = True
    for i, size in enumerate(sizes):
        if not full and expected[-1][1] + size > expected[-1][2]:
            expected[-1][4] = times[i]  # it does not fit: the open batch is full from now
            full = True
        if full:
            expected.append([0, RECORD_BATCH_OVERHEAD,
                             max(batch_size, batch_size_upper_bound(size)), times[i], math.inf,
                             -math.inf])
        expected[-1][0] += 1
        expected[-1][1] += size
        expected[-1][5] = max(expected[-1][5], times[i])
        full = expected[-1][1] >= expected[-1][2]
        if full:
            expected[-1][4] = times[i]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(sizes) - 1))) if len(sizes) > 1
                  else set())
    acc = RecordAccumulator(1, batch_size, records=None)
    appended = 0
    for a, z in zip([0, *cuts], [*cuts, len(sizes)], strict=True):
        piece = np.array(sizes[a:z], np.int32)
        consumed, piece_bytes = acc.append(0, np.arange(a, z),
                                           cs=np.cumsum(piece, dtype=np.int32),
                                           times=times[a:z], in_order=in_order)
        assert consumed == z - a
        appended += piece_bytes
    got = [[b.records, b.size_bytes, b.limit_bytes, b.created_ms, b.full_ms, b.max_time_ms]
           for b in acc.deques[0]]
    assert got == expected
    assert appended == sum(batch[1] for batch in expected)  # headers of new batches included


@pytest.mark.parametrize("pieces", [[2, 1], [3], [1, 1, 1]])
def test_a_batch_filled_exactly_is_full_at_its_last_record(pieces):
    """Records that fill a new batch's write limit exactly make it full at the last one's time
    (``MemoryRecordsBuilder.isFull``); the next record opens a new batch, in one call or many."""
    sizes = np.array([50, 50, 10], np.int32)  # 61 + 50 + 50 = 161 = batch.size
    acc = RecordAccumulator(1, 161, records=None)
    start = 0
    for count in pieces:
        stop = start + count
        acc.append(0, np.arange(start, stop), cs=np.cumsum(sizes[start:stop], dtype=np.int32),
                   times=np.arange(start, stop, dtype=np.float64))
        start = stop
    got = [(b.records, b.size_bytes, b.created_ms, b.full_ms) for b in acc.deques[0]]
    assert got == [(2, 161, 0.0, 1.0), (1, 71, 2.0, math.inf)]


@pytest.mark.parametrize("replication_factor", [1, 3])
def test_a_leader_reads_the_latest_send_time_each_batch_kept(monkeypatch, replication_factor):
    """The largest timestamp a leader records for a produced batch is the latest send time of
    its records (``DefaultRecordBatch.maxTimestamp``), whether read from what the batch kept as
    records were appended or gathered from the buffer — here with keyed and key-less records
    in the same batches, some appended out of send order."""
    kept: list[bool] = []
    unordered = 0  # batches whose records were not appended in send order
    original = Producer.max_timestamp

    def checked(producer: Producer, idx: np.ndarray) -> int:
        nonlocal unordered
        kept.append(id(idx) in producer.handed)
        got = original(producer, idx)
        times = producer.buffer.time_ms[idx]
        assert got == int(times.max())
        unordered += bool(np.any(np.diff(times) < 0))
        return got

    monkeypatch.setattr(Producer, "max_timestamp", checked)
    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("t", partitions=3, replication_factor=replication_factor)
    rng = np.random.default_rng(3)
    count = 3_000
    key_ids = np.where(rng.random(count) < 0.5, -1, rng.integers(0, 20, count))
    producer = Producer(kernel, {"linger.ms": 20, "batch.size": 2_000})
    producer.add_workload(Workload("t", np.sort(rng.random(count) * 1_000.0) + 0.25, key_ids,
                                   rng.integers(10, 200, count), [f"k{i}" for i in range(20)]))
    kernel.run()
    assert producer.acked == count
    assert any(kept)  # read from the batches as they were handed to their leaders
    assert unordered  # the latest send time is not always the last record's


@pytest.mark.parametrize(("time_ms", "in_order"), [
    ([], True), ([5.0], True), ([1.0, 1.0, 2.5], True), ([1.0, 3.0, 2.0], False)])
def test_a_record_stream_knows_whether_its_send_times_never_decrease(time_ms, in_order):
    """Only a stream whose send times never decrease lets a batch take the last record's time
    as its latest (``RecordStream.in_order``)."""
    times = np.array(time_ms, np.float64)
    stream = RecordStream(np.arange(len(times)), times, np.full(len(times), 10, np.int32))
    assert stream.in_order is in_order


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=80), st.integers(0, 79),
       st.integers(-50, 3_000), st.sampled_from([math.inf, 10.0, 40.0]))
def test_a_stream_finds_the_first_record_that_overflows_a_batch(sizes, pos, room, cap_ms):
    """``RecordStream.time_when_overflowing``: the send time of the first record from the
    stream's position whose bytes, with those before it, exceed ``room`` (or ``cap_ms`` if
    earlier) — whether it looks between the surely fitting and surely overflowing records
    one by one or searches the running sums."""
    count = len(sizes)
    stream = RecordStream(np.arange(count), np.arange(count, dtype=np.float64),
                          np.array(sizes, np.int32))
    stream.pos = min(pos, count)
    taken = sum(sizes[: stream.pos])
    first = next((j for j in range(count) if sum(sizes[: j + 1]) - taken > room), count)
    expected = min(float(first) if first < count else math.inf, cap_ms)
    assert stream.time_when_overflowing(room, cap_ms) == expected
