"""Connect's exceptions (``org.apache.kafka.connect.errors`` and the REST errors).

All derive from the lab's ``KafkaLabError``. The REST ones carry the HTTP status that Kafka's
``ConnectExceptionMapper`` gives them; the body is always ``{"error_code", "message"}``.
"""

from __future__ import annotations

from sim.errors import KafkaLabError


class ConnectError(KafkaLabError):
    """``ConnectException``: a connector, task or worker failed."""


class DataError(ConnectError):
    """``DataException``: a converter or transformation could not handle a record."""


class RetriableError(ConnectError):
    """``RetriableException``: the operation may succeed if tried again later."""


class ToleranceExceededError(ConnectError):
    """``errors.tolerance`` was exceeded: the task fails."""


class ConnectRestError(ConnectError):
    """``ConnectRestException``: a REST request fails with ``status`` and a message."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message


class BadRequestError(ConnectRestError):
    """``BadRequestException``: 400."""

    status = 400


class NotFoundError(ConnectRestError):
    """``NotFoundException``: 404."""

    status = 404


class AlreadyExistsError(ConnectRestError):
    """``AlreadyExistsException``: 409."""

    status = 409
