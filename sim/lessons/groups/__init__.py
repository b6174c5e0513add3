"""Lesson computations for consumer groups (lesson 03): assignors, lag, crashes, rebalances.

The notebook ``03_consumer_groups`` calls these so that each cell stays a line or two, and
``tests/test_lessons_groups.py`` calls the very same functions to back every number the lesson
states. Everything is a plain function returning a DataFrame (or a small result object holding
DataFrames); nothing here draws.

Vocabulary:

- *assignment*: member id → the partitions it owns, as a partition assignor computes it from the
  members' subscriptions (:func:`assign` runs the lab's copies of Kafka's four assignors).
- *moved*: a partition whose owner after a rebalance differs from its owner before.
- *stopped*: a partition nobody consumes for a while during the rebalance. The **eager** protocol
  (range, roundrobin, sticky) makes every member revoke everything first, so every owned
  partition stops; the **cooperative** protocol (cooperative-sticky) revokes only what moves,
  and hands it out in a second round. Worked example: C0 owns t-0, t-1, t-2 and C1 joins. Sticky
  moves t-2 to C1 in one round, but all three partitions stop; cooperative-sticky stops only t-2
  and needs two rounds (round 1 takes it from C0, round 2 gives it to C1).
- *lag*: per partition, high watermark minus the group's committed offset, as
  ``kafka-consumer-groups.sh --describe`` prints it (a partition without a commit counts from
  offset 0, as the group reads from the beginning). ``consumer_lag`` is the consumer's own
  metric: high watermark minus its position.
- *skipped* / *processed twice*: the delivery audit's names (``sim.audit``) for records a group
  moved past without processing (at most once) and records processed again (at least once).
"""

from __future__ import annotations

from sim.config import KAFKA_VERSION  # the release whose behaviour the lesson shows
from sim.lessons.groups.assignment import *  # noqa: F403
from sim.lessons.groups.assignment import (
    Rebalance,
    assign,
    assignment_frame,
    assignment_table,
    changes_table,
    member_names,
    membership_changes,
    rebalance,
    steps_frame,
    topics_of,
)
from sim.lessons.groups.delivery import *  # noqa: F403
from sim.lessons.groups.delivery import (
    CRASH_SCENARIO,
    STRATEGIES,
    all_anomalies,
    anomalies,
    anomalies_frame,
    crash_kernel,
    crash_run,
    delivery_summary,
    processed_records,
    zombie_summary,
)
from sim.lessons.groups.headers import (
    ASSIGNOR_NAMES,
    KEY_CONFIGS,
    assignor_header,
    config_header,
    group_header,
    runs_header,
)
from sim.lessons.groups.lag import (
    LAG_GROUP,
    LAG_TOPIC,
    LagRun,
    lag_kernel,
    lag_run,
    lag_summary,
)
from sim.lessons.groups.rebalances import (
    REBALANCE_SCENARIOS,
    ownership,
    pause_summary,
    pauses,
    rebalance_runs,
)

__all__ = [
    "ASSIGNOR_NAMES",
    "CRASH_SCENARIO",
    "KAFKA_VERSION",
    "KEY_CONFIGS",
    "LAG_GROUP",
    "LAG_TOPIC",
    "REBALANCE_SCENARIOS",
    "STRATEGIES",
    "LagRun",
    "Rebalance",
    "all_anomalies",
    "anomalies",
    "anomalies_frame",
    "assign",
    "assignment_frame",
    "assignment_table",
    "assignor_header",
    "changes_table",
    "config_header",
    "crash_kernel",
    "crash_run",
    "delivery_summary",
    "group_header",
    "lag_kernel",
    "lag_run",
    "lag_summary",
    "member_names",
    "membership_changes",
    "ownership",
    "pause_summary",
    "pauses",
    "processed_records",
    "rebalance",
    "rebalance_runs",
    "runs_header",
    "steps_frame",
    "topics_of",
    "zombie_summary",
]
