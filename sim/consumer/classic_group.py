"""The coordinator's view of a classic group and its members.

Mirrors Kafka's ``ClassicGroup`` and ``ClassicGroupMember`` (``group-coordinator`` module): the
group's state, generation, chosen protocol (assignor), leader, members with their
subscriptions and assignments, and committed offsets. ``sim.consumer.group`` holds the
``GroupCoordinator`` that moves groups between states.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import simpy

from sim.consumer.assignors import Subscription
from sim.consumer.offsets import OffsetAndMetadata
from sim.records import TopicPartition

EMPTY, PREPARING, COMPLETING, STABLE, DEAD = (
    "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead")

# Kafka's error names (org.apache.kafka.common.protocol.Errors); "" means NONE.
NONE = ""
UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
ILLEGAL_GENERATION = "ILLEGAL_GENERATION"
REBALANCE_IN_PROGRESS = "REBALANCE_IN_PROGRESS"
MEMBER_ID_REQUIRED = "MEMBER_ID_REQUIRED"
INCONSISTENT_GROUP_PROTOCOL = "INCONSISTENT_GROUP_PROTOCOL"
INVALID_SESSION_TIMEOUT = "INVALID_SESSION_TIMEOUT"
COORDINATOR_NOT_AVAILABLE = "COORDINATOR_NOT_AVAILABLE"
NOT_COORDINATOR = "NOT_COORDINATOR"
RETRIABLE_COORDINATOR_ERRORS = (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR)
"""Errors after which a client finds the coordinator again and retries (``RetriableException``)."""

Protocols = tuple[tuple[str, Subscription], ...]


@dataclass
class JoinResponse:
    """A JoinGroup response; only the leader gets ``members`` (everyone's subscription)."""

    error: str
    member_id: str
    generation: int = -1
    protocol: str | None = None
    leader_id: str | None = None
    members: dict[str, Subscription] = field(default_factory=dict)


@dataclass
class SyncResponse:
    """A SyncGroup response: this member's partitions for the generation."""

    error: str
    assignment: list[TopicPartition] = field(default_factory=list)


@dataclass
class Member:
    """A member as the coordinator knows it (``ClassicGroupMember``)."""

    member_id: str
    instance_id: str | None
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: Protocols
    assignment: list[TopicPartition] = field(default_factory=list)
    join_future: simpy.Event | None = None
    sync_future: simpy.Event | None = None
    is_new: bool = True

    def subscription(self, protocol: str) -> Subscription:
        return dict(self.protocols)[protocol]


@dataclass(frozen=True)
class GroupMetadata:
    """The group's record in ``__consumer_offsets`` (``GroupMetadataValue``): what a broker
    that loads the group knows of it. Each member keeps only its subscription to the chosen
    protocol and its assignment; requests in flight, pending members and a rebalance in
    progress are not part of it."""

    generation: int
    protocol: str | None
    leader_id: str | None
    members: tuple[Member, ...]


@dataclass
class ClassicGroup:
    """One classic group: its state, members, generation and committed offsets."""

    group_id: str
    state: str = EMPTY
    previous_state: str = EMPTY
    generation: int = 0
    protocol: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    pending_members: set[str] = field(default_factory=set)
    pending_sync: set[str] = field(default_factory=set)
    new_member_added: bool = False
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    commit_log: list[tuple[float, str, int, int]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    stored: GroupMetadata | None = None  # the last GroupMetadata record written, if any

    def transition(self, state: str) -> None:
        self.previous_state, self.state = self.state, state

    def store(self) -> None:
        """Write the group's record (``GroupCoordinatorRecordHelpers.newGroupMetadataRecord``).

        Kafka 4.0 writes it when a join phase leaves the group Empty, when the leader's
        SyncGroup brings the assignment (CompletingRebalance -> Stable) and when a static
        member replaces its old id in a Stable group; at no other time."""
        members = tuple(replace(m, protocols=((self.protocol, m.subscription(self.protocol)),),
                                assignment=list(m.assignment), join_future=None,
                                sync_future=None, is_new=False)
                        for m in self.members.values()) if self.protocol else ()
        self.stored = GroupMetadata(self.generation, self.protocol, self.leader_id, members)

    def load(self) -> None:
        """Become the group a broker reads back from its last record
        (``GroupMetadataManager.replay(GroupMetadataKey, GroupMetadataValue)``): Stable with
        the record's generation, members and assignments, or Empty if it has no members (or
        no record was ever written). A rebalance in progress, members added since the record
        and pending members (KIP-394) are gone."""
        record = self.stored or GroupMetadata(0, None, None, ())
        self.members = {m.member_id: replace(m, assignment=list(m.assignment))
                        for m in record.members}
        self.static_members = {m.instance_id: m.member_id for m in record.members
                               if m.instance_id is not None}
        self.state, self.previous_state = (STABLE if self.members else EMPTY), DEAD
        self.generation = record.generation
        self.protocol = record.protocol
        self.leader_id = record.leader_id
        self.pending_members.clear()
        self.pending_sync.clear()
        self.new_member_added = False

    def has_all_members_joined(self) -> bool:
        joined = all(m.join_future is not None for m in self.members.values())
        return joined and not self.pending_members

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def candidate_protocols(self) -> list[str]:
        """Assignors every member supports, in the first member's order of preference."""
        members = list(self.members.values())
        if not members:
            return []
        common = set.intersection(*({name for name, _ in m.protocols} for m in members))
        return [name for name, _ in members[0].protocols if name in common]

    def select_protocol(self) -> str:
        """Each member votes for its most preferred candidate; most votes wins (``vote``)."""
        candidates = self.candidate_protocols()
        votes = dict.fromkeys(candidates, 0)
        for member in self.members.values():
            votes[next(name for name, _ in member.protocols if name in votes)] += 1
        return max(candidates, key=lambda name: votes[name])

    def validate_offset_commit(self, member_id: str, instance_id: str | None,
                               generation: int) -> str:
        """``validateOffsetCommit``: who may commit for the group now ("" = allowed)."""
        if generation < 0 and self.state == EMPTY:
            return NONE  # a consumer without group management (assign()) or an admin tool
        if generation >= 0 or member_id or instance_id is not None:
            if member_id not in self.members:
                return UNKNOWN_MEMBER_ID
            if generation != self.generation:
                return ILLEGAL_GENERATION
        elif self.state != EMPTY:
            return UNKNOWN_MEMBER_ID
        if self.state == COMPLETING:
            return REBALANCE_IN_PROGRESS
        return NONE
