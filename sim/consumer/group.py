"""The group coordinator of the classic rebalance protocol (broker side).

Mirrors the classic-group parts of Kafka's ``GroupMetadataManager`` and ``ClassicGroup``
(``group-coordinator`` module, Kafka 4.0). One ``GroupCoordinator`` serves every group of a
cluster; a group's requests go to the broker that leads its ``__consumer_offsets`` partition.

Where a group lives: the broker acting as leader of that partition hosts the group
(``Cluster.believed_leader``) — a leader cut off from the controller keeps hosting it until it
hears otherwise, and clients find it as they find any leader (``Cluster.leader_seen_by``). When
another broker becomes leader it loads the group from the log: the group is what its last
record says (Stable at that generation, or Empty), so a rebalance in progress and pending members
are gone, and every member's session starts again (``GroupMetadataManager.replay`` and
``onLoaded``); while no broker hosts the group (its leader crashed, no new one elected yet) no
coordinator runs, so no session can expire.

A group moves through these states::

    Empty --JoinGroup--> PreparingRebalance --all joined / timeout--> CompletingRebalance
      ^                        ^    (generation + 1; JoinGroup responses)      |
      |                        |                                   leader's SyncGroup
      +--- last member gone ---+---- member joins, leaves or times out ---- Stable

- **JoinGroup**: a new dynamic member first gets ``MEMBER_ID_REQUIRED`` with its id (KIP-394)
  and joins again with it. The first rebalance of an empty group waits
  ``group.initial.rebalance.delay.ms`` (3000), and again as long as new members keep arriving,
  up to the rebalance timeout. Later rebalances end as soon as every member has rejoined, or
  after the rebalance timeout (the largest ``max.poll.interval.ms``), removing dynamic members
  that did not rejoin.
- **SyncGroup**: the leader (the first member to join) sends everyone's assignment; the others
  wait for it.
- **Heartbeat**: keeps a member alive for ``session.timeout.ms``; the answer
  ``REBALANCE_IN_PROGRESS`` tells it to rejoin.
- **Static members** (``group.instance.id``, KIP-345) that rejoin while the group is Stable
  take over their old membership and assignment without a rebalance.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import simpy

from sim.broker.producer_state import INVALID_PRODUCER_EPOCH
from sim.broker.replication import NONE as APPEND_OK
from sim.consumer import events
from sim.consumer.classic_group import (
    COMPLETING,
    COORDINATOR_NOT_AVAILABLE,
    DEAD,
    EMPTY,
    ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL,
    INVALID_SESSION_TIMEOUT,
    MEMBER_ID_REQUIRED,
    NONE,
    NOT_COORDINATOR,
    PREPARING,
    REBALANCE_IN_PROGRESS,
    STABLE,
    UNKNOWN_MEMBER_ID,
    ClassicGroup,
    JoinResponse,
    Member,
    Protocols,
    SyncResponse,
)
from sim.consumer.config import GROUP_COORDINATOR, OFFSETS_TOPIC
from sim.consumer.offsets import (
    OffsetAndMetadata,
    append_commit,
    ensure_offsets_topic,
    partition_for,
)
from sim.records import TopicPartition

GROUP_ID_NOT_FOUND = "GROUP_ID_NOT_FOUND"
NON_EMPTY_GROUP = "NON_EMPTY_GROUP"
GROUP_SUBSCRIBED_TO_TOPIC = "GROUP_SUBSCRIBED_TO_TOPIC"
"""Errors of the admin requests OffsetDelete and DeleteGroups (``Errors``)."""


def offsets_write_error(append_error: str) -> str:
    """What a coordinator answers when its write to ``__consumer_offsets`` failed: it no longer
    leads that partition (NOT_COORDINATOR: find the coordinator again), or cannot write now.
    A transactional producer's offsets from a fenced epoch come back as INVALID_PRODUCER_EPOCH
    (``GroupMetadataManager.storeOffsets`` passes other errors through)."""
    if append_error == "NOT_LEADER_OR_FOLLOWER":
        return NOT_COORDINATOR
    if append_error == INVALID_PRODUCER_EPOCH:
        return INVALID_PRODUCER_EPOCH
    return COORDINATOR_NOT_AVAILABLE


class GroupCoordinator:
    """Serves the JoinGroup, SyncGroup, Heartbeat, LeaveGroup and offset requests of all groups.

    Request methods run when a request reaches the coordinator broker and return the response
    (or a SimPy event that triggers with it, for requests the coordinator holds back).
    """

    def __init__(self, kernel: Any, config: dict[str, Any] | None = None) -> None:
        self.kernel = kernel
        self.config = GROUP_COORDINATOR.parse(config)
        self.groups: dict[str, ClassicGroup] = {}
        self.rng = kernel.spawn_rng()
        self._timers: dict[str, object] = {}
        self._hosts: dict[int, int] = {}  # __consumer_offsets partition → broker hosting it
        self._load_check_scheduled = False
        # transactional offsets not yet committed: producer id → (group, partition) → offset
        self.pending_txn_offsets: dict[int, dict[tuple[str, TopicPartition],
                                                 OffsetAndMetadata]] = {}
        ensure_offsets_topic(kernel.cluster, self.config["offsets.topic.num.partitions"],
                             self.config["offsets.topic.replication.factor"])
        kernel.cluster.metadata_listeners.append(self._on_metadata)

    def __repr__(self) -> str:
        shown = ", ".join(f"{g.group_id}: {g.state} gen {g.generation}"
                          for g in self.groups.values())
        return f"GroupCoordinator({shown or 'no groups'})"

    # -- where a group lives -------------------------------------------------------------------

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.config["offsets.topic.num.partitions"])

    def node_for(self, group_id: str) -> int:
        """The coordinator broker: the one acting as leader of the group's
        ``__consumer_offsets`` partition (-1 while none does)."""
        cluster = self.kernel.cluster
        return cluster.believed_leader(cluster.partition(OFFSETS_TOPIC,
                                                         self.partition_for(group_id)))

    def node_seen_by(self, group_id: str, client_id: str) -> int:
        """The broker a client sends the group's requests to (FindCoordinator): the leader of
        the group's partition as that client sees it.

        -1 if that is not the broker hosting the group (a deposed leader a client still
        reaches): the lab keeps one copy of each group, the host's, so such a client waits as
        if it got no answer.
        """
        cluster = self.kernel.cluster
        node = cluster.leader_seen_by(client_id, cluster.partition(OFFSETS_TOPIC,
                                                                   self.partition_for(group_id)))
        return node if node == self.node_for(group_id) else -1

    def latency_ms(self, group_id: str) -> float:
        return self.kernel.cluster.brokers[self.node_for(group_id)].latency_ms

    def group(self, group_id: str) -> ClassicGroup:
        if group_id not in self.groups:
            self.groups[group_id] = ClassicGroup(group_id)
            self._hosts.setdefault(self.partition_for(group_id), self.node_for(group_id))
        return self.groups[group_id]

    def _on_metadata(self) -> None:
        """A broker that starts hosting a partition's groups loads them
        (``CoordinatorRuntime.scheduleLoadOperation``).

        The old coordinator's state goes (``onUnloaded``): the JoinGroup and SyncGroup
        requests it held get NOT_COORDINATOR (a crashed one's clients see the connection
        drop instead: the same for them), and they find the new coordinator and retry. The
        new one replays the group's last record (``GroupMetadataManager.replay``): Stable at
        the generation whose assignment was last stored, or Empty. A rebalance in progress was
        never written, so it is gone with the members that joined only for it and the pending
        members (KIP-394); then every member's session starts again (``onLoaded`` →
        ``rescheduleClassicGroupMemberHeartbeat``). The same broker staying leader with a new
        epoch loads nothing (``scheduleLoadOperation``: the coordinator is already active).

        A broker applies the metadata changes of one moment as one delta: a leader that, on
        hearing from the controller again, learns it was deposed and elected anew stays the
        active coordinator. So the changes are looked at once all of the moment's are in."""
        if self._load_check_scheduled or all(
                self._host_now(partition) == host for partition, host in self._hosts.items()):
            return
        self._load_check_scheduled = True
        self.kernel.env.timeout(0).callbacks.append(lambda _event: self._move_groups())

    def _host_now(self, partition: int) -> int:
        return self.kernel.cluster.believed_leader(
            self.kernel.cluster.partition(OFFSETS_TOPIC, partition))

    def _move_groups(self) -> None:
        """Unload the groups of each partition whose host changed; load them on the new one."""
        self._load_check_scheduled = False
        for partition, host in list(self._hosts.items()):
            node = self._host_now(partition)
            if node == host:
                continue
            self._hosts[partition] = node
            for group in list(self.groups.values()):
                if self.partition_for(group.group_id) == partition:
                    self._unload(group)
                    if node >= 0:
                        self._on_loaded(group)

    def _unload(self, group: ClassicGroup) -> None:
        """``GroupMetadataManager.onUnloaded``: answer held requests with NOT_COORDINATOR,
        stop the group's timers, and leave only what the group's record holds."""
        for member in group.members.values():
            future, member.join_future = member.join_future, None
            if future is not None and not future.triggered:
                future.succeed(JoinResponse(NOT_COORDINATOR, member.member_id))
            self._complete_sync(member, SyncResponse(NOT_COORDINATOR))
        for member_id in [*group.members, *group.pending_members]:
            self._cancel(f"heartbeat-{group.group_id}-{member_id}")
        self._cancel(f"join-{group.group_id}")
        self._cancel(f"sync-{group.group_id}")
        group.load()

    def _on_loaded(self, group: ClassicGroup) -> None:
        """``GroupMetadataManager.onLoaded``: every loaded member's session starts now."""
        for member in group.members.values():
            self._reschedule_heartbeat(group, member)
        self._emit(events.GROUP_LOADED, group, group.generation, group.state,
                   ",".join(group.members))

    # -- JoinGroup -----------------------------------------------------------------------------

    def join_group(self, group_id: str, member_id: str, instance_id: str | None, client_id: str,
                   session_timeout_ms: int, rebalance_timeout_ms: int,
                   protocols: Protocols) -> simpy.Event:
        """Handle JoinGroup; the returned event triggers with a ``JoinResponse``."""
        future = self.kernel.env.event()
        low = self.config["group.min.session.timeout.ms"]
        high = self.config["group.max.session.timeout.ms"]
        if not low <= session_timeout_ms <= high:
            return future.succeed(JoinResponse(INVALID_SESSION_TIMEOUT, member_id))
        group = self.group(group_id)
        names = {name for name, _ in protocols}
        if group.members and not names & set(group.candidate_protocols()):
            return future.succeed(JoinResponse(INCONSISTENT_GROUP_PROTOCOL, member_id))
        if not member_id:
            new_id = f"{client_id}-{uuid.UUID(bytes=self.rng.bytes(16), version=4)}"
            if instance_id is not None and instance_id in group.static_members:
                self._replace_static_member(group, instance_id, new_id, protocols, future,
                                            session_timeout_ms, rebalance_timeout_ms)
            elif instance_id is not None:
                self._add_member(group, Member(new_id, instance_id, client_id,
                                               session_timeout_ms, rebalance_timeout_ms,
                                               protocols), future)
            else:  # KIP-394: a dynamic member must first learn its member id
                group.pending_members.add(new_id)
                self._schedule(f"heartbeat-{group_id}-{new_id}", session_timeout_ms,
                               lambda: self._expire_pending(group, new_id))
                future.succeed(JoinResponse(MEMBER_ID_REQUIRED, new_id))
            return future
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self._add_member(group, Member(member_id, instance_id, client_id, session_timeout_ms,
                                           rebalance_timeout_ms, protocols), future)
            return future
        member = group.members.get(member_id)
        if member is None or group.state in (EMPTY, DEAD):
            return future.succeed(JoinResponse(UNKNOWN_MEMBER_ID, member_id))
        changed = member.protocols != protocols
        member.protocols = protocols
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        if group.state == PREPARING:
            member.join_future = future
            self._maybe_complete_join(group)
        elif not changed and (group.state == COMPLETING
                              or (group.state == STABLE and member_id != group.leader_id)):
            future.succeed(self._join_response(group, member))  # nothing new: same generation
        else:
            member.join_future = future
            self._prepare_rebalance(group, f"member {member_id} rejoined with new metadata")
        return future

    def _add_member(self, group: ClassicGroup, member: Member, future: simpy.Event) -> None:
        """``addMemberThenRebalanceOrCompleteJoin``."""
        if group.state == PREPARING and group.previous_state == EMPTY:
            group.new_member_added = True  # the initial rebalance waits a little longer
        member.join_future = future
        group.members[member.member_id] = member
        if member.instance_id is not None:
            group.static_members[member.instance_id] = member.member_id
        if group.leader_id is None:
            group.leader_id = member.member_id
        self._maybe_prepare_rebalance_or_complete(group, f"adding member {member.member_id}")

    def _replace_static_member(self, group: ClassicGroup, instance_id: str, new_id: str,
                               protocols: Protocols, future: simpy.Event,
                               session_timeout_ms: int, rebalance_timeout_ms: int) -> None:
        """A static member came back: it takes over the old member's place (KIP-345)."""
        old_id = group.static_members[instance_id]
        member = group.members.pop(old_id)
        self._cancel(f"heartbeat-{group.group_id}-{old_id}")
        if member.join_future is not None and not member.join_future.triggered:
            member.join_future.succeed(JoinResponse("FENCED_INSTANCE_ID", old_id))
        member.member_id = new_id
        member.protocols = protocols
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.join_future = future
        member.sync_future = None
        group.members[new_id] = member
        group.static_members[instance_id] = new_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        self._reschedule_heartbeat(group, member)
        if group.state == STABLE:
            if group.select_protocol() == group.protocol:
                # No rebalance: the member keeps its assignment and fetches it with SyncGroup.
                member.join_future = None
                group.store()  # the new member id replaces the old one in the record
                future.succeed(self._join_response(group, member, skip_members=True))
                return
            self._prepare_rebalance(group, f"static member {instance_id} changed protocols")
        elif group.state == COMPLETING:
            self._prepare_rebalance(group, f"static member {instance_id} rejoined")
        else:
            self._maybe_complete_join(group)

    def _join_response(self, group: ClassicGroup, member: Member,
                       skip_members: bool = False) -> JoinResponse:
        members = {}
        if member.member_id == group.leader_id and not skip_members:
            members = {m.member_id: m.subscription(group.protocol) for m in group.members.values()}
        return JoinResponse(NONE, member.member_id, group.generation, group.protocol,
                            group.leader_id, members)

    # -- rebalances ----------------------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete(self, group: ClassicGroup, reason: str) -> None:
        if group.state in (STABLE, COMPLETING, EMPTY):
            self._prepare_rebalance(group, reason)
        else:
            self._maybe_complete_join(group)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        """``prepareRebalance``: enter PreparingRebalance; the first rebalance waits longer."""
        if group.state == COMPLETING:  # members awaiting sync must rejoin
            for member in group.members.values():
                member.assignment = []
                self._complete_sync(member, SyncResponse(REBALANCE_IN_PROGRESS))
        group.pending_sync.clear()
        self._cancel(f"sync-{group.group_id}")
        initial = group.state == EMPTY
        group.transition(PREPARING)
        self._emit(events.GROUP_REBALANCE, group, group.generation, reason)
        if initial:
            delay = self.config["group.initial.rebalance.delay.ms"]
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            self._schedule(f"join-{group.group_id}", delay,
                           lambda: self._initial_delay_over(group, delay, remaining))
        elif group.has_all_members_joined():
            self._complete_join(group)
        else:
            self._schedule(f"join-{group.group_id}", group.rebalance_timeout_ms(),
                           lambda: self._complete_join(group))

    def _initial_delay_over(self, group: ClassicGroup, delay_ms: int, remaining_ms: int) -> None:
        """``tryCompleteInitialRebalanceElseSchedule``: wait again while members keep coming."""
        if group.new_member_added and remaining_ms != 0:
            group.new_member_added = False
            next_delay = min(self.config["group.initial.rebalance.delay.ms"], remaining_ms)
            left = max(remaining_ms - delay_ms, 0)
            self._schedule(f"join-{group.group_id}", next_delay,
                           lambda: self._initial_delay_over(group, next_delay, left))
        else:
            self._complete_join(group)

    def _maybe_complete_join(self, group: ClassicGroup) -> None:
        if (group.state == PREPARING and group.previous_state != EMPTY
                and group.has_all_members_joined()):
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        """``completeClassicGroupJoin``: drop dynamic members that did not rejoin, then answer."""
        if group.state != PREPARING:
            return
        self._cancel(f"join-{group.group_id}")
        for member in [m for m in group.members.values()
                       if m.join_future is None and m.instance_id is None]:
            self._remove(group, member, "did not rejoin within the rebalance timeout")
        joined = [m for m in group.members.values() if m.join_future is not None]
        if group.leader_id not in group.members or group.members[
                group.leader_id].join_future is None:
            group.leader_id = joined[0].member_id if joined else None
        if group.members and not joined:  # wait for session timeouts to clear the group
            self._schedule(f"join-{group.group_id}", group.rebalance_timeout_ms(),
                           lambda: self._complete_join(group))
            return
        group.generation += 1
        group.new_member_added = False
        if not group.members:
            group.protocol = None
            group.leader_id = None
            group.transition(EMPTY)
            group.store()
            self._emit(events.GROUP_GENERATION, group, group.generation, "", "", "")
            return
        group.protocol = group.select_protocol()
        group.transition(COMPLETING)
        self._emit(events.GROUP_GENERATION, group, group.generation, group.protocol,
                   group.leader_id, ",".join(group.members))
        for member in group.members.values():
            future, member.join_future = member.join_future, None
            if future is not None and not future.triggered:
                future.succeed(self._join_response(group, member))
            self._reschedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        generation = group.generation
        self._schedule(f"sync-{group.group_id}", group.rebalance_timeout_ms(),
                       lambda: self._expire_pending_sync(group, generation))

    def _expire_pending_sync(self, group: ClassicGroup, generation: int) -> None:
        if generation != group.generation or group.state not in (COMPLETING, STABLE):
            return
        late = [m for m in group.members.values() if m.member_id in group.pending_sync]
        if late:
            for member in late:
                self._remove(group, member, "sent no SyncGroup within the rebalance timeout")
            self._prepare_rebalance(group, "members missed the SyncGroup deadline")

    # -- SyncGroup, Heartbeat, LeaveGroup ------------------------------------------------------

    def sync_group(self, group_id: str, member_id: str, generation: int,
                   assignments: dict[str, list[TopicPartition]] | None) -> simpy.Event:
        """Handle SyncGroup; the leader's call carries every member's assignment."""
        future = self.kernel.env.event()
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group else None
        if group is None or member is None:
            return future.succeed(SyncResponse(UNKNOWN_MEMBER_ID))
        if generation != group.generation:
            return future.succeed(SyncResponse(ILLEGAL_GENERATION))
        if group.state == PREPARING:
            return future.succeed(SyncResponse(REBALANCE_IN_PROGRESS))
        group.pending_sync.discard(member_id)
        if group.state == STABLE:
            return future.succeed(SyncResponse(NONE, list(member.assignment)))
        member.sync_future = future
        if member_id == group.leader_id and assignments is not None:
            for m in group.members.values():
                m.assignment = list(assignments.get(m.member_id, []))
            group.transition(STABLE)
            group.store()
            self._record_generation(group)
            for m in group.members.values():
                self._complete_sync(m, SyncResponse(NONE, list(m.assignment)))
                self._reschedule_heartbeat(group, m)
        return future

    def heartbeat(self, group_id: str, member_id: str, generation: int) -> str:
        """Handle Heartbeat: returns the error, "" when all is well."""
        group = self.groups.get(group_id)
        if group is None or group.state == EMPTY or member_id not in group.members:
            return UNKNOWN_MEMBER_ID
        if generation != group.generation:
            return ILLEGAL_GENERATION
        self._reschedule_heartbeat(group, group.members[member_id])
        return REBALANCE_IN_PROGRESS if group.state == PREPARING else NONE

    def leave_group(self, group_id: str, member_id: str, reason: str) -> str:
        """Handle LeaveGroup: remove the member at once and rebalance the others."""
        group = self.groups.get(group_id)
        if group is None:
            return UNKNOWN_MEMBER_ID
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self._maybe_complete_join(group)
            return NONE
        member = group.members.get(member_id)
        if member is None:
            return UNKNOWN_MEMBER_ID
        self._remove_and_update(group, member, f"left the group ({reason})")
        return NONE

    def _remove_and_update(self, group: ClassicGroup, member: Member, reason: str) -> None:
        """``removeMemberAndUpdateClassicGroup``."""
        if member.join_future is not None and not member.join_future.triggered:
            member.join_future.succeed(JoinResponse(UNKNOWN_MEMBER_ID, ""))
        self._remove(group, member, reason)
        if group.state in (STABLE, COMPLETING):
            self._maybe_prepare_rebalance_or_complete(group, f"removing {member.member_id}")
        elif group.state == PREPARING and group.has_all_members_joined():
            self._complete_join(group)

    def _remove(self, group: ClassicGroup, member: Member, reason: str) -> None:
        group.members.pop(member.member_id, None)
        group.pending_sync.discard(member.member_id)
        if member.instance_id is not None:
            group.static_members.pop(member.instance_id, None)
        if group.leader_id == member.member_id:
            group.leader_id = next(iter(group.members), None)
        self._cancel(f"heartbeat-{group.group_id}-{member.member_id}")
        self._emit(events.GROUP_MEMBER_REMOVED, group, member.member_id, reason)

    def _reschedule_heartbeat(self, group: ClassicGroup, member: Member) -> None:
        self._schedule(f"heartbeat-{group.group_id}-{member.member_id}",
                       member.session_timeout_ms, lambda: self._expire(group, member))

    def _expire(self, group: ClassicGroup, member: Member) -> None:
        """The session timed out: remove the member unless it waits in JoinGroup or SyncGroup.

        Not while no broker hosts the group: no coordinator runs then, and the one that loads
        the group next starts the session again (``_on_metadata``)."""
        if group.members.get(member.member_id) is not member or self.node_for(
                group.group_id) < 0:
            return
        waiting = member.join_future is not None or member.sync_future is not None
        if waiting and not member.is_new:
            return
        self._remove_and_update(group, member, "session timeout: no heartbeat within "
                                f"session.timeout.ms={member.session_timeout_ms}")

    def _expire_pending(self, group: ClassicGroup, member_id: str) -> None:
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self._maybe_complete_join(group)

    def _complete_sync(self, member: Member, response: SyncResponse) -> None:
        future, member.sync_future = member.sync_future, None
        if future is not None and not future.triggered:
            future.succeed(response)

    def _record_generation(self, group: ClassicGroup) -> None:
        assignment = {m.member_id: [str(tp) for tp in m.assignment]
                      for m in group.members.values()}
        clients = {m.member_id: m.client_id for m in group.members.values()}
        group.history.append({"generation": group.generation, "time_ms": self.kernel.now_ms,
                              "protocol": group.protocol, "leader": group.leader_id,
                              "assignments": assignment, "clients": clients})
        self._emit(events.GROUP_STABLE, group, group.generation,
                   json.dumps(assignment, sort_keys=True))

    # -- offsets -------------------------------------------------------------------------------

    def commit_offsets(self, group_id: str, member_id: str, instance_id: str | None,
                       generation: int, offsets: dict[TopicPartition, int],
                       leader_epochs: dict[TopicPartition, int] | None = None) -> simpy.Event:
        """Handle OffsetCommit (``ClassicGroup.validateOffsetCommit``).

        Valid offsets are written to ``__consumer_offsets`` with acks=all and stored once that
        write is replicated; the returned event triggers with the error ("" when stored).
        ``leader_epochs`` are the partitions' ``committedLeaderEpoch`` (KIP-320), stored with
        the offsets and returned by OffsetFetch.
        """
        epochs = leader_epochs or {}
        future = self.kernel.env.event()
        group = self.group(group_id)
        error = group.validate_offset_commit(member_id, instance_id, generation)
        if error:
            return future.succeed(error)
        node = self.node_for(group_id)
        if node < 0:
            return future.succeed(COORDINATOR_NOT_AVAILABLE)

        def stored(result: Any) -> None:
            if result.error != APPEND_OK:  # appendGroupMetadataErrorToResponseError
                lost_leadership = result.error == "NOT_LEADER_OR_FOLLOWER"
                future.succeed(NOT_COORDINATOR if lost_leadership else COORDINATOR_NOT_AVAILABLE)
                return
            now = self.kernel.now_ms
            for tp, offset in offsets.items():
                group.offsets[tp] = OffsetAndMetadata(int(offset), epochs.get(tp), now,
                                                      member_id, generation)
                group.commit_log.append((now, tp.topic, tp.partition, int(offset)))
            future.succeed(NONE)

        append_commit(self.kernel, node, self.partition_for(group_id), group_id, offsets,
                      stored)
        return future

    def txn_offset_commit(self, group_id: str, producer_id: int, producer_epoch: int,
                          member_id: str, generation: int,
                          offsets: dict[TopicPartition, int]) -> simpy.Event:
        """Handle TxnOffsetCommit: offsets held back until the transaction ends (KIP-98).

        The member and generation are checked as for a commit (KIP-447), so a zombie whose
        partitions moved cannot commit. The offsets are written to ``__consumer_offsets`` as
        part of the transaction and become visible only when its COMMIT marker lands there
        (``complete_transaction``); an ABORT marker drops them. They are pending from the
        moment they are appended, not only once replicated: Kafka's coordinator replays a
        record into its state as it appends it, and a ``require_stable`` OffsetFetch reads that
        latest state (``OffsetMetadataManager.hasPendingTransactionalOffsets``). An append the
        leader refuses takes them back, as the coordinator reverts a failed write; one that was
        written but not acknowledged in time only fails the response (``CoordinatorRuntime``'s
        write timeout): its offsets stay pending for the transaction's marker.
        """
        future = self.kernel.env.event()
        group = self.group(group_id)
        error = group.validate_offset_commit(member_id, None, generation) if member_id else NONE
        if error:
            return future.succeed(error)
        node = self.node_for(group_id)
        if node < 0:
            return future.succeed(COORDINATOR_NOT_AVAILABLE)
        now = self.kernel.now_ms
        held = {(group_id, tp): OffsetAndMetadata(int(offset), None, now, member_id, generation)
                for tp, offset in offsets.items()}
        pending = self.pending_txn_offsets.setdefault(producer_id, {})
        replaced = {key: pending[key] for key in held if key in pending}
        pending.update(held)

        written = False  # set once the leader has taken the append (a refusal comes first)

        def stored(result: Any) -> None:
            if result.error != APPEND_OK:
                if not written:
                    self._take_back(producer_id, held, replaced)
                future.succeed(offsets_write_error(result.error))
                return
            future.succeed(NONE)

        append_commit(self.kernel, node, self.partition_for(group_id), group_id, offsets,
                      stored, producer_id=producer_id, producer_epoch=producer_epoch)
        written = True
        return future

    def _take_back(self, producer_id: int, held: dict[Any, OffsetAndMetadata],
                   replaced: dict[Any, OffsetAndMetadata]) -> None:
        """Undo a refused TxnOffsetCommit's pending offsets (those a later commit of the same
        transaction has not replaced), restoring what they had replaced."""
        pending = self.pending_txn_offsets.get(producer_id)
        if pending is None:  # the transaction ended meanwhile
            return
        for key, offset in held.items():
            if pending.get(key) is offset:
                if key in replaced:
                    pending[key] = replaced[key]
                else:
                    del pending[key]
        if not pending:
            del self.pending_txn_offsets[producer_id]

    def complete_transaction(self, producer_id: int, commit: bool) -> None:
        """A transaction marker reached ``__consumer_offsets``: its offsets count, or not."""
        pending = self.pending_txn_offsets.pop(producer_id, {})
        if not commit:
            return
        for (group_id, tp), offset in pending.items():
            group = self.group(group_id)
            group.offsets[tp] = offset
            group.commit_log.append((offset.commit_ms, tp.topic, tp.partition, offset.offset))

    def has_pending_txn_offsets(self, group_id: str, partitions: list[TopicPartition]) -> bool:
        """Whether an open transaction holds offsets for these partitions: a read_committed
        consumer's OffsetFetch (``require_stable``, KIP-447) answers UNSTABLE_OFFSET_COMMIT
        and the consumer asks again."""
        wanted = {(group_id, tp) for tp in partitions}
        return any(key in wanted for pending in self.pending_txn_offsets.values()
                   for key in pending)

    def fetch_offsets(self, group_id: str,
                      partitions: list[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The committed offset of each partition, None if there is none."""
        return {tp: None if committed is None else committed.offset
                for tp, committed in self.fetch_committed(group_id, partitions).items()}

    def fetch_committed(self, group_id: str, partitions: list[TopicPartition]
                        ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """Handle OffsetFetch: each partition's committed offset with its leader epoch
        (``committedLeaderEpoch``, KIP-320), None if there is none."""
        group = self.groups.get(group_id)
        stored = group.offsets if group else {}
        return {tp: stored.get(tp) for tp in partitions}

    # -- admin: OffsetDelete (KIP-496) and DeleteGroups ---------------------------------------

    def delete_offsets(self, group_id: str,
                       partitions: list[TopicPartition]) -> simpy.Event:
        """Handle OffsetDelete (``handleDeleteOffsets``, KIP-496): tombstones in
        ``__consumer_offsets`` for the partitions of topics no member is subscribed to; the
        event triggers with (error, {partition: error})."""
        future = self.kernel.env.event()
        group = self.groups.get(group_id)
        if group is None or group.state == DEAD:
            return future.succeed((GROUP_ID_NOT_FOUND, {}))
        subscribed = {topic for m in group.members.values() if group.protocol
                      for topic in getattr(m.subscription(group.protocol), "topics", ())}
        errors = {tp: GROUP_SUBSCRIBED_TO_TOPIC if tp.topic in subscribed else NONE
                  for tp in partitions}
        removable = {tp: -1 for tp, error in errors.items() if not error}
        node = self.node_for(group_id)
        if node < 0:
            return future.succeed((COORDINATOR_NOT_AVAILABLE, {}))
        if not removable:
            return future.succeed((NONE, errors))

        def stored(result: Any) -> None:
            if result.error != APPEND_OK:
                future.succeed((offsets_write_error(result.error), {}))
                return
            for tp in removable:
                group.offsets.pop(tp, None)
            future.succeed((NONE, errors))

        append_commit(self.kernel, node, self.partition_for(group_id), group_id, removable,
                      stored, tombstone=True)
        return future

    def delete_group(self, group_id: str) -> simpy.Event:
        """Handle DeleteGroups for one group: only an Empty group can go (NON_EMPTY_GROUP
        otherwise); its offsets get tombstones and the group is gone (Dead). The event
        triggers with the error ("" when deleted)."""
        future = self.kernel.env.event()
        group = self.groups.get(group_id)
        if group is None or group.state == DEAD:
            return future.succeed(GROUP_ID_NOT_FOUND)
        if group.state != EMPTY:
            return future.succeed(NON_EMPTY_GROUP)
        node = self.node_for(group_id)
        if node < 0:
            return future.succeed(COORDINATOR_NOT_AVAILABLE)

        def stored(result: Any) -> None:
            if result.error != APPEND_OK:
                future.succeed(offsets_write_error(result.error))
                return
            group.offsets.clear()
            group.transition(DEAD)
            self.groups.pop(group_id, None)
            future.succeed(NONE)

        append_commit(self.kernel, node, self.partition_for(group_id), group_id,
                      dict.fromkeys(group.offsets, -1), stored, tombstone=True)
        return future

    # -- timers and trace ----------------------------------------------------------------------

    def _schedule(self, key: str, delay_ms: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay_ms``; scheduling the same key again replaces it."""
        token = object()
        self._timers[key] = token

        def fire(_event: simpy.Event) -> None:
            if self._timers.get(key) is token:
                del self._timers[key]
                action()

        self.kernel.env.timeout(max(delay_ms, 0)).callbacks.append(fire)

    def _cancel(self, key: str) -> None:
        self._timers.pop(key, None)

    def _emit(self, kind: Any, group: ClassicGroup, *values: Any) -> None:
        node = self.node_for(group.group_id)
        self.kernel.trace.emit(kind, self.kernel.now_ms, f"coordinator-{node}", group.group_id,
                               *values)


def group_coordinator(kernel: Any, config: dict[str, Any] | None = None) -> GroupCoordinator:
    """The cluster's group coordinator, created on first use (``config`` updates its settings)."""
    cluster = kernel.cluster
    coordinator = getattr(cluster, "group_coordinator", None)
    if coordinator is None:
        coordinator = GroupCoordinator(kernel, config)
        cluster.group_coordinator = coordinator
    elif config:
        coordinator.config.update(GROUP_COORDINATOR.parse({**coordinator.config, **config}))
    return coordinator
