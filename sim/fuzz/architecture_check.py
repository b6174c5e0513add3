"""Judge an architecture run under faults against the same run without them.

An architecture of lesson 09 (``sim.architectures``) is built on the cluster's guarantees: the
payments topic keeps every acknowledged payment, a Streams job restores its state and resumes
from its committed offsets, the lake reads both tiers. Broker faults and an outage of the
processing that are all over well before the end may delay an answer, never change it. So
each run is compared with its *fault-free twin*, the same scenario without its faults and
without its outage: every answer (revenue per merchant and hour) it gives at the end must be
the twin's. The twin is an independent oracle for each architecture, wrong answers by design
included (lambda's speed layer keeping the old rule, batch collection's last report): those
are the twin's too.

Two differences have causes Kafka shares:

- payments the services' producer gave up on (``delivery.timeout.ms`` ran out while it could
  not reach a leader) never reached the topic, so every answer built from the topic (all but
  batch collection's) misses them: a cell below the twin's that holds such a payment is
  ``architecture-unsent``;
- the revenue applications run at_least_once (Kafka Streams' default): a task created again
  (moved, or revived after its member dropped out) reprocesses the records of its partition
  after its last commit on top of the state its changelog restored, so the sums of that
  partition's merchants come out higher. In an architecture whose answers come from a Streams
  application (lambda's speed layer, kappa), a cell above the twin's is
  ``architecture-overcount`` when a task reading the partition that holds the cell's payments
  was created again (as ``sim.fuzz.streams_check`` ties a key's overcount to its partition's
  task); above the twin's with only other partitions' tasks created again, it is wrong.

Both are tolerated; any other difference is ``architecture-wrong``. The run's cluster is judged
as any other by ``sim.fuzz.checker`` (audit, logs, remote tier).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np

from sim.scenarios import architecture

KINDS = ("architecture-wrong",)
TOLERATED = ("architecture-unsent", "architecture-overcount")
STREAMS_BASED = ("lambda", "kappa")
"""The architectures whose answers a Kafka Streams application computes (in part)."""


@functools.lru_cache(maxsize=16)
def _twin_answers(spec_json: str, seed: int) -> np.ndarray:
    """The final answers of the fault-free run of a section (given as JSON, so that it can be
    a cache key: a campaign judges many schedules against the same few twins)."""
    spec = json.loads(spec_json)
    return architecture.run(spec, seed, [], summary=False).answers[-1, 0]


def twin_answers(spec: dict[str, Any], seed: int) -> np.ndarray:
    """The final answers of ``spec``'s run without its outage (and without the scenario's
    faults)."""
    calm = {k: v for k, v in spec.items() if k != "outage"}
    return _twin_answers(json.dumps(calm, sort_keys=True), seed)


def _producer(result: Any) -> Any:
    """The services' producer of a run."""
    from sim.architectures.run import PRODUCER_CLIENT_ID

    return next(c for c in result.kernel.clients
                if getattr(c, "client_id", None) == PRODUCER_CLIENT_ID)


def _cells_of(payments: Any) -> list[tuple[str, int]]:
    """The (merchant, hour) cell of each payment."""
    from sim.architectures.workload import HOUR_MS

    return list(zip(payments["merchant"], (payments["event_ms"] // HOUR_MS).astype(int),
                    strict=True))


def unsent_cells(result: Any) -> set[tuple[str, int]]:
    """The (merchant, hour) cells of the payments the services' producer failed to send."""
    failed = _producer(result).results()["error"].notna().to_numpy()
    return set(_cells_of(result.payments.iloc[:len(failed)][failed]))  # n-th send, n-th payment


def cell_partitions(result: Any) -> dict[tuple[str, int], set[int]]:
    """The partitions of the payments topic holding each (merchant, hour) cell's payments
    (where the services' producer sent them: the merchant is the key)."""
    sent = _producer(result).results()["partition"].to_numpy()
    found: dict[tuple[str, int], set[int]] = {}
    for cell, partition in zip(_cells_of(result.payments.iloc[:len(sent)]), sent.tolist(),
                               strict=True):
        found.setdefault(cell, set()).add(int(partition))
    return found


def recreated_tasks(kernel: Any) -> dict[int, list[str]]:
    """Per partition of the payments topic, ``application.id task`` of each Streams task
    reading it that was created more than once in the run (it moved, or came back after its
    member dropped out), from the trace's ``streams.task`` events.

    Every revenue application runs ``sim.architectures.revenue_topology``: one sub-topology
    reading the payments topic, whose task ``0_p`` reads partition ``p`` (``TaskId``), as
    ``sim.fuzz.streams_check`` ties a key to task ``0_<its partition>``.
    """
    from sim.streams.events import STREAMS_TASK
    from sim.streams.internal_topics import TaskId

    rows = kernel.trace.frame(STREAMS_TASK)
    rows = rows[rows["action"] == "created"]
    apps = rows["component"].astype(str).str.rsplit("-StreamThread-", n=1).str[0]
    counts = (apps + " " + rows["task"].astype(str)).value_counts()
    found: dict[int, list[str]] = {}
    for name in sorted(counts[counts > 1].index):
        found.setdefault(TaskId.parse(name.rsplit(" ", 1)[1]).partition, []).append(name)
    return found


def check(result: Any, spec: dict[str, Any], seed: int) -> dict[str, tuple[int, str]]:
    """``architecture-wrong``, ``-unsent``, ``-overcount``: ``(cells, detail)`` for the cells
    whose final answer is not the twin's (module docstring); ``{}`` when none."""
    got = result.answers[-1, 0]
    want = twin_answers(spec, seed)
    differ = np.flatnonzero(~((got == want) | (np.isnan(got) & np.isnan(want))))
    if not len(differ):
        return {}
    # batch collection reads the services' files, which have every payment, not the topic
    unsent = unsent_cells(result) if spec["variant"] != "batch" else set()
    recreated = recreated_tasks(result.kernel) if spec["variant"] in STREAMS_BASED else {}
    partitions = cell_partitions(result) if recreated else {}
    found: dict[str, tuple[int, str]] = {}
    for i in differ:
        merchant, hour = result.cells[i]
        shown = (f"{spec['variant']}: merchant {merchant}, hour {hour} ends at "
                 f"{_text(got[i])}, {_text(want[i])} without the faults")
        below = np.nan_to_num(got[i]) < np.nan_to_num(want[i])
        tasks = [(p, task) for p in sorted(partitions.get((merchant, hour), ()))
                 for task in recreated.get(p, [])]
        if below and (merchant, hour) in unsent:
            kind = "architecture-unsent"
        elif not below and tasks:
            kind = "architecture-overcount"
            shown += (f" (at_least_once: task {tasks[0][1]}, reading partition {tasks[0][0]} "
                      "where its payments are, was created again)")
        else:
            kind = "architecture-wrong"
        count, detail = found.get(kind, (0, ""))
        found[kind] = (count + 1, detail or shown)
    return found


def _text(value: float) -> str:
    return "no answer" if np.isnan(value) else f"{value:,.0f} cents"
