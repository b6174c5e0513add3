"""A producer retries a batch at a new leader without its backoff (KIP-951).

Kafka 4.0's broker answers a produce request with NOT_LEADER_OR_FOLLOWER together with the
partition's current leader and epoch as it knows them (``KafkaApis.getCurrentLeader``); the
producer takes them into its metadata at once (``Sender.handleProduceResponse`` →
``Metadata.updatePartitionLeadership``), and a batch whose partition now has a newer leader epoch
than the attempt that failed skips its ``retry.backoff.ms`` (``ProducerBatch
.hasLeaderChangedForTheOngoingRetry``, ``RecordAccumulator.shouldBackoff``). Any other retry
still waits for its backoff.
"""

from __future__ import annotations

from sim import faults
from sim import trace as events
from sim.kernel import Kernel
from sim.producer import Producer
from sim.producer.accumulator import ProducerBatch
from sim.workloads import Workload

LATENCY_MS = 2.0


def test_leader_epoch_across_retries_as_kafkas_producer_batch_test():
    """The sequence of ``ProducerBatchTest.testWithLeaderChangesAcrossRetries``."""
    batch = ProducerBatch(partition=1, created_ms=0.0, limit_bytes=16384)
    batch.maybe_update_leader_epoch(-1)  # no leader known yet
    assert not batch.leader_changed_for_retry
    batch.maybe_update_leader_epoch(100)  # the first attempt is not a retry
    assert not batch.leader_changed_for_retry
    assert (batch.leader_epoch, batch.attempts_when_leader_changed) == (100, 0)
    batch.attempts += 1  # retried (reenqueued) to a new leader
    batch.maybe_update_leader_epoch(101)
    assert batch.leader_changed_for_retry
    batch.maybe_update_leader_epoch(101)  # asked again during the same retry
    assert batch.leader_changed_for_retry
    batch.attempts += 1  # retried again to the same leader
    batch.maybe_update_leader_epoch(101)
    assert not batch.leader_changed_for_retry
    batch.maybe_update_leader_epoch(100)  # an older epoch changes nothing
    batch.maybe_update_leader_epoch(-1)
    assert not batch.leader_changed_for_retry
    assert batch.leader_epoch == 101


def run_preferred_election(monkeypatch) -> tuple[Kernel, list[tuple[float, str, float]]]:
    """Leader 1 crashes at 2 s, broker 0 takes over, 1 returns at 14 s and catches up, and a
    preferred leader election at 20 s moves the partition back to 1 while broker 0 is alive and
    hears the controller: broker 0 answers the acks=all requests waiting there with
    NOT_LEADER_OR_FOLLOWER. Returns the kernel and each retry's (time, error, backoff ms)."""
    decided: list[tuple[float, str, float]] = []
    retry_or_fail = Producer.retry_or_fail

    def recorded(self: Producer, state, batch: ProducerBatch, error: str, now_ms: float) -> None:
        retry_or_fail(self, state, batch, error, now_ms)
        decided.append((now_ms, error, batch.retry_at_ms - now_ms))

    monkeypatch.setattr(Producer, "retry_or_fail", recorded)
    kernel = Kernel(seed=3, brokers=3, broker_configs={"lab.network.latency.ms": LATENCY_MS})
    kernel.cluster.create_topic("t", partitions=1, replication_factor=3)
    part = kernel.cluster.partition("t", 0)
    assert part.leader == part.replicas[0] == 1
    producer = Producer(kernel, {"acks": "all", "linger.ms": 0})
    producer.add_workload(Workload.generate(kernel.spawn_rng(), "t", 30_000, 1000.0))
    for at_ms, fault in ((2_000, faults.CrashBroker(1)), (14_000, faults.RestartBroker(1)),
                         (20_000, faults.PreferredLeaderElection())):
        faults.schedule(kernel, at_ms, fault)
    kernel.run(32_000)
    assert (part.leader, sorted(part.isr)) == (1, [0, 1, 2])
    return kernel, decided


def test_a_batch_refused_by_the_old_leader_goes_to_the_new_one_without_a_backoff(monkeypatch):
    """After the preferred election, the batches broker 0 refused are retried at broker 1 at
    once; before KIP-951 each waited about retry.backoff.ms (100 ms ± 20 %)."""
    kernel, decided = run_preferred_election(monkeypatch)
    moved = [(at, backoff) for at, error, backoff in decided
             if error == "NOT_LEADER_OR_FOLLOWER"]
    assert len(moved) >= 2
    assert all(at >= 20_000 for at, _ in moved)
    assert all(backoff == 0 for _, backoff in moved)
    sent = kernel.trace.frame(events.REQUEST_SENT)
    first_retry_ms = moved[0][0]
    after = sent[sent["time_ms"] >= first_retry_ms]
    assert after["time_ms"].iloc[0] == first_retry_ms  # sent in the same instant
    assert after["node"].iloc[0] == 1


def test_other_retries_still_back_off(monkeypatch):
    """Retries whose partition kept its leader wait for their backoff: the disconnects after
    the crash (no leader is elected before broker 1 is fenced) and the out-of-order sequences
    at the new leader (the producer already sent to it), each at least 0.8 × the exponential
    backoff of its attempt (KIP-580's jitter)."""
    _, decided = run_preferred_election(monkeypatch)
    others = [(error, backoff) for _, error, backoff in decided
              if error != "NOT_LEADER_OR_FOLLOWER"]
    assert {error for error, _ in others} >= {"NETWORK_EXCEPTION",
                                             "OUT_OF_ORDER_SEQUENCE_NUMBER"}
    assert all(backoff >= 0.8 * 100 for _, backoff in others)
