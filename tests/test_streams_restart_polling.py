"""An idle stream thread polls as often after a crash and restart as before it.

``StreamThread.runOnceWithoutProcessingThreads`` (``pollPhase``) blocks in ``poll(poll.ms)``
while there is no input, so an idle thread looks for records at the rate its consumer configs
give. A restarted instance is a new process with the same configuration: its client configs
(here ``consumer.lab.poll.check.ms``, how often an empty poll looks at the leaders again) must
come back with it, or the restarted thread looks far more often than before the crash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from typing import Any

from sim.streams import KafkaStreams, StreamsBuilder
from tests.streams_runtime_helpers import cluster, produce

CONFIGS = {"application.id": "idle", "poll.ms": 1_000, "consumer.lab.poll.check.ms": 1_000,
           "producer.linger.ms": 20}


def count_looks(app: KafkaStreams) -> Counter[int]:
    """Per simulated second, how often the app's main consumers wait inside ``poll``: each
    wait ends in one look at the leaders for records."""
    looks: Counter[int] = Counter()
    for thread in app.threads:
        consumer = thread.consumer
        wait = consumer.wait

        def counted(delay_ms: float, wake: Any = None, consumer: Any = consumer,
                    wait: Any = wait) -> Generator[Any, Any, None]:
            looks[int(consumer.now_ms // 1000)] += 1
            return (yield from wait(delay_ms, wake))

        consumer.wait = counted
    return looks


def test_an_idle_restarted_thread_polls_at_the_configured_rate():
    kernel = cluster({"in": 1, "out": 1})
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count().to_stream().to("out")
    app = KafkaStreams(kernel, builder.build(), CONFIGS)
    app.start()
    produce(kernel, "in", [(f"k{i}", "v", None) for i in range(20)])
    before = count_looks(app)
    kernel.run(until_ms=30_000)
    app.crash()
    restarted = app.restart()
    after = count_looks(restarted)
    kernel.run(until_ms=90_000)
    assert restarted.state.value == "RUNNING"
    idle_before = [before[s] for s in range(15, 30)]
    idle_after = [after[s] for s in range(60, 90)]  # long after the restore and rebalance
    # poll.ms = lab.poll.check.ms = 1 s: about one look a second (two when a poll ends
    # mid-second, a few more while the group rebalances once the crashed member's session
    # times out), before the crash and after the restart alike
    for idle in (idle_before, idle_after):
        rate = sum(idle) / len(idle)
        assert rate <= 1.5, f"the thread looks {rate:.1f} times a second"
        assert sorted(idle)[len(idle) // 2] == 1


def test_a_restarted_instance_keeps_its_client_configs():
    """``AbstractConfig.originals()``: the new process is built from the configs as given,
    the prefixed client configs included, not only the Streams ones."""
    kernel = cluster({"in": 1, "out": 1})
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    app = KafkaStreams(kernel, builder.build(), CONFIGS)
    app.start()
    kernel.run(until_ms=5_000)
    app.crash()
    restarted = app.restart()
    for name in ("main_consumer_configs", "restore_consumer_configs", "producer_configs"):
        assert getattr(restarted.config, name)("x") == getattr(app.config, name)("x"), name
    assert restarted.config.originals()["state.dir"] == str(app.state_dir)
