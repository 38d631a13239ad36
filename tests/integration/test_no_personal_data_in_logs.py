"""Nothing personal in any log of the running stack: `manage.py run_stack` as `make run` runs it
(gunicorn with the access log on stdout, a Celery worker, beat and the WeCom fake, on the test's
database and broker), sent the traffic that carries phone numbers, names, WeCom ids and unionids
(the deprecated by-identity routes with the identity in the path included), then every byte the
stack wrote (its output, its children's, every file in its local folder) is searched for every
value sent, in every form it could be written in."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from config.celery import app
from tests.support import subprocess_database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 30
OPERATOR_PASSWORD = "operator-password-for-the-log-test"

PHONE = "13987650123"
PHONE_FORMATTED = "139 8765 0123"
PHONE_UPSERTED = "13712345678"
PHONE_IN_BODY = "15811112222"
PHONE_UPSERTED_IN_BODY = "18600001111"
PHONE_UNKNOWN = "13600009999"
PHONE_BAD = "1390000111"  # ten digits: refused (400)
NAME = "林晓燕"
NAME_LATIN = "Lin Xiaoyan"
NAME_UPSERTED = "周子涵"
WECOM_ID = "wmB3kPq9ZrT6yVn2XcL8dFh5JsM1aQw4"
WECOM_ID_UNKNOWN = "wmZ9yX8wV7uT6sR5qP4oN3mL2kJ1iH0g"
UNIONID = "oU7x_K2mP9qLw3ZtR5vB8nC1dF4g"
CORP = "ww_logtest"

PERSONAL_VALUES = [
    PHONE,
    PHONE_UPSERTED,
    PHONE_IN_BODY,
    PHONE_UPSERTED_IN_BODY,
    PHONE_UNKNOWN,
    PHONE_BAD,
    NAME,
    NAME_LATIN,
    NAME_UPSERTED,
    WECOM_ID,
    WECOM_ID_UNKNOWN,
    UNIONID,
]


def forms_of(value: str) -> set[str]:
    """Every way `value` could be written in a log: as sent, URL-encoded (path and query),
    JSON-escaped; a phone also in E.164 form and as digits with the country code."""
    forms = {
        value,
        urllib.parse.quote(value),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        json.dumps(value)[1:-1],
    }
    if value.isdigit():
        e164 = f"+86{value}"
        forms |= {e164, e164[1:], urllib.parse.quote(e164, safe=""), f"0086{value}"}
    return forms


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stack:
    """`manage.py run_stack` in a process group of its own, its output in `log_path`."""

    def __init__(self, local: Path, log_path: Path) -> None:
        self.local = local
        self.log_path = log_path
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": subprocess_database_url(),
            "CELERY_BROKER_URL": app.conf.broker_url,
            "CRM_LOCAL_DIR": str(local),
            "CRM_OPERATOR_PASSWORD": OPERATOR_PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("WECOM_API_BASE_URL", "WECOM_CORP_ID", "WECOM_SECRET"):
            env.pop(name, None)  # the stack's own WeCom fake, as `make run` on a bare machine
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_stack", "--port", str(self.port), "--no-demo"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} in the stack's output:\n{self.output()[-5000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM as a service manager would (the runner stops its children in order), then
        every process group it started killed, whatever was left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        children = [int(pid) for pid in re.findall(r"Started \w+ \(pid (\d+)\)", self.output())]
        for group in [self.process.pid, *children]:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path / "local", tmp_path / "stack.log")
    try:
        running.wait_for(r"Private-domain CRM is running", READY_TIMEOUT_SECONDS)
        yield running
    finally:
        running.stop()


class Caller:
    """HTTP to the stack: the API with the quickstart key, the admin with a session."""

    def __init__(self, stack: Stack) -> None:
        self.base = stack.base
        self.key = (stack.local / "quickstart_api_key").read_text().strip()
        self.browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(  # noqa: S310 - the stack's loopback URL
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def page(self, path: str, data: dict[str, str] | None = None, referer: str = "") -> str:
        headers = {"Referer": self.base + referer} if referer else {}
        request = urllib.request.Request(  # noqa: S310 - the stack's loopback URL
            self.base + path,
            data=None if data is None else urllib.parse.urlencode(data).encode(),
            headers=headers,
        )
        with self.browser.open(request, timeout=30) as response:
            return str(response.read().decode())


def send_personal_traffic(caller: Caller) -> int:
    """The traffic; answers the id of the customer created first."""
    customers = [
        {
            "identities": [
                {"provider": "phone", "value": PHONE_FORMATTED},
                {"provider": "wecom", "namespace": CORP, "value": WECOM_ID},
                {"provider": "unionid", "value": UNIONID},
            ],
            "display_name": NAME,
        },
        {"identities": [{"provider": "phone", "value": PHONE_IN_BODY}], "display_name": NAME_LATIN},
    ]
    status, body = caller.api("POST", "/api/v1/customers/bulk", {"customers": customers})
    assert (status, body["created"]) == (200, 2), body
    path = "/api/v1/customers/by-identity"
    status, body = caller.api("GET", f"{path}/phone/{PHONE}")
    assert status == 200, body
    customer_id = int(body["customer"]["id"])
    answers = [
        caller.api("GET", f"{path}/phone/{urllib.parse.quote('+86' + PHONE, safe='')}")[0],
        caller.api("GET", f"{path}/wecom/{WECOM_ID}?namespace={CORP}")[0],
        caller.api("GET", f"{path}/unionid/{UNIONID}")[0],
        caller.api("PUT", f"{path}/phone/{PHONE_UPSERTED}", {"display_name": NAME_UPSERTED})[0],
        caller.api("GET", f"{path}/phone/{PHONE_UNKNOWN}")[0],
        caller.api("GET", f"{path}/wecom/{WECOM_ID_UNKNOWN}?namespace={CORP}")[0],
        caller.api("GET", f"{path}/phone/{PHONE_BAD}")[0],
        caller.api("POST", "/api/v1/customers/lookup", {"provider": "phone", "value": PHONE})[0],
        caller.api(
            "POST", "/api/v1/customers/lookup", {"provider": "phone", "value": PHONE_UNKNOWN}
        )[0],
        caller.api("POST", "/api/v1/customers/lookup", {"provider": "phone", "value": PHONE_BAD})[
            0
        ],
        caller.api(
            "POST",
            path,
            {
                "identity": {"provider": "phone", "value": PHONE_UPSERTED_IN_BODY},
                "display_name": NAME_UPSERTED,
            },
        )[0],
    ]
    assert answers == [200, 200, 200, 201, 404, 404, 400, 200, 404, 400, 201]
    for term in (PHONE, f"+86 {PHONE_FORMATTED}", NAME, NAME_LATIN, UNIONID):
        status, body = caller.api(
            "GET", f"/api/v1/customers?{urllib.parse.urlencode({'search': term})}"
        )
        assert (status, len(body["results"])) == (200, 1), term
    identities = [{"provider": "phone", "value": PHONE}, {"provider": "unionid", "value": UNIONID}]
    status, body = caller.api(
        "POST",
        "/api/v1/interactions/bulk",
        {
            "interactions": [
                {
                    "customer": {"identities": identities},
                    "kind": "message_reply",
                    "occurred_at": "2026-01-02T10:00:00+08:00",
                    "source": "wecom",
                    "idempotency_key": "log-test-1",
                    "properties": {"text": NAME},
                }
            ]
        },
    )
    assert (status, body["rejected"]) == (200, []), body
    status, body = caller.api(
        "POST",
        "/api/v1/orders/bulk",
        {
            "orders": [
                {
                    "source": "shop",
                    "external_id": "log-test-order-1",
                    "customer": {"identities": identities},
                    "status": "paid",
                    "total_amount": "199.00",
                    "paid_at": "2026-01-02T11:00:00+08:00",
                    "items": [
                        {"sku": "SKU-1", "name": "面膜", "quantity": 1, "unit_price": "199.00"}
                    ],
                }
            ]
        },
    )
    assert (status, body["rejected"]) == (200, []), body
    # A task for the worker, with the customers' ids (task arguments are ids only).
    status, body = caller.api("POST", "/api/v1/recompute", {"customer_ids": [customer_id]})
    assert status == 202, body
    return customer_id


def use_the_admin(caller: Caller, customer_id: int) -> None:
    login = caller.page("/admin/login/?next=/admin/crm/customer/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)
    assert token is not None
    caller.page(
        "/admin/login/?next=/admin/crm/customer/",
        {
            "csrfmiddlewaretoken": token.group(1),
            "username": "operator",
            "password": OPERATOR_PASSWORD,
            "next": "/admin/crm/customer/",
        },
        referer="/admin/login/",
    )
    for term in (PHONE, NAME, WECOM_ID):
        search = f"/admin/crm/customer/?{urllib.parse.urlencode({'q': term})}"
        page = caller.page(search)
        assert f"/admin/crm/customer/{customer_id}/change/" in page, term
    # What a browser sends next: the search in the referer and in the preserved filters.
    filters = urllib.parse.urlencode({"_changelist_filters": urllib.parse.urlencode({"q": PHONE})})
    caller.page(
        f"/admin/crm/customer/{customer_id}/change/?{filters}",
        referer=f"/admin/crm/customer/?{urllib.parse.urlencode({'q': PHONE})}",
    )


def test_no_personal_value_in_any_log_of_the_running_stack(stack: Stack, tmp_path: Path) -> None:
    caller = Caller(stack)
    customer_id = send_personal_traffic(caller)
    use_the_admin(caller, customer_id)
    # The worker ran the recomputation (its log lines written), and the web logged the last
    # request: every process had its say before the search.
    stack.wait_for(r"segments\.recompute_customers\[[^\]]+\] succeeded", 60)
    stack.wait_for(rf"/admin/crm/customer/{customer_id}/change/", 10)
    stack.stop()

    written = {path: path.read_bytes().decode(errors="replace") for path in _files(tmp_path)}
    assert len(written) >= 2  # the output and the key file at least
    leaks = [
        (str(path.relative_to(tmp_path)), form, _around(text, form))
        for path, text in written.items()
        for value in PERSONAL_VALUES
        for form in forms_of(value)
        if form in text
    ]
    assert leaks == []
    # And the requests were logged, redacted: the web server's access log and Django's own.
    output = stack.output()
    assert re.search(r'"GET /api/v1/customers/by-identity/phone/\*\*\* HTTP/1\.1" 200', output)
    assert re.search(r'"GET /api/v1/customers\?search=\*\*\* HTTP/1\.1" 200', output)
    assert "Not Found: /api/v1/customers/by-identity/phone/***" in output
    assert re.search(r"celery@\S+ ready", output)  # the worker's own log is in the output


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def _around(text: str, form: str) -> str:
    at = text.index(form)
    return text[max(at - 120, 0) : at + len(form) + 40]
