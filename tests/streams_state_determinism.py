"""A stateful Streams run with a crash and a restore, printed in full: run under several
PYTHONHASHSEEDs by ``test_streams_state.py``, which checks the outputs are identical."""

from __future__ import annotations

from sim.streams import KafkaStreams, StreamsBuilder
from sim.streams.materialized import Materialized
from sim.streams.rocksdb import read_rocksdb
from tests.streams_runtime_helpers import cluster, produce

show = print  # the parent test compares this script's output


def main() -> None:
    kernel = cluster({"in": 2, "out": 2}, seed=3)
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(Materialized.as_("counts")).to_stream().to("out")
    config = {"application.id": "det", "commit.interval.ms": 1000, "num.standby.replicas": 1}
    apps = [KafkaStreams(kernel, builder.build(), config) for _ in range(2)]
    for app in apps:
        app.start()
    for i in range(20):
        produce(kernel, "in", [(f"k{j}", i, None) for j in range(12)])
        kernel.run(until_ms=kernel.now_ms + 500)
    apps[0].crash()
    kernel.run(until_ms=kernel.now_ms + 60_000)
    show(apps[1].restore_frame().drop(columns=["instance", "thread"]).to_string())
    apps[1].close()
    kernel.run(until_ms=kernel.now_ms + 10_000)
    for app in apps:
        root = app.state_dir
        for path in sorted(p for p in root.rglob("*") if p.name == ".checkpoint"):
            show(path.relative_to(root), path.read_text(encoding="utf-8").split("\n"))
        for path in sorted(p for p in root.rglob("counts") if p.parent.name == "rocksdb"):
            show(path.relative_to(root), read_rocksdb(path))


if __name__ == "__main__":
    main()
