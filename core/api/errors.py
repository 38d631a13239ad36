"""Error responses: every error the API answers has one shape, `{"code", "detail", "errors"}`
(`errors`, field-level detail, only when there is some). Domain errors keep their code and
detail; DRF's own errors (validation 400, parse 400, 401, 403, 404, 405, 406, 415, 429) take
their DRF code (`invalid_input` for validation, with each field's messages under its dotted
path, e.g. `variants.0.name`; `rate_limited` for 429, with `retry_after`); Django's own 404,
400 and 500 under /api/ answer JSON too.
Nothing a caller sends may produce a 500."""

import logging
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.api.parsers import body_too_large_error
from core.errors import DomainError

logger = logging.getLogger(__name__)

ERROR_INVALID_INPUT = "invalid_input"
ERROR_INVALID_VALUE = "invalid_value"
ERROR_CONFLICT_RETRY = "conflict_retry"
ERROR_NOT_FOUND = "not_found"
ERROR_BAD_REQUEST = "bad_request"
ERROR_PERMISSION_DENIED = "permission_denied"
ERROR_SERVER_ERROR = "server_error"
ERROR_INVALID_ENCODING = "invalid_encoding"
ERROR_RATE_LIMITED = "rate_limited"
NON_FIELD = "non_field_errors"

API_PREFIX = "/api/"


def error_body(code: str, detail: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def _field_errors(detail: Any, path: str = "", into: dict[str, list[str]] | None = None) -> Any:
    """DRF's nested error detail as `{"dotted.path": [messages]}`: nested serializers become
    `a.b`, list items (a ListField's `{0: ...}` or a many=True serializer's list, where valid
    items are empty) `a.0.b`."""
    errors: dict[str, list[str]] = {} if into is None else into
    if isinstance(detail, dict):
        for key, value in detail.items():
            _field_errors(value, f"{path}.{key}" if path else str(key), errors)
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, item in enumerate(detail):
            _field_errors(item, f"{path}.{index}" if path else str(index), errors)
    elif isinstance(detail, list):
        errors.setdefault(path or NON_FIELD, []).extend(str(item) for item in detail)
    else:
        errors.setdefault(path or NON_FIELD, []).append(str(detail))
    return errors


def _drf_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return error_body(
            ERROR_INVALID_INPUT,
            str(exceptions.ValidationError.default_detail),
            _field_errors(exc.detail),
        )
    if isinstance(exc.detail, dict | list):
        return error_body(exc.default_code, str(exc.default_detail), _field_errors(exc.detail))
    if isinstance(exc, exceptions.Throttled):
        return error_body(ERROR_RATE_LIMITED, str(exc.detail))
    code = exc.detail.code if isinstance(exc.detail, exceptions.ErrorDetail) else None
    return error_body(code or exc.default_code, str(exc.detail))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):  # a body over API_MAX_BODY_BYTES read by Django
        exc = body_too_large_error()
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.detail), status=exc.status_code)
    if isinstance(exc, UnicodeEncodeError):
        # A safety net: a lone surrogate (a valid JSON escape, "\ud800") that reached the
        # database driver, which cannot encode it. Fields refuse them first where they check.
        return Response(
            error_body(ERROR_INVALID_ENCODING, _("A value holds a character that is not text.")),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DataError):
        # Values PostgreSQL cannot store (a number out of range, a bad date) are the caller's.
        return Response(
            error_body(ERROR_INVALID_VALUE, str(exc).splitlines()[0]),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, IntegrityError):
        # A concurrent change won a race this request lost (a customer merged away between
        # two steps, say); the same request sent again succeeds.
        logger.warning("api.integrity_conflict", extra={"view": type(context.get("view")).__name__})
        return Response(
            error_body(ERROR_CONFLICT_RETRY, _("A concurrent change got in the way; retry.")),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, exceptions.Throttled):
        return _rate_limited(exc, context)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)  # sets WWW-Authenticate
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = _drf_body(exc)
    return response


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


# Django's own error views (config.urls' handler404 and friends): JSON under /api/; elsewhere
# (the admin) 403 and 404 as pages of the admin (core/templates/403.html and 404.html), in the
# operator's language with a way back to the index.


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _admin_error_page(request: HttpRequest, template: str, status: int) -> HttpResponse:
    """The admin's page for an error, with the admin's header, menu and user links."""
    if not hasattr(request, "user"):  # refused before the middleware ran: no admin to show
        view = defaults.permission_denied if status == 403 else defaults.page_not_found
        return view(request, PermissionDenied() if status == 403 else Http404())
    return render(request, template, admin.site.each_context(request), status=status)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            error_body(ERROR_NOT_FOUND, str(exceptions.NotFound.default_detail)), status=404
        )
    return _admin_error_page(request, "404.html", 404)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            error = body_too_large_error()
            return JsonResponse(error_body(error.code, error.message), status=error.status_code)
        return JsonResponse(error_body(ERROR_BAD_REQUEST, _("Bad request.")), status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        detail = str(exceptions.PermissionDenied.default_detail)
        return JsonResponse(error_body(ERROR_PERMISSION_DENIED, detail), status=403)
    return _admin_error_page(request, "403.html", 403)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            error_body(ERROR_SERVER_ERROR, str(exceptions.APIException.default_detail)),
            status=500,
        )
    return defaults.server_error(request)
