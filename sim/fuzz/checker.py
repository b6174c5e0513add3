"""Run one schedule under guards and say what it violated.

A run is guarded three ways, so that no schedule can hang a campaign: at most ``max_steps``
simulated events, at most ``max_same_instant`` events in a row without the clock moving (a
zero-time livelock), and at most ``max_cpu_s`` seconds of this process's CPU time (a backstop
for a run whose events are few but slow; CPU time, not wall time, so that a machine busy with
other work does not turn a slow run into a "hang"). The guarded loop is
``Kernel.run``'s own loop with counters, so a schedule replays exactly with
``python -m sim run FILE.yaml``.

Violation kinds (``Violation.kind``), from two sources that do not share code:

- from the delivery audit (``sim.audit``): ``lost-write``, ``duplicate``,
  ``inconsistent-offsets``, ``nonmonotonic-send`` (``nonmonotonic-send-after-loss`` when the
  earlier-sent record was lost and its offset reused, or the later-sent one was written at a
  lost record's offset by a log that restarted empty: judged like the loss), ``skipped``
  (at-least-once app only),
  ``processed-twice`` (at-most-once app only), ``uncaused-loss`` (a lost record with no cause);
- from the logs (``sim.consistency``): ``lost``, ``duplicate-stored``, ``isr-divergence``,
  ``offline``, ``in-flight``;
- from the logs, for a Kafka Streams application (``sim.fuzz.streams_check``):
  ``streams-lost``, ``streams-extra``, and ``streams-duplicate`` (at-least-once allows it, so
  every profile tolerates it); for the stateful ``count`` application ``streams-undercount``,
  ``streams-count-wrong`` (under exactly_once_v2) and ``streams-overcount`` (at-least-once
  reprocessing after a task moved: tolerated) or ``streams-overcount-uncaused``, and
  ``streams-stale-write`` (at-least-once: an old owner's late write of an earlier count after
  the final one: tolerated);
- from the source file, the logs and the sink's table, for a Kafka Connect pipeline
  (``sim.fuzz.connect_check``): ``connect-source-lost``, ``connect-source-extra``,
  ``connect-sink-lost``, ``connect-sink-wrong``, and ``connect-source-duplicate`` (at-least-once
  allows it; the ``connect`` profile also tolerates ``duplicate`` and ``duplicate-stored``, which
  Connect's non-idempotent source producer may write) and ``connect-sink-pending`` (rows still
  missing while a crashed worker's consumer holds the sink's group in a rebalance: tolerated);
- from the logs and the readers' history, for a transactional consume-transform-produce loop
  (``sim.fuzz.transactions_check``): ``eos-lost``, ``eos-duplicate``, ``eos-extra``,
  ``committed-read-aborted``, ``read-above-lso``, ``lso-above-hw``, ``hanging-transaction``
  and ``uncaused-aborted-read`` (no safe profile tolerates any of them; under unsafe configs
  the cases a truncation explains are tolerated, the others are ``eos-uncaused``), and
  ``eos-unprocessed`` (inputs past the committed offset once every member closed, fenced:
  tolerated);
- from an architecture's answers (``sim.fuzz.architecture_check``): ``architecture-wrong``
  (a final answer differing from the same run's without its faults) and
  ``architecture-unsent`` (lower where the services' producer gave up on a payment: tolerated),
  ``architecture-overcount`` (higher where a Streams task reading that cell's partition was
  created again: at_least_once, tolerated);
- from the remote tier (``RemoteLogManager.consistency_problems``): ``remote-tier`` (a gap, an
  overlap, an object missing or left behind, or an object whose records differ from the log);
- from the harness: ``hang`` and ``error`` (an exception escaped the run).

A ``Profile`` says which kinds it tolerates: unsafe configs may lose, duplicate and reorder
(but every loss needs a cause) and break exactly once where a truncation explains it; with
disk loss, losses are tolerated only on a partition where Kafka 4.0 loses too
(``kafka_also_loses``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim import consistency, report, scenarios
from sim.fuzz import architecture_check, connect_check, streams_check, transactions_check
from sim.fuzz.generator import Profile
from sim.scenarios import architecture

TRANSACTION_KINDS = ("eos-lost", "eos-duplicate", "eos-extra", "committed-read-aborted",
                     "read-above-lso", "lso-above-hw", "hanging-transaction",
                     "uncaused-aborted-read", "eos-uncaused")
"""Kinds from ``sim.fuzz.transactions_check``: what a safe transactional run never shows."""
ALWAYS = ("error", "hang", "offline", "in-flight", "isr-divergence", "uncaused-loss",
          "skipped", "processed-twice", "streams-lost", "streams-extra", "streams-undercount",
          "streams-count-wrong", "streams-overcount-uncaused", "remote-tier",
          *TRANSACTION_KINDS, *connect_check.KINDS, *architecture_check.KINDS)
"""Kinds no profile tolerates."""
LOSS_KINDS = ("lost-write", "lost", "inconsistent-offsets", "nonmonotonic-send-after-loss")
UNSAFE_TOLERATED = (*LOSS_KINDS, "duplicate", "duplicate-stored", "nonmonotonic-send",
                    *transactions_check.TIED_KINDS)
"""What unsafe configs may show; transactional kinds only as cases tied to a truncation."""
ORDER = (*ALWAYS, *LOSS_KINDS, "duplicate", "duplicate-stored", "nonmonotonic-send",
         *streams_check.TOLERATED, *transactions_check.TOLERATED, *connect_check.TOLERATED,
         *architecture_check.TOLERATED)
"""Kinds from the most to the least telling: a verdict names its first one."""
CONNECT_TOLERATED = ("duplicate", "duplicate-stored", *connect_check.TOLERATED)
"""What a Connect pipeline may show: its source is at least once (``WorkerSourceTask`` produces
again what it polled after its last offset flush, with a producer that is not idempotent)."""


@dataclass(frozen=True)
class Violation:
    """One violated property: its kind, how many records or cases, and a readable detail."""

    kind: str
    count: int
    detail: str


@dataclass
class Verdict:
    """The outcome of one schedule: violations (tolerated ones apart), losses and their causes."""

    name: str
    violations: list[Violation]
    tolerated: list[Violation] = field(default_factory=list)
    losses: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    wall_s: float = 0.0
    audit: Any = None
    """The run's delivery audit (``sim.audit.AuditReport``); None when it hung or raised. Its
    ``unavailable`` windows are found only when the run ended with a partition offline (then
    they say since when, with which errors and after which event the producer could not write
    there); otherwise they are left empty, as no check judges them."""

    @property
    def failed(self) -> bool:
        return bool(self.violations)

    @property
    def kinds(self) -> list[str]:
        kinds = {v.kind for v in self.violations}
        return [k for k in ORDER if k in kinds]

    @property
    def cause(self) -> str:
        """The verdict's most telling violation kind ('' when it passed)."""
        return self.kinds[0] if self.violations else ""

    def line(self) -> str:
        """One line: FAIL/ok, the schedule, every violation with its count and first detail."""
        if not self.violations:
            return f"ok   {self.name}"
        found = "; ".join(f"{v.kind} ×{v.count}: {v.detail}" for v in self.violations)
        return f"FAIL {self.name}: {found}"


class Guard:
    """Limits on one run; ``run`` raises ``RunawayError`` when one is passed."""

    CHECK_EVERY = 4096
    """Steps between two looks at the CPU clock (reading it costs more than a step's
    counting)."""

    def __init__(self, max_steps: int = 2_000_000, max_same_instant: int = 100_000,
                 max_cpu_s: float = 60.0) -> None:
        self.max_steps = max_steps
        self.max_same_instant = max_same_instant
        self.max_cpu_s = max_cpu_s
        self.clock = time.process_time
        """What ``max_cpu_s`` is measured on: this process's CPU time, which other processes
        on the machine do not inflate (the step limits stay the deterministic guards)."""

    def run(self, kernel: Any, until_ms: float | None) -> None:
        """``kernel.run(until_ms)``, counting steps; ``None`` (a scenario without
        ``duration_ms``, as a sweep may run) runs until only housekeeping is left."""
        kernel.stop_ms = math.inf if until_ms is None else until_ms
        try:
            self._step_until(kernel, until_ms)
        finally:
            kernel.stop_ms = -math.inf
        kernel.run(until_ms)  # nothing left before until_ms: moves the idle clock

    def _step_until(self, kernel: Any, until_ms: float | None) -> None:
        """Step every event at or before ``until_ms`` (None: while more than housekeeping is
        left, as ``Kernel.run``), within the limits.

        Events are stepped in chunks of ``CHECK_EVERY`` (the last chunk ends exactly at
        ``max_steps``): inside a chunk a step costs only its count and the same-instant check,
        so a zero-time livelock is still caught at its ``max_same_instant``-th event.
        """
        step = kernel.env.step
        peek = kernel.env.peek if until_ms is not None else _peek_until_idle(kernel)
        until_ms = math.inf if until_ms is None else until_ms
        limit = until_ms if until_ms < math.inf else sys.float_info.max  # empty queue: inf
        clock = self.clock
        started = clock()
        steps = same = 0
        last = next_ms = -math.inf
        try:
            while True:
                chunk_end = min(steps + self.CHECK_EVERY, self.max_steps)
                while steps < chunk_end:
                    next_ms = peek()
                    if next_ms > limit:
                        return
                    step()
                    steps += 1
                    if next_ms != last:
                        last, same = next_ms, 0
                    elif (same := same + 1) >= self.max_same_instant:
                        raise RunawayError(f"{same} events at {next_ms} ms without the clock "
                                           f"moving (a zero-time livelock)")
                if steps >= self.max_steps:
                    raise RunawayError(f"more than {self.max_steps} events by {next_ms:.1f} ms")
                if clock() - started > self.max_cpu_s:
                    raise RunawayError(f"more than {self.max_cpu_s:g} s of CPU time, at "
                                       f"{next_ms:.1f} ms simulated")
        finally:
            kernel.steps += steps


def _peek_until_idle(kernel: Any) -> Callable[[], float]:
    """The next event's time, or infinity once only housekeeping is left (``Kernel.run()``'s
    end of a run without a time)."""
    def peek() -> float:
        return math.inf if kernel._only_background_left() else kernel.env.peek()
    return peek


class RunawayError(Exception):
    """A run passed one of its guard's limits."""


def check_scenario(scenario: dict[str, Any], profile: Profile | None = None,
                   guard: Guard | None = None, json_summary: bool = False) -> Verdict:
    """Load ``scenario`` (a dict, as YAML would give), run it guarded, and judge it.

    With ``json_summary`` the run's ``python -m sim run --json`` object is built too, and an
    exception there is an ``error`` like any other.
    """
    profile = profile or Profile("safe")
    guard = guard or Guard()
    started = time.monotonic()
    loaded = scenarios.from_dict(scenario, f"{scenario.get('name', 'fuzz')}.yaml")
    verdict = Verdict(loaded.name, [])
    kernel = None
    losses: list[dict[str, Any]] = []
    delivery = None
    lost_in: list[tuple[str, int]] = []
    try:
        if loaded.architecture is not None:
            result = architecture.run(loaded.architecture, loaded.seed, loaded.faults,
                                      guard.run, summary=False)
            kernel = result.kernel
            found, losses, delivery, lost_in = _judge(kernel, scenario, [], profile.unsafe)
            found = _merge(found + [Violation(kind, count, detail) for kind, (count, detail)
                                    in architecture_check.check(result, loaded.architecture,
                                                                loaded.seed).items()])
        else:
            kernel = loaded.build()
            lso_problems = transactions_check.watch(kernel, _outputs(scenario))
            guard.run(kernel, loaded.duration_ms)
            found, losses, delivery, lost_in = _judge(kernel, scenario, lso_problems,
                                                      profile.unsafe)
        if json_summary:
            found += _json_errors(kernel, loaded)
    except RunawayError as exc:
        found = [Violation("hang", 1, str(exc))]
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else ""
        found = [Violation("error", 1, f"{type(exc).__name__}: {message}")]
    verdict.steps = kernel.steps if kernel is not None else 0
    verdict.wall_s = time.monotonic() - started
    tolerated = _tolerated(kernel, profile, found, losses, lost_in)
    verdict.violations = [v for v in found if v not in tolerated]
    verdict.tolerated = tolerated
    verdict.losses = losses
    verdict.audit = delivery
    return verdict


def _outputs(scenario: dict[str, Any]) -> list[str]:
    """Output topics of the scenario's transactional consume-transform-produce loops."""
    return sorted({c["output_topic"] for c in scenario.get("consumers", [])
                   if "output_topic" in c and c.get("transactional", True)})


def _json_errors(kernel: Any, loaded: Any) -> list[Violation]:
    """An ``error`` if the run's ``--json`` summary cannot be built."""
    try:
        json.dumps(report.summary_json(kernel, loaded.name, loaded.description),
                   allow_nan=False, default=str)
    except Exception as exc:  # the CLI would crash the same way
        return [Violation("error", 1, f"--json: {type(exc).__name__}: {exc}")]
    return []


def _judge(kernel: Any, scenario: dict[str, Any], lso_problems: list[str] | None = None,
           tie: bool = False
           ) -> tuple[list[Violation], list[dict[str, Any]], Any, list[tuple[str, int]]]:
    """Violations, lost records, the delivery audit, and the partitions where the logs lost
    acknowledged records (``sim.consistency``'s ``lost``)."""
    from sim.audit import audit_kernel

    # the audit and the consistency check both read every producer's results: built once
    results = {c: c.results() for c in kernel.clients if hasattr(c, "results")}
    findings = consistency.check(kernel, results)
    # no check judges the unavailability windows (a sixth of an audit's cost); a partition
    # offline at the end is a violation, and then they are what a reader needs
    offline = any(f.kind == "offline" for f in findings)
    delivery = audit_kernel(kernel, unavailability=offline, results=results)
    found = []
    for kind in ("lost-write", "duplicate", "inconsistent-offsets"):
        rows = delivery.anomalies[kind]
        if rows:
            found.append(Violation(kind, delivery.counts[kind], _first(kind, rows[0])))
    lost_at = {(r["topic"], int(r["partition"]), int(r["offset"])) for r in delivery.lost_records}
    for row in delivery.anomalies["nonmonotonic-send"]:
        # the earlier-sent record's offset was reused after that record was lost (a log that
        # restarted empty starts again at offset 0), or the later-sent one was written at a
        # lost record's offset: the log that restarted empty lost the producer's state with
        # its records and took the producer's first batch at any sequence, before the ones
        # still in flight (ProducerAppendInfo.checkSequence). A consequence of the loss,
        # judged with it
        where = (row["topic"], int(row["partition"]))
        reused = ((*where, int(row["after_offset"])) in lost_at
                  or (*where, int(row["offset"])) in lost_at)
        kind = "nonmonotonic-send-after-loss" if reused else "nonmonotonic-send"
        found.append(Violation(kind, 1, _first(kind, row)))
    app = next((c.get("app") for c in scenario.get("consumers", [])), None)
    promised = {"at-least-once": "skipped", "at-most-once": "processed-twice"}.get(app or "")
    if promised and delivery.anomalies[promised]:
        found.append(Violation(promised, delivery.counts[promised],
                               _first(promised, delivery.anomalies[promised][0])))
    uncaused = [r for r in delivery.lost_records if r.get("cause") is None]
    if uncaused:
        found.append(Violation("uncaused-loss", len(uncaused),
                               f"{_first('lost-write', uncaused[0])} has no cause"))
    for finding in findings:
        kind = "duplicate-stored" if finding.kind == "duplicate" else finding.kind
        found.append(Violation(kind, finding.count, finding.detail))
    manager = kernel.cluster.remote_log_manager
    problems = manager.consistency_problems() if manager is not None else []
    if problems:
        found.append(Violation("remote-tier", len(problems), problems[0]))
    for spec in scenario.get("streams", []):
        for kind, (count, detail) in streams_check.check(kernel, spec).items():
            found.append(Violation(kind, count, detail))
    if scenario.get("connect"):
        for kind, (count, detail) in connect_check.check(kernel, scenario["connect"]).items():
            found.append(Violation(kind, count, detail))
    if _outputs(scenario):
        from sim.audit import _concat
        from sim.consumer.history import READ_COLUMNS
        from sim.consumer.metrics import consumers

        reads = _concat([c.reads() for c in consumers(kernel)], READ_COLUMNS)
        aborted = delivery.transactions.get("aborted-read", [])
        for kind, (count, detail) in transactions_check.check(
                kernel, scenario, reads, aborted, lso_problems or [], tie).items():
            found.append(Violation(kind, count, detail))
    lost_in = [(f.topic, f.partition) for f in findings if f.kind == "lost"]
    return _merge(found), delivery.lost_records, delivery, lost_in


def _merge(found: list[Violation]) -> list[Violation]:
    """One violation per kind: counts added, the first detail kept."""
    merged: dict[str, Violation] = {}
    for v in found:
        if v.kind in merged:
            first = merged[v.kind]
            merged[v.kind] = Violation(v.kind, first.count + v.count, first.detail)
        else:
            merged[v.kind] = v
    return [merged[k] for k in ORDER if k in merged]


def _first(kind: str, row: dict[str, Any]) -> str:
    where = f"{row.get('topic', '?')}-{row.get('partition', '?')}"
    if kind in ("lost-write", "unseen"):
        cause = row.get("cause")
        why = f" (cause: {cause.get('kind')} {cause.get('detail', '')} at {cause.get('time_ms')}"\
              " ms)" if cause else ""
        return f"{where}@{row.get('offset')}{why}"
    if kind == "duplicate":
        return f"record {row.get('record_id')} at {', '.join(row.get('offsets', []))}"
    if kind == "inconsistent-offsets":
        return f"{where}@{row.get('offset')} holds records {row.get('record_ids')}"
    if kind.startswith("nonmonotonic-send"):
        return (f"{where}@{row.get('offset')}: record {row.get('record_id')}, sent after the "
                f"record acknowledged at offset {row.get('after_offset')}")
    if kind in ("skipped", "processed-twice"):
        return f"{where} offsets {row.get('first_offset')}–{row.get('last_offset')}"
    return where


def _tolerated(kernel: Any, profile: Profile, found: list[Violation],
               losses: list[dict[str, Any]], lost_in: list[tuple[str, int]]
               ) -> list[Violation]:
    at_least_once = [v for v in found if v.kind in streams_check.TOLERATED
                     or v.kind in transactions_check.TOLERATED
                     or v.kind in architecture_check.TOLERATED
                     or (profile.connect and v.kind in CONNECT_TOLERATED)]
    return at_least_once + [v for v in _tolerated_losses(kernel, profile, found, losses,
                                                         lost_in)
                            if v not in at_least_once]


def _tolerated_losses(kernel: Any, profile: Profile, found: list[Violation],
                      losses: list[dict[str, Any]], lost_in: list[tuple[str, int]]
                      ) -> list[Violation]:
    if profile.unsafe:
        return [v for v in found if v.kind in UNSAFE_TOLERATED]
    if profile.disk_loss and kernel is not None:
        partitions = _loss_partitions(losses, lost_in)
        if partitions:
            events = _election_events(kernel)  # read once for every partition
            if all(kafka_also_loses(kernel, *p, events=events) for p in partitions):
                return [v for v in found if v.kind in LOSS_KINDS]
    return []


def _loss_partitions(losses: list[dict[str, Any]], lost_in: list[tuple[str, int]]
                     ) -> list[tuple[str, int]]:
    """Partitions that lost records: the audit's lost writes and the logs' ``lost``."""
    keys = {(r["topic"], int(r["partition"])) for r in losses}
    keys |= set(lost_in)
    return sorted(keys)


def kafka_also_loses(kernel: Any, topic: str, partition: int, events: Any = None) -> bool:
    """Kafka 4.0 loses records of this partition too: its only in-sync replica came back empty.

    True when some broker crashed losing its disk and, after restarting, was elected leader of
    the partition while the ISR was that broker alone (ELR, KIP-966, is off by default in 4.0,
    so the controller elects it). Read from the trace's ``broker.state`` and
    ``leader.election`` events (``events``: those events already read, for many partitions).
    """
    events = _election_events(kernel) if events is None else events
    emptied: set[int] = set()
    lost_disk: set[int] = set()
    for row in events.itertuples():
        if row.kind == "broker.state":
            node = int(row.node)
            if row.state == "crashed" and "disk lost" in str(row.detail):
                lost_disk.add(node)
            elif row.state == "restarted" and node in lost_disk:
                emptied.add(node)
                lost_disk.discard(node)
        elif (row.topic == topic and int(row.partition) == partition
              and int(row.leader) in emptied and str(row.isr) == f"[{int(row.leader)}]"):
            return True
    return False


def _election_events(kernel: Any) -> Any:
    """The trace's ``broker.state`` and ``leader.election`` events, in emission order (the
    two kinds' frames instead of the whole trace's)."""
    from sim.audit import events_of

    return events_of(kernel, ("broker.state", "leader.election"))
