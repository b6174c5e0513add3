"""Which Kafka behaviour and which consumer configs a lesson-03 panel names.

Part of ``sim.lessons.groups`` (lesson 03); the package docstring has the vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sim.config import KAFKA_VERSION  # the release whose behaviour the lesson shows
from sim.consumer import metrics as group_metrics
from sim.consumer.assignors import (
    ASSIGNORS,
)
from sim.consumer.config import CONSUMER, assignor_names
from sim.errors import ConfigError
from sim.kernel import Kernel

KEY_CONFIGS = ("partition.assignment.strategy", "enable.auto.commit", "max.poll.records",
               "session.timeout.ms", "max.poll.interval.ms")
"""The consumer configs every panel of the lesson names."""

ASSIGNOR_NAMES: tuple[str, ...] = tuple(ASSIGNORS)
"""``partition.assignment.strategy`` values: range, roundrobin, sticky, cooperative-sticky."""




def config_header(config: Mapping[str, Any] | None = None) -> str:
    """One line naming the Kafka version, the group protocol and the key consumer configs.

    Missing configs take Kafka 4.0's defaults, so the line is what a real consumer would use.
    Example: ``Kafka 4.0 consumer, classic group protocol · partition.assignment.strategy=range
    · enable.auto.commit=true · max.poll.records=500 · session.timeout.ms=45000 ·
    max.poll.interval.ms=300000``.

    Raises:
        ConfigError: an unknown config name or a bad value.
    """
    full = CONSUMER.parse(dict(config or {}))
    full["partition.assignment.strategy"] = assignor_names(full["partition.assignment.strategy"])
    shown = []
    for name in KEY_CONFIGS:
        value = full[name]
        if isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = str(value).lower()
        shown.append(f"{name}={value}")
    return f"Kafka {KAFKA_VERSION} consumer, classic group protocol · " + " · ".join(shown)


def assignor_header(topics: Mapping[str, int], members: Sequence[str]) -> str:
    """The line for assignor panels: Kafka version, protocol, the group and its topics."""
    shown = ", ".join(f"{t} ({n} partitions)" for t, n in sorted(topics.items()))
    return (f"Kafka {KAFKA_VERSION} client-side assignors, classic group protocol · "
            f"partition.assignment.strategy = each panel's title · members {', '.join(members)}"
            f" · every member subscribes to {shown}")


def runs_header(kernels: Mapping[str, Kernel], group_id: str) -> str:
    """:func:`group_header` for several runs; a config whose value differs says "per panel"."""
    lines = [group_header(kernel, group_id) for kernel in kernels.values()]
    if len(set(lines)) <= 1:
        return lines[0] if lines else config_header()
    parts = [line.split(" · ") for line in lines]
    merged = []
    for values in zip(*parts, strict=True):
        if len(set(values)) == 1:
            merged.append(values[0])
        else:
            merged.append(values[0].split("=")[0] + "=per panel")
    return " · ".join(merged)


def group_header(kernel: Kernel, group_id: str) -> str:
    """:func:`config_header` for the configs of the first consumer of ``group_id`` in a run."""
    members = group_metrics.consumers(kernel, group_id)
    if not members:
        raise ConfigError(f"There is no consumer of group {group_id!r} in this run; groups: "
                          f"{', '.join(group_metrics.group_ids(kernel)) or 'none'}.")
    return config_header(members[0].config)
