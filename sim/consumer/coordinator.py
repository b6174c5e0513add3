"""The consumer's side of group membership (Kafka's ``ConsumerCoordinator``).

A member is in one of four states (``AbstractCoordinator.MemberState``)::

    UNJOINED --JoinGroup sent--> PREPARING_REBALANCE --JoinGroup answered, SyncGroup sent-->
    COMPLETING_REBALANCE --assignment applied in poll()--> STABLE

Rebalances start and end inside ``poll()``, on the application's thread:

- *onJoinPrepare*, before JoinGroup: commit synchronously when ``enable.auto.commit`` is on, then
  revoke. The **eager** protocol (range, roundrobin, sticky) revokes every partition, so the
  member stops consuming until the group is stable again ("stop the world"). The
  **cooperative** protocol (only when every configured assignor supports it, i.e.
  cooperative-sticky) keeps its partitions and goes on consuming them. A member that was thrown
  out of the group (poll timeout, session timeout, fenced) *loses* its partitions instead and
  cannot commit.
- *onJoinComplete*, when the SyncGroup answer is there: take the new assignment. A cooperative
  member revokes only the partitions it no longer has and, if it revoked any, rejoins at once so
  that a follow-up rebalance gives them to their new owners (KIP-429).

A heartbeat thread runs beside the application. Every ``heartbeat.interval.ms`` it sends a
Heartbeat; the answer ``REBALANCE_IN_PROGRESS`` makes the next ``poll()`` rejoin. When
``max.poll.interval.ms`` passes without a poll it leaves the group ("the member leaves
proactively"): a dynamic member sends LeaveGroup, a static member just stops and lets its
session expire.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.consumer import classic_group as group
from sim.consumer import events
from sim.consumer.assignors import COOPERATIVE, EAGER, Subscription, assignor_for
from sim.consumer.errors import GroupProtocolError
from sim.errors import ConfigError, KafkaLabError
from sim.records import TopicPartition

if TYPE_CHECKING:
    from sim.consumer import Consumer

UNJOINED, PREPARING_REBALANCE, COMPLETING_REBALANCE, STABLE = (
    "UNJOINED", "PREPARING_REBALANCE", "COMPLETING_REBALANCE", "STABLE")
NOT_IN_GROUP = "NOT_IN_GROUP"  # the client knows it is out of the group: CommitFailedError
DEFAULT_API_TIMEOUT_MS = 60000  # default.api.timeout.ms: how long commit_sync keeps retrying
RETRY_BACKOFF_MS = 100  # retry.backoff.ms: wait before retrying a request to the coordinator


class ConsumerCoordinator:
    """Group membership of one consumer; see the module docstring for the life cycle."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.group_id: str = consumer.group_id  # type: ignore[assignment]
        self.assignors = [assignor_for(name)
                          for name in consumer.config["partition.assignment.strategy"]]
        protocols = [set(a.supported_protocols) for a in self.assignors]
        common = set.intersection(*protocols)
        self.rebalance_protocol = COOPERATIVE if COOPERATIVE in common else EAGER
        self.reset()

    def reset(self) -> None:
        """Forget the membership, as a freshly started client (used on restart)."""
        self.member_id = ""
        self.generation = -1
        # (member id, generation) of the last join that completed: ConsumerCoordinator's
        # ``groupMetadata``, which errors and leaving do not reset (see ``group_metadata``)
        self.joined: tuple[str, int] = ("", -1)
        self.protocol: str | None = None
        self.state = UNJOINED
        self.rejoin_needed = True
        self.rejoin_reason = "consumer started"
        self.needs_join_prepare = True
        self.sync_result: group.SyncResponse | None = None
        self.fatal: Exception | None = None
        self.last_poll_ms = self.consumer.now_ms
        self.last_heartbeat_ms = self.consumer.now_ms
        self.last_assignment: list[TopicPartition] = []
        self.last_generation = -1
        cfg = self.consumer.config
        self.next_auto_commit_ms = self.consumer.now_ms + cfg["auto.commit.interval.ms"]
        self.join_attempt = 0  # counts JoinGroup requests, so that a stale retry sends none

    def __repr__(self) -> str:
        return (f"ConsumerCoordinator({self.group_id!r}, member={self.member_id or '-'}, "
                f"generation={self.generation}, state={self.state})")

    @property
    def active(self) -> bool:
        """True while the heartbeat thread should heartbeat (``!hasNotJoinedGroup``)."""
        return self.state in (COMPLETING_REBALANCE, STABLE) and bool(self.member_id)

    def request_rejoin(self, reason: str) -> None:
        if not self.rejoin_needed:
            self.rejoin_needed = True
            self.rejoin_reason = reason
        self.consumer.notify()

    # -- called by the application thread inside poll() ---------------------------------------

    def poll(self) -> Generator[Any, Any, None]:
        """Make progress on membership: apply an assignment, rejoin if needed, auto-commit."""
        consumer = self.consumer
        self.last_poll_ms = consumer.now_ms
        if self.fatal is not None:
            raise self.fatal
        if self.sync_result is not None:
            result, self.sync_result = self.sync_result, None
            yield from self._on_join_complete(result)
        if self.rejoin_needed and self.state in (UNJOINED, STABLE):
            if self.needs_join_prepare:
                yield from self._on_join_prepare()
                self.needs_join_prepare = False
            self.send_join()
        yield from self.maybe_auto_commit()

    def _on_join_prepare(self) -> Generator[Any, Any, None]:
        consumer = self.consumer
        if consumer.config["enable.auto.commit"] and self.state == STABLE:
            yield from consumer.commit_gen(consumer.consumed_offsets(), sync=True,
                                           leader_epochs=consumer.consumed_epochs())
        owned = list(consumer.assignment())
        if self.generation < 0 and owned:
            yield from consumer.give_up(owned, events.CONSUMER_LOST, self.last_generation)
        elif self.rebalance_protocol == EAGER and owned:
            yield from consumer.give_up(owned, events.CONSUMER_REVOKED, self.generation)
        elif owned:  # cooperative: only partitions of topics no longer subscribed
            topics = set(consumer.subscribed_topics())
            gone = [tp for tp in owned if tp.topic not in topics]
            if gone:
                yield from consumer.give_up(gone, events.CONSUMER_REVOKED, self.generation)

    def _on_join_complete(self, result: group.SyncResponse) -> Generator[Any, Any, None]:
        consumer = self.consumer
        assigned = list(result.assignment)
        owned = list(consumer.assignment())
        # the member is STABLE once its SyncGroup answer is there, before any callback runs:
        # a commit in onPartitionsRevoked is sent with this generation (Kafka's
        # SyncGroupResponseHandler sets STABLE before onJoinComplete)
        self.state = STABLE
        self.needs_join_prepare = True
        self.last_assignment = assigned
        self.last_generation = self.generation
        self.last_heartbeat_ms = consumer.now_ms
        consumer.notify_state()
        if self.rebalance_protocol == COOPERATIVE:
            revoked = [tp for tp in owned if tp not in assigned]
            if revoked:
                yield from consumer.give_up(revoked, events.CONSUMER_REVOKED, self.generation)
                self.request_rejoin("revoked partitions that move to another member")
            added = [tp for tp in assigned if tp not in owned]
        else:
            added = assigned
        yield from consumer.take(added, self.generation)

    def send_join(self) -> None:
        """Send JoinGroup with one protocol per configured assignor (in preference order)."""
        consumer = self.consumer
        self.rejoin_needed = False
        self.state = PREPARING_REBALANCE
        self.join_attempt += 1
        consumer.notify_state()
        topics = tuple(sorted(consumer.subscribed_topics()))
        owned = tuple(self.last_assignment if self.rebalance_protocol == EAGER
                      else consumer.assignment())
        subscription = Subscription(topics, owned, self.last_generation, consumer.instance_id)
        protocols = tuple((a.name, subscription) for a in self.assignors)
        consumer.emit(events.GROUP_JOIN, self.group_id, self.member_id, self.generation,
                      self.rejoin_reason)
        cfg = consumer.config
        member_id = self.member_id
        coordinator = consumer.group_coordinator
        response = consumer.request(lambda: coordinator.join_group(
            self.group_id, member_id, consumer.instance_id, consumer.client_id,
            cfg["session.timeout.ms"], cfg["max.poll.interval.ms"], protocols))
        response.callbacks.append(lambda event: self._on_join_response(event.value))

    def _on_join_response(self, response: group.JoinResponse) -> None:
        consumer = self.consumer
        error = response.error
        if error == group.MEMBER_ID_REQUIRED:
            self.member_id = response.member_id
            self.send_join()
        elif error == group.UNKNOWN_MEMBER_ID:
            self._reset_generation(reset_member_id=True)
        elif error in group.RETRIABLE_COORDINATOR_ERRORS:
            self._retry_join(error)
        elif error:
            self.fatal = self.group_error(error)
            consumer.notify()
        else:
            self.member_id = response.member_id
            self.generation = response.generation
            self.protocol = response.protocol
            self.state = COMPLETING_REBALANCE
            self.last_heartbeat_ms = consumer.now_ms
            consumer.notify_state()
            assignments = None
            if response.leader_id == self.member_id and response.members:
                assignments = self._assign(response.protocol or "", response.members)
            coordinator = consumer.group_coordinator
            member_id, generation = self.member_id, self.generation
            reply = consumer.request(lambda: coordinator.sync_group(
                self.group_id, member_id, generation, assignments))
            reply.callbacks.append(lambda event: self._on_sync_response(event.value))

    def _assign(self, protocol: str, members: dict[str, Subscription]
                ) -> dict[str, list[TopicPartition]]:
        """The leader runs the group's assignor over every member's subscription."""
        assignor = next(a for a in self.assignors if a.name == protocol)
        cluster = self.consumer.cluster
        topics = {t for sub in members.values() for t in sub.topics if t in cluster.topics}
        counts = {t: len(cluster.topics[t].partitions) for t in sorted(topics)}
        return assignor.assign(counts, members)

    def _on_sync_response(self, response: group.SyncResponse) -> None:
        if response.error == group.REBALANCE_IN_PROGRESS:
            self.send_join()
        elif response.error in group.RETRIABLE_COORDINATOR_ERRORS:
            self._retry_join(response.error)
        elif response.error:
            self._reset_generation(reset_member_id=response.error == group.UNKNOWN_MEMBER_ID)
        else:
            self.sync_result = response
            self.joined = (self.member_id, self.generation)
            self.consumer.notify()

    def _retry_join(self, error: str) -> None:
        """JoinGroup or SyncGroup found no coordinator (it moved to another broker): the
        client marks the coordinator unknown, waits ``retry.backoff.ms`` and sends JoinGroup
        again, keeping its member id (``AbstractCoordinator.joinGroupIfNeeded``)."""
        attempt = self.join_attempt

        def retry(_event: Any) -> None:
            if self.join_attempt == attempt and self.state in (PREPARING_REBALANCE,
                                                               COMPLETING_REBALANCE):
                self.rejoin_reason = f"rebalance failed due to {error}"
                self.send_join()

        self.consumer.env.timeout(RETRY_BACKOFF_MS).callbacks.append(self.consumer.guard(retry))

    def _reset_generation(self, reset_member_id: bool) -> None:
        """Forget the generation after an error; the next poll rejoins and loses partitions."""
        self.generation = -1
        self.protocol = None
        self.state = UNJOINED
        if reset_member_id:
            self.member_id = ""
        self.consumer.notify_state()
        self.request_rejoin("the coordinator no longer knows this member's generation")

    def handle_error(self, error: str) -> None:
        """React to an error in a Heartbeat or OffsetCommit answer."""
        if error == group.REBALANCE_IN_PROGRESS:
            # Kafka's member is STABLE as soon as its SyncGroup answer arrives; here the answer
            # is applied at the next poll, so a pending answer counts as stable too
            if self.state == STABLE or self.sync_result is not None:
                self.request_rejoin("the group is rebalancing")
        elif error in (group.ILLEGAL_GENERATION, group.UNKNOWN_MEMBER_ID):
            self._reset_generation(reset_member_id=error == group.UNKNOWN_MEMBER_ID)

    def maybe_auto_commit(self) -> Generator[Any, Any, None]:
        """``maybeAutoCommitOffsetsAsync``: every interval, commit what earlier polls returned."""
        consumer = self.consumer
        if consumer.config["enable.auto.commit"] and consumer.now_ms >= self.next_auto_commit_ms:
            self.next_auto_commit_ms = consumer.now_ms + consumer.config[
                "auto.commit.interval.ms"]
            yield from consumer.commit_gen(consumer.consumed_offsets(), sync=False,
                                           leader_epochs=consumer.consumed_epochs())

    # -- offset commits (commitOffsetsSync / commitOffsetsAsync) ----------------------------------

    def commit_offsets(self, offsets: dict[TopicPartition, int], sync: bool,
                       leader_epochs: dict[TopicPartition, int] | None = None
                       ) -> Generator[Any, Any, str]:
        """Send an OffsetCommit; with ``sync`` wait for the answer. Returns the error ("" = ok).

        ``leader_epochs`` go with the offsets (``committedLeaderEpoch``, KIP-320): for the
        consumer's own positions, the leader epoch of the last record read.

        The coordinator stores the offsets once its write to ``__consumer_offsets`` is
        replicated (acks=all), as Kafka's does. A sync commit retries after a retriable error
        (no working coordinator) every ``retry.backoff.ms``, for up to
        ``default.api.timeout.ms`` (``commitOffsetsSync``).
        """
        if not sync:
            return (yield from self._commit_once(offsets, sync, leader_epochs))
        deadline_ms = self.consumer.now_ms + DEFAULT_API_TIMEOUT_MS
        while True:
            error = yield from self._commit_once(offsets, sync, leader_epochs)
            if (error not in group.RETRIABLE_COORDINATOR_ERRORS
                    or self.consumer.now_ms + RETRY_BACKOFF_MS > deadline_ms):
                return error
            yield from self.consumer.wait(RETRY_BACKOFF_MS)

    def _commit_once(self, offsets: dict[TopicPartition, int], sync: bool,
                     leader_epochs: dict[TopicPartition, int] | None
                     ) -> Generator[Any, Any, str]:
        consumer = self.consumer
        kind = "sync" if sync else "async"
        sent = consumer.now_ms
        managed = consumer.group_managed()
        precheck = self._commit_precheck(managed)
        if precheck:
            consumer.record_commit(offsets, precheck, sent, kind, self.member_id, self.generation)
            return precheck
        member = self.member_id if managed else ""
        generation = self.generation if managed else -1
        gc, group_id, instance_id = consumer.group_coordinator, self.group_id, consumer.instance_id

        def handler() -> Any:
            done = gc.commit_offsets(group_id, member, instance_id, generation, offsets,
                                     leader_epochs)
            done.callbacks.append(lambda event: consumer.record_commit(
                offsets, event.value, sent, kind, member, generation))
            return done

        reply = consumer.request(handler)
        if managed:
            reply.callbacks.append(lambda event: self.handle_error(event.value))
        if not sync:
            return group.NONE
        return (yield from consumer.await_event(reply))

    def _commit_precheck(self, managed: bool) -> str:
        """Errors found before sending (``sendOffsetCommitRequest``): a member must be stable."""
        if managed:
            if self.state in (PREPARING_REBALANCE, COMPLETING_REBALANCE):
                return group.REBALANCE_IN_PROGRESS
            if self.state != STABLE:
                return NOT_IN_GROUP
        return group.NONE

    def group_error(self, error: str) -> KafkaLabError:
        """The exception for a JoinGroup the coordinator refused."""
        consumer = self.consumer
        if error == group.INVALID_SESSION_TIMEOUT:
            return ConfigError(f"consumer {consumer.client_id}: session.timeout.ms is outside "
                               "the broker's group.min/max.session.timeout.ms.")
        if error == group.INCONSISTENT_GROUP_PROTOCOL:
            return GroupProtocolError(
                f"consumer {consumer.client_id}: none of its assignors "
                f"{consumer.config['partition.assignment.strategy']} is supported by every "
                f"member of group {self.group_id!r}; give all members a common assignor.")
        return GroupProtocolError(f"consumer {consumer.client_id}: JoinGroup failed with "
                                  f"{error}.")

    # -- the heartbeat thread -----------------------------------------------------------------

    def heartbeat_loop(self) -> Generator[Any, Any, None]:
        """Heartbeat while in the group; leave it when the application stops polling."""
        consumer = self.consumer
        cfg = consumer.config
        while True:
            if not self.active:
                yield from consumer.wait(float("inf"), wake=consumer.state_event())
                continue
            # Deadlines are computed once and compared one way only: with floats,
            # ``now - last < interval`` can hold while ``last + interval <= now``, and a loop
            # mixing the two forms would wait 0 ms at the same instant for ever.
            now = consumer.now_ms
            poll_deadline_ms = self.last_poll_ms + cfg["max.poll.interval.ms"]
            if now >= poll_deadline_ms:
                self.leave_group(f"poll timeout: no poll() for max.poll.interval.ms="
                                 f"{cfg['max.poll.interval.ms']}", poll_timeout=True)
                continue
            heartbeat_due_ms = self.last_heartbeat_ms + cfg["heartbeat.interval.ms"]
            if now >= heartbeat_due_ms:
                self.last_heartbeat_ms = now
                self._send_heartbeat()
                heartbeat_due_ms = now + cfg["heartbeat.interval.ms"]
            next_ms = min(heartbeat_due_ms, poll_deadline_ms)  # > now: both checked above
            yield from consumer.wait(next_ms - now, wake=consumer.state_event())

    def _send_heartbeat(self) -> None:
        consumer = self.consumer
        coordinator = consumer.group_coordinator
        member_id, generation = self.member_id, self.generation
        reply = consumer.request(lambda: coordinator.heartbeat(self.group_id, member_id,
                                                               generation))

        def on_reply(event: Any) -> None:
            if generation == self.generation and member_id == self.member_id:
                self.handle_error(event.value)

        reply.callbacks.append(on_reply)

    def leave_group(self, reason: str, poll_timeout: bool = False) -> None:
        """``maybeLeaveGroup``: a dynamic member sends LeaveGroup; a static one only stops.

        Either way the member forgets its generation; its partitions count as lost.
        """
        consumer = self.consumer
        if self.member_id and self.state != UNJOINED:
            if consumer.instance_id is None:
                coordinator = consumer.group_coordinator
                member_id = self.member_id
                consumer.request(lambda: coordinator.leave_group(self.group_id, member_id,
                                                                 reason))
            consumer.emit(events.CONSUMER_LEFT, self.group_id, self.member_id, reason)
        self.generation = -1
        self.member_id = ""
        self.protocol = None
        self.state = UNJOINED
        consumer.notify_state()
        if poll_timeout:
            self.rejoin_needed = True
            self.rejoin_reason = "rejoining after a poll timeout"
