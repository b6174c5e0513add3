"""The restore timeline: per stream thread and task, when it was restoring, running or a
standby, drawn from the trace (``streams.task`` and ``streams.crash`` events).

``timeline_frame(kernel)`` gives the intervals as a table; ``sim.streams.drawing.
plot_restore_timeline(kernel)`` draws them, one row per (thread, task), time on the x axis: a
crash and restore shows as a running bar that stops on the crashed instance and a restoring bar,
then a running one, on the new owner. A promoted standby restores only the tail.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from sim.streams.events import STREAMS_CRASH, STREAMS_RESTORE, STREAMS_START_FAILED, STREAMS_TASK

_STARTS = {"created": "restoring", "restored": "running", "standby created": "standby"}
_ENDS = {"closed", "standby closed"}


def timeline_frame(kernel: Any, until_ms: float | None = None) -> pd.DataFrame:
    """One row per interval: thread, task, state (restoring / running / standby), start_ms,
    end_ms. A task without stores goes from created straight to running; an interval still
    open ends at ``until_ms`` (default: now), or at its instance's crash."""
    end_of_time = kernel.now_ms if until_ms is None else until_ms
    tasks = kernel.trace.frame(STREAMS_TASK)
    crashes = kernel.trace.frame(STREAMS_CRASH)
    crash_at = list(zip(crashes.component, crashes.time_ms, strict=True))
    open_: dict[tuple[str, str], tuple[str, float]] = {}
    rows: list[dict[str, Any]] = []

    def close(key: tuple[str, str], at: float) -> None:
        state, start = open_.pop(key)
        rows.append({"thread": key[0], "task": key[1], "state": state, "start_ms": start,
                     "end_ms": at})

    for component, task, action, time_ms in zip(tasks.component, tasks.task, tasks.action,
                                                tasks.time_ms, strict=True):
        key = (component, task)
        for instance, at in crash_at:  # a crash ends whatever the thread had open
            for other in [k for k in open_ if k[0].startswith(f"{instance}-StreamThread-")]:
                if at <= time_ms:
                    close(other, at)
        if action in _STARTS:
            if key in open_:
                close(key, time_ms)
            open_[key] = (_STARTS[action], time_ms)
        elif action in _ENDS and key in open_:
            close(key, time_ms)
    for key in sorted(open_):
        crashed = [at for instance, at in crash_at
                   if key[0].startswith(f"{instance}-StreamThread-") and at >= open_[key][1]]
        close(key, min(crashed) if crashed else end_of_time)
    frame = pd.DataFrame(rows, columns=["thread", "task", "state", "start_ms", "end_ms"])
    return frame.sort_values(["thread", "task", "start_ms"], kind="stable").reset_index(
        drop=True)


def restore_events(kernel: Any) -> pd.DataFrame:
    """The active restores' milestones from the trace (``streams.restore`` events): start, end,
    corrupted (the offset the restore needed was gone: store wiped, restore from the new log
    start; ``start_offset`` is the missing offset, ``end_offset`` the new log start) and
    suspended (the task left the thread before its restore completed). Batches and standby
    updates are left out. Columns: seq, time_ms, thread, task, store, partition, action,
    start_offset, end_offset, restored."""
    frame = kernel.trace.frame(STREAMS_RESTORE)
    frame = frame[frame.action.isin(["start", "end", "corrupted", "suspended"])]
    frame = frame.rename(columns={"component": "thread"})
    return frame[["seq", "time_ms", "thread", "task", "store", "partition", "action",
                  "start_offset", "end_offset", "restored"]].reset_index(drop=True)


def restore_lines(kernel: Any) -> list[str]:
    """The command line's ``Streams`` section: crashes, restore milestones and stores wiped as
    corrupted, one line each, in trace order; nothing when the run had no Streams restores."""
    restores = restore_events(kernel)
    crashes = kernel.trace.frame(STREAMS_CRASH)
    failed = kernel.trace.frame(STREAMS_START_FAILED)
    if restores.empty and crashes.empty and failed.empty:
        return []
    rows = [(int(q), f"{t:>10.1f} ms  {c}: crashed, {d}") for q, t, c, d in zip(
        crashes.seq, crashes.time_ms, crashes.component, crashes.detail, strict=True)]
    rows += [(int(q), f"{t:>10.1f} ms  {c}: could not start: {d}") for q, t, c, d in zip(
        failed.seq, failed.time_ms, failed.component, failed.detail, strict=True)]
    for row in restores.itertuples():
        where = f"{row.thread} task {row.task} {row.store}-{row.partition}"
        if row.action == "start":
            text = f"restore from offset {row.start_offset} to {row.end_offset}"
        elif row.action == "end":
            text = f"restore completed: {row.restored} records restored"
        elif row.action == "corrupted":
            text = (f"offset {row.start_offset} is gone (log start offset now "
                    f"{row.end_offset}): store wiped, restore again from there "
                    "(TaskCorruptedException)")
        else:
            text = f"restore suspended after {row.restored} records: the task moved"
        rows.append((int(row.seq), f"{row.time_ms:>10.1f} ms  {where}: {text}"))
    tasks = kernel.trace.frame(STREAMS_TASK)
    wiped = tasks[tasks.action.astype(str).str.startswith("corrupted")]
    rows += [(int(row.seq), f"{row.time_ms:>10.1f} ms  {row.component} task {row.task}: "
              f"{row.action} (data but no checkpoint under exactly_once_v2)")
             for row in wiped.itertuples()]
    rows.sort(key=lambda r: r[0])
    return ["", "Streams (crashes and restores, StoreChangelogReader)",
            *(line for _, line in rows)]
