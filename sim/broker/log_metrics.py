"""Per-partition log metrics as a DataFrame (Kafka's ``kafka.log:type=Log`` gauges).

One row per partition, read from its leader's replica: ``segments`` (``NumLogSegments``),
``log_start_offset``, ``log_end_offset``, ``high_watermark``, ``size_bytes`` (``Size``),
``cleaned_records`` (offsets the log cleaner removed: gaps) and, for compacted topics, the
``dirty_ratio`` the log cleaner would see now (``LogCleanerManager``'s cleanable ratio;
NaN for a topic the cleaner ignores).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim import config
from sim.broker.log_cleaner import log_to_clean

COLUMNS = ["topic", "partition", "leader", "cleanup_policy", "segments", "log_start_offset",
           "log_end_offset", "high_watermark", "size_bytes", "cleaned_records", "dirty_ratio"]

STORAGE_CONFIGS = ("segment.bytes", "segment.ms", "lab.segment.bytes", "retention.ms",
                   "retention.bytes", "cleanup.policy", "min.cleanable.dirty.ratio",
                   "min.compaction.lag.ms", "max.compaction.lag.ms", "delete.retention.ms",
                   "message.timestamp.type")
"""Topic configs that change how a log is stored (a summary shows those set off default)."""


def log_metrics(cluster: Any, now_ms: float) -> pd.DataFrame:
    """The metrics of every partition's leader log (module docstring)."""
    rows = []
    for topic in cluster.topics.values():
        compact = "compact" in config.cleanup_policies(topic.config)
        for part in topic.partitions:
            log = part.log
            ratio = (log_to_clean(log, topic.config, now_ms).cleanable_ratio if compact
                     else np.nan)
            rows.append((topic.name, part.partition, part.leader, topic.config["cleanup.policy"],
                         len(log.segments), log.log_start_offset, log.log_end_offset,
                         log.high_watermark, log.size_bytes, log.cleaned_records, ratio))
    return pd.DataFrame(rows, columns=COLUMNS)


def storage_settings(topic_config: dict[str, Any]) -> dict[str, Any]:
    """A topic's storage configs that differ from Kafka's defaults."""
    defaults = config.TOPIC.defaults()
    return {k: topic_config[k] for k in STORAGE_CONFIGS if topic_config.get(k) != defaults[k]}
