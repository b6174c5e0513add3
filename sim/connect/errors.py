"""Connect's exceptions (``org.apache.kafka.connect.errors`` and the REST errors).

All derive from the lab's ``KafkaLabError``. The REST ones carry the HTTP status that Kafka's
``ConnectExceptionMapper`` gives them; the body is always ``{"error_code", "message"}``.
``class_name`` is the Java class each one stands for: what a dead letter queue record's
``__connect.errors.exception.class.name`` header names (``DeadLetterQueueReporter``).
"""

from __future__ import annotations

from sim.errors import KafkaLabError


def class_name(cls: type) -> str:
    """The Java class ``cls`` stands for (its ``class_name``), else its Python path: how a
    worker lists a plugin and how an error report names an exception or a failing stage."""
    return getattr(cls, "class_name", "") or f"{cls.__module__}.{cls.__qualname__}"


class ConnectError(KafkaLabError):
    """``ConnectException``: a connector, task or worker failed."""

    class_name = "org.apache.kafka.connect.errors.ConnectException"


class DataError(ConnectError):
    """``DataException``: a converter or transformation could not handle a record."""

    class_name = "org.apache.kafka.connect.errors.DataException"


class RetriableError(ConnectError):
    """``RetriableException``: the operation may succeed if tried again later."""

    class_name = "org.apache.kafka.connect.errors.RetriableException"


class ToleranceExceededError(ConnectError):
    """``errors.tolerance`` was exceeded: the task fails (Kafka throws a ``ConnectException``,
    "Tolerance exceeded in error handler")."""


class ConnectRestError(ConnectError):
    """``ConnectRestException``: a REST request fails with ``status`` and a message."""

    class_name = "org.apache.kafka.connect.runtime.rest.errors.ConnectRestException"
    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message


class BadRequestError(ConnectRestError):
    """``BadRequestException``: 400."""

    class_name = "org.apache.kafka.connect.runtime.rest.errors.BadRequestException"
    status = 400


class NotFoundError(ConnectRestError):
    """``NotFoundException``: 404."""

    class_name = "org.apache.kafka.connect.errors.NotFoundException"
    status = 404


class AlreadyExistsError(ConnectRestError):
    """``AlreadyExistsException``: 409."""

    class_name = "org.apache.kafka.connect.errors.AlreadyExistsException"
    status = 409
