"""Error responses: domain errors become 400/404/409 with a code and field-level detail; DRF's
own errors keep their shape and gain a code. Nothing a caller sends may produce a 500."""

import logging
from typing import Any

from django.db import DataError, IntegrityError
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from crm.errors import DomainError

logger = logging.getLogger(__name__)


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
    if isinstance(exc, IntegrityError):
        # A concurrent change won a race this request lost (a customer merged away between
        # two steps, say); the same request sent again succeeds.
        logger.warning("api.integrity_conflict", extra={"view": type(context.get("view")).__name__})
        return Response(
            {"code": "conflict_retry", "detail": _("A concurrent change got in the way; retry.")},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, exceptions.Throttled):
        return _rate_limited(exc, context)
    return drf_exception_handler(exc, context)


def _rate_limited(exc: exceptions.Throttled, context: dict[str, Any]) -> Response:
    """429 with `Retry-After` (whole seconds) and the contract's body."""
    wait = max(int(getattr(exc, "wait", None) or 1), 1)
    api_key = getattr(context.get("request"), "auth", None)
    logger.info(
        "api.rate_limited",
        extra={
            "view": type(context.get("view")).__name__,
            "api_key_prefix": getattr(api_key, "prefix", None),
        },
    )
    return Response(
        {
            "code": "rate_limited",
            "detail": _("Too many requests with this API key; retry in %(seconds)d seconds.")
            % {"seconds": wait},
            "retry_after": wait,
        },
        status=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(wait)},
    )
