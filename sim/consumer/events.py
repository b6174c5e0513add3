"""Trace event kinds of consumers and the group coordinator.

Client side (component = the consumer's client.id):

- ``consumer.poll``: a poll returned records; ``partitions`` reads ``topic-p:first-last``.
- ``consumer.commit``: an offset commit reached the coordinator (``error`` empty when it was
  stored) or failed in the client before being sent.
- ``consumer.assigned`` / ``consumer.revoked`` / ``consumer.lost``: the member's partitions
  changed (``onPartitionsAssigned`` / ``Revoked`` / ``Lost`` in Kafka). ``partitions`` lists the
  change, ``assignment`` what the member owns afterwards.
- ``group.join``: the member sent JoinGroup (with the reason it rejoins).
- ``consumer.left``: the member left the group (close, poll timeout) or stopped (crash).

Coordinator side (component = ``coordinator-<broker>``):

- ``group.rebalance``: the group entered PreparingRebalance, with the reason.
- ``group.generation``: the join phase completed; a new generation with its leader and protocol.
- ``group.stable``: the leader's SyncGroup arrived; ``assignment`` holds every member's share.
- ``group.member.removed``: a member was removed (session timeout, LeaveGroup, rebalance timeout).
- ``group.loaded``: a broker became the group's coordinator and read the group back from its
  last record in ``__consumer_offsets``: its generation, state and members.
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.records import TopicPartition
from sim.trace import EventKind, register

CONSUMER_POLL = register(EventKind(
    "consumer.poll", ("group", "member", "records", "partitions"),
    "a poll returned records"))
CONSUMER_COMMIT = register(EventKind(
    "consumer.commit", ("group", "member", "generation", "offsets", "error"),
    "an offset commit was stored or failed"))
CONSUMER_ASSIGNED = register(EventKind(
    "consumer.assigned", ("group", "member", "generation", "partitions", "assignment"),
    "the member was given partitions"))
CONSUMER_REVOKED = register(EventKind(
    "consumer.revoked", ("group", "member", "generation", "partitions", "assignment"),
    "the member gave partitions up before rejoining"))
CONSUMER_LOST = register(EventKind(
    "consumer.lost", ("group", "member", "generation", "partitions", "assignment"),
    "the member lost partitions without being able to commit (it was out of the group)"))
GROUP_JOIN = register(EventKind(
    "group.join", ("group", "member", "generation", "reason"), "the member sent JoinGroup"))
CONSUMER_LEFT = register(EventKind(
    "consumer.left", ("group", "member", "reason"), "the member left the group or stopped"))
GROUP_REBALANCE = register(EventKind(
    "group.rebalance", ("group", "generation", "reason"), "the group started to rebalance"))
GROUP_GENERATION = register(EventKind(
    "group.generation", ("group", "generation", "protocol", "leader", "members"),
    "the join phase completed"))
GROUP_STABLE = register(EventKind(
    "group.stable", ("group", "generation", "assignment"), "the group got its assignment"))
CONSUMER_OFFSET_RESET = register(EventKind(
    "consumer.offset.reset", ("group", "topic", "partition", "from_offset", "offset", "reason"),
    "a fetch position outside the log (OFFSET_OUT_OF_RANGE, e.g. after retention) was reset "
    "by auto.offset.reset, or one past a truncation moved to the first diverging offset "
    "(KIP-320)"))
GROUP_MEMBER_REMOVED = register(EventKind(
    "group.member.removed", ("group", "member", "reason"), "the coordinator removed a member"))
GROUP_LOADED = register(EventKind(
    "group.loaded", ("group", "generation", "state", "members"),
    "a new coordinator loaded the group from __consumer_offsets"))


def format_partitions(partitions: Iterable[TopicPartition]) -> str:
    """``orders-0,orders-3`` for a list of TopicPartitions (empty string for none)."""
    return ",".join(str(tp) for tp in partitions)
