"""Domain errors of the CRM. The API maps them to 400 / 404 / 409 with field-level detail;
codes are constants that tests assert on."""

from typing import Any


class DomainError(Exception):
    status_code = 400

    def __init__(self, code: str, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or {}


class ValidationFailed(DomainError):
    """Bad input. `detail` maps field names (or row indexes) to lists of messages."""


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class TooLarge(DomainError):
    status_code = 413
