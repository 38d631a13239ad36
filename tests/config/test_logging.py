"""Redaction of personal data in logs (config.logging, config.gunicorn_logging): what each
pattern hides, what it leaves, and that Django's, gunicorn's and Celery's records pass through
it on every handler."""

import io
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import Client
from gunicorn.config import Config

from config.gunicorn_logging import RedactingLogger
from config.logging import ExtraFieldsFilter, RedactPersonalDataFilter, redact_personal_data


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        (
            '"GET /api/v1/customers/by-identity/phone/13987650123 HTTP/1.1" 404',
            '"GET /api/v1/customers/by-identity/phone/*** HTTP/1.1" 404',
        ),
        (
            "/api/v1/customers/by-identity/wecom/wmAbc?namespace=ww_corp",
            "/api/v1/customers/by-identity/wecom/***?namespace=ww_corp",
        ),
        (  # a value with a slash is logged whole: hidden whole
            "PUT /api/v1/customers/by-identity/external/a/b/c HTTP/1.1",
            "PUT /api/v1/customers/by-identity/external/*** HTTP/1.1",
        ),
        (
            "GET /api/v1/customers?search=%E6%9E%97%E5%B0%8F%E5%A7%90&page_size=3 HTTP/1.1",
            "GET /api/v1/customers?search=***&page_size=3 HTTP/1.1",
        ),
        (
            "/admin/crm/customer/?q=Lin+Xiaojie&o=1",
            "/admin/crm/customer/?q=***&o=1",
        ),
        (
            "?display_name=Lin&Phone=1&owner=zhangsan&identities.0.value=x&tag=3",
            "?display_name=***&Phone=***&owner=***&identities.0.value=***&tag=3",
        ),
        (  # a URL inside a parameter (a login's next=, a changelist's preserved filters)
            "/admin/login/?next=/admin/crm/customer/%3Fq%3D%E6%9E%97%26o%3D1",
            "/admin/login/?next=/admin/crm/customer/%3Fq%3D***%26o%3D1",
        ),
        (
            "/admin/crm/customer/5/change/?_changelist_filters=q%3DLin",
            "/admin/crm/customer/5/change/?_changelist_filters=***",
        ),
        ("<WSGIRequest: GET '/x?name=Lin'>", "<WSGIRequest: GET '/x?name=***'>"),
        # Phone numbers wherever they stand, in their usual forms.
        ("phone 13987650123.", "phone ***."),
        ("/x/+8613987650123/y", "/x/***/y"),
        ("?x=%2B8613987650123", "?x=***"),
        ("8613987650123 008613987650123", "*** ***"),
        ("139 8765 0123 or 139-8765-0123 or 139+8765+0123", "*** or *** or ***"),
        ("+4915112345678", "***"),
        # WeCom external_userid, WeChat openid / unionid.
        ("/x?external=wmB3kPq9ZrT6yVn2XcL8dFh5JsM1aQw4", "/x?external=***"),
        ("id o6_bmjrPTlm6_2sgVt7hMZOPfL2M end", "id *** end"),
    ],
)
def test_personal_values_are_redacted(line: str, redacted: str) -> None:
    assert redact_personal_data(line) == redacted


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1 - - [05/Dec/2026:17:46:14 +0000] "GET /api/v1/customers/42 HTTP/1.1" 200 1534',
        "GET /api/v1/orders?customer_id=1234567&status=paid&paid_since=2026-01-01",
        "Task segments.recompute_customers[7c1d0e5a-93b1-4f0a-8f6e-1a2b3c4d5e6f] succeeded "
        "in 0.0123s: 12345678901234",
        "worker_redirect_stdouts_level wonderful_configuration_name_here",
        "customers.bulk_upsert actor=api_key:quickstart:Ab3dE created_count=3",
    ],
)
def test_what_is_not_personal_is_left_alone(line: str) -> None:
    assert redact_personal_data(line) == line


def test_the_filter_redacts_arguments_extras_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(extra_fields)s"))
    handler.addFilter(ExtraFieldsFilter())
    handler.addFilter(RedactPersonalDataFilter())
    logger = logging.getLogger("tests.redaction")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("no customer +8613987650123")
        except ValueError:
            logger.exception(
                "Not Found: %s",
                "/api/v1/customers/by-identity/phone/13987650123",
                extra={"request": "<WSGIRequest: GET '/api/v1/customers?search=Lin'>"},
            )
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert output.splitlines()[0] == (
        "Not Found: /api/v1/customers/by-identity/phone/*** "
        "request=<WSGIRequest: GET '/api/v1/customers?search=***'>"
    )
    assert "ValueError: no customer ***" in output
    assert "13987650123" not in output and "Lin'" not in output


def test_djangos_not_found_log_is_redacted(db, capsys) -> None:
    # The settings' own handlers, as every process configures them (pytest's log capture
    # would bypass them: read what reaches the root's stream instead).
    root = logging.getLogger()
    console = next(h for h in root.handlers if isinstance(h, logging.StreamHandler))
    stream = io.StringIO()
    original = console.setStream(stream)
    try:
        Client().get("/api/v1/customers/by-identity/phone/13987650123?search=Lin")
    finally:
        console.setStream(original)
    output = stream.getvalue()
    assert "django.request" in output
    assert "/api/v1/customers/by-identity/phone/***" in output
    assert "13987650123" not in output and "search=Lin" not in output
    # The defaults' own handler of `django` is gone: the root's handler alone writes it.
    assert logging.getLogger("django").handlers == []


def test_gunicorns_access_and_error_logs_are_redacted() -> None:
    config = Config()
    config.set("accesslog", "-")
    config.set("errorlog", "-")
    log = RedactingLogger(config)
    stream = io.StringIO()
    for handler in log.access_log.handlers + log.error_log.handlers:
        handler.setStream(stream)  # type: ignore[attr-defined]
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/api/v1/customers/by-identity/phone/13987650123?namespace=",
        "PATH_INFO": "/api/v1/customers/by-identity/phone/13987650123",
        "QUERY_STRING": "namespace=",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": "http://127.0.0.1/admin/crm/customer/?q=%E6%9E%97",
        "HTTP_USER_AGENT": "curl",
    }
    response = SimpleNamespace(status="404 Not Found", sent=10, headers=[])
    log.access(response, SimpleNamespace(headers=[]), environ, timedelta(seconds=0.1))
    log.exception("Error handling request %s", environ["RAW_URI"])
    output = stream.getvalue()
    assert '"GET /api/v1/customers/by-identity/phone/***?namespace= HTTP/1.1" 404' in output
    assert '"http://127.0.0.1/admin/crm/customer/?q=***"' in output
    assert "Error handling request /api/v1/customers/by-identity/phone/***" in output
    assert "13987650123" not in output and "%E6%9E%97" not in output
    # A reload sets the logger up again: one filter still.
    log.setup(config)
    assert len(log.access_log.filters) == 1


def test_celerys_handlers_get_the_redaction() -> None:
    from celery.signals import after_setup_logger, after_setup_task_logger

    for signal in (after_setup_logger, after_setup_task_logger):
        logger = logging.getLogger(f"tests.celery.{signal.name}")
        stream = io.StringIO()
        logger.addHandler(logging.StreamHandler(stream))
        logger.propagate = False
        signal.send(sender=None, logger=logger, loglevel=logging.INFO)
        signal.send(sender=None, logger=logger, loglevel=logging.INFO)  # set up twice
        assert [type(f) for f in logger.handlers[0].filters] == [RedactPersonalDataFilter]
        logger.warning("Task failed: customer %s", "13987650123")
        assert stream.getvalue() == "Task failed: customer ***\n"


def test_a_long_odd_request_line_is_redacted_at_once() -> None:
    import time

    line = "GET /x?" + "phone" * 800 + " " + "&a" * 2000 + "?name=" + "1" * 4000
    started = time.perf_counter()
    redacted = redact_personal_data(line)
    assert time.perf_counter() - started < 0.5
    assert redacted.endswith("?name=***")


# Task arguments a worker logs (at DEBUG, and in every failure's traceback) that are not ids:
# who or what asked (an actor code or `schedule`), a date, a flag, the WeCom sync's scopes.
NOT_IDS = {"trigger": str, "as_of": str | None, "wait": bool, "scopes": list[str] | None}


def test_tasks_take_ids_only() -> None:
    import inspect

    from config.celery import app

    app.loader.import_default_modules()
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert len(tasks) >= 15
    for name, task in tasks.items():
        for parameter in inspect.signature(task.run).parameters.values():
            if parameter.name.endswith("_id"):
                expected: object = int
            elif parameter.name.endswith("_ids"):
                expected = list[int]
            else:
                expected = NOT_IDS.get(parameter.name)
            assert parameter.annotation == expected, (name, parameter.name)
