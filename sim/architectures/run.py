"""One run of the workload on a simulated cluster, with every architecture attached.

All variants see the same payments at the same moments (and the same cluster and faults): the
services send each payment to topic ``payments`` when it arrives (key = merchant, timestamp =
event time), the batch-collection services dump the same payments to files, and at every
sample time (``sample_every_ms``) each variant is asked for its current answer. At
``workload.change_ms`` every variant is told that the business changed the rule.

The ``payments`` topic keeps its whole history (``retention.ms`` 7 days, Kafka's default) and
is tiered: a segment closes every hour of event time (``segment.ms``), is copied to the remote
tier, and leaves the brokers' disks after ``local.retention.ms`` (an hour).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.architectures.batch import BatchCollection
from sim.architectures.data_lake import StreamingDataLake
from sim.architectures.kappa import KappaArchitecture
from sim.architectures.lambda_ import LambdaArchitecture
from sim.architectures.workload import HOUR_MS, Workload, cells, encode_value, payments, truth
from sim.errors import ConfigError
from sim.faults import schedule as schedule_fault
from sim.kernel import Kernel
from sim.producer import Producer

TOPIC = "payments"
PRODUCER_CLIENT_ID = "payment-services"
"""The services' producer (faults can cut it off from brokers by this id)."""
VARIANTS = ("batch", "lambda", "kappa", "lake")
"""The short names of the four architectures, in the lesson's order."""

BROKER_CONFIGS: dict[str, Any] = {"remote.log.storage.system.enable": True,
                                  "remote.log.manager.task.interval.ms": 30_000}
TOPIC_CONFIGS: dict[str, Any] = {"remote.storage.enable": True, "segment.ms": HOUR_MS,
                                 "local.retention.ms": HOUR_MS}


def make_variant(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """A new architecture by short name (:data:`VARIANTS`), built with ``options`` (its
    constructor's keyword arguments, e.g. ``batch_every_ms`` for lambda)."""
    makers = {"batch": BatchCollection, "lambda": LambdaArchitecture,
              "kappa": KappaArchitecture, "lake": StreamingDataLake}
    if name not in makers:
        raise ConfigError(f"architecture {name!r} is unknown; choose from {', '.join(VARIANTS)}")
    return makers[name](**(options or {}))


@dataclass
class ArchitectureRun:
    """What one run leaves: the cluster, the payments and every variant's answers over time.

    ``answers[s, v, c]`` is variant ``v``'s answer for cell ``c`` (``cells[c]`` = (merchant,
    hour)) at ``sample_ms[s]``; NaN where it had none.
    """

    kernel: Kernel
    workload: Workload
    payments: pd.DataFrame
    variants: dict[str, Any]
    partitions: int
    replication_factor: int
    topic: str = TOPIC
    cells: list[tuple[str, int]] = field(default_factory=list)
    cell_index: dict[tuple[str, int], int] = field(default_factory=dict)
    sample_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    answers: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    outage: tuple[int, int] | None = None

    def answer_at(self, variant: str, time_ms: float) -> pd.Series:
        """A variant's answer at the last sample at or before ``time_ms``, per cell."""
        s = int(np.searchsorted(self.sample_ms, time_ms, side="right")) - 1
        if s < 0:
            raise ConfigError(f"no sample at or before {time_ms} ms (the first is at "
                              f"{self.sample_ms[0]:g} ms)")
        v = list(self.variants).index(variant)
        index = pd.MultiIndex.from_tuples(self.cells, names=["merchant", "hour"])
        return pd.Series(self.answers[s, v], index=index, name=variant)

    def truth_at(self, time_ms: float, rule: str | None = None) -> pd.Series:
        """The right answer at ``time_ms`` (:func:`sim.architectures.workload.truth`)."""
        return truth(self.payments, self.workload, time_ms, rule).astype(float)

    def table_at(self, time_ms: float) -> pd.DataFrame:
        """Every variant's answer and the right one at ``time_ms``, one row per cell."""
        frame = pd.DataFrame({name: self.answer_at(name, time_ms) for name in self.variants})
        frame["right answer"] = self.truth_at(time_ms)
        return frame

    @property
    def end_ms(self) -> float:
        return float(self.sample_ms[-1])


def _cluster(workload: Workload, seed: int, partitions: int, replication_factor: int,
             topic_configs: dict[str, Any] | None) -> tuple[Kernel, pd.DataFrame]:
    kernel = Kernel(seed=seed, brokers=max(replication_factor, 1), broker_configs=BROKER_CONFIGS)
    kernel.cluster.create_topic(TOPIC, partitions, replication_factor,
                                {**TOPIC_CONFIGS, **(topic_configs or {})})
    return kernel, payments(workload, kernel.spawn_rng())


def run_payments(workload: Workload | None = None, seed: int = 9, partitions: int = 2,
                 replication_factor: int = 3) -> pd.DataFrame:
    """The payments :func:`simulate` sends with these arguments, without running anything."""
    return _cluster(workload or Workload(), seed, partitions, replication_factor, None)[1]


def simulate(workload: Workload | None = None, seed: int = 9, variants: Sequence[str] = VARIANTS,
             sample_every_ms: int = 10_000, tail_ms: int = 3 * 60_000, partitions: int = 2,
             replication_factor: int = 3,
             topic_configs: dict[str, Any] | None = None,
             outage: tuple[int, int] | None = None,
             options: Mapping[str, Mapping[str, Any]] | None = None,
             faults: Sequence[tuple[float, Any]] = (),
             advance: Callable[[Kernel, float], None] | None = None) -> ArchitectureRun:
    """Run the workload with the named architectures attached (module docstring).

    Args:
        workload: the payments' shape and the time of the logic change.
        seed: the kernel's seed (the payments come from its random stream).
        variants: short names from :data:`VARIANTS`.
        sample_every_ms: how often every variant is asked for its answer.
        tail_ms: how long the run goes on after the last payment (jobs finish, tables catch up).
        partitions: partitions of ``payments`` and of every output topic.
        replication_factor: of every topic.
        topic_configs: configs of ``payments`` to change from :data:`TOPIC_CONFIGS`.
        outage: ``(start_ms, end_ms)``: every processing component — Streams applications,
            batch jobs — is down from the first sample at or after ``start_ms`` to the first at
            or after ``end_ms`` (Streams instances crash and restart, restoring their state
            from the changelogs; jobs due meanwhile fail). The brokers stay up.
        options: per short name, the architecture's constructor arguments
            (:func:`make_variant`).
        faults: ``(at_ms, fault)`` pairs of :mod:`sim.faults` (broker crashes, network
            partitions, …) applied to the run's cluster.
        advance: how the kernel is run up to a time (default ``Kernel.run``); the fuzzer
            passes its guarded loop, so that no run can hang a campaign.
    """
    workload = workload or Workload()
    if outage is not None and not 0 <= outage[0] < outage[1]:
        raise ConfigError(f"outage must be (start_ms, end_ms) with 0 ≤ start < end, got {outage}")
    if sample_every_ms < 1000:
        raise ConfigError(f"sample_every_ms must be at least 1000, got {sample_every_ms}")
    kernel, pay = _cluster(workload, seed, partitions, replication_factor, topic_configs)
    for at_ms, fault in faults:
        schedule_fault(kernel, at_ms, fault)
    run_until = advance or (lambda k, until_ms: k.run(until_ms=until_ms))
    grid = list(cells(workload))
    chosen = {name: make_variant(name, (options or {}).get(name)) for name in variants}
    run = ArchitectureRun(kernel, workload, pay, chosen, partitions, replication_factor,
                          cells=grid, cell_index={c: i for i, c in enumerate(grid)},
                          outage=outage)
    for variant in chosen.values():
        variant.attach(run)
    producer = Producer(kernel, {"client.id": PRODUCER_CLIENT_ID})
    end_ms = workload.duration_ms + tail_ms
    samples = np.arange(sample_every_ms, end_ms + 1, sample_every_ms, dtype=float)
    if workload.change_ms not in samples:
        samples = np.unique(np.append(samples, float(workload.change_ms)))
    answers = np.full((len(samples), len(chosen), len(grid)), np.nan)
    arrivals = pay["arrival_ms"].to_numpy()
    sends = zip(pay["merchant"], pay["method"], pay["amount_cents"], pay["event_ms"],
                strict=True)
    n = 0
    changed = False
    down = up = outage is None
    for s, sample in enumerate(samples):
        while n < len(arrivals) and arrivals[n] <= sample:
            run_until(kernel, float(arrivals[n]))
            merchant, method, amount, event_ms = next(sends)
            producer.send(TOPIC, merchant, encode_value(method, int(amount)),
                          timestamp=int(event_ms))
            n += 1
        run_until(kernel, float(sample))
        if not changed and sample >= workload.change_ms:
            changed = True
            for variant in chosen.values():
                variant.change_logic(sample)
        if not down and outage is not None and sample >= outage[0]:
            down = True
            for variant in chosen.values():
                variant.fail(sample)
        if down and not up and outage is not None and sample >= outage[1]:
            up = True
            for variant in chosen.values():
                variant.recover(sample)
        for v, variant in enumerate(chosen.values()):
            variant.tick(sample)
            answers[s, v] = variant.answer()
    run.sample_ms, run.answers = samples, answers
    return run
