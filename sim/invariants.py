"""Replication invariants: what must hold after any run, whatever faults it went through.

Each check takes a kernel (usually after ``kernel.run(...)``) and returns its *violations*, one
readable sentence each; an empty list means the invariant holds. Tests assert ``== []`` so that a
failure prints what went wrong, and a fault-schedule fuzzer can collect them.

- ``replicas_agree_below_hw``: every in-sync replica holds exactly the leader's records below
  the leader's high watermark (Kafka's log-matching promise: a committed record is on every ISR
  member at the same offset). A divergence here is a replication bug, never a configuration's
  fault.
- ``partitions_online``: every partition has a live, unfenced leader. Holds once every fault
  has healed and the controller had time to elect (a broker heartbeat interval and a fetch
  round trip), unless no in-sync replica survived and unclean election is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.broker.cluster import Partition
    from sim.kernel import Kernel


def _partitions(kernel: Kernel) -> list[Partition]:
    return [part for topic in kernel.cluster.topics.values() for part in topic.partitions]


def replicas_agree_below_hw(kernel: Kernel) -> list[str]:
    """In-sync replicas whose log differs from the leader's below the high watermark.

    For each partition with a leader and each other ISR member: the member's log must reach
    the leader's high watermark, and record for record (offsets ``log start … HW - 1``) hold
    the same records as the leader's log.

    Returns:
        One sentence per violation, naming the partition, the replica and the first offset
        where it differs; empty when every in-sync replica agrees.
    """
    problems = []
    for part in _partitions(kernel):
        if part.leader < 0:
            continue
        leader_log = part.log
        hw = leader_log.high_watermark
        name = f"{part.topic}-{part.partition}"
        if hw > leader_log.log_end_offset:
            problems.append(f"{name}: leader {part.leader}'s high watermark {hw} is past its "
                            f"log end offset {leader_log.log_end_offset}")
            continue
        expected = leader_log.column("record_id", leader_log.log_start_offset, hw)
        for broker in part.isr:
            if broker == part.leader:
                continue
            log = part.logs[broker]
            if log.log_end_offset < hw:
                problems.append(f"{name}: in-sync replica {broker} ends at offset "
                                f"{log.log_end_offset}, below the high watermark {hw}")
                continue
            start = max(log.log_start_offset, leader_log.log_start_offset)
            ids = log.column("record_id", start, hw)
            mine = expected[start - leader_log.log_start_offset:]
            differ = np.flatnonzero(ids != mine)
            if len(differ):
                problems.append(f"{name}: in-sync replica {broker} differs from leader "
                                f"{part.leader} at offset {start + int(differ[0])}, below the "
                                f"high watermark {hw}")
    return problems


def partitions_online(kernel: Kernel) -> list[str]:
    """Partitions without a live, unfenced leader.

    Returns:
        One sentence per offline partition, with its ISR; empty when every partition has a
        leader that is alive and registered with the controller.
    """
    problems = []
    fenced = kernel.controller.fenced
    for part in _partitions(kernel):
        name = f"{part.topic}-{part.partition}"
        if part.leader < 0:
            problems.append(f"{name} is offline (no leader; ISR {part.isr})")
        elif not kernel.cluster.brokers[part.leader].alive or part.leader in fenced:
            problems.append(f"{name}'s leader {part.leader} is down or fenced (ISR {part.isr})")
    return problems
