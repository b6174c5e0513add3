"""Error handling: ``errors.tolerance``, ``errors.retry.timeout`` and the sink dead letter queue.

``RetryWithToleranceOperator.execute`` runs one stage of a record's processing (a converter, a
transformation, a put): a ``RetriableError`` is retried with back-off (300 ms doubling, at most
``errors.retry.delay.max.ms``) until ``errors.retry.timeout`` has passed; any other error, or
the timeout, is tolerated with ``errors.tolerance=all`` (the record is skipped and, for a sink,
sent to the DLQ) and fails the task with ``none``. Stage names and the ``__connect.errors.*``
headers are those of Kafka's ``Stage`` and ``DeadLetterQueueReporter``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Generator
from typing import Any

from sim.connect.errors import RetriableError, ToleranceExceededError, class_name

KEY_CONVERTER, VALUE_CONVERTER, TRANSFORMATION, TASK_PUT = (
    "KEY_CONVERTER", "VALUE_CONVERTER", "TRANSFORMATION", "TASK_PUT")
FAILED = object()
"""What ``execute`` returns for a tolerated failure."""
RETRY_BACKOFF_START_MS = 300


class RetryWithToleranceOperator:
    """Retries and tolerates errors of one task (``RetryWithToleranceOperator``)."""

    def __init__(self, config: dict[str, Any], env: Any,
                 report: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.tolerance = config["errors.tolerance"]
        self.retry_timeout = config["errors.retry.timeout"]
        self.delay_max = config["errors.retry.delay.max.ms"]
        self.env = env
        self.report = report
        self.total_failures = 0
        self.skipped = 0

    def execute(self, operation: Callable[[], Any], stage: str, executing_class: type,
                context: dict[str, Any]) -> Generator[Any, Any, Any]:
        """Run ``operation``; a tolerated failure returns ``FAILED``."""
        start = self.env.now
        delay = RETRY_BACKOFF_START_MS
        while True:
            try:
                return operation()
            except RetriableError as exc:
                elapsed = self.env.now - start
                if self.retry_timeout == -1 or elapsed + delay <= self.retry_timeout:
                    yield self.env.timeout(delay)
                    delay = min(delay * 2, self.delay_max)
                    continue
                return self._fail(exc, stage, executing_class, context)
            except Exception as exc:
                return self._fail(exc, stage, executing_class, context)

    def _fail(self, exc: BaseException, stage: str, executing_class: type,
              context: dict[str, Any]) -> Any:
        self.total_failures += 1
        if self.tolerance != "all":
            raise ToleranceExceededError("Tolerance exceeded in error handler") from exc
        self.skipped += 1
        if self.report is not None:
            self.report({**context, "stage": stage, "class_name": class_name(executing_class),
                         "exception": exc})
        return FAILED


def error_headers(context: dict[str, Any], connector: str, task_id: int
                  ) -> list[tuple[str, str]]:
    """The ``__connect.errors.*`` headers (``DeadLetterQueueReporter.populateContextHeaders``)."""
    exc = context["exception"]
    headers = [("__connect.errors.topic", context["topic"]),
               ("__connect.errors.partition", str(context["partition"])),
               ("__connect.errors.offset", str(context["offset"])),
               ("__connect.errors.connector.name", connector),
               ("__connect.errors.task.id", str(task_id)),
               ("__connect.errors.stage", context["stage"]),
               ("__connect.errors.class.name", context["class_name"]),
               ("__connect.errors.exception.class.name", class_name(type(exc)))]
    headers.append(("__connect.errors.exception.message", str(exc)))
    headers.append(("__connect.errors.exception.stacktrace",
                    "".join(traceback.format_exception(exc)).rstrip()))
    return headers
