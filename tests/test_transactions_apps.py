"""Consume-transform-produce with and without transactions, the transaction scenarios, and the
exactly-once property under random crashes and network cuts (the fault fuzzer's schedules)."""

from __future__ import annotations

import collections
import copy
from typing import Any

import numpy as np
import pytest

from sim import scenarios
from sim.audit import audit_kernel
from sim.broker.transaction_coordinator import TXN_STATE
from sim.errors import ScenarioError
from sim.fuzz.generator import PROFILES, generate


def output_view(kernel: Any, topic: str, read_committed: bool) -> list[int]:
    """Input record ids behind the output records a fresh consumer would read."""
    from sim.audit import data_mask

    app = next(c.app for c in kernel.clients
               if getattr(getattr(c, "app", None), "output_topic", None) == topic)
    ids = []
    for part in kernel.cluster.topic(topic).partitions:
        log = part.log
        stop = log.last_stable_offset if read_committed else log.high_watermark
        column = log.column("record_id", 0, stop)
        keep = data_mask(log, 0, stop, drop_aborted=read_committed)
        ids += [app.sources[int(i)] for i in column[keep]]
    return ids


@pytest.fixture(scope="module")
def eos_run() -> Any:
    return scenarios.load("eos-consume-transform-produce").run()


def test_transactions_give_each_input_exactly_once_at_least_once_duplicates(eos_run):
    """The same crash: transactional output (read_committed) holds every input once; the
    at-least-once app wrote the crashed member's last batch again."""
    inputs = set(eos_run.cluster.partition("payments", 0).log.column("record_id").tolist()
                 + eos_run.cluster.partition("payments", 1).log.column("record_id").tolist())
    eos = collections.Counter(output_view(eos_run, "out-eos", read_committed=True))
    alo = collections.Counter(output_view(eos_run, "out-alo", read_committed=True))
    assert set(eos) == inputs
    assert max(eos.values()) == 1
    assert set(alo) == inputs
    assert sum(n - 1 for n in alo.values()) > 0
    dirty = collections.Counter(output_view(eos_run, "out-eos", read_committed=False))
    assert sum(n - 1 for n in dirty.values()) > 0  # the aborted copies are in the log


def test_audit_names_output_duplicates_only_for_the_at_least_once_app(eos_run):
    report = audit_kernel(eos_run)
    duplicates = report.transactions["output-duplicate"]
    assert duplicates
    assert {d["topic"] for d in duplicates} == {"out-alo"}
    assert not any(d["transactional"] for d in duplicates)
    assert {d["cause"]["component"] for d in duplicates} == {"alo-1"}
    assert report.valid


def test_zombie_is_fenced_and_its_writes_stay_invisible():
    kernel = scenarios.load("zombie-fenced").run()
    app = next(c.app for c in kernel.clients if getattr(c, "client_id", "") == "eos-1")
    assert app.outcomes[-1]["consumer"] == "eos-1"
    assert app.outcomes[-1]["result"] == "fenced"
    zombie = audit_kernel(kernel).transactions["zombie-write"]
    assert zombie
    assert zombie[0]["producer"].startswith("eos-1")
    assert zombie[0]["cause"]["kind"] == "txn.state"
    counts = collections.Counter(output_view(kernel, "out-eos", read_committed=True))
    assert len(counts) == 4000
    assert max(counts.values()) == 1


def test_hanging_transaction_stalls_read_committed_until_the_timeout():
    """eos-1 crashes at 7 s; its transaction (timeout 30 s) holds out-eos's LSO back, so the
    read_committed reader waits more than 20 s for some records, then catches up."""
    kernel = scenarios.load("hanging-transaction").run()
    waits = audit_kernel(kernel).transactions["read-committed-wait"]
    reader = next(w for w in waits if w["consumer"] == "reader")
    assert 20_000 < reader["max_latency_ms"] < 45_000
    assert reader["median_latency_ms"] < 1_000
    for part in kernel.cluster.topic("out-eos").partitions:
        assert part.log.last_stable_offset == part.log.high_watermark  # nothing left open


def test_only_the_read_uncommitted_group_reads_aborted_records():
    kernel = scenarios.load("read-uncommitted-sees-aborts").run()
    aborted = audit_kernel(kernel).transactions["aborted-read"]
    assert aborted
    assert {a["consumer"] for a in aborted} == {"dirty"}
    assert all(a["cause"]["kind"] == "txn.marker" for a in aborted)


def test_scenario_refuses_a_transform_app_without_an_output_topic():
    text = """
name: bad
duration_ms: 1000
topics: [{name: a}]
producers: [{workload: {topic: a, records: 1, rate_per_s: 1}}]
consumers: [{group: g, topics: [a], app: consume-transform-produce}]
"""
    with pytest.raises(ScenarioError, match="output_topic must name a topic"):
        scenarios.parse(text)
    with pytest.raises(ScenarioError, match="output_topic belongs to app"):
        scenarios.parse(text.replace("app: consume-transform-produce",
                                     "app: at-least-once, output_topic: a"))


# --- the exactly-once property under the fuzzer's faults --------------------------------------


def transactional_schedule(index: int) -> dict[str, Any]:
    """Fuzzer schedule ``index`` (broker crashes, network cuts, consumer crashes and hangs),
    with the consumer group turned into a transactional consume-transform-produce app."""
    scenario = copy.deepcopy(generate(PROFILES["consumers"].scaled(400), seed=16, index=index))
    scenario["topics"].append({"name": "out", "partitions": 3, "replication_factor": 3,
                               "configs": {"min.insync.replicas": 2}})
    for spec in scenario["consumers"]:
        spec.update(app="consume-transform-produce", output_topic="out",
                    producer_config={"transaction.timeout.ms": 10000},
                    processing_ms_per_record=100)  # busy: crashes land mid-transaction
    return scenario


CONSUMER_FAULT_SCHEDULES = [i for i in range(40)
                            if "consumer-" in generate(PROFILES["consumers"], 16, i)["description"]
                            ][:6]
"""Schedules of seed 16 that crash, hang or remove a consumer (besides broker faults)."""


@pytest.mark.parametrize("index", CONSUMER_FAULT_SCHEDULES)
def test_transactional_loop_is_exactly_once_under_crashes_and_cuts(index):
    import yaml

    scenario = transactional_schedule(index)
    kernel = scenarios.parse(yaml.safe_dump(scenario), f"fuzz-{index}").run()
    inputs = np.concatenate([p.log.column("record_id", 0, p.log.high_watermark)
                             for p in kernel.cluster.topic("payments").partitions])
    out = collections.Counter(output_view(kernel, "out", read_committed=True))
    assert sorted(out) == sorted(inputs.tolist()), scenario["description"]
    assert max(out.values()) == 1, scenario["description"]


def test_the_same_schedule_without_transactions_writes_duplicates():
    """The property is not vacuous: schedule 8 (a consumer crash amid broker cuts) makes the
    at-least-once loop write some inputs' output twice."""
    import yaml

    scenario = transactional_schedule(8)
    for spec in scenario["consumers"]:
        spec.update(transactional=False)
        spec.pop("producer_config")
    kernel = scenarios.parse(yaml.safe_dump(scenario), "fuzz-8-alo").run()
    out = collections.Counter(output_view(kernel, "out", read_committed=True))
    assert max(out.values()) > 1


# --- a crashed consumer's producer dies with it ------------------------------------------------

CRASH_MID_TRANSACTION = """
name: crash-while-the-coordinator-is-out-of-reach
seed: 11
duration_ms: 40000
cluster: {brokers: 3}
topics:
- {name: in, partitions: 1, replication_factor: 3}
- {name: out, partitions: 1, replication_factor: 3}
producers:
- workload: {topic: in, records: 300, rate_per_s: 20}
consumers:
- group: eos
  name: eos
  topics: [in]
  app: consume-transform-produce
  output_topic: out
  producer_config: {transaction.timeout.ms: 60000}
  config: {max.poll.records: 20, session.timeout.ms: 10000, auto.offset.reset: earliest}
"""


def test_a_crashed_consumer_takes_its_transactional_producer_with_it():
    """The application's ``KafkaProducer`` lives in its process: when the process dies, the
    Sender thread that retries AddPartitionsToTxn and AddOffsetsToTxn (Kafka's
    ``TransactionManager`` handlers) dies too. Here the producer cannot reach any broker when
    its consumer crashes and restarts at once; after the links heal, the dead instance must
    not open a transaction (a live one would leave TxnOffsetCommit offsets pending, and the
    restarted consumer's OffsetFetch with require_stable would get UNSTABLE_OFFSET_COMMIT
    until transaction.timeout.ms, never calling init_transactions() to fence it)."""
    kernel = scenarios.parse(CRASH_MID_TRANSACTION).build()
    kernel.run(5000)
    consumer = next(c for c in kernel.clients if getattr(c, "client_id", "") == "eos")
    producer = consumer.app.producers["eos"]
    network = kernel.cluster.network
    for broker in range(3):
        network.cut(producer.client_id, broker)
    kernel.run(6000)
    assert producer.txn.state == "IN_TRANSACTION"  # its AddPartitionsToTxn cannot get through
    consumer.crash()
    consumer.restart()
    crashed_ms = kernel.now_ms
    kernel.run(7000)
    for broker in range(3):
        network.heal(producer.client_id, broker)
    kernel.run(40000)

    states = kernel.trace.frame(TXN_STATE)
    late = states[(states.time_ms > crashed_ms) & (states.producer_epoch == 0)]
    assert late.empty, late[["time_ms", "state", "partitions"]]
    assert consumer.app.producers["eos"] is not producer
    inputs = kernel.cluster.partition("in", 0).log.column("record_id").tolist()
    out = collections.Counter(output_view(kernel, "out", read_committed=True))
    assert sorted(out) == sorted(inputs)
    assert max(out.values()) == 1
