"""Connector and task states (``AbstractStatus.State``) and the status JSON of the REST API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNASSIGNED, RUNNING, PAUSED, FAILED, RESTARTING, STOPPED = (
    "UNASSIGNED", "RUNNING", "PAUSED", "FAILED", "RESTARTING", "STOPPED")


@dataclass
class Status:
    """A connector's or task's state, who runs it, and the trace of a failure."""

    state: str
    worker_id: str
    trace: str | None = None

    def as_json(self, task_id: int | None = None) -> dict[str, Any]:
        """``ConnectorStateInfo.AbstractState``: ``trace`` only when there is one."""
        out: dict[str, Any] = {} if task_id is None else {"id": task_id}
        out |= {"state": self.state, "worker_id": self.worker_id}
        if self.trace:
            out["trace"] = self.trace
        return out
