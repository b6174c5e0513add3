"""The consumer's internals: threads, requests to the coordinator, fetching, commits.

``ConsumerClient`` holds what ``sim.consumer.Consumer`` (the public API) is built on. Its
threads are SimPy processes that are never interrupted: a crash or a close bumps the consumer's
*incarnation*, and every thread checks it after each wait and stops when it changed. Answers
from the coordinator are dropped when they arrive after a crash, and held back while the
consumer hangs. A hang freezes every thread: waits end no earlier than the hang, and work in
progress (processing) takes the hang's length longer. The faults themselves (``crash``,
``hang``, ``restart``…) are methods of ``Consumer``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from sim import trace as trace_events
from sim.broker.log import log_changes
from sim.consumer import classic_group as group
from sim.consumer import events
from sim.consumer.apps import COMMIT_ERRORS
from sim.consumer.config import parse_consumer
from sim.consumer.coordinator import RETRY_BACKOFF_MS, STABLE, ConsumerCoordinator
from sim.consumer.errors import (
    CommitFailedError,
    CommitTimeoutError,
    IllegalStateError,
    RebalanceInProgressError,
)
from sim.consumer.fetcher import Chunk, ConsumerRecords, Fetcher, chunks_of
from sim.consumer.group import GroupCoordinator, group_coordinator
from sim.consumer.history import ConsumerHistory, ProcessedBatch
from sim.consumer.offsets import OffsetAndMetadata
from sim.consumer.subscription import SubscriptionState
from sim.errors import ConfigError, KafkaLabError, SimulationError
from sim.kernel import kernel_of
from sim.records import TopicPartition

NO_GROUP_ID = "NO_GROUP_ID"
FETCH_MAX_WAIT_MS = 500
"""``fetch.max.wait.ms``: the longest a broker holds an empty fetch; an idle poll looks at
every partition again at least this often."""


class Stopped(Exception):  # noqa: N818 - a signal between threads, not an error
    """The consumer crashed, was closed or restarted while one of its threads waited."""


LEARNER_CODE: list[ConsumerClient] = []
"""Consumers whose learner code (on_records, a listener) runs now, innermost last."""


class ConsumerClient:
    """State and threads of one consumer (see ``sim.consumer.Consumer`` for the API)."""

    def __init__(self, kernel: Any, config: dict[str, Any] | None = None,
                 on_records: Callable[..., Any] | None = None,
                 processing_ms_per_record: float = 0.0) -> None:
        kernel = kernel_of(kernel, "Consumer")
        self.kernel = kernel
        self.env: simpy.Environment = kernel.env
        self.cluster = kernel.cluster
        self.trace = kernel.trace
        self.config = parse_consumer(config)
        self.group_id: str | None = self.config["group.id"]
        self.instance_id: str | None = self.config["group.instance.id"]
        self.client_id = self.config["client.id"] or self._default_client_id()
        if any(getattr(c, "client_id", None) == self.client_id for c in kernel.clients):
            self.client_id = f"{self.client_id}-{len(kernel.clients)}"
        self.app = on_records
        self.processing_ms_per_record = float(processing_ms_per_record)
        self.slowdown = 1.0
        self.group_coordinator: GroupCoordinator = None  # type: ignore[assignment]
        if self.group_id is not None:
            self.group_coordinator = group_coordinator(kernel)
            self._check_session_timeout()
        self.history = ConsumerHistory(self.client_id, self.group_id)
        self.subscriptions = SubscriptionState(self.cluster, self.client_id, self.group_id,
                                               self.config["auto.offset.reset"], self.history,
                                               self.read_committed)
        self.subscriptions.on_reset = lambda tp, old, new, reason: self.emit(
            events.CONSUMER_OFFSET_RESET, self.group_id, tp.topic, tp.partition, old, new,
            reason)
        self.lifecycle = "running"
        self.incarnation = 0
        self.coordinator: ConsumerCoordinator | None = None
        if self.group_id is not None:
            self.coordinator = ConsumerCoordinator(self)
        self.fetcher = Fetcher(self.read_committed)
        self._nothing_found: tuple[Any, float] = (None, -math.inf)  # the last empty look
        self.running_batch: ProcessedBatch | None = None
        self.last_poll_seq = -1
        self._script: list[tuple[str, Any]] | None = None
        self.app_proc: simpy.Process | None = None
        self.hb_proc: simpy.Process | None = None
        self.closing = False
        self.hung_until = -math.inf
        self._wakeup: simpy.Event | None = None
        self._state_event: simpy.Event | None = None
        kernel.register(self)

    def _default_client_id(self) -> str:
        """Kafka's: consumer-<group.id>-<n>, or consumer-<group.id>-<group.instance.id>."""
        if self.group_id is not None and self.instance_id is not None:
            return f"consumer-{self.group_id}-{self.instance_id}"
        n = sum(isinstance(c, ConsumerClient) for c in self.kernel.clients) + 1
        return f"consumer-{self.group_id}-{n}" if self.group_id is not None else f"consumer-{n}"

    def _check_session_timeout(self) -> None:
        timeout = self.config["session.timeout.ms"]
        low = self.group_coordinator.config["group.min.session.timeout.ms"]
        high = self.group_coordinator.config["group.max.session.timeout.ms"]
        if not low <= timeout <= high:
            raise ConfigError(
                f"session.timeout.ms={timeout} is outside the broker's limits "
                f"group.min.session.timeout.ms={low} .. group.max.session.timeout.ms={high} "
                "(the coordinator would answer INVALID_SESSION_TIMEOUT); pick a value inside.")

    def __repr__(self) -> str:
        member = f", member={self.member_id}" if self.member_id else ""
        return (f"Consumer({self.client_id!r}, group={self.group_id!r}, state={self.state}"
                f"{member}, assignment=[{events.format_partitions(self.assignment())}])")

    # -- small accessors -------------------------------------------------------------------------

    @property
    def now_ms(self) -> float:
        return float(self.env.now)

    @property
    def read_committed(self) -> bool:
        return self.config["isolation.level"] == "read_committed"

    @property
    def state(self) -> str:
        """running, hung, crashed or closed."""
        return "hung" if self.now_ms < self.hung_until else self.lifecycle

    @property
    def member_id(self) -> str:
        return self.coordinator.member_id if self.coordinator else ""

    @property
    def generation(self) -> int:
        return self.coordinator.generation if self.coordinator else -1

    def assignment(self) -> list[TopicPartition]:
        """The partitions this consumer reads now."""
        return list(self.subscriptions.owned)

    def subscribed_topics(self) -> list[str]:
        return self.subscriptions.subscribed_topics()

    def consumed_offsets(self) -> dict[TopicPartition, int]:
        return self.subscriptions.consumed()

    def consumed_epochs(self) -> dict[TopicPartition, int]:
        """The leader epochs that go with ``consumed_offsets()`` (KIP-320)."""
        return self.subscriptions.consumed_epochs()

    def group_managed(self) -> bool:
        """True when the group assigns the partitions (subscribe(), not assign())."""
        return self.coordinator is not None and self.subscriptions.has_subscription

    def emit(self, kind: trace_events.EventKind, *values: Any) -> int:
        """Record a trace event from this consumer and return its sequence number."""
        seq = len(self.trace)
        self.trace.emit(kind, self.now_ms, self.client_id, *values)
        return seq

    # -- threads: waiting, waking, guarding ---------------------------------------------------

    def check(self, incarnation: int) -> None:
        if self.incarnation != incarnation:
            raise Stopped

    def wait(self, delay_ms: float, wake: simpy.Event | None = None
             ) -> Generator[Any, Any, None]:
        """Wait ``delay_ms`` (or until ``wake``), then out any hang; stop if crashed."""
        incarnation = self.incarnation
        targets: list[simpy.Event] = []
        if delay_ms < math.inf:
            targets.append(self.env.timeout(max(delay_ms, 0.0)))
        if wake is not None:
            targets.append(wake)
        if not targets:
            targets.append(self.env.event())  # forever: a stopped thread simply stays here
        yield targets[0] if len(targets) == 1 else self.env.any_of(targets)
        self.check(incarnation)
        while self.now_ms < self.hung_until:
            yield self.env.timeout(self.hung_until - self.now_ms)
            self.check(incarnation)

    def await_event(self, event: simpy.Event) -> Generator[Any, Any, Any]:
        incarnation = self.incarnation
        if not event.processed:
            yield event
        self.check(incarnation)
        return event.value

    def notify(self) -> None:
        """Wake the application thread if it waits in poll()."""
        if self._wakeup is not None and not self._wakeup.triggered:
            self._wakeup.succeed()

    def state_event(self) -> simpy.Event:
        if self._state_event is None or self._state_event.triggered:
            self._state_event = self.env.event()
        return self._state_event

    def notify_state(self) -> None:
        """Wake the heartbeat thread: the membership state changed."""
        if self._state_event is not None and not self._state_event.triggered:
            self._state_event.succeed()
        self.notify()

    def guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        """``fn`` for answers: dropped after a crash, held back while the consumer hangs."""
        incarnation = self.incarnation

        def run(*args: Any) -> None:
            if self.incarnation != incarnation:
                return
            if self.now_ms < self.hung_until:
                later = self.env.timeout(self.hung_until - self.now_ms)
                later.callbacks.append(lambda _event: run(*args))
                return
            fn(*args)

        return run

    def request(self, handler: Callable[[], Any]) -> simpy.Event:
        """Send a request to the group coordinator and return the event of its answer.

        ``handler`` runs on the coordinator one network latency later; its answer (or the
        value of the event it returns) comes back one latency after that. While the
        coordinator's broker is down or cut off, the request is retried every
        ``retry.backoff.ms`` (the client looks the coordinator up again, as Kafka's does).
        """
        response = self.env.event()
        deliver = self.guard(response.succeed)
        gc, group_id = self.group_coordinator, self.group_id

        def send(_event: simpy.Event | None = None) -> None:
            node = gc.node_seen_by(group_id, self.client_id)  # type: ignore[arg-type]
            if not self._reachable(node):
                self.env.timeout(RETRY_BACKOFF_MS).callbacks.append(send)
                return
            latency = self.cluster.brokers[node].latency_ms

            def reply(value: Any) -> None:
                self.env.timeout(latency).callbacks.append(lambda _event: deliver(value))

            def arrive(_event: simpy.Event) -> None:
                if not self._reachable(node):
                    send()
                    return
                result = handler()
                if isinstance(result, simpy.Event):
                    if result.callbacks is None:
                        reply(result.value)
                    else:
                        result.callbacks.append(lambda event: reply(event.value))
                else:
                    reply(result)

            self.env.timeout(latency).callbacks.append(arrive)

        send()
        return response

    def _reachable(self, node: int) -> bool:
        return (node >= 0 and self.cluster.brokers[node].alive
                and self.cluster.network.connected(self.client_id, node))

    def start_heartbeat(self) -> None:
        if self.coordinator is None or (self.hb_proc is not None and self.hb_proc.is_alive):
            return

        def loop() -> Generator[Any, Any, None]:
            try:
                yield from self.coordinator.heartbeat_loop()  # type: ignore[union-attr]
            except Stopped:
                return

        self.hb_proc = self.env.process(loop())

    # -- running learner code ---------------------------------------------------------------------

    def call_learner(self, fn: Callable[..., Any] | None, *args: Any
                     ) -> Generator[Any, Any, None]:
        """Run learner code now, then replay its process and commit calls on the clock.

        A ``commit_sync`` that fails raises its exception at that point of the replay, so the
        calls made after it are not carried out, as if it had raised in the learner's code.
        """
        if fn is None:
            return
        script: list[tuple[str, Any]] = []
        self._script = script
        LEARNER_CODE.append(self)
        try:
            fn(*args)
        except Exception as exc:
            exc.add_note(f"(raised by {getattr(fn, '__name__', fn)} in consumer "
                         f"{self.client_id} at {self.now_ms:g} ms)")
            raise
        finally:
            LEARNER_CODE.pop()
            self._script = None
        for action, value in script:
            if action == "process":
                yield from self.process_gen(value)
            elif action == "call":  # a step of an application (e.g. a transaction)
                yield from value()
            else:
                offsets, leader_epochs = value
                error = yield from self.commit_gen(offsets, sync=action == "commit_sync",
                                                   leader_epochs=leader_epochs)
                if error and action == "commit_sync":
                    raise self.commit_error(error)

    def call_listener(self, method: str, partitions: list[TopicPartition]
                      ) -> Generator[Any, Any, None]:
        """Call the rebalance listener's ``method`` like any learner code."""
        listener = self.subscriptions.listener
        fn = getattr(listener, method, None)
        if fn is None and method == "on_partitions_lost":
            fn = getattr(listener, "on_partitions_revoked", None)
        with contextlib.suppress(*COMMIT_ERRORS):  # Kafka logs a listener's failed commit;
            yield from self.call_learner(fn, partitions)  # the rebalance goes on

    def drive(self, gen: Generator[Any, Any, Any]) -> Any:
        """Run a blocking call from a notebook: step the kernel until it returns."""
        self.ensure_usable()
        box: list[Any] = []

        def wrapper() -> Generator[Any, Any, None]:
            try:
                box.append((yield from gen))
            except Stopped:
                box.append(None)

        proc = self.env.process(wrapper())
        self.kernel.run_until(lambda _k: not proc.is_alive)
        if proc.is_alive:
            raise SimulationError(f"consumer {self.client_id}: the call did not finish; "
                                  "nothing was left to simulate.")
        if not proc.ok:  # raise the call's error here, in the notebook, not later in the kernel
            proc.defused = True
            raise proc.value
        return box[0] if box else None

    def check_direct_call(self, what: str) -> None:
        """Blocking calls belong to the notebook, not to on_records or a running app."""
        if LEARNER_CODE and LEARNER_CODE[-1] is self:
            raise IllegalStateError(f"Do not call {what} inside on_records: the lab polls for "
                                    "you; use process(records) and consumer.commit_sync().")
        if self.app_proc is not None and self.app_proc.is_alive:
            raise IllegalStateError(f"consumer {self.client_id} runs an application (run()); "
                                    f"{what} cannot be called from outside as well.")

    def ensure_usable(self) -> None:
        if self.lifecycle != "running":
            raise IllegalStateError(f"consumer {self.client_id} is {self.lifecycle}; restart() "
                                    "it first.")

    # -- poll: positions and fetching ----------------------------------------------------------

    def poll_gen(self, timeout_ms: float) -> Generator[Any, Any, ConsumerRecords]:
        incarnation = self.incarnation
        deadline = self.now_ms + timeout_ms
        while True:
            self.check(incarnation)
            if self.closing:
                return ConsumerRecords([], self)
            if self.group_managed():
                coordinator = self.coordinator
                assert coordinator is not None
                self.start_heartbeat()
                if self.subscriptions.metadata_changed() and coordinator.member_id:
                    coordinator.request_rejoin("the subscribed topics or partitions changed")
                yield from coordinator.poll()
            elif self.coordinator is not None:
                self.coordinator.last_poll_ms = self.now_ms
                yield from self.coordinator.maybe_auto_commit()
            chunks = []
            if self._worth_looking():
                yield from self._update_positions()
                chunks = self._fetch()
                if not chunks and not self.fetcher.positions:  # not even past a gap or marker
                    self._nothing_found = (self._data_stamp(), self.now_ms)
            if chunks or self.now_ms >= deadline:
                return ConsumerRecords(chunks, self)
            self._wakeup = self.env.event()
            yield from self.wait(min(self.config["lab.poll.check.ms"], deadline - self.now_ms),
                                 wake=self._wakeup)

    def _data_stamp(self) -> tuple[int, int, int, int]:
        """What a fetch depends on: every log's end, HW and start, metadata (leaders, liveness),
        the network, and this consumer's partitions, positions and pauses."""
        cluster = self.cluster
        return (log_changes.count, cluster.metadata_version, cluster.network.version,
                self.subscriptions.version)

    def _worth_looking(self) -> bool:
        """False when an empty poll would look at the leaders again and nothing they could
        answer has changed since the last empty look (which keeps idle polls over many
        partitions cheap); a full look at least every ``fetch.max.wait.ms`` regardless."""
        if self.fetcher.reading_remote():  # a tiered read finishes with time, not a change
            return True
        if self.subscriptions.validation_due(self.now_ms):  # so is a validation's retry
            return True
        if self.subscriptions.resets_due(self.now_ms):  # and a refused reset's retry
            return True
        stamp, at_ms = self._nothing_found
        return stamp != self._data_stamp() or self.now_ms - at_ms >= FETCH_MAX_WAIT_MS

    def _update_positions(self) -> Generator[Any, Any, None]:
        """Partitions without a position start at the committed offset, else auto.offset.reset;
        one whose reset the leader refused is reset again once its retry is due.

        A committed offset comes with the leader epoch it was committed with, and the position
        is validated before its first fetch (``refreshCommittedOffsets``, KIP-320).
        """
        subs = self.subscriptions
        for tp in subs.resets_due(self.now_ms):  # refused by the leader (AWAIT_RESET)
            subs.retry_reset(tp, self.now_ms)
        missing = subs.missing_positions()
        if not missing:
            return
        committed: dict[TopicPartition, OffsetAndMetadata | None] = {}
        if self.group_id is not None:
            gc, group_id = self.group_coordinator, self.group_id
            while self.read_committed and gc.has_pending_txn_offsets(group_id, missing):
                # OffsetFetch with require_stable: UNSTABLE_OFFSET_COMMIT until the open
                # transaction holding offsets for these partitions ends (KIP-447)
                yield from self.wait(RETRY_BACKOFF_MS)
            reply = self.request(lambda: gc.fetch_committed(group_id, missing))
            committed = yield from self.await_event(reply)
        for tp in missing:
            if tp in subs.owned and tp not in subs.positions:
                stored = committed.get(tp)
                if stored is None:
                    subs.reset(tp, self.now_ms)
                else:
                    subs.seek_unvalidated(tp, stored.offset, self.now_ms, stored.leader_epoch)

    def _fetch(self) -> list[Chunk]:
        subs = self.subscriptions
        chunks = self.fetcher.fetch(self.cluster, subs.fetchable(self.now_ms), subs.positions,
                                    self.config["max.poll.records"])
        for tp, position in self.fetcher.positions.items():  # past skipped markers too
            subs.seek(tp, position, self.now_ms, self.fetcher.epochs.get(tp))
        if not chunks:
            return []
        shown = ",".join(f"{c.tp}:{c.first_offset}-{c.last_offset}" for c in chunks)
        seq = self.emit(events.CONSUMER_POLL, self.group_id, self.member_id,
                        sum(c.count for c in chunks), shown)
        self.last_poll_seq = seq
        self.history.record_read(self.incarnation, seq, self.now_ms, chunks)
        return chunks

    def processed_now(self, records: list[Any]) -> None:
        """Count ``records`` (from this consumer's polls) as processed now, taking no simulated
        time: a Kafka Streams thread runs them through its topology in its poll loop."""
        self.history.batches.append(ProcessedBatch(chunks_of(records), self.now_ms, 0.0,
                                                   self.incarnation, self.last_poll_seq))

    def process_gen(self, chunks: list[Chunk]) -> Generator[Any, Any, None]:
        """Work through the records one after another (see ``sim.consumer.history``)."""
        incarnation = self.incarnation
        batch = ProcessedBatch(chunks, self.now_ms, self.processing_ms_per_record * self.slowdown,
                               incarnation, self.last_poll_seq)
        self.history.batches.append(batch)
        self.running_batch = batch
        while True:
            end = batch.projected_end_ms(self.history.hangs)
            if end <= self.now_ms:
                break
            yield self.env.timeout(end - self.now_ms)
            self.check(incarnation)
        self.running_batch = None

    # -- commits ---------------------------------------------------------------------------------

    def commit_gen(self, offsets: dict[TopicPartition, int], sync: bool,
                   leader_epochs: dict[TopicPartition, int] | None = None
                   ) -> Generator[Any, Any, str]:
        """Commit ``offsets`` (with the ``leader_epochs`` known for them); with ``sync`` wait
        for the answer. Returns the error ("" = ok)."""
        if not offsets:
            return group.NONE
        if self.coordinator is None:
            self.record_commit(offsets, NO_GROUP_ID, self.now_ms, "sync" if sync else "async",
                               "", -1)
            return NO_GROUP_ID
        return (yield from self.coordinator.commit_offsets(offsets, sync, leader_epochs))

    def record_commit(self, offsets: dict[TopicPartition, int], error: str, sent_ms: float,
                       kind: str, member: str, generation: int) -> None:
        shown = ",".join(f"{tp}:{offset}" for tp, offset in offsets.items())
        seq = self.emit(events.CONSUMER_COMMIT, self.group_id, member, generation, shown, error)
        for tp, offset in offsets.items():
            self.history.commits.append({
                "consumer": self.client_id, "group": self.group_id, "member": member,
                "generation": generation, "sent_ms": sent_ms, "time_ms": self.now_ms,
                "topic": tp.topic, "partition": tp.partition, "offset": offset, "error": error,
                "kind": kind, "seq": seq})

    def commit_error(self, error: str) -> KafkaLabError:
        """The exception Kafka's commitSync would throw for ``error``."""
        if error == group.REBALANCE_IN_PROGRESS:
            return RebalanceInProgressError(
                f"consumer {self.client_id}: offset commit cannot be completed since the "
                "consumer is undergoing a rebalance; poll() to complete it, then commit again.")
        if error == NO_GROUP_ID:
            return IllegalStateError(f"consumer {self.client_id}: commits need a group.id.")
        if error in group.RETRIABLE_COORDINATOR_ERRORS:
            return CommitTimeoutError(
                f"consumer {self.client_id}: commit_sync found no working group coordinator "
                f"within default.api.timeout.ms ({error}); the offsets may not be stored. "
                "Commit again once the coordinator's broker is back.")
        return CommitFailedError(
            f"consumer {self.client_id}: commit cannot be completed since the group has already "
            f"rebalanced and assigned the partitions to another member ({error}). The time "
            "between polls was probably longer than max.poll.interval.ms, or the session timed "
            "out; process faster, lower max.poll.records, or raise the timeouts.")

    # -- assignment changes -------------------------------------------------------------------

    def give_up(self, partitions: list[TopicPartition], kind: trace_events.EventKind,
                generation: int) -> Generator[Any, Any, None]:
        """Revoke or lose partitions: stop fetching them, tell the listener, forget them."""
        subs = self.subscriptions
        remaining = [tp for tp in subs.owned if tp not in partitions]
        self.emit(kind, self.group_id, self.member_id, generation,
                  events.format_partitions(partitions), events.format_partitions(remaining))
        method = ("on_partitions_lost" if kind is events.CONSUMER_LOST
                  else "on_partitions_revoked")
        subs.paused.update(partitions)  # nothing more is fetched from them
        subs.version += 1
        yield from self.call_listener(method, partitions)
        subs.remove(partitions)

    def take(self, partitions: list[TopicPartition], generation: int
             ) -> Generator[Any, Any, None]:
        """Start owning partitions (positions come from committed offsets at the next fetch)."""
        subs = self.subscriptions
        subs.add(partitions)
        self.emit(events.CONSUMER_ASSIGNED, self.group_id, self.member_id, generation,
                  events.format_partitions(partitions), events.format_partitions(subs.owned))
        yield from self.call_listener("on_partitions_assigned", partitions)

    def close_gen(self) -> Generator[Any, Any, None]:
        """``KafkaConsumer.close``: auto-commit, revoke, LeaveGroup (dynamic members only)."""
        coordinator = self.coordinator
        auto_commit = coordinator is not None and self.config["enable.auto.commit"]
        if auto_commit and (coordinator.state == STABLE or not self.group_managed()):
            yield from self.commit_gen(self.consumed_offsets(), sync=True,
                                       leader_epochs=self.consumed_epochs())
        if coordinator is not None and self.group_managed():
            owned = self.assignment()
            if owned:
                kind = (events.CONSUMER_REVOKED if coordinator.generation >= 0
                        else events.CONSUMER_LOST)
                yield from self.give_up(owned, kind, coordinator.generation)
            coordinator.leave_group("the consumer is closing")
        self.mark_closed()

    def mark_closed(self) -> None:
        """Closed: a new incarnation, so every thread of the old one stops at its next wait."""
        self.lifecycle = "closed"
        self.closing = False
        self.incarnation += 1
