"""The fuzzer's check of a Kafka Connect pipeline (``connect:`` of a scenario), read from the
source file, the topic's logs and the sink's SQLite table at the end of the run.

**The source is at least once.** ``WorkerSourceTask`` produces every record its task polls and
``OffsetStorageWriter`` flushes a source offset only once every record before it is
acknowledged (``SubmittedRecords``), every ``offset.flush.interval.ms``; a task that restarts
(its worker crashed, or the task moved in a rebalance) resumes from the last flushed offset, so
lines produced after that flush are produced again. Without exactly-once source support
(KIP-618, ``exactly.once.source.support=disabled`` by default) duplicates are allowed; a line
missing from the topic is not. Read from the partition logs below the high watermark:

- ``connect-source-lost``: a line of the source file with no record in the topic;
- ``connect-source-extra``: a record in the topic that is no line of the file;
- ``connect-source-duplicate``: a line written to the topic more than once (allowed, counted).

**The sink is at least once.** ``WorkerSinkTask`` commits a partition's consumer offset only
after ``put`` took the records before it and ``preCommit`` / ``flush`` returned; a task that
restarts is handed its records again from the committed offset. The JDBC sink's upsert keyed by
the Kafka coordinates (``pk.mode=kafka``: topic, partition, offset) makes a redelivered record
land on its own row again, so at the end the table equals the topic exactly:

- ``connect-sink-lost``: a record below the high watermark with no row in the table;
- ``connect-sink-pending``: the same, but the sink's group (``connect-<connector>``) is still
  rebalancing at the end, held by a member whose worker crashed: the classic group coordinator
  keeps a member that rejoined and then died until the join completes and its session times
  out (``session.timeout.ms``, 45 s), and, if it was chosen leader, the group waits for its
  SyncGroup as long; if it was not the leader, the group gets to Stable with that member
  owning partitions until its session times out (then the tolerance covers only the missing
  records on partitions it owns). Kafka promises the records only once the group has moved
  on, after the run's end here: counted, not a violation.
- ``connect-sink-wrong``: a row with no record at its coordinates, or another line than the
  record's (a write of a record that the log no longer holds, or a mix-up of records).

Example: the file says ``a, b, c``; the topic holds ``a``@0, ``b``@1, ``a``@2 (a restart
re-read ``a``): ``c`` is lost from the source and ``a`` duplicated once; a table with rows
@0 and @2 only has lost the sink record @1.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Any

TOLERATED = ("connect-source-duplicate", "connect-sink-pending")
"""Kinds at-least-once allows: counted, never a violation by themselves."""
KINDS = ("connect-source-lost", "connect-source-extra", "connect-sink-lost", "connect-sink-wrong")
"""Kinds no profile tolerates."""


def topic_lines(kernel: Any, topic: str) -> dict[tuple[int, int], str | None]:
    """{(partition, offset): line} of every record below the high watermark (None: a value
    that is no hoisted line)."""
    from sim.connect import topic_records

    out: dict[tuple[int, int], str | None] = {}
    for record in topic_records(kernel, topic):
        out[(int(record["partition"]), int(record["offset"]))] = _line(record["value"])
    return out


def _line(value: Any) -> str | None:
    try:
        line = json.loads(value)["payload"]["line"]
    except (TypeError, ValueError, KeyError):
        return None
    return line if isinstance(line, str) else None


def table_rows(path: Any, topic: str) -> dict[tuple[int, int], str]:
    """{(partition, offset): line} of the sink's table (empty if it was never created)."""
    try:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT __connect_partition, __connect_offset, line FROM "
                              f"`{topic}`").fetchall()
    except sqlite3.OperationalError:  # no such table: the sink never wrote
        return {}
    return {(int(p), int(o)): str(line) for p, o, line in rows}


def held_by_crashed_member(kernel: Any, group_id: str, topic: str,
                           partitions: set[int]) -> str:
    """Why the sink's missing records on ``partitions`` of ``topic`` are held back at the end by
    a crashed consumer still in ``group_id`` ('' if they are not): the group is still
    rebalancing with such a member, or it is Stable and such a member owns every one of those
    partitions (it crashed while its JoinGroup was parked, so the join completed with it and
    its session runs from then)."""
    from sim.consumer.classic_group import STABLE
    from sim.consumer.group import group_coordinator

    group = group_coordinator(kernel).groups.get(group_id)
    if group is None:
        return ""
    crashed = {getattr(c, "member_id", None): c.client_id for c in kernel.clients
               if getattr(c, "lifecycle", "") == "crashed"}
    dead = sorted(m for m in group.members if m in crashed)
    if group.state == STABLE:
        owned = {tp.partition for m in dead for tp in group.members[m].assignment
                 if tp.topic == topic}
        if not dead or not partitions <= owned:
            return ""
        return (f"group {group_id} is Stable at the end, {topic} partitions "
                f"{sorted(partitions)} held by the crashed member {crashed[dead[0]]} until its "
                f"session times out")
    if not dead:
        return ""
    return (f"group {group_id} is {group.state} at the end, held by the crashed member "
            f"{min(crashed[m] for m in dead)} until its session times out")


def check(kernel: Any, spec: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """{kind: (count, first example)} for the scenario's pipeline (see the module docstring)."""
    from sim.connect.scenario import SINK, pipeline

    made = pipeline(kernel)
    if made is None:
        return {}
    topic = spec["topic"]
    wanted = made.source_file.read_text(encoding="utf-8").splitlines()
    in_topic = topic_lines(kernel, topic)
    produced = Counter(line for line in in_topic.values())
    found: dict[str, tuple[int, str]] = {}
    lost = [line for line in wanted if produced[line] == 0]
    if lost:
        found["connect-source-lost"] = (len(lost), f"line {lost[0]!r} of the source file is "
                                        f"not in {topic}")
    known = set(wanted)
    extra = sorted((where, line) for where, line in in_topic.items() if line not in known)
    if extra:
        (p, o), line = extra[0]
        found["connect-source-extra"] = (len(extra), f"{topic}-{p}@{o} holds {line!r}, "
                                         "which is no line of the source file")
    doubled = sorted((line, n) for line, n in produced.items() if line in known and n > 1)
    if doubled:
        line, n = doubled[0]
        found["connect-source-duplicate"] = (sum(n - 1 for _, n in doubled),
                                             f"line {line!r} is in {topic} {n} times")
    rows = table_rows(made.database, topic)
    missing = sorted(set(in_topic) - set(rows))
    if missing:
        p, o = missing[0]
        held = held_by_crashed_member(kernel, f"connect-{SINK}", topic,
                                      {p for p, _ in missing})
        kind, why = ("connect-sink-pending", f"; {held}") if held else ("connect-sink-lost", "")
        found[kind] = (len(missing), f"{topic}-{p}@{o} ({in_topic[(p, o)]!r}) has no row in "
                       f"the sink's table{why}")
    wrong = sorted(where for where, line in rows.items() if in_topic.get(where, None) != line)
    if wrong:
        p, o = wrong[0]
        held = in_topic.get((p, o))
        found["connect-sink-wrong"] = (len(wrong), f"the row for {topic}-{p}@{o} says "
                                       f"{rows[(p, o)]!r} but the log holds "
                                       f"{'nothing there' if held is None else repr(held)}")
    return found
