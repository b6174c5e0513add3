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

from sim.streams.events import STREAMS_CRASH, STREAMS_TASK

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
