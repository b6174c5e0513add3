"""What producers experienced: windows when a partition took no writes, and reordered sends.

Two findings the delivery audit reports next to lost and duplicated records:

- an *unavailability window* of a partition runs from a failed produce attempt (a retry or a
  final failure: the leader was down, fenced, or the ISR too small) to the next batch its leader
  appended. It names the errors seen and the fault or broker event that came just before it.
  A window with no later append is *open*: ``end_ms`` is ``None`` (``null`` in JSON) and its
  duration runs to the end of the run.
- a *nonmonotonic send* (Jepsen's name) is a record a producer sent after another to the same
  partition that nevertheless got a lower offset: retries without idempotence can reorder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FAILURE_KINDS = ("produce.retry", "produce.failed")
CAUSE_KINDS = ("fault", "broker.state", "leader.election", "isr.change")


def unavailability(trace: pd.DataFrame, end_ms: float | None = None) -> list[dict[str, Any]]:
    """Windows per partition with failed produce attempts and no append (see module doc).

    ``end_ms`` is when the run ended (default: the last event), where open windows stop.
    """
    if trace.empty or not trace["kind"].isin(FAILURE_KINDS).any():
        return []
    kinds = trace["kind"]
    run_end = float(trace["time_ms"].max()) if end_ms is None else float(end_ms)
    return windows(trace[kinds.isin(FAILURE_KINDS)], trace[kinds == "log.append"],
                   trace[kinds.isin(CAUSE_KINDS)], run_end)


def windows(failures: pd.DataFrame, appends: pd.DataFrame, causes: pd.DataFrame,
            run_end: float) -> list[dict[str, Any]]:
    """``unavailability`` from the trace's failed attempts (``FAILURE_KINDS``), ``log.append``
    events and possible causes (``CAUSE_KINDS``), each a frame of those events only; open
    windows stop at ``run_end``."""
    if failures.empty:
        return []
    causes = causes.sort_values("seq", kind="stable")
    cause_seqs = causes["seq"].to_numpy(dtype=np.int64)
    found = []
    for (topic, partition), failed in failures.groupby(["topic", "partition"], sort=True):
        done = appends[(appends["topic"] == topic) & (appends["partition"] == partition)]
        done_times = np.sort(done["time_ms"].to_numpy(dtype=float))
        end = -np.inf
        for row in failed.sort_values("seq").itertuples():
            if row.time_ms <= end:
                found[-1]["errors"].add(row.error)
                continue
            i = np.searchsorted(done_times, row.time_ms, "right")
            end = float(done_times[i]) if i < len(done_times) else float("inf")
            before = int(np.searchsorted(cause_seqs, row.seq, "left")) - 1  # the last cause
            cause = None
            if before >= 0:
                event = causes.iloc[before]
                cause = {"seq": int(event["seq"]), "time_ms": float(event["time_ms"]),
                         "kind": str(event["kind"]), "component": str(event["component"])}
            found.append({"topic": str(topic), "partition": int(partition),
                          "start_ms": float(row.time_ms), "end_ms": end,
                          "errors": {row.error}, "cause": cause})
    for window in found:
        window["open"] = not np.isfinite(window["end_ms"])
        if window["open"]:
            window["end_ms"] = None
        stop = run_end if window["open"] else window["end_ms"]
        window["duration_ms"] = max(0.0, stop - window["start_ms"])
        window["errors"] = sorted(str(e) for e in window["errors"])
    return found


def nonmonotonic_sends(writes: pd.DataFrame) -> list[dict[str, Any]]:
    """Records sent later than another to the same partition but written at a lower offset.

    Per (writer, topic, partition), in send order (record id): a record whose offset is below
    the highest offset of the records sent before it. One sort of the whole table; the running
    maximum restarts per group because each group's offsets are lifted above the last's.
    """
    acked = writes[np.isfinite(writes["ack_ms"].to_numpy(dtype=float))
                   & (writes["offset"].to_numpy() >= 0)]
    if acked.empty:
        return []
    writers, writer_names = pd.factorize(acked["writer"], sort=True)
    topics, topic_names = pd.factorize(acked["topic"], sort=True)
    partitions = acked["partition"].to_numpy(dtype=np.int64)
    order = np.lexsort((acked["record_id"].to_numpy(), partitions, topics, writers))
    writers, topics, partitions = writers[order], topics[order], partitions[order]
    offsets = acked["offset"].to_numpy(dtype=np.int64)[order]
    ids = acked["record_id"].to_numpy(dtype=np.int64)[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = ((writers[1:] != writers[:-1]) | (topics[1:] != topics[:-1])
                  | (partitions[1:] != partitions[:-1]))
    lift = (np.cumsum(starts) - 1) * (int(offsets.max()) + 1)
    earlier_max = np.maximum.accumulate(offsets + lift) - lift
    back = np.flatnonzero(~starts[1:] & (offsets[1:] < earlier_max[:-1])) + 1
    return [{"writer": str(writer_names[writers[i]]), "topic": str(topic_names[topics[i]]),
             "partition": int(partitions[i]), "record_id": int(ids[i]),
             "offset": int(offsets[i]), "after_offset": int(earlier_max[i - 1])}
            for i in back.tolist()]
