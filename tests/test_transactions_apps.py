"""Consume-transform-produce with and without transactions, the transaction scenarios, and the
exactly-once property under random crashes and network cuts (the fault fuzzer's schedules)."""

from __future__ import annotations

import collections
import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import scenarios
from sim.audit import audit_kernel
from sim.broker.transaction_coordinator import TXN_STATE
from sim.errors import ScenarioError
from sim.fuzz.generator import PROFILES, generate
from sim.trace import FAULT


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
    not open a transaction (a live one would leave TxnOffsetCommit offsets pending, for which
    the restarted consumer's OffsetFetch with require_stable gets UNSTABLE_OFFSET_COMMIT until
    the transaction ends)."""
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


def test_a_crash_or_hang_aimed_at_a_member_its_fenced_app_closed_has_no_effect():
    """In zombie-fenced, eos-1 wakes at 32 s, is fenced (ProducerFencedException) and its
    application closes the consumer. Faults scheduled for it later passed the scenario's
    load-time check (it was running as far as the schedule knows) but aborted the run with
    IllegalStateError (fuzz finding transactions--error-hang-of-consumer-closed-by-fenced-app).
    Now a crash or hang of a closed consumer is a ``fault`` event saying it had no effect; a
    restart starts it again."""
    import yaml

    data = yaml.safe_load((Path(scenarios.__file__).parent / "zombie-fenced.yaml").read_text())
    data["faults"] += [{"at_ms": 40000, "hang": {"consumer": "eos-1", "duration_ms": 1000}},
                       {"at_ms": 41000, "crash": {"consumer": "eos-1"}},
                       {"at_ms": 42000, "restart": {"consumer": "eos-1"}}]
    kernel = scenarios.from_dict(data, "zombie-faults.yaml").build()
    eos_1 = next(c for c in kernel.clients if getattr(c, "client_id", "") == "eos-1")
    kernel.run(39999)
    assert eos_1.lifecycle == "closed"
    kernel.run(60000)
    assert eos_1.lifecycle == "running"
    faults = kernel.trace.frame(FAULT)
    faults = faults[faults.component == "eos-1"]
    assert faults.fault.tolist() == ["consumer_hang", "consumer_hang", "consumer_crash",
                                    "consumer_restart"]
    assert "no effect" not in faults.detail.iloc[0]
    assert all(faults.detail.iloc[1:3].str.endswith("no effect: the consumer is closed"))
    counts = collections.Counter(output_view(kernel, "out-eos", read_committed=True))
    assert len(counts) == 4000
    assert max(counts.values()) == 1


# --- start-up and close: init_transactions() before the first poll; close() closes both ------


def processor_world() -> Any:
    """400 records in ``in`` (one partition) for group ``g`` to copy to ``out``."""
    from sim.consumer.group import group_coordinator
    from sim.kernel import Kernel
    from sim.producer import Producer

    kernel = Kernel(seed=3, brokers=3)
    kernel.cluster.create_topic("in", 1, 3)
    kernel.cluster.create_topic("out", 1, 3)
    group_coordinator(kernel)
    feed = Producer(kernel, {"client.id": "feed", "linger.ms": 0})
    for i in range(400):
        feed.send("in", key=f"k{i}", value=i)
    feed.flush()
    return kernel


def processor(kernel: Any, name: str, transactional_id: str | None = None) -> Any:
    """A member of group ``g`` running its own transactional copy loop (20 records a poll,
    5 ms a record); ``transactional_id`` replaces the default, the client id."""
    from sim.consumer import Consumer
    from sim.consumer.transform import ConsumeTransformProduce

    producer_config: dict[str, Any] = {"transaction.timeout.ms": 60000}
    if transactional_id is not None:
        producer_config["transactional.id"] = transactional_id
    app = ConsumeTransformProduce("out", producer_config=producer_config)
    consumer = Consumer(kernel, {"group.id": "g", "client.id": name, "max.poll.records": 20,
                                 "session.timeout.ms": 10000, "auto.offset.reset": "earliest",
                                 "isolation.level": "read_committed"}, app, 5)
    consumer.subscribe(["in"])
    return consumer


def txn_states(kernel: Any, transactional_id: str, after_ms: float) -> Any:
    states = kernel.trace.frame(TXN_STATE)
    return states[(states.transactional_id == transactional_id) & (states.time_ms > after_ms)]


def first_poll_ms(kernel: Any, client_id: str, after_ms: float) -> float:
    trace = kernel.trace.to_frame()
    polls = trace[(trace.kind == "consumer.poll") & (trace.component == client_id)
                  & (trace.time_ms > after_ms)]
    return float(polls.time_ms.min())


def test_a_new_instance_fences_the_zombie_and_aborts_its_transaction_before_polling():
    """``KafkaProducer.initTransactions`` fences older instances with the same transactional.id
    and aborts their open transaction; an application calls it once, before its poll loop
    (Kafka's ``ExactlyOnceMessageProcessor`` example, before ``subscribe``). Instance a freezes
    mid-transaction; instance b, with the same transactional.id, starts 100 ms later: a's
    transaction is aborted at once, 9 s before b gets a's partition (at a's session timeout)
    and polls its first records; when a wakes, it is fenced."""
    kernel = processor_world()
    a = processor(kernel, "a", "processor-0")
    a.run()
    kernel.run(kernel.now_ms + 4000)
    assert a.app.producers["a"].txn.state == "IN_TRANSACTION"
    a.hang(30_000)
    kernel.run(kernel.now_ms + 100)
    started_ms = kernel.now_ms
    b = processor(kernel, "b", "processor-0")
    b.run()
    kernel.run(started_ms + 40_000)

    states = txn_states(kernel, "processor-0", started_ms)
    abort = states[states.state == "PrepareAbort"].iloc[0]
    assert abort.producer_epoch == 1  # b's InitProducerId bumped a's epoch 0
    assert abort.time_ms < started_ms + 200
    assert abort.time_ms < first_poll_ms(kernel, "b", started_ms) - 5_000
    assert a.app.outcomes[-1]["result"] == "fenced"
    assert b.app.producers["b"].txn.producer_epoch == 2  # the abort's bump, then b's own


def test_a_restarted_consumer_aborts_its_crashed_transaction_at_start_up():
    """A consumer that crashes mid-transaction and restarts at once: its new producer's
    init_transactions() aborts the crashed instance's transaction within a few round trips,
    not when the restarted member polls its first records again (after the group has waited
    for the crashed member's session to time out)."""
    kernel = processor_world()
    consumer = processor(kernel, "eos")
    consumer.run()
    kernel.run(kernel.now_ms + 4000)
    assert consumer.app.producers["eos"].txn.state == "IN_TRANSACTION"
    consumer.crash()
    consumer.restart()
    restarted_ms = kernel.now_ms
    kernel.run(restarted_ms + 30_000)

    states = txn_states(kernel, "eos", restarted_ms)
    abort = states[states.state == "PrepareAbort"].iloc[0]
    assert abort.time_ms < restarted_ms + 200
    assert abort.time_ms < first_poll_ms(kernel, "eos", restarted_ms)
    inputs = kernel.cluster.partition("in", 0).log.column("record_id").tolist()
    out = collections.Counter(output_view(kernel, "out", read_committed=True))
    assert sorted(out) == sorted(inputs)


def test_a_closed_app_finishes_its_transaction_and_closes_its_producer():
    """close() while the loop processes a poll's records: the loop commits their transaction
    (it checks for close before the next poll, as Kafka's example loop does); then the
    application closes its producer, which leaves no transaction open, and the consumer,
    which leaves the group. Restarted, the consumer has a new producer with a new epoch."""
    kernel = processor_world()
    consumer = processor(kernel, "eos")
    consumer.run()
    kernel.run(kernel.now_ms + 4000)
    producer = consumer.app.producers["eos"]
    assert producer.txn.state == "IN_TRANSACTION"
    consumer.close()
    closed_ms = kernel.now_ms
    kernel.run(closed_ms + 1000)

    assert consumer.state == "closed"
    assert producer.closed
    assert producer.txn.state == "READY"
    assert consumer.app.outcomes[-1]["result"] == "committed"
    states = txn_states(kernel, "eos", closed_ms)
    assert states.state.iloc[-1] == "CompleteCommit"
    for part in kernel.cluster.topic("out").partitions:
        assert part.log.last_stable_offset == part.log.high_watermark
    consumer.restart()
    kernel.run(kernel.now_ms + 1000)
    assert consumer.app.producers["eos"] is not producer
    assert consumer.app.producers["eos"].txn.producer_epoch == producer.txn.producer_epoch + 1


def test_a_consumer_restarted_while_closing_runs_one_loop_with_one_producer():
    """close() while the loop's commit_transaction() waits for a transaction coordinator it
    cannot reach, then restart() before the commit ends: the restart cuts the close short, so
    the old process ends (its producer with it) and the new process's loop alone drives the
    new producer. A Kafka client is never driven by two loops: before this, the old loop
    went on polling after its commit as the new process, calling begin_transaction() and
    commit_transaction() on the new producer alongside the new loop, whose
    IllegalStateError the app took for a fence (fuzz finding
    transactions--eos-lost-two-loop-iterations-after-leave-restart)."""
    from sim.producer.transactional import COMMITTING

    kernel = processor_world()
    consumer = processor(kernel, "eos")
    consumer.run()
    kernel.run(kernel.now_ms + 3000)
    producer = consumer.app.producers["eos"]
    while producer.txn.state != COMMITTING:
        kernel.run(kernel.now_ms + 0.5)
    network = kernel.cluster.network
    for broker in range(3):
        network.cut(producer.client_id, broker)
    consumer.close()
    kernel.run(kernel.now_ms + 50)
    consumer.restart()
    restarted_ms = kernel.now_ms
    kernel.run(restarted_ms + 2000)
    for broker in range(3):
        network.heal(producer.client_id, broker)
    kernel.run(restarted_ms + 40_000)

    assert producer.crashed  # the old process is gone, and its producer with it
    assert consumer.app.producers["eos"] is not producer
    assert consumer.lifecycle == "running"
    later = [o for o in consumer.app.outcomes if o["time_ms"] > restarted_ms]
    assert later
    assert all(o["result"] == "committed" for o in later), later
    inputs = kernel.cluster.partition("in", 0).log.column("record_id").tolist()
    out = collections.Counter(output_view(kernel, "out", read_committed=True))
    assert sorted(out) == sorted(inputs)


def _one_record_batch(offset: int, control: bool, producer: int = 7) -> Any:
    """A stand-in for a stored batch of one record (``sim.broker.log.Batch``)."""
    from types import SimpleNamespace

    return SimpleNamespace(base_offset=offset, last_offset=offset, producer_id=producer,
                           is_control=control)


def _kernel_with_log(batches: list[Any], aborted: list[Any]) -> Any:
    """A stand-in kernel whose every partition has one log holding ``batches``, whose
    aborted transactions are ``aborted``: what ``_aborted_reads`` reads of it."""
    from types import SimpleNamespace

    log = SimpleNamespace(
        transactions=SimpleNamespace(aborted=aborted),
        log_end_offset=batches[-1].last_offset + 1,
        batches_overlapping=lambda start, stop: [
            b for b in batches if b.last_offset >= start and b.base_offset < stop])
    return SimpleNamespace(cluster=SimpleNamespace(
        partition=lambda topic, partition: SimpleNamespace(log=log)))


def test_an_aborted_read_is_tied_to_the_retried_marker_when_the_first_lost_its_answer():
    """A leader appends an ABORT marker (offset 2), its follower copies it, and the leader
    loses its leadership before its high watermark covers the marker: WriteTxnMarkers fails,
    the coordinator retries at the new leader (``TransactionMarkerRequestCompletionHandler``,
    NOT_LEADER_OR_FOLLOWER), which appends a second marker (offset 3) that ends no
    transaction (``ProducerAppendInfo.appendEndTxnMarker``). The log's aborted transaction
    ends at 2 and only the marker at 3 was acknowledged: a read of offset 1 is tied to it,
    not left without a cause; an exact marker is still preferred."""
    import pandas as pd

    from sim.audit import _aborted_reads
    from sim.broker.transaction_index import AbortedTxn

    pid = 7
    batch = _one_record_batch
    batches = [batch(0, False, producer=8), batch(1, False), batch(2, True), batch(3, True),
               batch(4, False, producer=8), batch(5, False), batch(6, True)]
    aborted = [AbortedTxn(pid, 1, 2, 1), AbortedTxn(pid, 5, 6, 5)]
    kernel = _kernel_with_log(batches, aborted)
    reads = pd.DataFrame({"consumer": ["uncommitted", "uncommitted"], "topic": ["out", "out"],
                          "partition": [0, 0], "offset": [1, 5]})
    markers = pd.DataFrame({
        "seq": [10, 20], "time_ms": [42105.0, 50000.0], "kind": ["txn.marker"] * 2,
        "component": ["broker-0"] * 2, "detail": [""] * 2, "topic": ["out"] * 2,
        "partition": [0, 0], "producer_id": [pid, pid], "producer_epoch": [1, 1],
        "marker": ["ABORT", "ABORT"], "offset": [3, 6]})
    found = _aborted_reads(kernel, reads, markers)
    assert [(r["first_offset"], r["cause"] and r["cause"]["seq"]) for r in found] == [(1, 10),
                                                                                      (5, 20)]


def test_a_later_transactions_abort_marker_is_not_taken_for_an_earlier_ones():
    """Producer 7 aborts a transaction (record 0, marker 1) and that marker is never
    acknowledged nor retried here; it then writes record 2 in a new transaction, which an
    acknowledged ABORT marker at 3 ends. A read of offset 0 has no marker of its own: the
    marker at 3 follows a data batch of the producer, so it is the later transaction's
    (``ProducerAppendInfo.appendEndTxnMarker`` ends the transaction open at its append) and
    the read is left without a cause, while a read of offset 2 is tied to it. A retried
    marker is the producer's next batch after the end (``TransactionMarkerRequestCompletion
    Handler`` retries the same marker), and only an ABORT of this producer is taken."""
    import pandas as pd

    from sim.audit import _aborted_reads
    from sim.broker.transaction_index import AbortedTxn

    pid = 7
    batch = _one_record_batch
    aborted = [AbortedTxn(pid, 0, 1, 0), AbortedTxn(pid, 2, 3, 2)]
    reads = pd.DataFrame({"consumer": ["uncommitted"] * 2, "topic": ["out"] * 2,
                          "partition": [0, 0], "offset": [0, 2]})

    def marker_events(kinds: list[str], offsets: list[int], producer: int = pid) -> pd.DataFrame:
        n = len(offsets)
        return pd.DataFrame({
            "seq": [10 * (i + 1) for i in range(n)], "time_ms": [1000.0 * (i + 1)
                                                                 for i in range(n)],
            "kind": ["txn.marker"] * n, "component": ["broker-0"] * n, "detail": [""] * n,
            "topic": ["out"] * n, "partition": [0] * n, "producer_id": [producer] * n,
            "producer_epoch": [1] * n, "marker": kinds, "offset": offsets})

    later = _kernel_with_log([batch(0, False), batch(1, True), batch(2, False),
                              batch(3, True)], aborted)
    found = _aborted_reads(later, reads, marker_events(["ABORT"], [3]))
    assert [(r["first_offset"], r["cause"] and r["cause"]["seq"]) for r in found] == [
        (0, None), (2, 10)]

    # a retried marker right after the first one is taken, but only if it is an ABORT
    retried = _kernel_with_log([batch(0, False), batch(1, True), batch(2, True),
                                batch(3, False, producer=8)], aborted[:1])
    found = _aborted_reads(retried, reads[:1], marker_events(["ABORT"], [2]))
    assert [r["cause"] and r["cause"]["seq"] for r in found] == [10]
    found = _aborted_reads(retried, reads[:1], marker_events(["COMMIT"], [2]))
    assert [r["cause"] for r in found] == [None]

    # an acknowledged marker at the transaction's end is its cause only if it is this
    # producer's ABORT (another's, truncated by an unclean election, may have held the offset)
    ended = _kernel_with_log([batch(0, False), batch(1, True)], aborted[:1])
    found = _aborted_reads(ended, reads[:1], marker_events(["ABORT"], [1], producer=8))
    assert [r["cause"] for r in found] == [None]
    found = _aborted_reads(ended, reads[:1], marker_events(["ABORT"], [1]))
    assert [r["cause"] and r["cause"]["seq"] for r in found] == [10]
