"""Lesson 05 (transactions): scripted logs, what each isolation level reads, the transaction
scenarios' outcomes and the cost of a transaction by its size.

Plain functions of the simulator, called by ``notebooks/05_transactions.ipynb`` and by
``tests/test_lessons_transactions.py`` alike, so that every number the lesson states is checked.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sim import scenarios
from sim.audit import audit_kernel
from sim.broker.transaction_index import COMMIT
from sim.consumer import Consumer
from sim.kernel import Kernel
from sim.lessons.whole_text import WholeTextFrame
from sim.producer import Producer
from sim.records import TopicPartition

TOPIC = "out"
TP = TopicPartition(TOPIC, 0)

EXAMPLE_SCRIPT: tuple[tuple[Any, ...], ...] = (
    ("A", "send", 3), ("B", "send", 2), ("A", "commit"), ("B", "abort"),
    ("C", "send", 2), ("A", "send", 1), ("A", "commit"),
)
"""The lesson's log: A commits twice, B aborts, C is still open at the end."""


# --- a scripted log ------------------------------------------------------------------------------


def scripted_log(script: Sequence[tuple[Any, ...]], seed: int = 3) -> Kernel:
    """One partition written by transactional producers, step by step.

    Each step is ``(transactional_id, "send", n)``, ``(transactional_id, "commit")`` or
    ``(transactional_id, "abort")``. Sends are flushed at once, so batches land in script order.
    A producer's first send begins its transaction; a transaction never ended stays open.
    """
    kernel = Kernel(seed=seed, brokers=3)
    kernel.cluster.create_topic(TOPIC, 1, 3)
    producers: dict[str, Producer] = {}
    value = 0
    for step in script:
        tid, action = step[0], step[1]
        producer = producers.get(tid)
        if producer is None:
            producer = Producer(kernel, {"transactional.id": tid, "client.id": tid,
                                         "linger.ms": 0})
            producer.init_transactions()
            producers[tid] = producer
        if action == "send":
            if producer.txn.state == "READY":
                producer.begin_transaction()
            for _ in range(int(step[2])):
                producer.send(TOPIC, key=f"{tid}{value}", value=value, partition=0)
                value += 1
            producer.flush()
        elif action == "commit":
            producer.commit_transaction()
        elif action == "abort":
            producer.abort_transaction()
        else:
            raise ValueError(f"unknown step {step!r}: use 'send', 'commit' or 'abort'")
    kernel.run(kernel.now_ms + 50)  # markers replicated, high watermark advanced
    return kernel


def log_table(kernel: Kernel) -> pd.DataFrame:
    """One row per batch of the lesson's partition: offsets, writer, kind and fate.

    kind is ``data``, ``COMMIT`` or ``ABORT`` (a marker); fate is how the writer's transaction
    ended: ``committed``, ``aborted`` or ``open``.
    """
    log = kernel.cluster.partition(TOPIC, 0).log
    batches = log.batches()
    names = {p.txn.producer_id: p.client_id for p in kernel.clients
             if isinstance(p, Producer) and p.txn is not None}
    rows = []
    for b in batches.itertuples():
        first, last = int(b.base_offset), int(b.base_offset) + int(b.records) - 1
        kind = "data"
        if b.is_control:
            kind = "COMMIT" if int(log.column("key_hash", first, first + 1)[0]) == COMMIT \
                else "ABORT"
        rows.append({"first_offset": first, "last_offset": last,
                     "writer": names.get(int(b.producer_id), str(b.producer_id)),
                     "kind": kind})
    table = pd.DataFrame(rows)
    # the first marker a writer wrote after a batch decides that batch's fate
    ends: list[tuple[int, str, str]] = [(r["first_offset"], r["writer"], r["kind"])
                                        for r in rows if r["kind"] != "data"]
    fates = []
    for r in rows:
        if r["kind"] != "data":
            fates.append("committed" if r["kind"] == "COMMIT" else "aborted")
            continue
        later = [k for offset, w, k in ends if w == r["writer"] and offset > r["last_offset"]]
        fates.append("open" if not later else
                     "committed" if later[0] == "COMMIT" else "aborted")
    table["fate"] = fates
    return table


def offsets_read(kernel: Kernel, isolation_level: str) -> list[int]:
    """The offsets a fresh consumer with ``isolation.level`` returns from the partition."""
    consumer = Consumer(kernel, {"isolation.level": isolation_level,
                                 "auto.offset.reset": "earliest"})
    consumer.assign([TP])
    offsets: list[int] = []
    while records := consumer.poll(timeout_ms=5):
        offsets += [r.offset for r in records]
    consumer.close()
    return offsets


def watermarks(kernel: Kernel) -> dict[str, int]:
    """The partition's log end offset, high watermark and last stable offset."""
    log = kernel.cluster.partition(TOPIC, 0).log
    return {"log end offset": log.log_end_offset, "high watermark": log.high_watermark,
            "last stable offset": log.last_stable_offset}


def isolation_table(kernel: Kernel) -> pd.DataFrame:
    """Side by side: which offsets each isolation level reads, and which it skips."""
    end = kernel.cluster.partition(TOPIC, 0).log.high_watermark
    rows = []
    for level in ("read_uncommitted", "read_committed"):
        read = offsets_read(kernel, level)
        rows.append({"isolation.level": level, "records read": len(read),
                     "offsets": ", ".join(map(str, read)),
                     "not read (below HW)": ", ".join(str(o) for o in range(end)
                                                      if o not in read)})
    return pd.DataFrame(rows).set_index("isolation.level")


COLOURS = {"committed": "#4c9f70", "aborted": "#d1495b", "open": "#edae49"}


def log_figure(table: pd.DataFrame, marks: dict[str, int]) -> Figure:
    """The partition as a row of offsets: data batches coloured by their transaction's fate,
    markers hatched, and the high watermark and the LSO as arrows below."""
    end = int(table["last_offset"].max()) + 1
    fig, ax = plt.subplots(figsize=(max(6.0, 0.62 * end + 1.5), 2.6), layout="constrained")
    for row in table.itertuples():
        for offset in range(row.first_offset, row.last_offset + 1):
            marker = row.kind != "data"
            ax.add_patch(Rectangle((offset, 0), 1, 1, facecolor=COLOURS[row.fate],
                                   edgecolor="black", hatch="//" if marker else None,
                                   alpha=0.55 if marker else 0.9))
            ax.text(offset + 0.5, 0.62, row.writer, ha="center", va="center", fontsize=10,
                    weight="bold")
            ax.text(offset + 0.5, 0.3, row.kind if marker else "", ha="center", va="center",
                    fontsize=7)
            ax.text(offset + 0.5, 1.12, str(offset), ha="center", va="bottom", fontsize=8)
    for name, y in (("high watermark", -0.35), ("last stable offset", -0.8)):
        x = marks[name]
        ax.annotate(f"{name.replace('last stable offset', 'LSO')} = {x}", xy=(x, 0),
                    xytext=(x, y), ha="center", va="top", fontsize=9,
                    arrowprops={"arrowstyle": "->"})
    handles = [Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="black", label=f)
               for f, c in COLOURS.items()]
    handles.append(Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//",
                             label="marker"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)
    ax.set_xlim(-0.2, end + 0.8)
    ax.set_ylim(-1.3, 1.45)
    ax.axis("off")
    ax.set_title(f"partition {TOPIC}-0: offsets 0–{end - 1}", fontsize=10, loc="left")
    return fig


# --- consume-transform-produce with a crash -----------------------------------------------------


@functools.cache
def scenario_run(name: str) -> Kernel:
    """A transaction scenario, run once per process (the lesson and its tests share it)."""
    return scenarios.load(name).run()


def output_copies(kernel: Kernel, topic: str, read_committed: bool) -> collections.Counter:
    """How many output records each input record has in ``topic``, as a fresh consumer with
    that isolation level reads it (below the LSO or the HW; aborted records dropped)."""
    from sim.audit import data_mask

    app = next(c.app for c in kernel.clients
               if getattr(getattr(c, "app", None), "output_topic", None) == topic)
    copies: collections.Counter = collections.Counter()
    for part in kernel.cluster.topic(topic).partitions:
        log = part.log
        stop = log.last_stable_offset if read_committed else log.high_watermark
        keep = data_mask(log, 0, stop, drop_aborted=read_committed)
        ids = log.column("record_id", 0, stop)[keep]
        copies.update(app.sources[int(i)] for i in ids)
    return copies


def crash_table(kernel: Kernel | None = None) -> pd.DataFrame:
    """``eos-consume-transform-produce``: per output topic, inputs, outputs read and the
    duplicates each isolation level sees, and the audit's output-duplicate count."""
    kernel = kernel or scenario_run("eos-consume-transform-produce")
    duplicates = audit_kernel(kernel).transactions["output-duplicate"]
    rows = []
    for topic, loop in (("out-alo", "at least once"), ("out-eos", "transactions")):
        committed = output_copies(kernel, topic, read_committed=True)
        everything = output_copies(kernel, topic, read_committed=False)
        rows.append({
            "output": topic, "loop": loop, "inputs": len(committed),
            "duplicates (read_committed)": sum(n - 1 for n in committed.values()),
            "duplicates (read_uncommitted)": sum(n - 1 for n in everything.values()),
            "audit: output-duplicate": sum(1 for d in duplicates if d["topic"] == topic),
        })
    return pd.DataFrame(rows).set_index("output")


def outcome_table(kernel: Kernel, consumer: str) -> pd.DataFrame:
    """The transactions of one member of a consume-transform-produce group, last ones first."""
    app = next(c.app for c in kernel.clients if getattr(c, "client_id", "") == consumer)
    frame = WholeTextFrame(app.outcomes)  # Kafka's error messages shown whole
    return frame[frame["consumer"] == consumer].tail(3)[["time_ms", "records", "result",
                                                         "error"]]


def zombie_summary(kernel: Kernel | None = None) -> dict[str, Any]:
    """``zombie-fenced``: how eos-1's last attempt ended, the audit's zombie writes, and what
    read_committed readers of the output see."""
    kernel = kernel or scenario_run("zombie-fenced")
    app = next(c.app for c in kernel.clients if getattr(c, "client_id", "") == "eos-1")
    last = [o for o in app.outcomes if o["consumer"] == "eos-1"][-1]
    copies = output_copies(kernel, "out-eos", read_committed=True)
    return {"eos-1 last result": last["result"], "at (ms)": last["time_ms"],
            "error": last["error"],
            "zombie writes (audit)": len(audit_kernel(kernel).transactions["zombie-write"]),
            "inputs in out-eos": len(copies), "most copies of one input": max(copies.values())}


def hanging_summary(kernel: Kernel | None = None) -> dict[str, Any]:
    """``hanging-transaction``: when eos-1's transaction was aborted, the read_committed
    reader's largest lag and its end-to-end waits."""
    from sim.consumer import metrics

    kernel = kernel or scenario_run("hanging-transaction")
    waits = audit_kernel(kernel).transactions["read-committed-wait"]
    reader = next(w for w in waits if w["consumer"] == "reader")
    lag = metrics.group_lag(kernel, "reader", every_ms=250.0)
    return {"abort at (s)": round(abort_time_ms(kernel, "eos-1", 7_000) / 1000, 1),
            "largest reader lag (records)": int(lag["lag"].max()),
            "median wait (ms)": round(reader["median_latency_ms"]),
            "longest wait (ms)": round(reader["max_latency_ms"])}


# --- the cost of a transaction ------------------------------------------------------------------

COST_RECORDS = 2_000
COST_PARTITIONS = 6


@functools.cache
def cost_run(size: int, transactional: bool, records: int = COST_RECORDS) -> dict[str, float]:
    """Send at least ``records`` (and at least five groups) in groups of ``size``: a
    transaction each, or a flush each. Simulated throughput, and the median time from a
    group's first send to its commit (or flush) returning: how long its first record waits
    before a read_committed consumer may see it."""
    records = max(records, 5 * size)
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("bench", COST_PARTITIONS, 3, {"min.insync.replicas": 2})
    config: dict[str, Any] = {"client.id": "bench", "linger.ms": 0}
    if transactional:
        config["transactional.id"] = "bench-app"
    producer = Producer(kernel, config)
    if transactional:
        producer.init_transactions()
    began = kernel.now_ms
    durations = []
    for first in range(0, records, size):
        start = kernel.now_ms
        if transactional:
            producer.begin_transaction()
        for i in range(first, min(first + size, records)):
            producer.send("bench", key=f"key-{i % 600}", value="x" * 100)
        if transactional:
            producer.commit_transaction()
        else:
            producer.flush()
        durations.append(kernel.now_ms - start)
    elapsed = kernel.now_ms - began
    return {"records/s": records / elapsed * 1000,
            "ms per group": float(pd.Series(durations).median())}


def cost_table(sizes: Sequence[int] = (1, 10, 100, 1000)) -> pd.DataFrame:
    """Transactional against plain (idempotent, flushed) producing, by transaction size."""
    rows = []
    for size in sizes:
        plain, txn = cost_run(size, False), cost_run(size, True)
        rows.append({"transaction size": size,
                     "plain records/s": round(plain["records/s"]),
                     "transactional records/s": round(txn["records/s"]),
                     "ratio": round(txn["records/s"] / plain["records/s"], 2),
                     "ms per flush": round(plain["ms per group"], 1),
                     "ms per transaction": round(txn["ms per group"], 1)})
    return pd.DataFrame(rows).set_index("transaction size")


def cost_figure(table: pd.DataFrame) -> Figure:
    """Throughput (left) and time per transaction (right) against transaction size."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 3.2), layout="constrained")
    sizes = table.index.to_numpy()
    left.plot(sizes, table["plain records/s"], "o-", label="plain (flush per group)")
    left.plot(sizes, table["transactional records/s"], "s-", label="transactions")
    left.set(xscale="log", yscale="log", xlabel="records per transaction",
             ylabel="records per simulated second", title="throughput")
    left.legend(fontsize=8)
    right.plot(sizes, table["ms per flush"], "o-", label="plain: send to flushed")
    right.plot(sizes, table["ms per transaction"], "s-", label="transactions: send to committed")
    right.set(xscale="log", xlabel="records per transaction", ylabel="ms (median)",
              title="latency of one group")
    right.set_ylim(bottom=0)
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig


def size_explorer(size: int) -> pd.DataFrame:
    """One transaction size, transactional against plain: for the lesson's slider."""
    return cost_table((size,))


def abort_time_ms(kernel: Kernel, transactional_id: str, after_ms: float) -> float:
    """When the coordinator began aborting ``transactional_id``'s transaction after a time."""
    from sim.broker.transaction_coordinator import PREPARE_ABORT

    trace = kernel.trace.to_frame()
    rows = trace[(trace["kind"] == "txn.state") & (trace["transactional_id"] == transactional_id)
                 & (trace["state"] == PREPARE_ABORT) & (trace["time_ms"] > after_ms)]
    return float(rows["time_ms"].iloc[0])


def hanging_figure(kernel: Kernel | None = None) -> Figure:
    """``hanging-transaction``: the read_committed reader's lag over time, the crash and the
    coordinator's abort."""
    from sim.consumer import metrics

    kernel = kernel or scenario_run("hanging-transaction")
    lag = metrics.group_lag(kernel, "reader", every_ms=250.0)
    aborted = abort_time_ms(kernel, "eos-1", 7_000)
    fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
    ax.plot(lag["time_ms"] / 1000, lag["lag"], color="C0", label="reader lag (records)")
    ax.axvline(7, color="C3", linestyle="--", label="eos-1 crashes (7 s)")
    ax.axvline(aborted / 1000, color="C2", linestyle=":",
               label=f"coordinator aborts its transaction ({aborted / 1000:.1f} s)")
    ax.set(xlabel="simulated time (s)", ylabel="records",
           title="read_committed reader of out-eos: lag (log end − committed offset)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


# --- a consume-transform-produce loop written as steps (exercise 05.b) --------------------------

LOOP_STEPS = ("begin_transaction", "send", "process", "flush", "send_offsets_to_transaction",
              "commit_transaction", "commit_sync")
"""What a loop may do with one poll's records, in the order it chooses."""


def check_steps(steps: Sequence[str]) -> list[str]:
    """The steps as a list, or a ValueError saying which one is not a loop step."""
    if isinstance(steps, str) or not isinstance(steps, Sequence):
        raise ValueError(f"steps must be a list of step names, got {type(steps).__name__}")
    for step in steps:
        if step not in LOOP_STEPS:
            raise ValueError(f"unknown step {step!r}; the steps are {', '.join(LOOP_STEPS)}")
    return list(steps)


class StepLoop:
    """``on_records`` that runs one poll's records through ``steps`` (see ``LOOP_STEPS``).

    A loop with ``begin_transaction`` uses a transactional producer (its ``transactional.id``
    is the consumer's client id); ``send`` writes one output record per input record.
    """

    def __init__(self, steps: Sequence[str], output_topic: str) -> None:
        from sim.consumer.transform import ConsumeTransformProduce

        self.steps = check_steps(steps)
        self.transactional = "begin_transaction" in self.steps
        self.base = ConsumeTransformProduce(output_topic, transactional=self.transactional,
                                            producer_config={"transaction.timeout.ms": 10_000})
        # the audit and output_copies find the loop's output through these
        self.output_topic = output_topic
        self.sources = self.base.sources
        self.writers = self.base.writers
        self.outcomes = self.base.outcomes

    def __repr__(self) -> str:
        return f"StepLoop({' → '.join(self.steps)})"

    def startup_gen(self, consumer: Any) -> Any:
        """The producer starts with the consumer's process (``init_transactions()`` once)."""
        return self.base.startup_gen(consumer)

    def shutdown_gen(self, consumer: Any) -> Any:
        return self.base.shutdown_gen(consumer)

    def process_crashed(self, consumer: Any) -> None:
        self.base.process_crashed(consumer)

    def __call__(self, consumer: Any, records: Any) -> None:
        for step in self.steps:
            if step == "process":
                consumer.process(records)
            elif step == "commit_sync":
                consumer.commit_sync()
            else:
                consumer.run_step(functools.partial(self._step, step, consumer, records))

    def _step(self, step: str, consumer: Any, records: Any) -> Any:
        producer = self.base.producer_for(consumer)
        txn = producer.txn
        if step == "begin_transaction":
            producer.begin_transaction()
        elif step == "send":
            self.base._send(consumer, producer, records)
        elif step == "flush":
            yield from producer.flush_gen()
        elif step == "send_offsets_to_transaction":
            positions = {c.tp: c.last_offset + 1 for c in records.chunks}
            yield from txn.send_offsets_gen(positions, consumer.group_metadata())
        elif step == "commit_transaction":
            yield from txn.commit_gen()
            self.base._outcome(consumer, records, "committed")


LOOP_SCENARIO = "eos-consume-transform-produce"
LOOP_RECORDS = 3000


def loop_crash_run(steps: Sequence[str], crash_at_ms: float = 7_000) -> Kernel:
    """The ``eos-consume-transform-produce`` world with one group (two members, 50 records a
    poll, 2 ms a record, ``transaction.timeout.ms=10000``) running ``steps``; member loop-1
    crashes at ``crash_at_ms``. It runs for 30 s: long enough for the coordinator to abort the
    crashed member's open transaction."""
    from importlib import resources

    import yaml

    check_steps(steps)
    text = resources.files("sim.scenarios").joinpath(f"{LOOP_SCENARIO}.yaml").read_text("utf-8")
    scenario = yaml.safe_load(text)
    group = dict(scenario["consumers"][0], group="loop", name="loop", output_topic="out-loop")
    scenario["consumers"] = [group]
    scenario["topics"] = [t for t in scenario["topics"] if t["name"] == "payments"]
    scenario["topics"].append({"name": "out-loop", "partitions": 2, "replication_factor": 3})
    scenario["faults"] = [{"at_ms": crash_at_ms, "crash": {"consumer": "loop-1"}}]
    scenario["producers"][0]["workload"]["records"] = LOOP_RECORDS
    scenario["duration_ms"] = 30_000
    kernel = scenarios.parse(yaml.safe_dump(scenario), "loop-crash").build()
    app = StepLoop(steps, "out-loop")
    for client in kernel.clients:
        if getattr(client, "group_id", None) == "loop":
            client.app = app
    kernel.run(scenario["duration_ms"])
    return kernel


def loop_duplicates(kernel: Kernel) -> dict[str, int]:
    """Inputs, and inputs whose output a read_committed reader of out-loop reads twice or more."""
    copies = output_copies(kernel, "out-loop", read_committed=True)
    return {"inputs read": len(copies), "duplicates": sum(n - 1 for n in copies.values())}


# --- how big may a transaction be? (exercise 05.c) ----------------------------------------------


@functools.cache
def latency_run(size: int, rate_per_s: float = 1000.0, records: int = 2000,
                give_up_ms: float = 1000.0) -> dict[str, float]:
    """Records arrive at ``rate_per_s``; a transactional producer sends them in transactions
    of ``size`` records, each committed as soon as it is full. Per record: the time from its
    arrival until its transaction has committed (when read_committed readers may see it).
    The run stops early once a record has waited more than ``give_up_ms``: the commits are not
    keeping up."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"a transaction size is a whole number of records ≥ 1, got {size!r}")
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("events", COST_PARTITIONS, 3, {"min.insync.replicas": 2})
    producer = Producer(kernel, {"client.id": "app", "linger.ms": 0,
                                 "transactional.id": "app"})
    producer.init_transactions()
    start = kernel.now_ms
    arrivals = [start + i * 1000.0 / rate_per_s for i in range(records)]
    waits: list[float] = []
    transactions = 0
    for first in range(0, records, size):
        group = arrivals[first:first + size]
        producer.begin_transaction()
        for i, arrival in enumerate(group, start=first):
            if kernel.now_ms < arrival:
                kernel.run(arrival)
            producer.send("events", key=f"key-{i % 600}", value="x" * 100)
        producer.commit_transaction()
        transactions += 1
        waits += [kernel.now_ms - arrival for arrival in group]
        if waits[-len(group)] > give_up_ms:
            break
    series = pd.Series(waits)
    return {"max wait (ms)": float(series.max()), "median wait (ms)": float(series.median()),
            "transactions": transactions}
