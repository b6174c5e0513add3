"""Lesson 06 (Kafka Streams, part 1): the topologies and runs the notebook shows.

Each function builds a small topology with the Streams DSL of :mod:`sim.streams`, or runs one
through Kafka's ``TopologyTestDriver`` and returns what came out as a pandas DataFrame, so that
every notebook cell stays a line or two and ``tests/test_lessons_streams.py`` can back each
number the lesson states by calling the same function.

Vocabulary (Kafka Streams'): a **topology** is the graph of processors a
``StreamsBuilder`` builds; **stream time** is the largest record timestamp a task has seen; a
record is **out of order** when its timestamp is below the stream time, and **late** (dropped,
counted in ``dropped-records``) when the window it belongs to closed before it arrived
(window end + grace ≤ stream time).

- the seed's example: :func:`unknown_payment_topology` and the payments of :data:`PAYMENTS`;
- running any topology: :func:`run_topology` (one row per output record, with the input that
  caused it);
- tables: :func:`table_updates` (a table is a stream of updates);
- counting: :func:`wordcount_topology`, :func:`split_words`, :data:`WORDCOUNT_LINES`;
- windows: :func:`window_run` (which windows each record joined, which were dropped, the
  final counts), with the records of :data:`SENSOR_READINGS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sim.errors import StreamsError
from sim.kernel import Kernel
from sim.payloads import payload
from sim.producer import Producer
from sim.streams import (
    KafkaStreams,
    Materialized,
    SessionWindows,
    StreamsBuilder,
    TimeWindows,
    Topology,
    TopologyTestDriver,
    Windowed,
)
from sim.streams import events as streams_events

__all__ = [
    "CLUSTER_SEED",
    "CUSTOMERS",
    "CUSTOMER_UPDATES",
    "JOIN_INPUTS",
    "OUTPUT_COLUMNS",
    "PAYMENTS",
    "SENSOR_READINGS",
    "SESSION_CLICKS",
    "WORDCOUNT_LINES",
    "ClusterRun",
    "StreamsApp",
    "WindowRun",
    "cache_comparison",
    "filter_kernel",
    "no_owner",
    "owned_tasks",
    "ownership",
    "payment_kernel",
    "payment_stream",
    "run_topology",
    "scaling_run",
    "split_words",
    "table_updates",
    "topic_records",
    "unknown_payment_topology",
    "window_run",
    "wordcount_kernel",
    "wordcount_on_cluster",
    "wordcount_topology",
]

OUTPUT_COLUMNS = ["input", "topic", "key", "value", "timestamp"]

PAYMENTS: list[tuple[str, int, int]] = [
    ("alice", 30, 1_000),
    ("unknown", 120, 2_000),
    ("bob", 250, 3_000),
    ("unknown", 5, 4_000),
    ("carol", 100, 5_000),
    ("alice", 80, 6_000),
]
"""(key, amount, timestamp ms): the payments the lesson sends to topic ``payment``."""

CUSTOMER_UPDATES: list[tuple[str, str | None, int]] = [
    ("alice", "Seoul", 1_000),
    ("bob", "Busan", 2_000),
    ("alice", "Paris", 3_000),
    ("bob", None, 4_000),
]
"""(customer, city, timestamp ms): a topic of customer addresses; ``None`` deletes (tombstone)."""

JOIN_INPUTS: list[tuple[str, str, Any, int]] = [
    ("customers", "alice", "Seoul", 0),
    ("customers", "bob", "Busan", 0),
    *[("payment", key, amount, timestamp) for key, amount, timestamp in PAYMENTS],
]
"""(topic, key, value, timestamp ms): two customers' cities, then the lesson's payments."""

WORDCOUNT_LINES = ["all streams lead to kafka", "hello kafka streams", "join kafka summit"]
"""The three lines typed in Kafka's Streams quickstart (``docs/streams/quickstart.html``)."""

SENSOR_READINGS: list[tuple[str, int]] = [
    ("s1", 1_000),
    ("s1", 4_000),
    ("s1", 5_500),
    ("s1", 4_200),   # out of order: stream time is 5,500
    ("s1", 8_000),
    ("s1", 11_500),
    ("s1", 9_000),   # out of order: stream time is 11,500
    ("s1", 13_000),
    ("s1", 2_000),   # out of order: stream time is 13,000
    ("s1", 18_000),
    ("s1", 14_000),  # out of order: stream time is 18,000
]
"""(key, timestamp ms) in the order they arrive: the windowing runs of the lesson. With tumbling
windows of 5 s the four out-of-order records are counted once the grace exceeds 500 ms, 1,500 ms,
8,000 ms and 3,000 ms respectively."""

SESSION_CLICKS: list[tuple[str, int]] = [("A", 10_000), ("A", 12_000), ("A", 20_000),
                                         ("A", 16_000)]
"""The ``SessionWindows`` javadoc's example, in seconds: with a 5 s gap, A@10 s and A@12 s form
one session, A@20 s another, and A@16 s merges the two."""


# --- running a topology --------------------------------------------------------------------------


def _record(item: Sequence[Any], topic: str | None) -> tuple[str, Any, Any, int | None]:
    """(topic, key, value, timestamp) from an input record."""
    fields = tuple(item)
    if topic is None:
        if len(fields) not in (3, 4) or not isinstance(fields[0], str):
            raise StreamsError(f"without a topic argument an input record is (topic, key, value)"
                               f" or (topic, key, value, timestamp), got {item!r}")
        topic, fields = fields[0], fields[1:]
    if len(fields) == 2:
        return topic, fields[0], fields[1], None
    if len(fields) == 3:
        return topic, fields[0], fields[1], fields[2]
    raise StreamsError(f"an input record is (key, value) or (key, value, timestamp), got {item!r}")


def run_topology(topology: Topology, records: Iterable[Sequence[Any]], topic: str | None = None,
                 config: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Pipe ``records`` into ``topology`` one at a time (``TopologyTestDriver``).

    Args:
        topology: what ``builder.build()`` returned.
        records: ``(key, value)`` or ``(key, value, timestamp_ms)`` tuples in arrival order,
            written to ``topic``; without ``topic`` each tuple starts with its topic.
        topic: the input topic.
        config: Streams configs for the driver (``application.id`` may be left out).

    Returns:
        One row per output record: ``input`` (the position, from 0, of the input record that
        caused it), ``topic``, ``key``, ``value`` and ``timestamp``; rows follow the inputs, and
        for one input, topics in name order and each topic's records in the order written.
        Windowed keys are shown as Kafka prints them, ``[key@start/end]``.
    """
    rows: list[dict[str, Any]] = []
    with TopologyTestDriver(topology, config) as driver:
        for n, item in enumerate(records):
            name, key, value, timestamp = _record(item, topic)
            driver.create_input_topic(name).pipe_input(key, value, timestamp)
            for produced in driver.produced_topic_names():
                for out in driver.create_output_topic(produced).read_records_to_list():
                    shown = str(out.key) if isinstance(out.key, Windowed) else out.key
                    rows.append({"input": n, "topic": produced, "key": shown,
                                 "value": out.value, "timestamp": out.timestamp})
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


class StreamsApp:
    """A function that adds processing to a ``StreamsBuilder``, as an application to test.

    ``StreamsApp(build)`` keeps ``build(builder)``; :meth:`topology` calls it on a new builder
    and returns the topology, :meth:`run` pipes records through it with the test driver and
    returns plain data (so that a grader can check the application without sharing its
    objects), :meth:`describe_text` returns ``describe()`` as text.
    """

    def __init__(self, build: Any) -> None:
        if not callable(build):
            raise StreamsError(f"StreamsApp takes a function build(builder), got {build!r}")
        self.build = build

    def topology(self) -> Topology:
        """A new ``StreamsBuilder``, ``build(builder)`` on it, then ``builder.build()``."""
        builder = StreamsBuilder()
        self.build(builder)
        return builder.build()

    def describe_text(self) -> str:
        """``topology().describe()`` as text."""
        return str(self.topology().describe())

    def run(self, records: Iterable[Sequence[Any]], topic: str | None = None
            ) -> list[tuple[int, str, Any, Any, int]]:
        """What :func:`run_topology` gives for a new topology, as ``(input, topic, key, value,
        timestamp)`` tuples, without the internal repartition topics."""
        topology = self.topology()
        frame = run_topology(topology, records, topic)
        frame = frame[~frame["topic"].isin(topology.internal_topics)]
        return [(int(n), str(name), key, value, int(timestamp))
                for n, name, key, value, timestamp in frame.itertuples(index=False, name=None)]

    def __repr__(self) -> str:
        return f"StreamsApp({getattr(self.build, '__name__', self.build)!r})"


def unknown_payment_topology() -> Topology:
    """The seed's example: keep the payments whose key is "unknown", write them to
    ``unknown-payment``."""
    builder = StreamsBuilder()
    builder.stream("payment").filter(lambda key, value: key == "unknown").to("unknown-payment")
    return builder.build()


# --- tables ---------------------------------------------------------------------------------------


def table_updates(updates: Iterable[tuple[Any, Any, int]] = CUSTOMER_UPDATES) -> pd.DataFrame:
    """Read ``updates`` as a KTable: after each record, the table's rows.

    Returns one row per update: the record (``key``, ``value``), what the table forwards
    downstream (its change: ``key`` → new value, ``None`` for a delete) and the whole table
    afterwards (``table``, ``rows``). A KStream of the same records would keep every one of
    them; the table keeps the latest value per key.
    """
    builder = StreamsBuilder()
    builder.table("customers", Materialized.as_("customers-store")).to_stream().to("changes")
    rows = []
    with TopologyTestDriver(builder.build()) as driver:
        source = driver.create_input_topic("customers")
        changes = driver.create_output_topic("changes")
        store = driver.get_key_value_store("customers-store")
        if store is None:  # the builder above names it; a lab bug if it is missing
            raise StreamsError("the table's store customers-store was not created")
        for key, value, timestamp in updates:
            source.pipe_input(key, value, timestamp)
            forwarded = changes.read_key_values_to_list()
            table = dict(sorted(store.all()))
            rows.append({"key": key, "value": "null (delete)" if value is None else value,
                         "forwarded": ", ".join(f"{k} → {'null' if v is None else v}"
                                                for k, v in forwarded),
                         "table": ", ".join(f"{k}: {v}" for k, v in table.items()) or "(empty)",
                         "rows": len(table)})
    return pd.DataFrame(rows)


# --- counting -------------------------------------------------------------------------------------


def split_words(line: str) -> list[str]:
    """WordCountDemo's ``Arrays.asList(value.toLowerCase(Locale.getDefault()).split("\\\\W+"))``.

    Java's ``String.split`` keeps a leading empty string but drops trailing ones; Python's
    ``re.split`` keeps both, so the trailing ones are trimmed here.
    """
    words = re.split(r"\W+", line.lower())
    while len(words) > 1 and words[-1] == "":
        words.pop()
    return words


def wordcount_topology() -> Topology:
    """Kafka's WordCountDemo: lines → words → group by word → count → ``streams-wordcount-output``.
    The store is named ``counts-store`` as in the Streams tutorial."""
    builder = StreamsBuilder()
    (builder.stream("streams-plaintext-input")
     .flat_map_values(split_words)
     .group_by(lambda key, word: word)
     .count(Materialized.as_("counts-store"))
     .to_stream()
     .to("streams-wordcount-output"))
    return builder.build()


# --- windows --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowRun:
    """A windowed count over records that arrive out of order.

    ``records``: one row per input record in arrival order — ``n``, ``key``, ``timestamp``,
    ``stream_time`` (after the record), ``out_of_order`` (below the stream time it found),
    ``windows`` (the windows it was counted in), ``late_for`` (the windows it belongs to that
    had already closed: for those it was dropped) and ``dropped`` (it missed a window).
    ``counts``: the final count of each window (``key``, ``start``, ``end``, ``count``).
    ``updates``: every update the count forwarded, in order (``input``, ``key``, ``value``).
    ``dropped``: the task's ``dropped-records`` total.
    """

    kind: str
    records: pd.DataFrame
    counts: pd.DataFrame
    updates: pd.DataFrame
    dropped: int
    windows: TimeWindows | SessionWindows


def window_run(windows: TimeWindows | SessionWindows,
               records: Iterable[tuple[str, int]] = SENSOR_READINGS) -> WindowRun:
    """Count ``records`` (key, timestamp) per key and window, through the test driver.

    ``windows`` is a :class:`TimeWindows` (tumbling or hopping) or :class:`SessionWindows`.
    """
    if not isinstance(windows, TimeWindows | SessionWindows):
        raise StreamsError(f"window_run takes TimeWindows or SessionWindows, got {windows!r}")
    builder = StreamsBuilder()
    (builder.stream("readings").group_by_key().windowed_by(windows)
     .count(Materialized.as_("counts")).to_stream().to("counts-per-window"))
    rows, updates = [], []
    final: dict[tuple[Any, int, int], int] = {}
    stream_time = -1
    with TopologyTestDriver(builder.build()) as driver:
        source = driver.create_input_topic("readings")
        out = driver.create_output_topic("counts-per-window")
        for n, (key, timestamp) in enumerate(records):
            before = driver.metrics()["dropped-records-total"]
            source.pipe_input(key, "reading", timestamp)
            dropped = driver.metrics()["dropped-records-total"] > before
            joined = []
            for record in out.read_records_to_list():
                window = record.key.window
                spot = (record.key.key, window.start_ms, window.end_ms)
                updates.append({"input": n, "key": str(record.key), "value": record.value})
                if record.value is None:
                    final.pop(spot, None)
                else:
                    final[spot] = record.value
                    joined.append(str(window))
            if isinstance(windows, TimeWindows):
                late = [str(w) for w in windows.windows_for(timestamp) if str(w) not in joined]
            else:
                late = ["its session"] if dropped else []
            rows.append({"n": n, "key": key, "timestamp": timestamp,
                         "stream_time": max(stream_time, timestamp),
                         "out_of_order": timestamp < stream_time,
                         "windows": ", ".join(joined), "late_for": ", ".join(late),
                         "dropped": dropped})
            stream_time = max(stream_time, timestamp)
        total = driver.metrics()["dropped-records-total"]
    counts = pd.DataFrame([{"key": k, "start": s, "end": e, "count": c}
                           for (k, s, e), c in sorted(final.items())],
                          columns=["key", "start", "end", "count"])
    kind = "session" if isinstance(windows, SessionWindows) else (
        "tumbling" if windows.advance_ms == windows.size_ms else "hopping")
    changes = pd.DataFrame(updates, columns=["input", "key", "value"], dtype=object)
    return WindowRun(kind, pd.DataFrame(rows), counts, changes, total, windows)



# --- on the simulated cluster ---------------------------------------------------------------------

CLUSTER_SEED = 6
"""The seed of every cluster run of the lesson."""
CUSTOMERS = ["alice", "bob", "carol", "dana", "erik", "unknown"]


def payment_stream(count: int, start_ms: int = 0,
                   every_ms: int = 100) -> list[tuple[str, int, int]]:
    """``count`` payments (key, amount, timestamp ms), one every ``every_ms``: customers in
    turn (every sixth payment is ``"unknown"``), amounts from 10 to 297."""
    return [(CUSTOMERS[n % len(CUSTOMERS)], 10 + (n * 37) % 288, start_ms + n * every_ms)
            for n in range(count)]


def payment_kernel(partitions: int = 6, seed: int = CLUSTER_SEED) -> Kernel:
    """A cluster with topics ``payment`` and ``unknown-payment`` of ``partitions`` each."""
    kernel = Kernel(seed=seed)
    for topic in ("payment", "unknown-payment"):
        kernel.cluster.create_topic(topic, partitions)
    return kernel


def topic_records(kernel: Kernel, topic: str) -> pd.DataFrame:
    """Every record below the high watermark of ``topic``: ``partition``, ``offset``, ``key``,
    ``value``, ``timestamp``, partition by partition in offset order."""
    rows = []
    for p, partition in enumerate(kernel.cluster.topics[topic].partitions):
        log = partition.log
        ids = log.column("record_id", 0, log.high_watermark)
        stamps = log.column("timestamp_ms", 0, log.high_watermark)
        for offset, (record_id, timestamp) in enumerate(zip(ids, stamps, strict=True)):
            key, value = payload(kernel, int(record_id))
            rows.append({"partition": p, "offset": offset, "key": key, "value": value,
                         "timestamp": int(timestamp)})
    return pd.DataFrame(rows, columns=["partition", "offset", "key", "value", "timestamp"])


def owned_tasks(instance: KafkaStreams) -> list[str]:
    """The active tasks of an instance's threads now, sorted."""
    return sorted(task.task_id for thread in instance.metadata_for_local_threads()
                  for task in thread.active_tasks)


def ownership(kernel: Kernel, end_ms: float | None = None) -> pd.DataFrame:
    """Which instance ran each task when, from the trace's ``streams.task`` events: one row per
    stretch (``task``, ``instance``, ``from_ms``, ``to_ms``); a task still open ends at
    ``end_ms`` (default: now). The instance is the thread's client id prefix."""
    events = kernel.trace.frame(streams_events.STREAMS_TASK)
    until = kernel.now_ms if end_ms is None else end_ms
    opened: dict[tuple[str, str], float] = {}
    rows = []
    for time_ms, thread, task, action in events[["time_ms", "component", "task", "action"]] \
            .itertuples(index=False, name=None):
        instance = re.sub(r"-StreamThread-\d+$", "", str(thread))
        if action == "created":
            opened[(task, instance)] = float(time_ms)
        elif (task, instance) in opened:
            rows.append({"task": task, "instance": instance,
                         "from_ms": opened.pop((task, instance)), "to_ms": float(time_ms)})
    rows.extend({"task": task, "instance": instance, "from_ms": start, "to_ms": float(until)}
                for (task, instance), start in opened.items())
    frame = pd.DataFrame(rows, columns=["task", "instance", "from_ms", "to_ms"])
    return frame.sort_values(["task", "from_ms"], kind="stable").reset_index(drop=True)


def no_owner(owners: pd.DataFrame, start_ms: float = 0.0) -> pd.DataFrame:
    """The stretches each task ran nowhere (``task``, ``from_ms``, ``to_ms``, ``ms``), from
    ``start_ms`` to the end of ``owners`` (as :func:`ownership` gives it)."""
    end = owners["to_ms"].max() if len(owners) else start_ms
    rows = []
    for task, stretches in owners.groupby("task", sort=True):
        at = start_ms
        for begin, finish in stretches[["from_ms", "to_ms"]].itertuples(index=False, name=None):
            if begin > at:
                rows.append({"task": task, "from_ms": at, "to_ms": begin, "ms": begin - at})
            at = max(at, finish)
        if at < end:
            rows.append({"task": task, "from_ms": at, "to_ms": end, "ms": end - at})
    return pd.DataFrame(rows, columns=["task", "from_ms", "to_ms", "ms"])


@dataclass(frozen=True)
class ClusterRun:
    """Streams instances that ran on a simulated cluster.

    ``instances`` by name; ``sent``: the payments written to ``payment``; ``owners``: which
    instance ran each task when (:func:`ownership`); ``marks``: what happened when
    (label → ms).
    """

    kernel: Kernel
    instances: dict[str, KafkaStreams]
    sent: list[tuple[str, int, int]]
    owners: pd.DataFrame
    marks: dict[str, int]

    def output(self, topic: str = "unknown-payment") -> pd.DataFrame:
        """The records the application wrote to ``topic``."""
        return topic_records(self.kernel, topic)

    def tasks_at(self, time_ms: float) -> dict[str, str]:
        """Instance → the tasks it ran at ``time_ms`` (comma-separated)."""
        now = self.owners[(self.owners["from_ms"] <= time_ms) & (self.owners["to_ms"] > time_ms)]
        return {name: ", ".join(sorted(now[now["instance"] == name]["task"]))
                for name in self.instances}

    def delivery(self) -> pd.DataFrame:
        """Payments sent, how many were keyed "unknown", and what ``unknown-payment`` holds."""
        out = self.output()
        return pd.DataFrame([{
            "payments sent": len(self.sent),
            '"unknown" payments': sum(key == "unknown" for key, _a, _t in self.sent),
            "written to unknown-payment": len(out),
            "written twice": int(out.duplicated(["key", "value", "timestamp"]).sum()),
        }])

    def pauses(self) -> pd.DataFrame:
        """The stretches a task had no owner after the group first formed."""
        first = self.owners["from_ms"].min()
        return no_owner(self.owners, first)


def scaling_run(join_ms: int = 20_000, leave_ms: int = 40_000, end_ms: int = 60_000,
                per_s: int = 20, seed: int = CLUSTER_SEED) -> ClusterRun:
    """The unknown-payment filter run by instances A and B; C starts at ``join_ms`` and closes
    at ``leave_ms``. A producer writes ``per_s`` payments a second to the 6 partitions of
    ``payment`` throughout. Every instance has one stream thread and the same
    ``application.id``, so together they are one consumer group."""
    kernel = payment_kernel(seed=seed)
    topology = unknown_payment_topology()

    def instance(name: str) -> KafkaStreams:
        return KafkaStreams(kernel, topology, {"application.id": "payments",
                                               "client.id": f"instance-{name}"})

    instances = {"instance-A": instance("A"), "instance-B": instance("B")}
    for streams in instances.values():
        streams.start()
    producer = Producer(kernel, {"client.id": "shop"})
    sent = payment_stream(end_ms * per_s // 1000, every_ms=1000 // per_s)
    pending = list(sent)
    for now in range(500, end_ms + 1, 500):
        while pending and pending[0][2] < now:
            key, amount, timestamp = pending.pop(0)
            producer.send("payment", key, amount, timestamp=timestamp)
        kernel.run(until_ms=now)
        if now == join_ms:
            instances["instance-C"] = instance("C")
            instances["instance-C"].start()
        if now == leave_ms:
            instances["instance-C"].close()
    return ClusterRun(kernel, instances, sent, ownership(kernel),
                      {"C starts": join_ms, "C closes": leave_ms})


def wordcount_on_cluster(cache_max_bytes: int | None = None,
                         commit_interval_ms: int | None = None, line_every_ms: int = 0,
                         seed: int = CLUSTER_SEED) -> pd.DataFrame:
    """The quickstart's three lines through WordCount on a one-partition cluster: what
    ``streams-wordcount-output`` holds 40 s after the last line (past one default commit
    interval, 30 s).

    Args:
        cache_max_bytes: ``statestore.cache.max.bytes``; ``None`` keeps Kafka's default, 10 MiB.
        commit_interval_ms: ``commit.interval.ms``; ``None`` keeps the default, 30,000.
        line_every_ms: the lines are typed at 0, this, and twice this (ms); each output record
            carries the timestamp of the line that caused it.
        seed: the kernel's seed.
    """
    kernel = Kernel(seed=seed)
    for topic in ("streams-plaintext-input", "streams-wordcount-output"):
        kernel.cluster.create_topic(topic, 1)
    config: dict[str, Any] = {"application.id": "streams-wordcount"}
    if cache_max_bytes is not None:
        config["statestore.cache.max.bytes"] = cache_max_bytes
    if commit_interval_ms is not None:
        config["commit.interval.ms"] = commit_interval_ms
    streams = KafkaStreams(kernel, wordcount_topology(), config)
    streams.start()
    producer = Producer(kernel, {"client.id": "console-producer"})
    for n, line in enumerate(WORDCOUNT_LINES):
        kernel.run(until_ms=n * line_every_ms)
        producer.send("streams-plaintext-input", None, line)
    kernel.run(until_ms=(len(WORDCOUNT_LINES) - 1) * line_every_ms + 40_000)
    return topic_records(kernel, "streams-wordcount-output")[["key", "value", "timestamp"]]


def cache_comparison() -> pd.DataFrame:
    """WordCount on the cluster without a cache and with the default one, side by side: the
    records of ``streams-wordcount-output`` in order, as ``word count``."""
    runs = {"statestore.cache.max.bytes=0": wordcount_on_cluster(0),
            "default cache (10 MiB)": wordcount_on_cluster()}
    columns = {name: [f"{k} {v}" for k, v in zip(run["key"], run["value"], strict=True)]
               for name, run in runs.items()}
    rows = max(len(c) for c in columns.values())
    return pd.DataFrame({name: c + [""] * (rows - len(c)) for name, c in columns.items()})


def filter_kernel(seed: int = CLUSTER_SEED) -> Kernel:
    """Section 6's run, ready to step: the unknown-payment filter started on
    :func:`payment_kernel` (``application.id`` ``payments``) and the six :data:`PAYMENTS` sent,
    the kernel not yet run (a stepper factory)."""
    kernel = payment_kernel(seed=seed)
    KafkaStreams(kernel, unknown_payment_topology(), {"application.id": "payments"}).start()
    producer = Producer(kernel, {"client.id": "shop"})
    for key, amount, timestamp in PAYMENTS:
        producer.send("payment", key, amount, timestamp=timestamp)
    return kernel


def wordcount_kernel(cache_max_bytes: int | None = 0, seed: int = CLUSTER_SEED) -> Kernel:
    """WordCount on a one-partition cluster with the quickstart's three lines sent at 0 ms, the
    kernel not yet run (a stepper factory); the run :func:`wordcount_on_cluster` makes."""
    kernel = Kernel(seed=seed)
    for topic in ("streams-plaintext-input", "streams-wordcount-output"):
        kernel.cluster.create_topic(topic, 1)
    config: dict[str, Any] = {"application.id": "streams-wordcount"}
    if cache_max_bytes is not None:
        config["statestore.cache.max.bytes"] = cache_max_bytes
    KafkaStreams(kernel, wordcount_topology(), config).start()
    producer = Producer(kernel, {"client.id": "console-producer"})
    for line in WORDCOUNT_LINES:
        producer.send("streams-plaintext-input", None, line)
    return kernel
