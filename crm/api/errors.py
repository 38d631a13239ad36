"""Error responses: domain errors become 400/404/409 with a code and field-level detail; DRF's
own errors keep their shape and gain a code. Nothing a caller sends may produce a 500."""

from typing import Any

from django.db import DataError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from crm.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"code": exc.code, "detail": exc.message}
        if exc.detail:
            body["errors"] = exc.detail
        return Response(body, status=exc.status_code)
    if isinstance(exc, DataError):
        # Values PostgreSQL cannot store (a number out of range, a bad date) are the caller's.
        return Response(
            {"code": "invalid_value", "detail": str(exc).splitlines()[0]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return drf_exception_handler(exc, context)
