"""Ready-made consumer applications: the classic poll loops, as ``on_records`` callbacks.

Each one is what you would write inside ``while True: records = consumer.poll(...)``:

- ``at_most_once``: commit, then process. A crash while processing loses the rest of the
  batch: those records are committed but never processed (*skipped*).
- ``at_least_once``: process, then commit. A crash while processing means the next owner
  starts again at the last commit: what was processed since is processed *twice*.
- ``auto_commit``: only process; ``enable.auto.commit`` commits inside ``poll()`` every
  ``auto.commit.interval.ms`` what earlier polls returned. At least once, with up to one
  interval of records processed again after a crash.

A ``commit_sync`` that fails raises, as Kafka's ``commitSync`` does, and the rest of your
function does not run: a member that was removed from the group (it hung, or polled too
late) gets ``CommitFailedError``, so ``at_most_once`` does not process records whose
partitions already belong to another member. The lab's poll loop then does what a Kafka
application's loop does around its body::

    while True:
        records = consumer.poll(100)
        try:
            on_records(consumer, records)
        except COMMIT_ERRORS:
            # the group moved on (or is moving): read what was not processed again, if it
            # is still ours; wait retry.backoff.ms; the next poll() finishes the rebalance,
            # or rejoins and drops the partitions that were lost
            continue

Any other exception from ``on_records`` stops the run with a note naming the consumer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.consumer.errors import CommitFailedError, CommitTimeoutError, RebalanceInProgressError
from sim.consumer.fetcher import ConsumerRecords
from sim.errors import ConfigError

COMMIT_ERRORS = (CommitFailedError, RebalanceInProgressError, CommitTimeoutError)
"""What a poll loop catches around its body and survives: the commit was not stored (or may
not have been), and ``poll()`` sorts out the membership (Kafka's ``CommitFailedException``,
``RebalanceInProgressException``, ``TimeoutException``)."""


def at_most_once(consumer: Any, records: ConsumerRecords) -> None:
    """Commit before processing: a crash skips records, nothing is processed twice.

    If the commit fails (``CommitFailedError``), nothing is processed: the records may be
    another member's by now.
    """
    consumer.commit_sync()
    consumer.process(records)


def at_least_once(consumer: Any, records: ConsumerRecords) -> None:
    """Process before committing: a crash repeats records, nothing is skipped.

    If the commit fails, whoever reads the partitions next starts at the last stored commit
    and processes these records again.
    """
    consumer.process(records)
    consumer.commit_sync()


def auto_commit(consumer: Any, records: ConsumerRecords) -> None:
    """Process only; ``enable.auto.commit=true`` commits in later polls."""
    consumer.process(records)


APPS: dict[str, Callable[[Any, ConsumerRecords], None]] = {
    "at-most-once": at_most_once,
    "at-least-once": at_least_once,
    "auto-commit": auto_commit,
}
"""The applications by the names scenarios use."""

AUTO_COMMIT = {"at-most-once": False, "at-least-once": False, "auto-commit": True}
"""The ``enable.auto.commit`` each application is meant for."""


def app_for(name: str) -> Callable[[Any, ConsumerRecords], None]:
    """The application called ``name``, or a clear error listing the choices."""
    try:
        return APPS[name]
    except KeyError:
        raise ConfigError(f"Unknown consumer app {name!r}; choose one of "
                          f"{', '.join(APPS)}.") from None
