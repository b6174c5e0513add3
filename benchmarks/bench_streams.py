"""Streams runtime benchmark: records per wall-clock second through topologies on the cluster.

Run with ``python benchmarks/bench_streams.py``. For a stateless topology (filter → map_values →
to) and a counting one (group_by_key → count → to_stream → to), it feeds ``RECORDS`` keyed
records into a 4-partition topic, runs one ``KafkaStreams`` instance on a 3-broker cluster until
everything is processed and committed, and prints records per second. Beside each it times a
plain Python loop doing the same work on the same records (the same functions, a dict for the
count) in the same run, and prints the ratio loop-rate / streams-rate: how many times dearer a
record is when it goes through the simulated application (consumer polls, tasks, trace events,
producer batches, brokers) than through the bare functions.

Machines differ several-fold, so only the ratio, measured here in one process, is comparable.
The record cache is at its default (10 MiB), so the count emits once per key per commit; the
stateless topology writes two thirds of its input, and the producer's per-record ``send()``
is most of its cost.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

from sim.kernel import Kernel
from sim.producer import Producer
from sim.streams import KafkaStreams, StreamsBuilder

RECORDS = 20_000
KEYS = 200
REPEATS = 3


def keep(key: str, value: int) -> bool:
    return value % 3 != 0


def scale(value: int) -> int:
    return value * 10


def stateless(builder: StreamsBuilder) -> None:
    builder.stream("in").filter(keep).map_values(scale).to("out")


def counting(builder: StreamsBuilder) -> None:
    builder.stream("in").group_by_key().count().to_stream().to("out")


def plain_stateless(records: list[tuple[str, int]]) -> int:
    out = [(k, scale(v)) for k, v in records if keep(k, v)]
    return len(out)


def plain_counting(records: list[tuple[str, int]]) -> int:
    counts: dict[str, int] = {}
    for key, _ in records:
        counts[key] = counts.get(key, 0) + 1
    return len(counts)


def records() -> list[tuple[str, int]]:
    return [(f"key-{i % KEYS}", i) for i in range(RECORDS)]


def run_streams(build: Callable[[StreamsBuilder], None]) -> float:
    """Seconds to process ``RECORDS`` records on the simulated cluster (input sent up front)."""
    kernel = Kernel(seed=1, brokers=3)
    kernel.cluster.create_topic("in", 4)
    kernel.cluster.create_topic("out", 4)
    producer = Producer(kernel, {"client.id": "input"})
    for key, value in records():
        producer.send("in", key, value)
    builder = StreamsBuilder()
    build(builder)
    streams = KafkaStreams(kernel, builder.build(), {"application.id": "bench",
                                                     "commit.interval.ms": 1000})
    gc.collect()
    start = time.perf_counter()
    streams.start()
    kernel.run_until(lambda _k: processed(streams) >= RECORDS)
    elapsed = time.perf_counter() - start
    assert processed(streams) == RECORDS
    return elapsed


def processed(streams: KafkaStreams) -> int:
    return sum(active.task.metrics["process-total"] for thread in streams.threads
               for active in thread.tasks.values())


def run_plain(work: Callable[[list[tuple[str, int]]], int]) -> float:
    data = records()
    gc.collect()
    start = time.perf_counter()
    work(data)
    return time.perf_counter() - start


def main() -> None:
    print(f"{'topology':<10} {'streams rec/s':>14} {'plain rec/s':>14} {'plain/streams':>14}")
    for name, build, plain in (("stateless", stateless, plain_stateless),
                               ("counting", counting, plain_counting)):
        streams_s, plain_s = [], []
        for _ in range(REPEATS):  # alternate, so that load changes hit both alike
            streams_s.append(run_streams(build))
            plain_s.append(run_plain(plain))
        sim_rate = RECORDS / statistics.median(streams_s)
        plain_rate = RECORDS / statistics.median(plain_s)
        print(f"{name:<10} {sim_rate:>14,.0f} {plain_rate:>14,.0f} "
              f"{plain_rate / sim_rate:>14,.1f}")


if __name__ == "__main__":
    main()
