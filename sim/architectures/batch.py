"""End-to-end batch collection: services dump files, a periodic bulk job reads them all.

How data was moved before a log sat in the middle: each service writes what it took to a file
of its own every ``dump_every_ms`` (an hour), in its own folder; a scheduled bulk job runs
``job_delay_ms`` after each dump, reads every file there, computes the answer and **overwrites**
the report. Consequences the lesson measures:

- no answer before the first run, and then only as fresh as the last dump before the last run;
- late payments wait for the next dump and the next run;
- lineage is lost: the report is rewritten in place, so nobody can tell which files and which
  rule made a number, or get the earlier numbers back (:attr:`BatchCollection.runs` is the
  lab's own record, which the report itself does not keep);
- each service's files are its own (fragmented data): the job must know every folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.architectures.workload import HOUR_MS, MINUTE_MS, SERVICES, revenue


class BatchCollection:
    """The batch-collection variant (module docstring).

    Args:
        dump_every_ms: how often each service dumps a file (an hour).
        job_delay_ms: how long after each dump the bulk job runs (5 minutes).
        root: the folder the services dump into (default: a new temporary folder).
    """

    name = "batch collection"
    code_paths = 1
    when_a_component_crashes = ("a failed job leaves the last report in place, one period "
                                "staler; a missing dump silently loses that service's hour")

    def __init__(self, dump_every_ms: int = HOUR_MS, job_delay_ms: int = 5 * MINUTE_MS,
                 root: Path | None = None) -> None:
        self.dump_every_ms = dump_every_ms
        self.job_delay_ms = job_delay_ms
        self.root = Path(root) if root is not None else Path(
            tempfile.mkdtemp(prefix="kafka-lab-batch-"))
        self.runs: list[dict[str, Any]] = []
        self.failed_runs: list[float] = []
        self.report: pd.Series | None = None
        self.down = False
        self._handled_due = -1

    def attach(self, run: Any) -> None:
        """Remember the run (its payments are what the services take)."""
        self.run = run
        self.next_dump_ms = self.dump_every_ms
        self.last_dump_ms = 0
        for service in SERVICES:
            (self.root / service).mkdir(parents=True, exist_ok=True)

    def change_logic(self, now_ms: float) -> None:
        """Nothing to deploy ahead: the next job reads the rule in force when it runs."""

    def fail(self, now_ms: float) -> None:
        """The job scheduler is down: jobs due meanwhile fail (the services still dump)."""
        self.down = True

    def recover(self, now_ms: float) -> None:
        """The scheduler is back; the next job runs at its next scheduled time."""
        self.down = False

    def tick(self, now_ms: float) -> None:
        """Dump the files that are due, then run the jobs that are due."""
        while now_ms >= self.next_dump_ms:
            self._dump(self.next_dump_ms)
            self.next_dump_ms += self.dump_every_ms
        due = [d + self.job_delay_ms for d in self._dump_times()]
        if due and now_ms >= due[-1] and self._handled_due < due[-1]:
            self._handled_due = due[-1]
            if self.down:
                self.failed_runs.append(due[-1])
            else:
                self._job(now_ms, due[-1])

    def _dump_times(self) -> list[int]:
        return list(range(self.dump_every_ms, self.last_dump_ms + 1, self.dump_every_ms))

    def _dump(self, at_ms: int) -> None:
        pay = self.run.payments
        taken = pay[(pay["arrival_ms"] >= self.last_dump_ms) & (pay["arrival_ms"] < at_ms)]
        for service in SERVICES:
            mine = taken[taken["service"] == service]
            mine[["payment", "merchant", "method", "amount_cents", "event_ms"]].to_csv(
                self.root / service / f"payments-{at_ms // MINUTE_MS:05d}min.csv", index=False)
        self.last_dump_ms = at_ms

    def files(self) -> list[Path]:
        """Every dumped file, service by service, oldest first."""
        return [path for service in SERVICES for path in sorted((self.root / service).glob(
            "*.csv"))]

    def _job(self, now_ms: float, due_ms: int) -> None:
        files = self.files()
        frame = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
        rule = self.run.workload.rule_at(now_ms)
        self.report = revenue(frame, rule, self.run.workload)
        self.report.to_csv(self.root / "report.csv")  # overwritten: the old report is gone
        self.runs.append({"due_ms": due_ms, "run_ms": now_ms, "files": len(files),
                          "payments": len(frame), "rule": rule})

    def answer(self) -> np.ndarray:
        """The report as it stands (NaN everywhere before the first run)."""
        cells = len(self.run.cells)
        if self.report is None:
            return np.full(cells, np.nan)
        return self.report.to_numpy(dtype=float)

    def storage(self) -> dict[str, float]:
        """Bytes kept: the dumped files and the report, on one file server's disk."""
        files = sum(path.stat().st_size for path in self.files())
        report = self.root / "report.csv"
        size = files + (report.stat().st_size if report.exists() else 0)
        return {"disk_bytes": float(size), "object_bytes": 0.0}
